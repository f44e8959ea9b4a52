'use strict';
// Writes tests/native/jwt_fixtures.inc: keys and tokens made by Node's crypto (OpenSSL through
// another binding), so that jwt_test.cpp checks the engine against tokens it did not make.
// Run it again only to change the fixtures: node tests/native/make_jwt_fixtures.cjs
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const b64 = (b) => Buffer.from(b).toString('base64url');
function sign(alg, key, signingInput) {
  if (alg.startsWith('HS')) return crypto.createHmac(`sha${alg.slice(2)}`, key).update(signingInput).digest();
  if (alg === 'EdDSA') return crypto.sign(null, Buffer.from(signingInput), key);
  const hash = `sha${alg.slice(2)}`;
  if (alg.startsWith('ES')) return crypto.sign(hash, Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
  return crypto.sign(hash, Buffer.from(signingInput), key);
}
function token(alg, key, payload, header = {}) {
  const input = `${b64(JSON.stringify({ alg, typ: 'JWT', ...header }))}.${b64(JSON.stringify(payload))}`;
  return `${input}.${b64(sign(alg, key, input))}`;
}

const rsaA = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaB = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
const p521 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' });
const ed = crypto.generateKeyPairSync('ed25519');
const pub = (k) => k.publicKey.export({ type: 'spki', format: 'pem' });
const secret = 'correct horse battery staple';

const NOW = 1800000000;
const claims = { sub: 'ada', name: 'Ada', iss: 'desk', aud: 'agents', iat: NOW - 10, nbf: NOW - 10, exp: NOW + 3600 };
const out = {
  kSecret: secret,
  kRsaA: pub(rsaA),
  kRsaB: pub(rsaB),
  kRsaPrivateA: rsaA.privateKey.export({ type: 'pkcs8', format: 'pem' }),
  kP256: pub(p256),
  kP384: pub(p384),
  kP521: pub(p521),
  kEd25519: pub(ed),
  kHS256: token('HS256', secret, claims),
  kHS384: token('HS384', secret, claims),
  kHS512: token('HS512', secret, claims),
  kRS256: token('RS256', rsaA.privateKey, claims),
  kRS384: token('RS384', rsaA.privateKey, claims),
  kRS512: token('RS512', rsaA.privateKey, claims),
  kRS256KidA: token('RS256', rsaA.privateKey, claims, { kid: 'a' }),
  kRS256KidB: token('RS256', rsaB.privateKey, claims, { kid: 'b' }),
  kRS256KidBSignedByA: token('RS256', rsaA.privateKey, claims, { kid: 'b' }),
  kES256: token('ES256', p256.privateKey, claims),
  kES384: token('ES384', p384.privateKey, claims),
  kES512: token('ES512', p521.privateKey, claims),
  kEdDSA: token('EdDSA', ed.privateKey, claims),
  // ES256 with the DER signature OpenSSL makes by default, not JWS's r || s.
  kES256Der: (() => {
    const input = `${b64(JSON.stringify({ alg: 'ES256', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}`;
    return `${input}.${b64(crypto.sign('sha256', Buffer.from(input), p256.privateKey))}`;
  })(),
  // The classic attacks.
  kNone: `${b64(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}.`,
  kNoneSigned: `${b64(JSON.stringify({ alg: 'none' }))}.${b64(JSON.stringify(claims))}.${b64('x')}`,
  kHS256WithRsaPublicKey: token('HS256', pub(rsaA), claims),
  kArrayAudience: token('HS256', secret, { ...claims, aud: ['other', 'agents'] }),
  kOtherAudience: token('HS256', secret, { ...claims, aud: ['other'] }),
  kOtherIssuer: token('HS256', secret, { ...claims, iss: 'elsewhere' }),
  kNoExp: token('HS256', secret, { sub: 'ada' }),
  kStringExp: token('HS256', secret, { sub: 'ada', exp: String(NOW + 3600) }),
  kFloatExp: token('HS256', secret, { sub: 'ada', exp: NOW + 0.5 }),
  kNumericSub: token('HS256', secret, { sub: 42, exp: NOW + 3600 }),
  kCrit: token('HS256', secret, claims, { crit: ['exp'] }),
  kPayloadNotObject: token('HS256', secret, [1, 2, 3]),
};
// The same signature over a payload that says someone else.
const [h, , s] = out.kHS256.split('.');
out.kTampered = `${h}.${b64(JSON.stringify({ ...claims, sub: 'root' }))}.${s}`;

const esc = (v) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const lines = ['// Made by tests/native/make_jwt_fixtures.cjs (Node crypto); do not edit.', `constexpr std::int64_t kNow = ${NOW};`];
for (const [name, value] of Object.entries(out)) lines.push(`constexpr const char* ${name} = "${esc(value)}";`);
fs.writeFileSync(path.join(__dirname, 'jwt_fixtures.inc'), `${lines.join('\n')}\n`);
