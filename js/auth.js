'use strict';
// JWT authentication's options (Server option `auth: { jwt }`), checked and turned into what the
// engine verifies with: a list of keys, each a secret or a PEM public key with an optional kid.
// A JWKS is converted here by Node's crypto (JWK to SPKI PEM); the engine verifies in C++.
const crypto = require('crypto');

const SOURCES = new Set(['auth', 'query', 'header', 'cookie']);
const ALGORITHMS = new Set(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);

// The key each algorithm needs (as the engine checks: a token is verified only by its kind).
const KIND_OF = {
  HS256: 'secret', HS384: 'secret', HS512: 'secret',
  RS256: 'rsa', RS384: 'rsa', RS512: 'rsa',
  ES256: 'ec:prime256v1', ES384: 'ec:secp384r1', ES512: 'ec:secp521r1',
  EdDSA: 'ed25519',
};

function keyKind(material) {
  if (!String(material).includes('-----BEGIN')) return 'secret';
  const key = crypto.createPublicKey(material);
  if (key.asymmetricKeyType === 'ec') return `ec:${key.asymmetricKeyDetails.namedCurve}`;
  return key.asymmetricKeyType;
}

function fail(what) {
  throw new TypeError(`sidewire: auth.jwt.${what}`);
}

function material(value, what) {
  if ((typeof value === 'string' || Buffer.isBuffer(value)) && value.length > 0) {
    if (!String(value).includes('-----BEGIN')) return value;
    try {
      // A PEM the engine can read: its public key as SPKI (a certificate's or a private key's too).
      return crypto.createPublicKey(value).export({ type: 'spki', format: 'pem' });
    } catch (err) {
      return fail(`${what} is PEM but no key Node can read: ${err.message}`);
    }
  }
  if (value instanceof crypto.KeyObject) {
    if (value.type === 'secret') return value.export();
    return (value.type === 'private' ? crypto.createPublicKey(value) : value).export({ type: 'spki', format: 'pem' });
  }
  return fail(`${what} must be a non-empty string, Buffer or KeyObject`);
}

function fromJwk(jwk, i) {
  if (!jwk || typeof jwk !== 'object') fail(`jwks.keys[${i}] is not a JWK`);
  if (jwk.use && jwk.use !== 'sig') return null; // an encryption key is no key to verify with
  const kid = typeof jwk.kid === 'string' ? jwk.kid : '';
  if (jwk.kty === 'oct') {
    if (typeof jwk.k !== 'string' || !jwk.k) fail(`jwks.keys[${i}] (oct) has no k`);
    return { kid, key: Buffer.from(jwk.k, 'base64url') };
  }
  let key;
  try {
    key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    fail(`jwks.keys[${i}] is not a key Node can read: ${err.message}`);
  }
  return { kid, key: key.export({ type: 'spki', format: 'pem' }) };
}

