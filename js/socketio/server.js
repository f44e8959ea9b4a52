'use strict';
// socket.io 4.x's Server API on top of the engine's Socket.IO support
// (docs/binding-socketio.md). The engine speaks Engine.IO and Socket.IO, keeps sessions,
// rooms and acks on the wire; this file routes HTTP to it, keeps handshakes, runs middleware
// and turns engine events into socket.io's events.
const http = require('node:http');
const querystring = require('node:querystring');
const { EventEmitter } = require('node:events');
const { Namespace, ParentNamespace } = require('./namespace.js');
const { Socket, roomsAdd } = require('./socket.js');
const {
  EngineIoServer, Conn, WebSocketResponse, ERRORS, ENGINE_DEFAULTS, incomingMessage, detachSocket, headerLines, prepare,
} = require('./engine-io.js');
const { RemoteSocket } = require('./broadcast.js');
const { Adapter } = require('./adapter.js');
const { CLUSTER } = require('./cluster-adapter.js');
const { decode } = require('./parser-helpers.js');
const { serverAuthSettings } = require('../auth.js');
const { limitsSettings } = require('../limits.js');
const { Cors, refuseSocket, sendStatus, serveClientFile, clientFileAvailable } = require('./http.js');
const { perMessageDeflateSettings, httpCompressionSettings, writeCompressed } = require('./compression.js');
const { checkOptions, groups: OPTION_GROUPS } = require('../options.js');

const IO_KEY = Symbol.for('sidewire.io');
const { parseHeaderLines, splitUpgradeInfo, upgradeInfoParts, splitTarget, reuse } = require('../http-head.js');
const ENGINE_KEY = Symbol.for('sidewire.engine');

// Event types 5–13 and 16 of the engine's batches (docs/binding-socketio.md).
const HTTP_RESPONSE = 5;
const SIO_CONNECT = 6;
const SIO_EVENT = 7;
const SIO_ACK = 8;
const SIO_DISCONNECT = 9;
const SIO_FETCH = 10;
const SIO_BROADCAST_COUNT = 11;
const EIO_UPGRADE = 12;
const EIO_CLOSE = 13;
const EIO_OPEN = 16;
const EIO_PACKET = 17;
const EIO_PACKET_CREATE = 18;
const EIO_HEARTBEAT = 19;
const EIO_DRAIN = 20;
const EIO_UPGRADING = 21;
const EIO_CONNECTION_ERROR = 22;
const SIO_ERROR = 23;

const INVALID_NAMESPACE = JSON.stringify({ message: 'Invalid namespace' });
// A `parser` option is told apart by what its Encoder writes for a plain event: the engine
// encodes and decodes packets itself, in one of the two formats the official parsers use.
function probeParser(parser) {
  try {
    const out = new parser.Encoder().encode({ type: 2, nsp: '/', data: ['x', 1] });
    return Array.isArray(out) && out.length === 1 ? out[0] : null;
  } catch {
    return null;
  }
}
function isMsgpackParser(parser) {
  const out = probeParser(parser);
  // socket.io-msgpack-parser: one MessagePack map of 3 entries (fixmap: 0x83).
  return out instanceof Uint8Array && out.length > 0 && out[0] === 0x83;
}
function isDefaultParser(parser) {
  return probeParser(parser) === '2["x",1]';
}

const FORBIDDEN = { code: 4, message: 'Forbidden' };

// What a session keeps of the request that created it: its http.IncomingMessage (socket.request,
// with what io.engine.use() middleware put on it) and the peer's address; the query is parsed
// when first asked for. An upgrade the engine took itself behind engine.listen() has no
// IncomingMessage: it keeps the header lines and makes one on first use.
class RequestInfo {
  // `headers` null: parsed from `lines` (the header lines the engine read) on first use. The
  // lines may start at `linesFrom` of the string given (kept whole: a slice of it would cost a
  // string of its own and keep the whole anyway).
  constructor(method, url, headers, address, secure, lines = null, req = null, linesFrom = 0) {
    this.method = method;
    this.url = url;
    this._headers = headers;
    this._lines = lines;
    this._linesFrom = linesFrom;
    this.address = address;
    this.secure = secure;
    this._query = null;
    this._request = req;
  }

  get headers() {
    if (this._headers === null) {
      if (this._request) {
        this._headers = this._request.headers;
      } else {
        this._headers = parseHeaderLines(this._takeLines()).headers;
      }
    }
    return this._headers;
  }

  _takeLines() {
    const lines = this._lines || '';
    this._lines = null;
    return this._linesFrom ? lines.slice(this._linesFrom) : lines;
  }

  get xdomain() {
    return Boolean(this.headers.origin);
  }

  get query() {
    if (!this._query) {
      const q = this.url.indexOf('?');
      this._query = querystring.parse(q >= 0 ? this.url.slice(q + 1) : '');
    }
    return this._query;
  }

  get request() {
    if (!this._request) {
      const lines = this._takeLines();
      this._request = incomingMessage(this.method, this.url, lines, this.address, this.secure);
      if (this._headers) this._request.headers = this._headers;
    }
    if (!this._request._query) this._request._query = this.query;
    return this._request;
  }
}

// `address`: the peer's, read before an adopted socket is destroyed (Node forgets it then).
function requestInfo(req, address = (req.socket && req.socket.remoteAddress) || '') {
  return new RequestInfo(
    req.method,
    req.url || '/',
    null,
    address,
    Boolean(req.socket && req.socket.encrypted),
    null,
    req,
  );
}

function unknownRequestInfo() {
  return new RequestInfo('GET', '', {}, '', false);
}

function resolveEngine(option) {
  const { Engine } = require('../index.js'); // lazily: index.js requires this file
  if (option !== undefined && option !== null) {
    if (!(option instanceof Engine)) throw new TypeError('sidewire: the `engine` option must be a sidewire Engine');
    if (option._closing) throw new Error('sidewire: the engine passed as `engine` is closing');
    return { engine: option, owned: false };
  }
  const current = globalThis[ENGINE_KEY];
  if (current && !current._closing && !current._sioServer) return { engine: current, owned: false };
  // Becomes the process engine unless another one is running.
  return { engine: new Engine({ global: !current || Boolean(current._closing) }), owned: true };
}

