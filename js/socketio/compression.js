'use strict';
// The Socket.IO server's two compression options, read as engine.io 6 reads them:
//   perMessageDeflate  WebSocket messages (RFC 7692). Off by default. The engine does it in C++
//                      (native/net/deflate.cpp); this file only turns the option into its settings.
//   httpCompression    polling responses, gzip or deflate by the request's Accept-Encoding.
//                      On by default ({ threshold: 1024 }); done here with Node's zlib, off the
//                      main thread, and only for the responses that reach the threshold.
const zlib = require('node:zlib');
const { negotiateEncoding } = require('./http.js');

function intIn(value, min, max, fallback, name, warn) {
  if (value === undefined || value === null || value === true) return fallback;
  if (Number.isInteger(value) && value >= min && value <= max) return value;
  warn(`perMessageDeflate: ${name} must be an integer from ${min} to ${max}; using the default`);
  return fallback;
}

/**
 * The engine's permessage-deflate settings for socket.io's `perMessageDeflate` option: false
 * (off), or the option with ws's names filled in. `threshold` defaults to 1024, as engine.io
 * sets it. sidewire defaults serverNoContextTakeover and clientNoContextTakeover to true (ws:
 * false), see docs/socketio.md.
 */
function perMessageDeflateSettings(option, warn = () => {}) {
  if (!option) return false;
  const o = typeof option === 'object' ? option : {};
  const z = (o.zlibDeflateOptions && typeof o.zlibDeflateOptions === 'object' && o.zlibDeflateOptions) || {};
  let threshold = 1024;
  if (o.threshold !== undefined) {
    const t = Number(o.threshold);
    if (Number.isFinite(t) && t >= 0) threshold = Math.min(Math.floor(t), 0xffffffff);
    else warn('perMessageDeflate: threshold must be a number of bytes; using 1024');
  }
  return {
    threshold,
    level: intIn(z.level, -1, 9, -1, 'zlibDeflateOptions.level', warn),
    memLevel: intIn(z.memLevel, 1, 9, 8, 'zlibDeflateOptions.memLevel', warn),
    strategy: intIn(z.strategy, 0, 4, 0, 'zlibDeflateOptions.strategy', warn),
    serverNoContextTakeover: o.serverNoContextTakeover !== false,
    clientNoContextTakeover: o.clientNoContextTakeover !== false,
    // ws takes `true` for "whatever the client says": the defaults here.
    serverMaxWindowBits: o.serverMaxWindowBits === false ? 15 : intIn(o.serverMaxWindowBits, 8, 15, 15, 'serverMaxWindowBits', warn),
    clientMaxWindowBits: o.clientMaxWindowBits === false ? 0 : intIn(o.clientMaxWindowBits, 8, 15, 0, 'clientMaxWindowBits', warn),
  };
}

/**
 * The settings for socket.io's `httpCompression` option, or null when off. As engine.io: the
 * default is { threshold: 1024 }; an object is also zlib's options; a missing threshold (as with
 * `true`) compresses every response.
 */
function httpCompressionSettings(option) {
  if (option === false || option === null) return null;
  if (option === undefined) return { threshold: 1024, zlib: {} };
  const o = typeof option === 'object' ? option : {};
  const t = Number(o.threshold);
  return { threshold: Number.isFinite(t) ? t : 0, zlib: o };
}

// The encoding of a polling response for this Accept-Encoding header: 'gzip', 'deflate' or
// null, as engine.io asks `accepts(req).encodings(['gzip', 'deflate'])` (negotiateEncoding).
const POLLING_ENCODINGS = ['gzip', 'deflate'];
function pickPollingEncoding(header) {
  return header ? negotiateEncoding(header, POLLING_ENCODINGS) : null;
}

/**
 * Writes a polling response compressed when its body reaches the threshold and the client
 * accepts gzip or deflate; returns false (nothing written) otherwise. The compression runs on
 * libuv's thread pool; `res` may be gone by the time it is done.
 */
function writeCompressed(res, status, headers, body, acceptEncoding, settings) {
  const size = typeof body === 'string' ? (body.length >= settings.threshold ? body.length : Buffer.byteLength(body)) : body.length;
  if (size < settings.threshold) return false;
  const encoding = pickPollingEncoding(acceptEncoding);
  if (!encoding) return false;
  const compress = encoding === 'gzip' ? zlib.gzip : zlib.deflate;
  compress(body, settings.zlib, (err, out) => {
    if (res.destroyed || res.writableEnded) return;
    if (err) {
      res.writeHead(500);
      res.end();
      return;
    }
    res.writeHead(status, { ...headers, 'Content-Encoding': encoding, 'Content-Length': out.length });
    res.end(out);
  });
  return true;
}

module.exports = { perMessageDeflateSettings, httpCompressionSettings, pickPollingEncoding, writeCompressed };
