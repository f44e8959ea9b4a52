'use strict';
// The HTTP side of the Socket.IO server in JS: CORS (as the `cors` package that socket.io
// uses, plus a 403 for a disallowed origin), serving the client bundle, and small helpers.
// Engine.IO polling itself is the engine's: the request goes to it with its body.
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { pipeline } = require('node:stream');

const STATUS_TEXT = {
  400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

/** Answers an upgrade on Node's own socket (before the engine took it). */
function refuseSocket(socket, status, message) {
  if (socket.destroyed) return;
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] || 'Error'}\r\nConnection: close\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

// `payload`: an object sent as JSON (Engine.IO's error shape is {code, message}), or nothing.
function sendStatus(res, status, payload, headers = {}) {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = payload ? JSON.stringify(payload) : '';
  res.writeHead(status, {
    ...headers,
    ...(body ? { 'Content-Type': 'application/json' } : {}),
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

// ---------------------------------------------------------------------------------------- CORS

const DEFAULT_METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE';

function listValue(v) {
  if (v === undefined || v === null) return undefined;
  return Array.isArray(v) ? v.join(',') : String(v);
}

function originMatches(requestOrigin, allowed) {
  if (Array.isArray(allowed)) return allowed.some((a) => originMatches(requestOrigin, a));
  if (allowed instanceof RegExp) return allowed.test(requestOrigin);
  if (typeof allowed === 'string') return requestOrigin === allowed;
  return Boolean(allowed);
}

/**
 * CORS policy from socket.io's `cors` option. `check(req)` resolves with
 *   { allowed: boolean, headers: {...} }   (headers to add to every response)
 * A request without an Origin header is never refused.
 */
class Cors {
  constructor(options) {
    this.options = { ...options };
  }

  // The static verdict for one origin value ('*', a string, a RegExp, an array, a boolean).
  _verdict(requestOrigin, configured) {
    const headers = {};
    if (configured === undefined || configured === '*') {
      headers['Access-Control-Allow-Origin'] = '*';
      return { allowed: true, headers, corsOff: false };
    }
    if (configured === false) return { allowed: true, headers, corsOff: true };
    headers.Vary = 'Origin';
    if (configured === true) {
      if (requestOrigin) headers['Access-Control-Allow-Origin'] = requestOrigin;
      return { allowed: true, headers, corsOff: false };
    }
    if (typeof configured === 'string') {
      headers['Access-Control-Allow-Origin'] = configured;
      return { allowed: !requestOrigin || requestOrigin === configured, headers, corsOff: false };
    }
    const ok = Boolean(requestOrigin) && originMatches(requestOrigin, configured);
    if (ok) headers['Access-Control-Allow-Origin'] = requestOrigin;
    return { allowed: ok || !requestOrigin, headers, corsOff: false };
  }

  _resolveOrigin(requestOrigin) {
    const configured = this.options.origin;
    if (typeof configured !== 'function') return this._verdict(requestOrigin, configured);
    return new Promise((resolve) => {
      let done = false;
      try {
        configured(requestOrigin, (err, value) => {
          if (done) return;
          done = true;
          if (err) resolve({ allowed: !requestOrigin, headers: {}, corsOff: true, error: err });
          else resolve(this._verdict(requestOrigin, value));
        });
      } catch (err) {
        done = true;
        resolve({ allowed: !requestOrigin, headers: {}, corsOff: true, error: err });
      }
    });
  }

  /** Verdict for an ordinary (non-preflight) request or an upgrade: sync or a Promise. */
  check(req) {
    const v = this._resolveOrigin(req.headers.origin);
    return typeof v.then === 'function' ? v.then((r) => this._finish(r)) : this._finish(v);
  }

  _finish(v) {
    if (v.corsOff) return v;
    const o = this.options;
    if (o.credentials === true) v.headers['Access-Control-Allow-Credentials'] = 'true';
    const exposed = listValue(o.exposedHeaders);
    if (exposed) v.headers['Access-Control-Expose-Headers'] = exposed;
    return v;
  }

  /** Headers of a preflight answer (adds methods, allowed headers, max age). */
  preflightHeaders(req, v) {
    if (v.corsOff) return {};
    const o = this.options;
    const headers = { ...v.headers };
    headers['Access-Control-Allow-Methods'] = listValue(o.methods) ?? DEFAULT_METHODS;
    let allowedHeaders = listValue(o.allowedHeaders ?? o.headers);
    if (!allowedHeaders) {
      // Not configured: reflect the request's (and vary on it), as the cors package does.
      allowedHeaders = req.headers['access-control-request-headers'];
      headers.Vary = headers.Vary ? `${headers.Vary}, Access-Control-Request-Headers` : 'Access-Control-Request-Headers';
    }
    if (allowedHeaders) headers['Access-Control-Allow-Headers'] = allowedHeaders;
    if (o.maxAge !== undefined && o.maxAge !== null && String(o.maxAge).length) {
      headers['Access-Control-Max-Age'] = String(o.maxAge);
    }
    return headers;
  }
}

// ------------------------------------------------------------------------------ client bundle

const CLIENT_FILES = new Set([
  'socket.io.esm.min.js',
  'socket.io.esm.min.js.map',
  'socket.io.js',
  'socket.io.js.map',
  'socket.io.min.js',
  'socket.io.min.js.map',
  'socket.io.msgpack.min.js',
  'socket.io.msgpack.min.js.map',
]);

let clientDist; // undefined: not looked up yet; null: not installed
let clientMissingLogged = false;

function findClientDist() {
  if (clientDist !== undefined) return clientDist;
  try {
    const pkgFile = require.resolve('socket.io-client/package.json');
    const dir = path.join(path.dirname(pkgFile), 'dist');
    const version = JSON.parse(fs.readFileSync(pkgFile, 'utf8')).version;
    clientDist = fs.existsSync(path.join(dir, 'socket.io.js')) ? { dir, version } : null;
  } catch {
    clientDist = null;
  }
  return clientDist;
}

// The `negotiator` package's rule, which `accepts(req).encodings(offered)` follows in socket.io
// (the client bundle) and engine.io (polling responses): each offered encoding takes the
// header's most specific entry that names it (its own name over `*`), then the highest q, then
// the later one; those with q > 0 are ordered by q, specificity, position in the header (so
// `gzip, br` picks gzip), then the order offered. Null: none (identity).
function negotiateEncoding(header, offered) {
  const specs = [];
  String(header || '')
    .split(',')
    .forEach((part, i) => {
      const m = /^\s*([^\s;]+)\s*(?:;(.*))?$/.exec(part.trim());
      if (!m) return;
      let q = 1;
      if (m[2]) {
        for (const p of m[2].split(';')) {
          const kv = p.trim().split('=');
          if (kv[0] === 'q') {
            q = parseFloat(kv[1]);
            break;
          }
        }
      }
      specs.push({ encoding: m[1].toLowerCase(), q, o: i });
    });
  const priorities = offered.map((encoding, i) => {
    let best = { q: 0, s: 0, o: -1, i };
    for (const spec of specs) {
      let s = 0;
      if (spec.encoding === encoding) s = 1;
      else if (spec.encoding !== '*') continue;
      if ((best.s - s || best.q - spec.q || best.o - spec.o) < 0) best = { q: spec.q, s, o: spec.o, i };
    }
    return best;
  });
  const accepted = priorities.filter((p) => p.q > 0).sort((a, b) => b.q - a.q || b.s - a.s || a.o - b.o || a.i - b.i);
  return accepted.length ? offered[accepted[0].i] : null;
}

// The client bundle's encoding, as socket.io picks it.
const BUNDLE_ENCODINGS = ['br', 'gzip', 'deflate'];
const pickEncoding = (header) => negotiateEncoding(header, BUNDLE_ENCODINGS);

/** True when `filename` is a client file and socket.io-client is installed (logs once if not). */
function clientFileAvailable(filename, log) {
  if (!CLIENT_FILES.has(filename)) return false;
  if (findClientDist()) return true;
  if (!clientMissingLogged) {
    clientMissingLogged = true;
    log('warn', 'serveClient: socket.io-client is not installed, the client bundle is not served');
  }
  return false;
}

/** Serves `<path>/socket.io.js` and friends from the installed socket.io-client package. */
function serveClientFile(filename, req, res, extraHeaders = {}) {
  const dist = findClientDist();
  const isMap = filename.endsWith('.map');
  const etag = `"${dist.version}"`;
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch && (ifNoneMatch === etag || ifNoneMatch === `W/${etag}`)) {
    res.writeHead(304, extraHeaders);
    res.end();
    return;
  }
  const headers = {
    ...extraHeaders,
    'Cache-Control': 'public, max-age=0',
    'Content-Type': `application/${isMap ? 'json' : 'javascript'}; charset=utf-8`,
    ETag: etag,
  };
  const file = fs.createReadStream(path.join(dist.dir, filename));
  const encoding = pickEncoding(req.headers['accept-encoding']);
  const onDone = (err) => {
    if (err && !res.writableEnded) res.destroy();
  };
  if (req.method === 'HEAD') {
    file.destroy();
    res.writeHead(200, headers);
    res.end();
    return;
  }
  if (encoding === 'br') {
    res.writeHead(200, { ...headers, 'Content-Encoding': 'br' });
    pipeline(file, zlib.createBrotliCompress(), res, onDone);
  } else if (encoding === 'gzip') {
    res.writeHead(200, { ...headers, 'Content-Encoding': 'gzip' });
    pipeline(file, zlib.createGzip(), res, onDone);
  } else if (encoding === 'deflate') {
    res.writeHead(200, { ...headers, 'Content-Encoding': 'deflate' });
    pipeline(file, zlib.createDeflate(), res, onDone);
  } else {
    res.writeHead(200, headers);
    pipeline(file, res, onDone);
  }
}

module.exports = {
  negotiateEncoding, Cors, refuseSocket, sendStatus, serveClientFile, clientFileAvailable, CLIENT_FILES };