class Server extends EventEmitter {
  /**
   * new Server(httpServer | port | options, options). With no server the app routes requests
   * itself: io.handleRequest(req, res) for HTTP, engine.handleUpgrade(req, socket, head) for
   * upgrades (see server.mjs).
   */
  constructor(srv, opts = {}) {
    super();
    if (srv !== null && typeof srv === 'object' && !(typeof srv.listen === 'function')) {
      opts = srv;
      srv = undefined;
    }
    this.opts = opts || {};
    // Before anything is made: an option that must not be ignored throws here.
    this._warnedOptions = new Set();
    checkOptions(OPTION_GROUPS.SOCKETIO, this.opts, this._warnedOptions);
    const auth = serverAuthSettings(this.opts.auth);
    this._jwt = auth.jwt;
    this._jwtNamespaces = new Map(auth.namespaces.map((n) => [n.name, n.jwt]));
    this._limits = limitsSettings(this.opts.limits, this.opts.trustProxy, {
      jwt: Boolean(this._jwt) || auth.namespaces.some((n) => n.jwt),
    });
    this._ownOpts = this.opts; // the constructor's: they win over attach()'s, as in socket.io
    this._path = (this.opts.path || '/socket.io').replace(/\/$/, '');
    this._connectTimeout = this.opts.connectTimeout || 45000;
    this._serveClient = this.opts.serveClient !== false;
    this._cors = this.opts.cors ? new Cors(this.opts.cors) : null;

    const { engine, owned } = resolveEngine(this.opts.engine);
    if (engine._sioServer) {
      throw new Error('sidewire: this engine already has a Socket.IO server (one Server per Engine); close it first');
    }
    /** The sidewire Engine this Server runs on (io.engine is engine.io's Server, as in socket.io). */
    this.sidewire = engine;
    this.engine = new EngineIoServer(this);
    this._ownsEngine = owned;
    this.httpServer = null;

    this._nsps = new Map();
    this._byIndex = [];
    this.parentNsps = new Map();
    this.parentNamespacesFromRegExp = new Map();
    this._sockets = new Map(); // engine socketId → Socket
    this._connecting = new Map(); // engine socketId → { gone } while a dynamic namespace is decided
    this._conns = new Map(); // connId → Conn
    this._requestInfo = new Map(); // connId → request info of the handshake (while hooks are on)
    this._requests = new Map(); // reqId → { res, cors } for polling requests the engine answers
    this._reqIds = 0;
    this._fetches = new Map();
    this._fetchIds = 0;
    this._hooksOn = false;
    this._closed = false;
    this._closing = null;
    this._closeDone = false;
    this._reopenWanted = false;
    this._wrapped = new WeakSet();

    if (this.opts.connectionStateRecovery) {
      // socket.io's defaults; maxBytes (sidewire): what the engine's packet log may hold.
      this.opts.connectionStateRecovery = {
        maxDisconnectionDuration: 2 * 60 * 1000,
        skipMiddlewares: true,
        ...this.opts.connectionStateRecovery,
      };
    }
    this._recoveryData = new Map(); // private id → { data, at } of sockets that may come back
    this._msgpack = false;
    if (this.opts.parser) {
      this._msgpack = isMsgpackParser(this.opts.parser);
      if (!this._msgpack && !isDefaultParser(this.opts.parser)) {
        throw new Error('sidewire: the engine speaks the default parser and socket.io-msgpack-parser; this `parser` is neither');
      }
    }

    this._adapterFactory = null; // sidewire/redis-adapter's, in a fleet
    if (this.opts.adapter) this._useAdapter(this.opts.adapter);

    engine._sioServer = this;
    engine._socketio = (type, channel, id, data, code, text, number, attachments) =>
      this._onEvent(type, channel, id, data, code, text, number, attachments);
    this._configure();

    this.sockets = this.of('/');
    if (!globalThis[IO_KEY]) globalThis[IO_KEY] = this;
    if (srv || typeof srv === 'number') this.attach(srv);
  }

  get _opts() {
    return this.opts;
  }

  _configure() {
    const o = this.opts;
    const transports = Array.isArray(o.transports)
      ? o.transports.filter((t) => t === 'polling' || t === 'websocket')
      : ENGINE_DEFAULTS.transports;
    const eio = this.engine._flags();
    this.engine._opts = null; // io.engine.opts is made again from the options in effect
    this._httpCompression = httpCompressionSettings(o.httpCompression);
    this.sidewire._native.sioConfigure({
      path: `${this._path}/`,
      pingInterval: o.pingInterval ?? ENGINE_DEFAULTS.pingInterval,
      pingTimeout: o.pingTimeout ?? ENGINE_DEFAULTS.pingTimeout,
      maxHttpBufferSize: o.maxHttpBufferSize ?? ENGINE_DEFAULTS.maxHttpBufferSize,
      connectTimeout: this._connectTimeout,
      upgradeTimeout: o.upgradeTimeout ?? ENGINE_DEFAULTS.upgradeTimeout,
      transports,
      allowUpgrades: o.allowUpgrades !== false,
      dynamicNamespaces: this.parentNsps.size > 0,
      hooks: this._hooksOn,
      // engine.listen(): upgrades with an Origin header come through _handleUpgrade (CORS),
      // and with allowRequest every new session's upgrade does.
      corsGate: Boolean(this._cors),
      handshakeGate: typeof o.allowRequest === 'function' || eio.handshakeGate,
      upgradeGate: eio.upgradeGate,
      openEvents: eio.openEvents,
      connectionErrors: eio.connectionErrors,
      ...(o.maxRoomsPerSocket !== undefined ? { maxRooms: o.maxRoomsPerSocket } : {}),
      msgpack: this._msgpack,
      perMessageDeflate: perMessageDeflateSettings(o.perMessageDeflate, (m) => this._log('warn', m)),
      ...(this._jwt ? { jwt: this._jwt } : {}),
      ...(this._jwtNamespaces.size ? { jwtNamespaces: [...this._jwtNamespaces].map(([name, jwt]) => ({ name, jwt })) } : {}),
      ...(this._limits ? { limits: this._limits } : {}),
      ...(o.connectionStateRecovery
        ? {
            recovery: true,
            recoveryWindow: o.connectionStateRecovery.maxDisconnectionDuration,
            ...(o.connectionStateRecovery.maxBytes !== undefined ? { recoveryMaxBytes: o.connectionStateRecovery.maxBytes } : {}),
          }
        : {}),
    });
  }

