'use strict';
// engine.io's part of socket.io's API over the sessions the engine keeps: `io.engine` (engine.io's
// Server: clientsCount, opts, use(), the connection / connection_error / headers events) and
// `socket.conn` (engine.io's Socket). Nothing here speaks Engine.IO: the engine does, and reports
// a session's events only while JS listens to them (docs/binding-socketio.md, sioWatch).
const http = require('node:http');
const { EventEmitter } = require('node:events');
const { parseHeaderLines, splitTarget } = require('../http-head.js');

// engine.io's Server.errors and Server.errorMessages.
const ERRORS = {
  UNKNOWN_TRANSPORT: 0,
  UNKNOWN_SID: 1,
  BAD_HANDSHAKE_METHOD: 2,
  BAD_REQUEST: 3,
  FORBIDDEN: 4,
  UNSUPPORTED_PROTOCOL_VERSION: 5,
};
const ERROR_MESSAGES = {
  0: 'Transport unknown',
  1: 'Session ID unknown',
  2: 'Bad handshake method',
  3: 'Bad request',
  4: 'Forbidden',
  5: 'Unsupported protocol version',
};

// The events of socket.conn that the engine reports only while someone listens (EioWatch bits
// in engine.hpp); 'upgrade' and 'close' come whenever JS holds the session's Conn.
const WATCH_BITS = { packet: 1, packetCreate: 2, heartbeat: 4, drain: 8, upgrading: 16 };

// One shared { name } per transport: conn.transport is read, never written, by apps.
const TRANSPORTS = { polling: Object.freeze({ name: 'polling' }), websocket: Object.freeze({ name: 'websocket' }) };
function transportOf(name) {
  return TRANSPORTS[name] || { name: name || 'polling' };
}

/** engine.io's `req._query`: the query as an object (the last value of a repeated key wins). */
function prepare(req) {
  if (!req._query) req._query = Object.fromEntries(new URLSearchParams(splitTarget(req.url).query));
  return req;
}

/**
 * An http.IncomingMessage for a request Node never parsed (an upgrade the engine took itself
 * behind engine.listen()): method, url, headers, rawHeaders and a `socket` with the peer's
 * address, as middleware and `socket.request` readers expect.
 */
function incomingMessage(method, url, headerLines, address, secure = false) {
  const socket = { remoteAddress: address || undefined, encrypted: secure, readable: false, destroyed: true };
  const req = new http.IncomingMessage(socket);
  const { headers, rawHeaders } = parseHeaderLines(headerLines || '');
  req.method = method;
  req.url = url;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.httpVersion = '1.1';
  req.rawHeaders = rawHeaders;
  req.headers = headers;
  req.complete = true;
  req.push(null);
  return req;
}

/**
 * Lets a kept request (socket.request) forget its net.Socket: a stand-in with the socket's
 * addresses takes its place, so that a session does not hold a closed connection's socket
 * object (about 2.5 KB of heap) for its whole life. Call once Node is done with the request.
 */
function detachSocket(req, address) {
  const s = req.socket;
  if (!s || s[STAND_IN]) return;
  const standIn = {
    [STAND_IN]: true,
    remoteAddress: address || s.remoteAddress,
    remotePort: s.remotePort,
    remoteFamily: s.remoteFamily,
    localAddress: s.localAddress,
    localPort: s.localPort,
    encrypted: Boolean(s.encrypted),
    readable: false,
    writable: false,
    destroyed: true,
  };
  req.socket = standIn;
  if (req.client === s) req.client = standIn; // IncomingMessage's old alias of `socket`
}
const STAND_IN = Symbol('sidewire.socketStandIn');

/**
 * engine.io's context of a connection_error, from the refused request (the engine said which
 * check failed; this names the details as engine.io does).
 */
function errorContext(code, req) {
  const q = prepare(req)._query;
  switch (code) {
    case ERRORS.UNKNOWN_TRANSPORT:
      return { transport: q.transport };
    case ERRORS.UNKNOWN_SID:
      return { sid: q.sid };
    case ERRORS.BAD_HANDSHAKE_METHOD:
      return { method: req.method };
    case ERRORS.BAD_REQUEST:
      return q.sid
        ? { name: 'TRANSPORT_MISMATCH', transport: q.transport, previousTransport: q.transport === 'polling' ? 'websocket' : 'polling' }
        : { name: 'TRANSPORT_HANDSHAKE_ERROR' };
    case ERRORS.UNSUPPORTED_PROTOCOL_VERSION:
      return { protocol: q.EIO === '4' ? 4 : 3 };
    default:
      return undefined;
  }
}

/**
 * engine.io's stand-in for the response of an upgrade, so that Express-style middleware runs on
 * upgrades too: headers set on it go into the 101; end() refuses the upgrade.
 */