function list(value) {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * The engine's jwt settings from `auth.jwt`; throws a TypeError for what cannot work. A raw
 * channel (`channel: true`) reads tokens from the upgrade request only: no 'auth', no refresh.
 */
function jwtSettings(o, { channel = false } = {}) {
  if (!o || typeof o !== 'object') fail('must be an object');
  const keys = [];
  for (const s of list(o.secret)) keys.push({ kid: '', key: material(s, 'secret') });
  for (const p of list(o.publicKey)) keys.push({ kid: '', key: material(p, 'publicKey') });
  for (const [i, k] of list(o.keys).entries()) {
    if (!k || typeof k !== 'object') fail(`keys[${i}] must be { kid, secret } or { kid, publicKey }`);
    if (k.kid !== undefined && typeof k.kid !== 'string') fail(`keys[${i}].kid must be a string`);
    const value = k.secret ?? k.publicKey ?? k.key;
    keys.push({ kid: k.kid || '', key: material(value, `keys[${i}]`) });
  }
  if (o.jwks !== undefined) {
    const set = o.jwks && Array.isArray(o.jwks.keys) ? o.jwks.keys : fail('jwks must be a JWK set ({ keys: [...] })');
    for (const [i, jwk] of set.entries()) {
      const k = fromJwk(jwk, i);
      if (k) keys.push(k);
    }
  }
  if (keys.length === 0) fail('needs a secret, a publicKey, keys or a jwks');
  const out = { keys };
  if (o.algorithms !== undefined) {
    if (!Array.isArray(o.algorithms) || o.algorithms.length === 0) fail('algorithms must be a non-empty array');
    const kinds = new Set(keys.map((k) => keyKind(k.key)));
    for (const a of o.algorithms) {
      if (!ALGORITHMS.has(a)) fail(`algorithms: ${JSON.stringify(a)} is not one of ${[...ALGORITHMS].join(', ')}`);
      if (!kinds.has(KIND_OF[a])) fail(`algorithms: ${a} has no key to check it`);
    }
    out.algorithms = o.algorithms;
  }
  if (o.issuer !== undefined) {
    if (typeof o.issuer !== 'string') fail('issuer must be a string');
    out.issuer = o.issuer;
  }
  if (o.audience !== undefined) {
    const aud = list(o.audience);
    if (aud.some((a) => typeof a !== 'string')) fail('audience must be a string or an array of strings');
    out.audience = aud;
  }
  const seconds = (name) => {
    const v = o[name];
    if (v === undefined) return undefined;
    if (!Number.isInteger(v) || v < 0) fail(`${name} must be a whole number of seconds, 0 or more`);
    return v;
  };
  if (o.clockToleranceSec !== undefined) out.clockTolerance = seconds('clockToleranceSec');
  if (o.maxTokenBytes !== undefined) {
    if (!Number.isInteger(o.maxTokenBytes) || o.maxTokenBytes < 16) fail('maxTokenBytes must be a whole number, 16 or more');
    out.maxTokenBytes = o.maxTokenBytes;
  }
  if (o.requireExp !== undefined) out.requireExp = Boolean(o.requireExp);
  const sources = channel ? [...SOURCES].filter((f) => f !== 'auth') : [...SOURCES];
  if (o.from !== undefined) {
    const from = list(o.from);
    if (from.length === 0 || from.some((f) => !sources.includes(f))) fail(`from must list some of ${sources.join(', ')}`);
    out.from = from;
  } else {
    // A cookie only when asked for: browsers send it cross-site, and a WebSocket has no CORS.
    out.from = sources.filter((f) => f !== 'cookie');
  }
  if (channel && o.refreshEvent !== undefined) fail('refreshEvent is Socket.IO\'s: a raw channel has no events');
  if (channel && o.authField !== undefined) fail('authField is Socket.IO\'s: a raw channel reads the query, a header or a cookie');
  for (const name of ['authField', 'queryParam', 'cookie']) {
    if (o[name] === undefined) continue;
    if (typeof o[name] !== 'string' || !o[name]) fail(`${name} must be a non-empty string`);
    out[name] = o[name];
  }
  out.userRoomPrefix = 'user:';
  if (o.userRoom !== undefined) {
    if (o.userRoom === false) out.userRoomPrefix = '';
    else if (typeof o.userRoom === 'string') out.userRoomPrefix = o.userRoom;
    else fail('userRoom must be a room prefix (default "user:") or false');
  }
  if (o.refreshEvent !== undefined) {
    if (o.refreshEvent === false) out.refreshEvent = '';
    else if (typeof o.refreshEvent === 'string' && o.refreshEvent) out.refreshEvent = o.refreshEvent;
    else fail('refreshEvent must be an event name (default "auth:refresh") or false');
  }
  return out;
}

// Where a token is looked for: a namespace's jwt takes these from the Server's auth.jwt.
const WHERE = ['from', 'authField', 'queryParam', 'cookie'];

/**
 * A Socket.IO Server's `auth`: { jwt, namespaces: { '/name': { jwt } | false } }, as
 * { jwt, namespaces: [{ name, jwt }] } (jwt null: no authentication there). A namespace's own
 * jwt is checked for its CONNECTs instead of the Server's, and reads the token where the
 * Server's does (one handshake carries it for every namespace).
 */
function serverAuthSettings(auth) {
  if (!auth) return { jwt: null, namespaces: [] };
  const jwt = auth.jwt ? jwtSettings(auth.jwt) : null;
  const namespaces = [];
  if (auth.namespaces !== undefined) {
    if (!auth.namespaces || typeof auth.namespaces !== 'object' || Array.isArray(auth.namespaces)) {
      throw new TypeError("sidewire: auth.namespaces is { '/name': { jwt } | false }");
    }
    for (const [name, v] of Object.entries(auth.namespaces)) {
      if (!name.startsWith('/')) throw new TypeError(`sidewire: auth.namespaces: '${name}' is no namespace name (they start with '/')`);
      if (v === false || v === null) {
        namespaces.push({ name, jwt: null });
        continue;
      }
      if (!v || typeof v !== 'object' || !v.jwt) throw new TypeError(`sidewire: auth.namespaces['${name}'] is { jwt } or false`);
      for (const own of WHERE) {
        if (v.jwt[own] !== undefined) {
          throw new TypeError(`sidewire: auth.namespaces['${name}'].jwt.${own}: a namespace reads the token where the Server does; set it on auth.jwt`);
        }
      }
      const where = {};
      for (const own of WHERE) if (auth.jwt && auth.jwt[own] !== undefined) where[own] = auth.jwt[own];
      namespaces.push({ name, jwt: jwtSettings({ ...v.jwt, ...where }) });
    }
  }
  return { jwt, namespaces };
}

module.exports = { jwtSettings, serverAuthSettings };