  // engine.listen() took a new session's upgrade itself: the handshake, as _adoptUpgrade keeps it.
  _onEngineUpgrade(connId, url, data) {
    if (!this._hooksOn || this._closed) return;
    const { address, linesFrom } = upgradeInfoParts(data);
    this._requestInfo.set(connId, new RequestInfo('GET', reuse('url', url), null, reuse('address', address), false, data, null, linesFrom));
  }

  // io.engine's listeners or middleware changed: what the engine reports and routes through JS.
  _onEngineListeners() {
    if (this._closed) return;
    this._configure();
    this._updateHooks();
  }

  // Session hooks (handshakes kept, EIO_CLOSE / EIO_UPGRADE reported) are on while any
  // namespace has JS hooks, dynamic namespaces exist or io.engine has 'connection' listeners.
  _updateHooks() {
    let want = this.parentNsps.size > 0 || this.engine.listenerCount('connection') > 0;
    if (!want) for (const nsp of this._nsps.values()) if (nsp._applied.connect) want = true;
    if (want === this._hooksOn) return;
    this._hooksOn = want;
    this._configure();
    if (!want) {
      this._requestInfo.clear();
      for (const [id, conn] of this._conns) if (conn._sockets.length === 0) this._conns.delete(id);
    }
  }

  /**
   * sidewire extension: the engine's Socket.IO counters,
   * { sessions, sockets, namespaces: { '/': { sockets, rooms: { name: size } } } }.
   */
  stats() {
    return this.sidewire._native.sioStats();
  }

  _log(level, message) {
    this.sidewire._log(level, message);
  }

  // --------------------------------------------------------------------------------- options

  serveClient(v) {
    if (!arguments.length) return this._serveClient;
    this._serveClient = v;
    return this;
  }

  path(v) {
    if (!arguments.length) return this._path;
    this._path = String(v).replace(/\/$/, '');
    this._configure();
    return this;
  }

  connectTimeout(v) {
    if (v === undefined) return this._connectTimeout;
    this._connectTimeout = v;
    this._configure();
    return this;
  }

  /**
   * The adapter of every namespace: sidewire's views of the engine's rooms (socket.io's
   * in-memory Adapter), or sidewire/redis-adapter's createAdapter(...) for a fleet. Rooms and
   * fan-out live in the engine; other adapter packages have no engine to drive.
   */
  adapter(v) {
    if (!arguments.length) return this._adapterFactory || Adapter;
    this._useAdapter(v);
    if (this._nsps) for (const nsp of this._nsps.values()) nsp._replaceAdapter();
    return this;
  }

  _useAdapter(v) {
    if (v === Adapter) {
      this._adapterFactory = null;
      return;
    }
    if (typeof v === 'function' && v[CLUSTER]) {
      this.sidewire._joinCluster(v[CLUSTER]);
      this._adapterFactory = v;
      return;
    }
    throw new Error(
      'sidewire: this adapter is not one the engine can drive (rooms and fan-out live in the engine). For Redis, ' +
        "change the import: `const { createAdapter } = require('sidewire/redis-adapter')` takes the same arguments " +
        "as @socket.io/redis-adapter's and speaks its protocol",
    );
  }

  // ------------------------------------------------------------------------------------ HTTP

  listen(srv, opts = {}) {
    return this.attach(srv, opts);
  }

  /**
   * Takes HTTP requests under `path` on this server (wrapping its 'request' listeners, as
   * socket.io does) and the engine's upgrades. Optional: see handleRequest().
   */
  attach(srv, opts = {}) {
    if (typeof srv === 'function') {
      throw new Error(
        'You are trying to attach socket.io to an express request handler function. Please pass a http.Server instance.',
      );
    }
    if (Number(srv) == srv) srv = Number(srv); // eslint-disable-line eqeqeq
    if (typeof srv === 'number') {
      const port = srv;
      srv = http.createServer((req, res) => {
        res.writeHead(404);
        res.end();
      });
      srv.listen(port);
    }
    if (opts && Object.keys(opts).length) {
      checkOptions(OPTION_GROUPS.SOCKETIO, opts, this._warnedOptions);
      // As socket.io: attach()'s options are engine.io's for this server, the constructor's
      // win over them; path, the heartbeat, sizes, transports, cors and allowRequest apply
      // from now on (serveClient and connectTimeout are the Server's and stay).
      this.opts = { ...opts, ...this._ownOpts };
      if (this.opts.path) this._path = String(this.opts.path).replace(/\/$/, '');
      this._cors = this.opts.cors ? new Cors(this.opts.cors) : null;
      if (!this._closed) this._configure();
    }
    if (!this._wrapped.has(srv)) {
      this._wrapped.add(srv);
      const previous = srv.listeners('request').slice(0);
      srv.removeAllListeners('request');
      srv.on('request', (req, res) => {
        if (this.handleRequest(req, res)) return;
        for (const listener of previous) listener.call(srv, req, res);
      });
    }
    this.httpServer = srv;
    if (this._closed) {
      // Listening again after close(): the Server reopens once its close is through.
      this._reopenWanted = true;
      if (this._closeDone) this._reopen(); // else close() reopens it once it is through
    } else {
      this.sidewire.attach(srv); // once per server and engine
    }
    return this;
  }