class WebSocketResponse extends EventEmitter {
  constructor(req, socket) {
    super();
    this.req = req;
    this.socket = socket;
    this._headers = {};
    this.headersSent = false;
    socket.once('close', () => this.emit('close'));
  }

  setHeader(name, value) {
    this._headers[name] = value;
  }

  getHeader(name) {
    return this._headers[name];
  }

  removeHeader(name) {
    delete this._headers[name];
  }

  write() {}

  writeHead() {}

  end() {
    this.emit('finish');
    this.socket.destroy();
  }
}

// Runs engine.io middleware one after the other; `callback(err)` once they are done.
function runMiddleware(fn, req, res) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const next = (err) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve();
    };
    try {
      Promise.resolve(fn(req, res, next)).catch(next);
    } catch (e) {
      next(e);
    }
  });
}

/**
 * Header lines ("Name: value\r\n") for the 101 of an upgrade, from a headers object the app
 * filled; invalid names or values are left out with a warning (Node's own checks).
 */
function headerLines(headers, log) {
  let out = '';
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      try {
        http.validateHeaderName(name);
        http.validateHeaderValue(name, String(v));
      } catch (err) {
        log('warn', `Socket.IO upgrade: header ${name} left out of the 101: ${err.message}`);
        continue;
      }
      out += `${name}: ${v}\r\n`;
    }
  }
  return out;
}

/**
 * The Engine.IO session behind one or more sockets (engine.io's Socket, socket.io's
 * `socket.conn`). An EventEmitter whose listener table is made on first use (EventEmitter's
 * methods accept an undefined `_events`): most sessions never get a listener, and an idle one
 * must stay small. Adding a listener for `packet`, `packetCreate`, `heartbeat`, `drain` or
 * `upgrading` asks the engine for that event of this session (sioWatch); removing the last one
 * stops it.
 */
class Conn {
  constructor(server, connId, transportName, requestInfo, sid) {
    this.server = server;
    /** The Engine.IO sid, as the client knows it. */
    this.id = sid || String(connId);
    /** sidewire's numeric session id. */
    this.connId = connId;
    this.readyState = 'open';
    this.transport = transportOf(transportName);
    this._info = requestInfo;
    this._sockets = []; // its sockets, one per namespace (usually one)
  }

  get protocol() {
    return 4;
  }

  get remoteAddress() {
    return this._info.address;
  }

  /** The handshake's http.IncomingMessage (with whatever io.engine.use() middleware added). */
  get request() {
    return this._info.request;
  }

  /** As engine.io's socket.close(): what is queued goes out, then the session ends ("forced close"). */
  close() {
    if (this.readyState !== 'open') return this;
    this.readyState = 'closing';
    this.server.sidewire._native.sioCloseSession(this.connId);
    return this;
  }

  // A new listener's event is asked for at once, so that it reaches the session's I/O thread
  // before anything JS does next (an emit right after conn.on('packetCreate') is reported);
  // a removal is applied once the tick's changes are done.
  _updateWatch(added) {
    if (added) return this._applyWatch();
    if (this._watchQueued) return undefined;
    this._watchQueued = true;
    queueMicrotask(() => {
      this._watchQueued = false;
      this._applyWatch();
    });
    return undefined;
  }

  _applyWatch() {
    let mask = 0;
    for (const [ev, bit] of Object.entries(WATCH_BITS)) if (this.listenerCount(ev) > 0) mask |= bit;
    if (mask === this._watch || this.readyState === 'closed' || this.server._closed) return;
    this._watch = mask;
    this.server.sidewire._native.sioWatch(this.connId, mask);
  }

  // From the engine's events (server.js).
  _onUpgrading(name) {
    this.upgrading = true;
    this.emit('upgrading', transportOf(name));
  }

  _onUpgrade(name) {
    this.upgrading = false;
    this.upgraded = true;
    this.transport = transportOf(name);
    this.emit('upgrade', this.transport);
  }

  _onClose(reason) {
    this.readyState = 'closed';
    this.upgrading = false;
    this.emit('close', reason);
  }
}
Object.setPrototypeOf(Conn.prototype, EventEmitter.prototype);
Object.assign(Conn.prototype, { upgrading: false, upgraded: false, _watch: 0, _watchQueued: false });
for (const method of ['on', 'addListener', 'prependListener', 'once', 'prependOnceListener', 'off', 'removeListener']) {
  const added = method !== 'off' && method !== 'removeListener';
  Conn.prototype[method] = function watched(ev, listener) {
    EventEmitter.prototype[method].call(this, ev, listener);
    if (WATCH_BITS[ev]) this._updateWatch(added);
    return this;
  };
}
Conn.prototype.removeAllListeners = function removeAllListeners(...args) {
  EventEmitter.prototype.removeAllListeners.apply(this, args);
  this._updateWatch(false);
  return this;
};