  // After close(): back on an engine (a new one when this Server's own was closed), with every
  // namespace registered again and its hooks as its listeners want them.
  _reopen() {
    if (!this._closed || !this._reopenWanted) return;
    this._reopenWanted = false;
    const fresh = this._ownsEngine || Boolean(this.sidewire._closing);
    if (fresh) {
      const { engine, owned } = resolveEngine(this.opts.engine);
      this.sidewire = engine;
      this._ownsEngine = owned;
    }
    const engine = this.sidewire;
    if (engine._sioServer && engine._sioServer !== this) {
      throw new Error('sidewire: this engine already has a Socket.IO server (one Server per Engine); close it first');
    }
    this._closed = false;
    this._closing = null;
    this._closeDone = false;
    this._adapterFactory = null; // sidewire/redis-adapter's, in a fleet
    if (this.opts.adapter) this._useAdapter(this.opts.adapter);

    engine._sioServer = this;
    engine._socketio = (type, channel, id, data, code, text, number, attachments) =>
      this._onEvent(type, channel, id, data, code, text, number, attachments);
    this._hooksOn = false;
    this._configure();
    if (fresh) {
      this._byIndex = [];
      for (const nsp of this._nsps.values()) {
        nsp._index = engine._native.sioAddNamespace(nsp.name);
        this._byIndex[nsp._index] = nsp;
      }
    }
    for (const nsp of this._nsps.values()) {
      nsp._applied = { connect: false, events: false };
      nsp._applyHooks();
    }
    this._updateHooks();
    if (!globalThis[IO_KEY]) globalThis[IO_KEY] = this;
    if (this.httpServer) engine.attach(this.httpServer);
  }

  /**
   * For servers that route requests themselves (server.mjs): answers the request and returns
   * true when it is under `path` (Engine.IO polling, CORS preflight, the client bundle);
   * returns false, without touching it, otherwise.
   */
  handleRequest(req, res) {
    const url = req.url || '/';
    const q = url.indexOf('?');
    const pathname = q >= 0 ? url.slice(0, q) : url;
    if (!pathname.startsWith(`${this._path}/`)) return false;
    if (this._closed) {
      sendStatus(res, 503, { code: 3, message: 'Server closed' });
      return true;
    }
    if (this._serveClient && (req.method === 'GET' || req.method === 'HEAD')) {
      const filename = pathname.slice(this._path.length + 1);
      if (clientFileAvailable(filename, (l, m) => this._log(l, m))) {
        this._withCors(req, res, (headers) => serveClientFile(filename, req, res, headers || {}));
        return true;
      }
    }
    this._withCors(req, res, (headers) =>
      this._middlewares(req, res, () =>
        this._verify(req, () => this._toEngine(req, res, headers), (message) => {
          this._log('warn', `Socket.IO handshake refused by allowRequest: ${message || 'Forbidden'}`);
          this.engine._connectionError(req, ERRORS.FORBIDDEN, { message });
          sendStatus(res, 403, { code: 4, message: message || 'Forbidden' }, headers || {});
        }),
      ),
    );
    return true;
  }

  // io.engine.use() middleware, before the checks (as engine.io): a failure is a 400.
  _middlewares(req, res, next) {
    const eio = this.engine;
    if (eio.middlewares.length === 0) return next();
    prepare(req);
    return eio._applyMiddlewares(req, res, (err) => {
      if (!err) return next();
      this._log('warn', `Socket.IO request refused by io.engine middleware: ${err && err.message}`);
      eio._connectionError(req, ERRORS.BAD_REQUEST, { name: 'MIDDLEWARE_FAILURE' });
      if (res instanceof WebSocketResponse) refuseSocket(res.socket, 400, 'Bad request');
      else sendStatus(res, 400, { code: 3, message: 'Bad request' });
      return undefined;
    });
  }

  // engine.io's allowRequest(req, callback(message, success)): asked about every new session
  // (a handshake GET, or a WebSocket upgrade without a sid), never about a session's later
  // requests. `allow()` or `deny(message)` once it answers.
  _verify(req, allow, deny) {
    const fn = this.opts.allowRequest;
    if (typeof fn !== 'function' || req.method !== 'GET') return allow();
    const query = querystring.parse(splitTarget(req.url).query);
    if (query.sid !== undefined || query.EIO !== '4') return allow(); // the engine answers these
    if (query.transport !== 'polling' && query.transport !== 'websocket') return allow();
    let answered = false;
    try {
      fn(req, (message, success) => {
        if (answered) return;
        answered = true;
        if (success) allow();
        else deny(message);
      });
    } catch (err) {
      if (answered) return;
      answered = true;
      this._log('error', `allowRequest threw: ${err && err.message}`);
      deny('Forbidden');
    }
    return undefined;
  }

  // Runs `next(corsHeaders)` for an allowed request; answers preflights (204) and refuses a
  // disallowed origin (403) itself. Returns true.
  _withCors(req, res, next) {
    const cors = this._cors;
    if (!cors) {
      next(null);
      return true;
    }
    const go = (v) => {
      if (!v.allowed) {
        this._log('warn', `Socket.IO request refused: origin ${req.headers.origin} is not allowed`);
        sendStatus(res, 403, FORBIDDEN);
        return;
      }
      if (req.method === 'OPTIONS' && !v.corsOff) {
        res.writeHead(204, { ...cors.preflightHeaders(req, v), 'Content-Length': '0' });
        res.end();
        return;
      }
      next(v.headers);
    };
    const v = cors.check(req);
    if (typeof v.then === 'function') v.then(go, () => sendStatus(res, 500));
    else go(v);
    return true;
  }

  // A polling request: its body (up to maxHttpBufferSize) goes to the engine, which answers
  // with an HTTP_RESPONSE event (a GET may be held until there is something to send).
  _toEngine(req, res, corsHeaders) {
    const reqId = (this._reqIds = (this._reqIds % 0x7fffffff) + 1);
    const entry = { req, res, cors: corsHeaders, submitted: false, done: false };
    // httpCompression: only a GET's answer carries packets (read when it is big enough).
    if (req.method === 'GET' && this._httpCompression) entry.acceptEncoding = req.headers['accept-encoding'];
    this._requests.set(reqId, entry);
    res.on('close', () => {
      if (this._requests.get(reqId) !== entry) return;
      this._requests.delete(reqId);
      entry.done = true;
      if (entry.submitted && !this._engineStopped()) {
        try {
          this.sidewire._native.sioRequestAborted(reqId);
        } catch (err) {
          this._log('debug', `sioRequestAborted: ${err.message}`);
        }
      }
    });
    const submit = (body, tooLarge) => {
      if (entry.done || entry.submitted) return;
      entry.submitted = true;
      let connId = 0;
      try {
        connId = this.sidewire._native.sioRequest(
          reqId, req.method, req.url || '/', req.rawHeaders, body, tooLarge, (req.socket && req.socket.remoteAddress) || '',
        );
      } catch (err) {
        this._requests.delete(reqId);
        entry.done = true;
        this._log('error', `Socket.IO request failed: ${err.message}`);
        sendStatus(res, this.sidewire._closing ? 503 : 500);
        return;
      }
      if (connId > 0 && this._hooksOn) {
        this._requestInfo.set(connId, requestInfo(req));
        res.once('finish', () => detachSocket(req)); // Node is done with it then
      }
    };
    const max = this.opts.maxHttpBufferSize ?? 1e6;
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody || req.method === 'GET' || req.method === 'HEAD') {
      submit(Buffer.alloc(0), false);
      return;
    }
    if (Number(req.headers['content-length']) > max) {
      submit(null, true);
      return;
    }
    const chunks = [];
    let size = 0;
    const onData = (chunk) => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        chunks.length = 0;
        submit(null, true);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      submit(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size), false);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
    };
    req.on('data', onData);
    req.on('end', onEnd);
  }

  _engineStopped() {
    return Boolean(this.sidewire._closing) && !this.sidewire._resolveClose;
  }

  // `number`: for an error answer, the engine's Engine.IO error code when the request failed its
  // checks (else -1); for a 200, 1 when it is a polling payload with a packet that may be
  // compressed (httpCompression).
  _onHttpResponse(reqId, status, headersJson, body, number) {
    const entry = this._requests.get(reqId);
    if (!entry) return;
    this._requests.delete(reqId);
    entry.done = true;
    const { res } = entry;
    if (res.destroyed || res.writableEnded) return;
    let headers = {};
    if (headersJson) {
      try {
        headers = JSON.parse(headersJson);
      } catch {
        headers = {};
      }
    }
    const payload = body === null || body === undefined ? '' : body;
    const refused = status >= 400 ? number : -1;
    if (refused >= 0) this.engine._connectionError(entry.req, refused);
    else if (status < 400) this.engine._emitHeaders(headers, entry.req);
    if (entry.cors) headers = { ...headers, ...entry.cors };
    if (status < 400 && number === 1 && entry.acceptEncoding && this._httpCompression &&
        writeCompressed(res, status || 200, headers, payload, entry.acceptEncoding, this._httpCompression)) {
      return;
    }
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) {
      headers['Content-Length'] = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    }
    res.writeHead(status || 200, headers);
    res.end(payload);
  }

  // An upgrade under `path` (engine.handleUpgrade calls this and returns true).
  _ownsUpgrade(pathname) {
    return !this._closed && pathname.startsWith(`${this._path}/`);
  }

  _handleUpgrade(req, socket, head) {
    const eio = this.engine;
    const res = eio.middlewares.length > 0 ? new WebSocketResponse(req, socket) : null;
    const verified = () =>
      this._middlewares(req, res, () =>
        this._verify(req, () => this._adoptUpgrade(req, socket, head, res), (message) => {
          // As engine.io's abortUpgrade: 400 with the message as the body.
          this._log('warn', `Socket.IO upgrade refused by allowRequest: ${message || 'Forbidden'}`);
          eio._connectionError(req, ERRORS.FORBIDDEN, { message });
          refuseSocket(socket, 400, message || 'Forbidden');
        }),
      );
    if (!this._cors || !req.headers.origin) {
      if (typeof this.opts.allowRequest === 'function' || res) socket.pause(); // held while the app decides
      verified();
      return;
    }
    const decide = (v) => {
      if (v.allowed) {
        verified();
        return;
      }
      this._log('warn', `Socket.IO upgrade refused: origin ${req.headers.origin} is not allowed`);
      refuseSocket(socket, 403, 'origin not allowed');
    };
    const v = this._cors.check(req);
    if (typeof v.then === 'function') {
      socket.pause();
      v.then(decide, () => refuseSocket(socket, 500, 'CORS check failed'));
    } else {
      decide(v);
    }
  }

  // `res`: the stand-in response the middleware saw (its headers go into the 101), or null.
  _adoptUpgrade(req, socket, head, res) {
    if (socket.destroyed) return;
    const eio = this.engine;
    let extra;
    if (res || eio.listenerCount('headers') + eio.listenerCount('initial_headers') > 0) {
      // As engine.io: middleware such as express-session sets its headers on writeHead().
      if (res) res.writeHead();
      const headers = res ? res._headers : {};
      eio._emitHeaders(headers, req);
      extra = headerLines(headers, (l, m) => this._log(l, m));
    }
    const address = socket.remoteAddress || '';
    const connId = this.sidewire._adopt(req, socket, head, null, extra);
    if (!(connId > 0) || !this._hooksOn) return;
    if (/[?&]sid=/.test(req.url || '')) return; // the upgrade of a polling session: its handshake is kept
    detachSocket(req, address); // the engine has the connection; Node's socket is destroyed
    this._requestInfo.set(connId, requestInfo(req, address));
  }

  // ------------------------------------------------------------------------------ namespaces

  of(name, fn) {
    if (typeof name === 'function' || name instanceof RegExp) {
      if (name instanceof RegExp && (name.global || name.sticky)) {
        throw new Error('stateful regular expressions are not supported');
      }
      const parent = new ParentNamespace(this);
      if (typeof name === 'function') {
        this.parentNsps.set(name, parent);
      } else {
        this.parentNsps.set((nsp, auth, next) => next(null, name.test(nsp)), parent);
        this.parentNamespacesFromRegExp.set(name, parent);
      }
      if (this.parentNsps.size === 1) {
        this._configure();
        this._updateHooks();
      }
      if (fn) parent.on('connect', fn);
      return parent;
    }
    if (String(name)[0] !== '/') name = `/${name}`;
    let nsp = this._nsps.get(name);
    if (!nsp) {
      for (const [regex, parent] of this.parentNamespacesFromRegExp) {
        if (regex.test(name)) return parent.createChild(name);
      }
      nsp = new Namespace(this, name);
      this._registerNamespace(nsp);
      if (name !== '/') EventEmitter.prototype.emit.call(this.sockets, 'new_namespace', nsp);
    }
    if (fn) nsp.on('connect', fn);
    return nsp;
  }

  _registerNamespace(nsp) {
    this._nsps.set(nsp.name, nsp);
    this._byIndex[nsp._index] = nsp;
  }

  _checkNamespace(name, auth, fn) {
    if (this.parentNsps.size === 0) return fn(false);
    const keys = this.parentNsps.keys();
    const run = () => {
      const step = keys.next();
      if (step.done) return fn(false);
      return step.value(name, auth, (err, allow) => {
        if (err || !allow) return run();
        if (this._nsps.has(name)) return fn(this._nsps.get(name));
        let child;
        try {
          child = this.parentNsps.get(step.value).createChild(name);
        } catch (e) {
          // The engine holds a bounded number of namespaces: the client gets CONNECT_ERROR.
          this._log('warn', `Socket.IO: cannot create namespace ${name}: ${e.message}`);
          return fn(false);
        }
        return fn(child);
      });
    };
    return run();
  }

  use(fn) {
    this.sockets.use(fn);
    return this;
  }

  // -------------------------------------------------------------------------- engine events

  _onEvent(type, channel, id, data, code, text, number, attachments) {
    switch (type) {
      case HTTP_RESPONSE:
        return this._onHttpResponse(id, code, text, data, number);
      case SIO_CONNECT:
        return this._onConnect(id, channel, data, text);
      case SIO_EVENT:
        return this._onSioEvent(id, data, number, attachments);
      case SIO_ACK:
        return this._onSioAck(id, channel, data, number, attachments);
      case SIO_DISCONNECT:
        return this._onSioDisconnect(id, data, code === 1);
      case SIO_FETCH:
        return this._onFetch(number, data);
      case SIO_ERROR: {
        // A protocol violation: the socket's 'error' event, then the session closes.
        const socket = this._sockets.get(id);
        if (socket) socket._onerror(new Error(data));
        return undefined;
      }
      case SIO_BROADCAST_COUNT: {
        const nsp = this._byIndex[channel];
        const collector = nsp && nsp._broadcastAcks.get(number);
        if (collector) collector.onCount(id, code); // code: how many I/O threads report
        return undefined;
      }
      case EIO_UPGRADE: {
        const conn = this._conns.get(id);
        if (conn) conn._onUpgrade(data);
        return undefined;
      }
      case EIO_CLOSE: {
        this._requestInfo.delete(id);
        const conn = this._conns.get(id);
        if (conn) {
          this._conns.delete(id);
          conn._onClose(data);
        }
        return undefined;
      }
      case EIO_OPEN: {
        // io.engine's 'connection' (listeners exist, so the session hooks are on).
        if (this._closed) return undefined;
        return this.engine.emit('connection', this._connFor(id, text, data));
      }
      case EIO_PACKET:
      case EIO_PACKET_CREATE: {
        const conn = this._conns.get(id);
        if (!conn) return undefined;
        const packet = type === EIO_PACKET ? { type: text } : { type: text, options: { compress: true } };
        if (data !== '' && data !== undefined) packet.data = data;
        return conn.emit(type === EIO_PACKET ? 'packet' : 'packetCreate', packet);
      }
      case EIO_HEARTBEAT:
      case EIO_DRAIN: {
        const conn = this._conns.get(id);
        if (conn) conn.emit(type === EIO_HEARTBEAT ? 'heartbeat' : 'drain');
        return undefined;
      }
      case EIO_UPGRADING: {
        const conn = this._conns.get(id);
        if (conn) conn._onUpgrading(data);
        return undefined;
      }
      case EIO_CONNECTION_ERROR: {
        // An upgrade the engine refused (its own checks); the request as it read it.
        const { address, lines } = splitUpgradeInfo(data);
        return this.engine._connectionError(incomingMessage('GET', text, lines, address), code);
      }
      default:
        return undefined;
    }
  }

  _connFor(connId, transport, sid) {
    let conn = this._conns.get(connId);
    if (!conn) {
      conn = new Conn(this, connId, transport, this._requestInfo.get(connId) || unknownRequestInfo(), sid);
      this._conns.set(connId, conn);
      this._requestInfo.delete(connId); // the Conn holds it now
    }
    return conn;
  }

  _onConnect(socketId, nspIndex, authText, infoText) {
    let info;
    try {
      info = JSON.parse(infoText);
    } catch {
      this._log('error', `SIO_CONNECT with unreadable details: ${infoText}`);
      this.sidewire._native.sioReject(socketId, INVALID_NAMESPACE);
      return;
    }
    let auth = null; // none: handshake.auth is a fresh {} when someone asks
    if (authText) {
      try {
        const parsed = JSON.parse(authText);
        if (parsed && typeof parsed === 'object') auth = parsed;
      } catch {
        auth = null;
      }
    }
    const conn = this._connFor(info.conn, info.transport, info.sid);
    if (this._closed) return;
    // The client's address as the engine counts it (through trustProxy): handshake.address and
    // conn.remoteAddress say it too.
    if (info.address && conn._info && info.address !== conn._info.address) conn._info.address = reuse('address', info.address);
    const known = nspIndex >= 0 ? this._byIndex[nspIndex] : undefined;
    if (known) {
      this._connectTo(known, socketId, info.id, conn, auth, info);
      return;
    }
    // A namespace the engine does not know yet, or a child removed once empty
    // (cleanupEmptyChildNamespaces) whose name the engine still knows: the parents decide.
    const pending = { gone: false };
    this._connecting.set(socketId, pending);
    this._checkNamespace(info.nsp, auth || {}, (nsp) => {
      this._connecting.delete(socketId);
      if (pending.gone) return;
      if (!nsp) {
        this.sidewire._native.sioReject(socketId, INVALID_NAMESPACE);
        return;
      }
      this._connectTo(nsp, socketId, info.id, conn, auth, info);
    });
  }

  _connectTo(nsp, socketId, publicId, conn, auth, info = null) {
    const socket = new Socket(nsp, socketId, publicId, conn, auth);
    this._sockets.set(socketId, socket);
    nsp._preConnectSockets.set(publicId, socket);
    const recovery = this.opts.connectionStateRecovery;
    if (info && info.pid) socket.pid = info.pid;
    if (info && info.user) {
      socket.data.user = info.user; // the claims of its verified token
      // The engine put it in its user's room when it connects: the mirror says so too.
      const jwt = this._jwtNamespaces.has(nsp.name) ? this._jwtNamespaces.get(nsp.name) : this._jwt;
      const prefix = jwt ? jwt.userRoomPrefix : '';
      if (prefix && typeof info.user.sub === 'string' && info.user.sub) socket._rooms = roomsAdd(socket._rooms, prefix + info.user.sub);
    }
    if (info && info.recovered) {
      // The engine gave it back its id and rooms, and holds what it missed for its CONNECT.
      socket.recovered = true;
      for (const room of info.rooms || []) socket._rooms = roomsAdd(socket._rooms, room);
      // Its data comes back too; the kept copy goes once it is connected (a refused socket may
      // try again).
      const kept = this._recoveryData.get(info.pid);
      if ('data' in info) socket._data = info.data; // a session the fleet kept
      else if (kept) socket._data = kept.data;
      if (info.user) socket.data.user = info.user; // what its token says now, over what it kept
      if (recovery && recovery.skipMiddlewares) {
        process.nextTick(() => {
          if (socket._gone || this._closed) {
            this._sockets.delete(socketId);
            nsp._preConnectSockets.delete(publicId);
            return;
          }
          nsp._doConnect(socket);
        });
        return;
      }
    }
    nsp._run(socket, (err) => {
      process.nextTick(() => {
        if (socket._gone || this._closed) {
          this._sockets.delete(socketId);
          nsp._remove(socket);
          return;
        }
        if (err) {
          socket._closed = true;
          this._sockets.delete(socketId);
          nsp._remove(socket);
          this.sidewire._native.sioReject(socketId, JSON.stringify({ message: err.message, data: err.data }));
          return;
        }
        nsp._doConnect(socket);
      });
    });
  }

  _onSioEvent(socketId, json, ackId, attachments) {
    const socket = this._sockets.get(socketId);
    if (!socket || !socket.connected) return;
    let args;
    try {
      args = decode(json, attachments);
    } catch (err) {
      socket._onerror(err);
      return;
    }
    socket._onevent(args, ackId);
  }

  _onSioAck(socketId, nspIndex, json, ackId, attachments) {
    let args;
    try {
      args = decode(json, attachments);
    } catch (err) {
      this._log('warn', `unreadable ack: ${err.message}`);
      return;
    }
    const socket = this._sockets.get(socketId);
    if (socket && socket._onack(ackId, args)) return;
    const nsp = this._byIndex[nspIndex];
    const collector = nsp && nsp._broadcastAcks.get(ackId);
    if (collector) collector.onResponse(args[0]);
  }

  // connectionStateRecovery: the data of a socket that may come back (the engine kept its record:
  // the reason was recoverable), kept as socket.io's in-memory adapter keeps it, for
  // maxDisconnectionDuration; the engine keeps its rooms and the packets it misses.
  _keepForRecovery(socket) {
    const recovery = this.opts.connectionStateRecovery;
    if (!recovery || !socket.pid) return;
    const now = Date.now();
    for (const [pid, kept] of this._recoveryData) {
      if (now - kept.at <= recovery.maxDisconnectionDuration) break; // oldest first
      this._recoveryData.delete(pid);
    }
    if (socket._data !== null) this._recoveryData.set(socket.pid, { data: socket._data, at: now });
  }

  _onSioDisconnect(socketId, reason, persisted) {
    const socket = this._sockets.get(socketId);
    if (!socket) {
      const pending = this._connecting.get(socketId);
      if (pending) pending.gone = true;
      return;
    }
    if (!socket.connected) {
      // Left while the middleware ran: the middleware's verdict is dropped.
      socket._gone = true;
      return;
    }
    if (persisted) {
      const adapter = socket.nsp._adapter;
      if (adapter && adapter._fleetSessions) {
        // The fleet keeps it (the streams adapter): whichever node the client comes back to.
        adapter.persistSession({ sid: socket.id, pid: socket.pid, rooms: [...socket.rooms], data: socket.data });
      } else {
        this._keepForRecovery(socket);
      }
    }
    socket._onclose(reason);
  }

  // ------------------------------------------------------------------------------ fetching

  _fetchSockets(nsp, rooms, except) {
    if (this._closed) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const requestId = (this._fetchIds = (this._fetchIds % 0x7fffffff) + 1);
      this._fetches.set(requestId, { nsp, resolve });
      try {
        this.sidewire._native.sioFetchSockets(requestId, nsp._index, rooms, except);
      } catch (err) {
        this._fetches.delete(requestId);
        reject(err);
      }
    });
  }

  _onFetch(requestId, json) {
    const pending = this._fetches.get(requestId);
    if (!pending) return;
    this._fetches.delete(requestId);
    const { nsp } = pending;
    let list = [];
    try {
      list = JSON.parse(json || '[]');
    } catch (err) {
      this._log('error', `SIO_FETCH: unreadable answer: ${err.message}`);
    }
    pending.resolve(
      list.map((entry) => {
        const live = nsp.sockets.get(entry.id);
        let handshake;
        if (live) {
          handshake = live.handshake;
        } else {
          const info = (this._conns.get(entry.conn) || {})._info || this._requestInfo.get(entry.conn) || unknownRequestInfo();
          handshake = {
            headers: info.headers,
            time: `${new Date()}`,
            address: info.address,
            xdomain: info.xdomain,
            secure: info.secure,
            issued: Date.now(),
            url: info.url,
            query: info.query,
            auth: {},
          };
        }
        return new RemoteSocket(nsp, { id: entry.id, handshake, rooms: entry.rooms || [], data: live ? live.data : {} });
      }),
    );
  }

  // --------------------------------------------------------------------------------- close

  /**
   * Disconnects every socket ("server shutting down"), closes the engine if this Server
   * created it (otherwise closes this Server's sessions and leaves the engine running), and
   * closes the HTTP server it is attached to, as socket.io does.
   */
  close(fn) {
    if (this._closing) {
      return this._closing.then(() => {
        if (fn) fn();
      });
    }
    this._closed = true;
    this._reopenWanted = false;
    const srv = this.httpServer;
    for (const nsp of this._nsps.values()) {
      for (const socket of [...nsp.sockets.values()]) socket._onclose('server shutting down');
      for (const socket of nsp._preConnectSockets.values()) socket._gone = true;
    }
    for (const pending of this._connecting.values()) pending.gone = true;
    this._closing = (async () => {
      const native = this.sidewire._native;
      if (this._ownsEngine || this.sidewire._closing) {
        // The engine's shutdown closes every session (server.mjs closes the engine and the
        // Server together: no DISCONNECT packets, so clients reconnect to the next process).
        await this.sidewire.close();
      } else {
        // As socket.io's close(): sessions end without DISCONNECT packets, so clients reconnect.
        native.sioCloseAll();
        for (const nsp of this._nsps.values()) {
          if (nsp._index >= 0) native.sioSetNamespaceHooks(nsp._index, false, false);
        }
        this._hooksOn = false;
        this._configure();
        await this._waitForRequests(1000);
      }
      // Out of the fleet: the namespaces' requests end, and the Redis connections close unless
      // a raw channel of the engine still uses them.
      if (this._adapterFactory) {
        for (const nsp of this._nsps.values()) if (nsp._cluster) nsp._cluster.close();
        this.sidewire._leaveCluster();
      }
      // Whatever the engine did not answer is cut.
      for (const { res } of this._requests.values()) if (!res.writableEnded) res.destroy();
      this._requests.clear();
      for (const { resolve } of this._fetches.values()) resolve([]);
      this._fetches.clear();
      if (this.sidewire._sioServer === this) {
        this.sidewire._sioServer = null;
        this.sidewire._socketio = null;
      }
      this._requestInfo.clear();
      this._conns.clear();
      if (globalThis[IO_KEY] === this) delete globalThis[IO_KEY];
      this._closeDone = true; // attach()/listen() may reopen it from here on
      if (this._reopenWanted) {
        try {
          this._reopen();
        } catch (err) {
          this._log('error', `Socket.IO server cannot listen again: ${err.message}`);
        }
      }
      if (srv) {
        await new Promise((resolve) => {
          srv.close((err) => {
            if (fn) fn(err);
            resolve();
          });
        });
      } else if (fn) {
        fn();
      }
    })();
    return this._closing;
  }

  _waitForRequests(ms) {
    if (this._requests.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const started = Date.now();
      const timer = setInterval(() => {
        if (this._requests.size === 0 || Date.now() - started >= ms) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
  }

  // ---------------------------------------------------------- the main namespace, delegated

  to(room) {
    return this.sockets.to(room);
  }

  in(room) {
    return this.sockets.in(room);
  }

  except(room) {
    return this.sockets.except(room);
  }

  send(...args) {
    this.sockets.emit('message', ...args);
    return this;
  }

  write(...args) {
    this.sockets.emit('message', ...args);
    return this;
  }

  serverSideEmit(ev, ...args) {
    return this.sockets.serverSideEmit(ev, ...args);
  }

  serverSideEmitWithAck(ev, ...args) {
    return this.sockets.serverSideEmitWithAck(ev, ...args);
  }

  allSockets() {
    return this.sockets.allSockets();
  }

  compress(compress) {
    return this.sockets.compress(compress);
  }

  get volatile() {
    return this.sockets.volatile;
  }

  get local() {
    return this.sockets.local;
  }

  timeout(timeout) {
    return this.sockets.timeout(timeout);
  }

  fetchSockets() {
    return this.sockets.fetchSockets();
  }

  /** sidewire's presence on the main namespace (namespace.presence). */
  get presence() {
    return this.sockets.presence;
  }

  socketsJoin(room) {
    return this.sockets.socketsJoin(room);
  }

  socketsLeave(room) {
    return this.sockets.socketsLeave(room);
  }

  disconnectSockets(close = false) {
    return this.sockets.disconnectSockets(close);
  }
}

// As socket.io: the EventEmitter methods (on, emit, listeners, …) are the main namespace's.
for (const key of Object.keys(EventEmitter.prototype)) {
  if (typeof EventEmitter.prototype[key] !== 'function') continue;
  Server.prototype[key] = function delegated(...args) {
    return this.sockets[key](...args);
  };
}

/** The Socket.IO server of this process (for API routes), or throws. */
function getServer() {
  const io = globalThis[IO_KEY];
  if (!io) {
    throw new Error(
      'sidewire: no Socket.IO server is running in this process. getServer() answers in the process of the ' +
        'custom server: start the app with it (`npm run dev`, which runs `node server.mjs`; in production ' +
        '`NODE_ENV=production node server.mjs`), not plain `next dev` / `next start`. No server.mjs yet? ' +
        '`npx sidewire init` writes one (startServer() from sidewire/next creates the Socket.IO server).',
    );
  }
  return io;
}

module.exports = { Server, getServer };