// engine.io's defaults for the options the engine takes (the Server configures the engine from
// these, and io.engine.opts shows them).
const ENGINE_DEFAULTS = Object.freeze({
  pingTimeout: 20000,
  pingInterval: 25000,
  upgradeTimeout: 10000,
  maxHttpBufferSize: 1e6,
  transports: Object.freeze(['polling', 'websocket']),
  allowUpgrades: true,
  httpCompression: Object.freeze({ threshold: 1024 }),
  cors: false,
  allowEIO3: false,
});

/**
 * engine.io's Server as socket.io's `io.engine` shows it. The sidewire Engine underneath is
 * `io.sidewire`.
 */
class EngineIoServer extends EventEmitter {
  constructor(io) {
    super();
    this._io = io;
    this.middlewares = [];
    this._opts = null;
    this._flagsQueued = false;
    // The engine reports sessions opening, refused upgrades, and takes upgrades through JS,
    // only while someone listens for them here.
    const changed = () => this._queueFlags();
    this.on('newListener', changed);
    this.on('removeListener', changed);
  }

  /** The sidewire Engine this server runs on. */
  get sidewire() {
    return this._io.sidewire;
  }

  /** Open Engine.IO sessions (every transport, every namespace), as the engine counts them. */
  get clientsCount() {
    if (this._io._closed && !this._io.sidewire._sioServer) return 0;
    try {
      return this._io.sidewire._native.sioSessionCount();
    } catch {
      return 0; // the engine is stopped
    }
  }

  /** engine.io's options in effect: its defaults, then the Server's options (as socket.io passes them). */
  get opts() {
    if (!this._opts) {
      const o = this._io.opts;
      const { engine, ...own } = o; // `engine` is sidewire's, not an engine.io option
      this._opts = {
        ...ENGINE_DEFAULTS,
        transports: [...ENGINE_DEFAULTS.transports],
        httpCompression: { ...ENGINE_DEFAULTS.httpCompression },
        ...own,
        path: this._io._path,
      };
      if (own.perMessageDeflate) this._opts.perMessageDeflate = { threshold: 1024, ...own.perMessageDeflate };
      if (own.httpCompression) this._opts.httpCompression = { threshold: 1024, ...own.httpCompression };
    }
    return this._opts;
  }

  set opts(value) {
    this._opts = value;
  }

  /**
   * Adds Express-style middleware `(req, res, next)`, run on every Engine.IO HTTP request and
   * every upgrade (with a stand-in response whose headers go into the 101), before the checks
   * and allowRequest. `next(err)` refuses the request (400, "Bad request").
   */
  use(fn) {
    this.middlewares.push(fn);
    this._queueFlags();
    return this;
  }

  /** Closes every Engine.IO session (clients see "transport close"). */
  close() {
    try {
      this._io.sidewire._native.sioCloseAll();
    } catch {
      // the engine is stopped: nothing is open
    }
    return this;
  }

  _applyMiddlewares(req, res, callback) {
    if (this.middlewares.length === 0) return callback();
    let chain = Promise.resolve();
    for (const fn of this.middlewares) chain = chain.then(() => runMiddleware(fn, req, res));
    chain.then(() => callback(), callback);
    return undefined;
  }

  // engine.io's connection_error: { req, code, message, context }.
  _connectionError(req, code, context) {
    if (this.listenerCount('connection_error') === 0) return;
    prepare(req);
    this.emit('connection_error', { req, code, message: ERROR_MESSAGES[code], context: context ?? errorContext(code, req) });
  }

  // The 'headers' / 'initial_headers' events for one response; `headers` is changed in place.
  _emitHeaders(headers, req) {
    if (this.listenerCount('headers') + this.listenerCount('initial_headers') === 0) return;
    prepare(req);
    if (!req._query.sid) this.emit('initial_headers', headers, req);
    this.emit('headers', headers, req);
  }

  /** What the engine must do for JS (sioConfigure's flags). */
  _flags() {
    const middleware = this.middlewares.length > 0;
    return {
      openEvents: this.listenerCount('connection') > 0,
      connectionErrors: this.listenerCount('connection_error') > 0,
      // engine.listen(): upgrades the app's hooks must see go to Node, then to _handleUpgrade.
      handshakeGate: middleware || this.listenerCount('initial_headers') > 0,
      upgradeGate: middleware || this.listenerCount('headers') > 0,
    };
  }

  _queueFlags() {
    if (this._flagsQueued) return;
    this._flagsQueued = true;
    queueMicrotask(() => {
      this._flagsQueued = false;
      this._io._onEngineListeners();
    });
  }
}

module.exports = {
  ENGINE_DEFAULTS,
  EngineIoServer,
  Conn,
  WebSocketResponse,
  ERRORS,
  ERROR_MESSAGES,
  transportOf,
  incomingMessage,
  detachSocket,
  headerLines,
  prepare,
};
