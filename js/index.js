'use strict';
// sidewire's public JS API. The engine (native/) does the protocol work on its own threads;
// this file shapes the API and moves data across. See README.md for the API reference.
const { EventEmitter } = require('node:events');
const fs = require('node:fs');
const net = require('node:net');
const dns = require('node:dns/promises');
const { parseHeaderLines, splitUpgradeInfo, splitTarget, firstValues, countKey, reuse } = require('./http-head.js');
const native = require('./native.js');
const { checkOptions, groups: OPTION_GROUPS } = require('./options.js');
const { jwtSettings } = require('./auth.js');
const { limitsSettings } = require('./limits.js');
const { historySettings, ChannelHistory } = require('./history.js');

const EVENT_OPEN = 0;
const EVENT_MESSAGE = 1;
const EVENT_CLOSE = 2;
const EVENT_REFUSED = 3;
const EVENT_SHUTDOWN = 4;
// Types from 5 on are Socket.IO's (docs/binding-socketio.md): they go to the handler the
// Socket.IO server installs as engine._socketio.
const EVENT_FIRST_SOCKETIO = 5;
// engine.listen(): a connection for Node's HTTP server, and the head of an upgrade the engine
// took itself (for the hooks that want the request).
const EVENT_HANDOFF = 14;
const EVENT_UPGRADE_INFO = 15;
// The cluster adapter's (js/cluster.js): request-protocol messages, command replies, state.
const EVENT_FIRST_CLUSTER = 24;
const EVENT_LAST_CLUSTER = 26;
// A channel's room history is due for its compact hook (js/history.js).
const EVENT_HISTORY_COMPACT = 27;
// The I/O threads are quiet after a burst of connections and have trimmed the native heap.
const EVENT_QUIET = 28;

// V8's collector, for the moment after a burst: a connect storm leaves the young generation
// grown and the old one holding the handshakes' garbage, which V8 gives back only after many
// seconds of low allocation, if ever. Asked for once the engine is quiet, a full collection
// hands it back at once. Node has no API for it: the flag is set just long enough to get the
// function in a fresh context (globalThis.gc stays as it was).
let collectGarbage;
function lowMemoryCollection() {
  if (collectGarbage === undefined) {
    try {
      const v8 = require('node:v8');
      const exposed = typeof globalThis.gc === 'function';
      if (exposed) {
        collectGarbage = globalThis.gc;
      } else {
        v8.setFlagsFromString('--expose-gc');
        collectGarbage = require('node:vm').runInNewContext('gc');
        v8.setFlagsFromString('--no-expose-gc');
      }
    } catch {
      collectGarbage = null;
    }
  }
  if (collectGarbage) collectGarbage();
  return Boolean(collectGarbage);
}

const ENGINE_KEY = Symbol.for('sidewire.engine');
const CLUSTER = Symbol.for('sidewire.cluster'); // sidewire/redis-adapter's settings on its factory
// Set on an upgrade request the engine has taken (or refused): a second 'upgrade' listener
// that calls handleUpgrade for the same request (listen() attaches one, the app may have its
// own) must not answer the socket again.
const HANDLED = Symbol('sidewire.handled');

function envInt(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  return Number.isFinite(n) ? n : fallback;
}

function idOf(client) {
  if (typeof client === 'number') return client;
  if (client && typeof client.id === 'number') return client.id;
  throw new TypeError('expected a client or a client id');
}

const STATUS_TEXT = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  414: 'URI Too Long', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

// Answers an upgrade that never reached the engine, on Node's own socket.
function refuseSocket(socket, status, message) {
  if (socket.destroyed) return;
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] || 'Error'}\r\nConnection: close\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

// engine.listen's `tls`: { key, cert, ca? }, each PEM text (a string or Buffer) or a file path
// (read now, and again by reloadTls()).
function tlsSettings(tls) {
  if (!tls || typeof tls !== 'object') throw new TypeError('sidewire: engine.listen({ tls }) is { key, cert, ca? }');
  const isPem = (v) => Buffer.isBuffer(v) || (typeof v === 'string' && v.includes('-----BEGIN'));
  for (const name of ['key', 'cert', 'ca']) {
    const v = tls[name];
    if (v === undefined && name === 'ca') continue;
    if (!isPem(v) && (typeof v !== 'string' || v === '')) {
      throw new TypeError(`sidewire: engine.listen({ tls: { ${name} } }) is PEM text (a string or Buffer) or a file path`);
    }
  }
  const files = ['key', 'cert', 'ca'].some((n) => typeof tls[n] === 'string' && !isPem(tls[n]));
  const read = () => {
    const out = {};
    for (const name of ['key', 'cert', 'ca']) {
      const v = tls[name];
      if (v === undefined) continue;
      out[name] = isPem(v) ? v : fs.readFileSync(v);
    }
    return out;
  };
  return { files, read };
}

/**
 * One connection of a channel, as JS sees it. Exists only on channels with JS listeners.
 * An idle connection is a handful of fields: its request, headers, query and rooms are made
 * from what the engine read the first time they are asked for.
 */
class Client {
  constructor(channel, id, request, user, address) {
    this.id = id;
    /** The claims of its verified token (a channel with auth.jwt), else undefined. */
    this.user = user;
    this.channel = channel;
    this.connected = true;
    this._request = request || null;
    // The client's address: the engine's through trustProxy, else the peer's (on first read).
    this._address = address;
    this._query = null;
    this._rooms = null;
  }

  get request() {
    return this._request;
  }

  get headers() {
    if (this._request) return this._request.headers;
    return (this._noHeaders ??= {}); // one object per client, as a field would be
  }

  get url() {
    return this._request ? this._request.url : '';
  }

  get remoteAddress() {
    if (this._address) return this._address;
    const req = this._request;
    return req && req.socket ? req.socket.remoteAddress : undefined;
  }

  // The first value of a repeated key, as the engine reads it (and URLSearchParams.get).
  get query() {
    return (this._query ??= firstValues(splitTarget(this.url).query));
  }

  // Rooms joined through JS and the room from the query. Rooms joined by a native join message
  // are not mirrored here.
  get rooms() {
    if (this._rooms === null) {
      this._rooms = new Set();
      const channel = this.channel;
      const key = channel.options.roomQuery;
      if (key) {
        const room = this.query[key];
        if (typeof room === 'string' && room !== '') this._rooms.add(room);
      }
      const prefix = channel._jwt ? channel._jwt.userRoomPrefix : '';
      const user = this.user;
      if (user && prefix && typeof user.sub === 'string' && user.sub) this._rooms.add(prefix + user.sub); // joined in the engine
    }
    return this._rooms;
  }

  send(data) {
    this.channel.send(this, data);
    return this;
  }

  join(room) {
    for (const r of Array.isArray(room) ? room : [room]) {
      this.rooms.add(r);
      this.channel.join(this, r);
    }
    return this;
  }

  leave(room) {
    this.rooms.delete(room);
    this.channel.leave(this, room);
    return this;
  }

  close(code = 1000, reason = '') {
    this.channel.close(this, code, reason);
  }
}

/** A raw WebSocket endpoint at a path, e.g. /ws/fabric. */
class Channel extends EventEmitter {
  constructor(engine, path, options = {}) {
    super();
    checkOptions(OPTION_GROUPS.CHANNEL, options); // before the engine hears of the channel
    this.engine = engine;
    this.path = path;
    this.options = {
      roomQuery: options.roomQuery || '',
      relay: Boolean(options.relay),
      joinMessages: Boolean(options.joinMessages),
      maxPayload: options.maxPayload ?? 1024 * 1024,
      pingInterval: options.pingInterval ?? 25000,
      pingTimeout: options.pingTimeout ?? 20000,
      maxQueuedBytes: options.maxQueuedBytes ?? 8 * 1024 * 1024,
      maxRooms: options.maxRooms ?? 1000,
      messageTimeout: options.messageTimeout ?? 30000,
    };
    // JWT in the engine: an upgrade without a valid token is refused 401 before JS hears of it.
    this._jwt = options.auth && options.auth.jwt ? jwtSettings(options.auth.jwt, { channel: true }) : null;
    // Limits in the engine: rates, connection caps, the idle timeout, trustProxy.
    this._limits = limitsSettings(options.limits, options.trustProxy, { channel: true, jwt: Boolean(this._jwt) });
    // Room history in the engine: replayed to late joiners; compact and load run here.
    const history = historySettings(options.history, this.options.maxQueuedBytes);
    this.index = engine._native.addChannel({
      path,
      ...this.options,
      ...(this._jwt ? { jwt: this._jwt } : {}),
      ...(this._limits ? { limits: this._limits } : {}),
      ...(history ? { history: history.native } : {}),
    });
    this._history = history ? new ChannelHistory(this, history) : null;
    if (options.adapter) {
      const settings = typeof options.adapter === 'function' ? options.adapter[CLUSTER] : undefined;
      if (!settings) {
        throw new TypeError("sidewire: a channel's adapter is sidewire/redis-adapter's createAdapter(url | options)");
      }
      this._cluster = engine._joinCluster(settings);
      this._cluster.addChannel(this);
    } else {
      this._cluster = null;
    }
    this._authorize = null;
    this.authorize = options.authorize || null;
    // A history to load (load, a fleet): the listener leaves upgrades into rooms it does not
    // know yet to Node, so that JS loads them first.
    if (this._history && this._history.gated) engine._native.setChannelHistoryGate(this.index, true);
    this.clients = new Map();
    this._hooksQueued = false;
    this.on('newListener', () => this._queueHooks());
    this.on('removeListener', () => this._queueHooks());
    for (const name of ['connection', 'message', 'close']) {
      if (typeof options[name] === 'function') this.on(name, options[name]);
    }
  }

  /** (req) => true | { status, message } | Promise of either: decides each upgrade in JS. */
  get authorize() {
    return this._authorize;
  }

  set authorize(fn) {
    this._authorize = typeof fn === 'function' ? fn : null;
    // engine.listen() leaves this channel's upgrades to Node, so that JS sees them first.
    this.engine._native.setChannelGate(this.index, this._gated());
  }

  // Upgrades JS must see before the engine takes them: an authorize hook, a history to load.
  _gated() {
    return this._authorize !== null;
  }

  // Tells the engine which events to send over: nothing crosses into JS that nobody listens to.
  _queueHooks() {
    if (this._hooksQueued) return;
    this._hooksQueued = true;
    queueMicrotask(() => {
      this._hooksQueued = false;
      this.engine._native.setHooks(this.index, this._tracksClients(), this.listenerCount('message') > 0,
        this._tracksClients());
    });
  }

  _tracksClients() {
    return this.listenerCount('connection') + this.listenerCount('message') + this.listenerCount('close') > 0;
  }

  /** Sends to every member of `room` (every client when room is null), framed once. */
  broadcast(room, data, options = {}) {
    const except = options.except === undefined || options.except === null ? 0 : idOf(options.except);
    this.engine._native.broadcast(this.index, room == null ? '' : String(room), data, except);
    return this;
  }

  send(client, data) {
    this.engine._native.send(idOf(client), data);
    return this;
  }

  join(client, room) {
    this.engine._native.join(idOf(client), String(room));
    return this;
  }

  leave(client, room) {
    this.engine._native.leave(idOf(client), String(room));
    return this;
  }

  close(client, code = 1000, reason = '') {
    this.engine._native.close(idOf(client), code, reason);
    return this;
  }

  /**
   * Open connections on this channel, or in one of its rooms (null or undefined: the channel).
   * With { cluster: true }, a Promise of the count on every node of the fleet (the channel's
   * adapter); this node's count without an adapter, or while Redis is away.
   */
  /** The connections in each room of this channel on this node: Map of room → count. */
  rooms() {
    return new Map(this.engine._native.channelRooms(this.index));
  }

  _kept() {
    if (!this._history) throw new TypeError(`sidewire: the channel ${this.path} keeps no history (its history option)`);
    return this._history;
  }

  /** The messages the engine keeps for `room`, oldest first: strings (text) and Buffers (binary). */
  history(room) {
    return this._kept().messages(room);
  }

  /** Puts `messages` in place of everything `room` keeps (a restore, a reset). */
  setHistory(room, messages) {
    this._kept().replace(room, -1, 0, messages);
    return this;
  }

  clearHistory(room) {
    return this.setHistory(room, []);
  }

  /** Runs history.compact on `room` now: a Promise of whether its result went in. */
  compactHistory(room) {
    return this._kept().compactNow(room);
  }

  count(room, options) {
    const local = room === undefined || room === null
      ? this.engine._native.connectionCount(this.index)
      : this.engine._native.roomSize(this.index, String(room));
    if (!options || !options.cluster) return local;
    if (!this._cluster) return Promise.resolve(local);
    return this._cluster.countRoom(this, room === undefined || room === null ? null : String(room), local);
  }
}

// The request of an upgrade the engine accepted itself, shaped like the parts of an
// http.IncomingMessage that hooks read (method, url, headers, rawHeaders, socket.remoteAddress).
// The upgrade request of a connection the engine took itself, as an IncomingMessage's fields:
// the header lines are kept as the engine read them and parsed on first use.
class EngineRequest {
  constructor(url, data) {
    this.method = 'GET';
    this.url = url;
    this.httpVersion = '1.1';
    this._data = data;
    this._parsed = null;
  }

  _parse() {
    if (this._parsed === null) {
      const { address, lines } = splitUpgradeInfo(this._data);
      const { headers, rawHeaders } = parseHeaderLines(lines);
      this._parsed = { headers, rawHeaders, socket: { remoteAddress: address, encrypted: false } };
      this._data = null;
    }
    return this._parsed;
  }

  get headers() {
    return this._parse().headers;
  }

  set headers(v) {
    this._parse().headers = v;
  }

  get rawHeaders() {
    return this._parse().rawHeaders;
  }

  set rawHeaders(v) {
    this._parse().rawHeaders = v;
  }

  get socket() {
    return this._parse().socket;
  }

  set socket(v) {
    this._parse().socket = v;
  }

  get connection() {
    return this._parse().socket;
  }

  set connection(v) {
    this._parse().socket = v;
  }

  // As an IncomingMessage's fields (the header text as read is not one of them).
  toJSON() {
    const { headers, rawHeaders, socket } = this._parse();
    return { method: this.method, url: this.url, httpVersion: this.httpVersion, headers, rawHeaders, socket };
  }
}

function requestFromEngine(url, data) {
  return new EngineRequest(reuse('url', url), data);
}

class Engine extends EventEmitter {
  constructor(options = {}) {
    super();
    checkOptions(OPTION_GROUPS.ENGINE, options);
    this.options = {
      ioThreads: options.ioThreads ?? envInt('SIDEWIRE_IO_THREADS', 1),
      wsPrefix: options.wsPrefix ?? '/ws/',
      drainMs: options.drainMs ?? envInt('SIDEWIRE_DRAIN_MS', 5000),
      closeTimeoutMs: options.closeTimeoutMs ?? 3000,
      // The I/O threads' niceness: pages rendered on Node's main thread come first when the
      // CPUs are busy (0 turns it off).
      ioNice: options.ioNice ?? envInt('SIDEWIRE_IO_NICE', 5),
      // Coalesced writes: how long a connection's outgoing frames may wait so that one write
      // carries many (fan-out: fewer syscalls per delivery for that much latency). 0: none.
      writeDelayMs: options.writeDelayMs ?? envInt('SIDEWIRE_WRITE_DELAY_MS', 0),
      // After a burst of connections, once the I/O threads are quiet (the engine trims its
      // heap then), one full collection of the JS heap hands back what the burst left.
      gcAfterBurst: options.gcAfterBurst ?? process.env.SIDEWIRE_GC_AFTER_BURST !== '0',
      logLevel: options.logLevel ?? process.env.SIDEWIRE_LOG_LEVEL,
      // 'text', or 'json' for log shippers: one JSON object a line, the engine's and this file's.
      logFormat: options.logFormat ?? process.env.SIDEWIRE_LOG_FORMAT ?? 'text',
    };
    if (this.options.logFormat !== 'text' && this.options.logFormat !== 'json') {
      throw new TypeError(`sidewire: logFormat is 'text' or 'json', not ${JSON.stringify(this.options.logFormat)}`);
    }
    if (typeof this.options.gcAfterBurst !== 'boolean') {
      throw new TypeError(`sidewire: gcAfterBurst is true or false, not ${JSON.stringify(this.options.gcAfterBurst)}`);
    }
    const delay = this.options.writeDelayMs;
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0 || delay > 1000) {
      throw new TypeError(`sidewire: writeDelayMs is a number of milliseconds from 0 to 1000, not ${JSON.stringify(delay)}`);
    }
    if (this.options.logLevel) native.setLogLevel(this.options.logLevel);
    // The engine's logger is the process's: set only when asked for.
    if (options.logFormat !== undefined || process.env.SIDEWIRE_LOG_FORMAT !== undefined) native.setLogFormat(this.options.logFormat);
    this._native = new native.Engine(
      {
        ioThreads: this.options.ioThreads,
        closeTimeoutMs: this.options.closeTimeoutMs,
        ioNice: this.options.ioNice,
        writeDelayUs: Math.round(delay * 1000),
      },
      (batch) => this._onEvents(batch),
    );
    this._channels = new Map();
    this._cluster = null; // js/cluster.js, once a Server or channel joins a fleet
    this._byIndex = [];
    this._pending = new Map();
    this._closing = null;
    this._resolveClose = null;
    this._socketio = null; // event handler of the Socket.IO Server (js/socketio/server.js)
    this._sioServer = null;
    this._attached = new WeakMap(); // http.Server → { otherwise } (attach(): one listener per server)
    this._httpServer = null; // engine.listen(): where connections that are not the engine's go
    this._address = null;
    if (options.global !== false) globalThis[ENGINE_KEY] = this;
  }

  /**
   * Listens on `port` in the engine: its own thread accepts, the I/O threads look at each
   * request head and take the WebSocket upgrades they answer alone (relay channels, Socket.IO's
   * websocket transport), and every other connection (pages, API routes, long-polling, Next's
   * dev websocket, upgrades an authorize hook or a CORS check must see) goes to `server`, an
   * http.Server, untouched, as if it had accepted it. Use instead of server.listen().
   * Resolves with the port (useful with port 0).
   */
  async listen(server, options = {}) {
    if (!server || typeof server.emit !== 'function') {
      throw new TypeError('engine.listen(server, { port, host, backlog }): server is the http.Server for everything else');
    }
    if (this._closing) throw new Error('the engine is closing');
    let host = options.host || '';
    // A name resolves as server.listen() resolves it (dns.lookup, its first address).
    if (host && net.isIP(host) === 0) host = (await dns.lookup(host)).address;
    if (this._closing) throw new Error('the engine is closing');
    const backlog = options.backlog ?? 511;
    this.attach(server); // upgrades that still reach Node (gated ones) come to the engine from there
    this._httpServer = server;
    // Several accept queues on the port (SO_REUSEPORT, the port kept to this engine): a burst
    // of connections larger than one queue (net.core.somaxconn caps each) is not dropped.
    const queues = options.acceptQueues ?? 4;
    // Native TLS: https and wss on this port, ended by the engine; files are read again on
    // SIGHUP (engine.reloadTls()), and open connections keep the certificate they began with.
    this._tls = options.tls ? tlsSettings(options.tls) : null;
    const port = this._native.listen(host, Number(options.port ?? 0), backlog, queues, this._tls ? this._tls.read() : undefined);
    if (this._tls && this._tls.files && options.reloadOnSighup !== false) {
      this._onSighup = () => {
        try {
          this.reloadTls();
        } catch (err) {
          this._log('error', `TLS reload on SIGHUP failed, the certificates in use stay: ${err.message}`);
        }
      };
      process.on('SIGHUP', this._onSighup);
    }
    // A listening server keeps Node running, as server.listen() would.
    this._keepAlive = setInterval(() => {}, 1 << 30);
    this._address = { address: host || '::', family: host.includes(':') || !host ? 'IPv6' : 'IPv4', port };
    // node:http starts tracking its connections (headersTimeout, requestTimeout,
    // closeAllConnections) when it starts listening; it never listens itself here.
    for (const fn of server.listeners('listening')) {
      if (fn.name === 'setupConnectionsTracking') fn.call(server);
    }
    return port;
  }

  /**
   * TLS (engine.listen(server, { tls })): reads the key and certificate again (from their files,
   * or `tls` given here) for new connections; open ones keep theirs. Throws, keeping the
   * certificates in use, when OpenSSL cannot use them.
   */
  reloadTls(tls) {
    if (!this._tls) throw new Error('sidewire: engine.listen() has no tls');
    const next = tls ? tlsSettings(tls) : this._tls;
    this._native.reloadTls(next.read()); // throws, keeping the pair in use, when it cannot use these
    this._tls = next;
  }

  /** { address, family, port } while engine.listen() listens, else null. */
  address() {
    return this._address;
  }

  // A connection the engine accepted that is Node's: wrapped as node:net would wrap it.
  // `address`, `tls`: a TLS connection's decrypted socketpair knows neither: the engine says.
  _handoff(fd, address, tls) {
    const server = this._httpServer;
    const drop = () => {
      try {
        fs.closeSync(fd);
      } catch {
        // already gone
      }
    };
    if (!server || this._closing) return drop();
    let socket;
    try {
      socket = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: server.allowHalfOpen ?? true });
    } catch (err) {
      this._log('error', `cannot hand a connection to the HTTP server: ${err.message}`);
      return drop();
    }
    if (tls) {
      // As a tls.TLSSocket would answer (req.socket.encrypted: Next and Express see https).
      socket.encrypted = true;
      Object.defineProperty(socket, 'remoteAddress', { value: address || undefined, configurable: true });
      Object.defineProperty(socket, 'remoteFamily', { value: net.isIPv6(address) ? 'IPv6' : 'IPv4', configurable: true });
    }
    // As net.Server's own onconnection: counted in server._connections (getConnections(), and
    // server.close() calls back once they are gone), which the socket undoes when it closes.
    server._connections++;
    socket.server = server;
    socket._server = server;
    server.emit('connection', socket);
  }

  _upgradeInfo(channelIndex, id, url, data) {
    if (channelIndex < 0) {
      if (this._sioServer) this._sioServer._onEngineUpgrade(id, url, data);
      return;
    }
    const channel = this._byIndex[channelIndex];
    if (channel && channel._tracksClients()) this._pending.set(id, { channel, req: requestFromEngine(url, data) });
  }

  /** Declares a raw WebSocket channel at `path` (under wsPrefix). */
  channel(path, options = {}) {
    if (typeof path !== 'string' || !path.startsWith(this.options.wsPrefix)) {
      throw new TypeError(`channel path must start with ${this.options.wsPrefix}: ${path}`);
    }
    if (this._channels.has(path)) throw new Error(`a channel already exists at ${path}`);
    const ch = new Channel(this, path, options);
    this._channels.set(path, ch);
    this._byIndex[ch.index] = ch;
    return ch;
  }

  getChannel(path) {
    return this._channels.get(path);
  }

  // The engine's place in a fleet (sidewire/redis-adapter): made by the first Server or
  // channel given an adapter; every later one must name the same Redis and key.
  _joinCluster(settings) {
    if (this._cluster) {
      this._cluster.check(settings);
      return this._cluster;
    }
    const { ClusterLink } = require('./cluster.js');
    this._cluster = new ClusterLink(this, settings);
    return this._cluster;
  }

  // A Server that leaves (io.close()): the connections close unless a channel still uses them.
  _leaveCluster() {
    if (!this._cluster || this._cluster._channels.size > 0) return;
    this._cluster.close();
    this._cluster = null;
  }

  /**
   * True when the request is for the engine (and the engine took the socket, or refused it).
   * Called again for a request it already handled (a second 'upgrade' listener), it returns
   * true and does nothing.
   */
  handleUpgrade(req, socket, head) {
    if (req[HANDLED]) return true;
    const url = req.url || '/';
    const { pathname, query } = splitTarget(url);
    if (!pathname.startsWith(this.options.wsPrefix)) {
      // Socket.IO's path (/socket.io/) while a Server is attached: its CORS check, then adopt.
      const io = this._sioServer;
      if (!io || !io._ownsUpgrade(pathname)) return false;
      req[HANDLED] = true;
      if (url.includes('#')) return this._refuse(req, socket, 400, 'invalid character in the request target');
      io._handleUpgrade(req, socket, head);
      return true;
    }
    req[HANDLED] = true;
    // The engine refuses these too; refused here, an authorize hook never sees a request whose
    // path or room reads one way to it and another way to the engine.
    if (url.includes('#')) return this._refuse(req, socket, 400, 'invalid character in the request target');
    const channel = this._channels.get(pathname);
    const roomKey = channel && channel.options.roomQuery;
    if (roomKey && countKey(query, roomKey) > 1) {
      return this._refuse(req, socket, 400, `the query names '${roomKey}' more than once`);
    }
    const historyRoom = channel && channel._history && channel._history.gated && roomKey
      ? new URLSearchParams(query).get(roomKey)
      : null;
    const toLoad = historyRoom && !this._native.historyKnown(channel.index, historyRoom);
    if (channel && (channel._gated() || toLoad)) {
      // Hold the socket still while the app decides; bytes that arrive meanwhile are handed over.
      socket.pause();
      Promise.resolve()
        .then(() => (channel.authorize ? channel.authorize(req) : true))
        .then(
          async (verdict) => {
            if (verdict === true || verdict === undefined) {
              if (toLoad) {
                try {
                  await channel._history.ensureLoaded(historyRoom);
                } catch (err) {
                  // The client joins without it rather than not at all; the app's log says why.
                  this._log('error', `history.load failed for ${req.url}: ${err && err.stack}`);
                }
              }
              return this._adopt(req, socket, head, channel);
            }
            const status = verdict && verdict.status ? verdict.status : 403;
            const message = verdict && verdict.message ? verdict.message : 'connection refused';
            this._log('warn', `upgrade refused by authorize: ${req.url}: ${status} ${message}`);
            refuseSocket(socket, status, message);
          },
          (err) => {
            const status = err && Number.isInteger(err.status) ? err.status : 401;
            this._log('warn', `upgrade refused by authorize: ${req.url}: ${status} ${err && err.message}`);
            refuseSocket(socket, status, (err && err.message) || 'unauthorized');
          },
        );
      return true;
    }
    this._adopt(req, socket, head, channel);
    return true;
  }

  _refuse(req, socket, status, message) {
    this._log('warn', `upgrade refused: ${req.url}: ${status} ${message}`);
    refuseSocket(socket, status, message);
    return true;
  }

  // `responseHeaders`: extra header lines for the 101 (Socket.IO's headers hooks), or undefined.
  _adopt(req, socket, head, channel, responseHeaders) {
    if (socket.destroyed) return;
    if (this._closing) {
      refuseSocket(socket, 503, 'server shutting down');
      return;
    }
    const fd = socket._handle && typeof socket._handle.fd === 'number' ? socket._handle.fd : -1;
    if (fd < 0) {
      // A TLS socket has no descriptor to hand over: terminate TLS in front (nginx).
      this._log('error', `cannot adopt ${req.url}: not a plain TCP socket (TLS?)`);
      refuseSocket(socket, 500, 'sidewire needs a plain TCP socket; terminate TLS in a proxy');
      return;
    }
    let bytes = head && head.length ? head : Buffer.alloc(0);
    if (socket.readableLength > 0) {
      const extra = socket.read();
      if (extra) bytes = Buffer.concat([bytes, extra]);
    }
    let id;
    try {
      id = this._native.adopt(fd, req.method, req.url || '/', req.rawHeaders, bytes, socket.remoteAddress || '', responseHeaders);
    } catch (err) {
      this._log('error', `cannot adopt ${req.url}: ${err.message}`);
      refuseSocket(socket, 500, 'cannot adopt the connection');
      return;
    }
    if (channel && channel._tracksClients()) this._pending.set(id, { channel, req });
    // The engine holds its own descriptor now; Node closes its copy and lets go.
    socket.destroy();
    return id;
  }

  /**
   * Adds the engine's 'upgrade' listener to an http.Server, once per server whoever asks
   * (engine.listen(), a Socket.IO Server's attach(), the app): the engine takes its paths
   * first, and `otherwise(req, socket, head)`, when given (here or in a later call), gets every
   * upgrade the engine leaves (Next's HMR, say), so the server needs no listener of its own.
   * Without it, an upgrade nobody takes is answered 404 when this is the server's only
   * 'upgrade' listener, and left to the others otherwise. An app's own listener that calls
   * handleUpgrade() as well is harmless: each request is decided once.
   */
  attach(server, otherwise) {
    if (otherwise !== undefined && otherwise !== null && typeof otherwise !== 'function') {
      throw new TypeError('engine.attach(server, otherwise): otherwise is a function (req, socket, head)');
    }
    const known = this._attached.get(server);
    if (known) {
      if (otherwise) known.otherwise = otherwise;
      return this;
    }
    const state = { otherwise: otherwise || null };
    this._attached.set(server, state);
    server.on('upgrade', (req, socket, head) => {
      let taken;
      try {
        taken = this.handleUpgrade(req, socket, head);
      } catch (err) {
        this._log('error', `engine.handleUpgrade failed: ${err && err.stack}`);
        socket.destroy();
        return;
      }
      if (taken) return;
      if (state.otherwise) {
        try {
          state.otherwise(req, socket, head);
        } catch (err) {
          this._log('error', `the upgrade handler given to engine.attach() failed: ${err && err.stack}`);
          socket.destroy();
        }
        return;
      }
      if (server.listenerCount('upgrade') === 1) refuseSocket(socket, 404, 'not found');
    });
    return this;
  }

  _onEvents(batch) {
    // 8 fields per event: [type, channel, id, data, code, text, number, attachments]
    for (let i = 0; i < batch.length; i += 8) {
      const type = batch[i];
      try {
        if (type === EVENT_HANDOFF) {
          this._handoff(batch[i + 6], batch[i + 3], batch[i + 4] === 1);
          continue;
        }
        if (type === EVENT_UPGRADE_INFO) {
          this._upgradeInfo(batch[i + 1], batch[i + 2], batch[i + 5], batch[i + 3]);
          continue;
        }
        if (type >= EVENT_FIRST_CLUSTER && type <= EVENT_LAST_CLUSTER) {
          if (this._cluster) this._cluster._onEvent(type, batch[i + 3], batch[i + 5], batch[i + 6], batch[i + 4]);
          continue;
        }
        if (type === EVENT_QUIET) {
          if (this.options.gcAfterBurst) {
            const t0 = process.hrtime.bigint();
            if (lowMemoryCollection()) {
              this.gcAfterBurstCount = (this.gcAfterBurstCount ?? 0) + 1;
              this._log('debug', `quiet after a burst: collected the JS heap in ${Number(process.hrtime.bigint() - t0) / 1e6} ms`);
            }
          }
          continue;
        }
        if (type === EVENT_HISTORY_COMPACT) {
          const channel = this._byIndex[batch[i + 1]];
          if (channel && channel._history) {
            channel._history.onCompact(batch[i + 5], batch[i + 6], batch[i + 2], batch[i + 3], batch[i + 7]);
          }
          continue;
        }
        if (type >= EVENT_FIRST_SOCKETIO) {
          if (this._socketio) this._socketio(type, batch[i + 1], batch[i + 2], batch[i + 3], batch[i + 4], batch[i + 5], batch[i + 6], batch[i + 7]);
          continue;
        }
        const channel = this._byIndex[batch[i + 1]];
        this._dispatch(type, channel, batch[i + 2], batch[i + 3], batch[i + 4], batch[i + 5]);
      } catch (err) {
        // A throwing handler must not take the other events of the batch with it.
        this._log('error', `error in a sidewire event handler: ${err && err.stack}`);
        if (this.listenerCount('error') > 0) this.emit('error', err);
      }
    }
  }

  _dispatch(type, channel, id, data, code, text) {
    switch (type) {
      case EVENT_OPEN: {
        const pending = this._pending.get(id);
        this._pending.delete(id);
        if (!channel) return;
        let user;
        if (typeof data === 'string' && data) {
          try {
            user = JSON.parse(data);
          } catch {
            user = undefined;
          }
        }
        const client = new Client(channel, id, pending && pending.req, user, text);
        channel.clients.set(id, client);
        channel.emit('connection', client, client.request);
        return;
      }
      case EVENT_MESSAGE: {
        if (!channel) return;
        const client = channel.clients.get(id) || new Client(channel, id, null);
        channel.emit('message', client, data, typeof data !== 'string');
        return;
      }
      case EVENT_CLOSE: {
        if (!channel) return;
        const client = channel.clients.get(id) || new Client(channel, id, null);
        channel.clients.delete(id);
        client.connected = false;
        channel.emit('close', client, code, data);
        return;
      }
      case EVENT_REFUSED:
        this._pending.delete(id);
        return;
      case EVENT_SHUTDOWN:
        this._finishClose();
        return;
      default:
    }
  }

  _finishClose() {
    if (!this._resolveClose) return;
    const resolve = this._resolveClose;
    this._resolveClose = null;
    clearTimeout(this._closeTimer);
    this._native.stop();
    if (globalThis[ENGINE_KEY] === this) delete globalThis[ENGINE_KEY];
    resolve();
  }

  /**
   * Closes every engine connection with 1001, lets outgoing queues drain for up to drainMs,
   * cuts what is left, and stops the engine's threads.
   */
  close(options = {}) {
    if (this._closing) return this._closing;
    const drainMs = options.drainMs ?? this.options.drainMs;
    this._closing = new Promise((resolve) => {
      this._resolveClose = resolve;
    });
    if (this._cluster) {
      this._cluster.close();
      this._cluster = null;
    }
    this._native.shutdown(drainMs); // stops listening first
    clearInterval(this._keepAlive);
    for (const ch of this._channels.values()) if (ch._history) clearInterval(ch._history.sweeper);
    if (this._onSighup) process.off('SIGHUP', this._onSighup);
    this._address = null;
    // Keeps Node alive through the drain, and stops the engine even if its report is lost.
    this._closeTimer = setTimeout(() => this._finishClose(), drainMs + 2000);
    return this._closing;
  }

  stats() {
    return this._native.stats();
  }

  /**
   * The engine's metrics in Prometheus's text format (a Promise of the text), with Node's own
   * (event-loop lag, CPU, memory). Serve it at /metrics with `engine.metricsContentType`
   * (startServer does).
   */
  metrics() {
    this._metrics ??= new (require('./metrics.js').EngineMetrics)(this);
    return this._metrics.text();
  }

  get metricsContentType() {
    return require('prom-client').register.contentType;
  }

  _log(level, message) {
    const order = ['trace', 'debug', 'info', 'warn', 'error', 'critical', 'off'];
    const threshold = order.indexOf(this.options.logLevel || 'info');
    if (order.indexOf(level) < (threshold < 0 ? 2 : threshold)) return;
    const line =
      this.options.logFormat === 'json'
        ? JSON.stringify({ time: new Date().toISOString(), level: level === 'warn' ? 'warning' : level, logger: 'sidewire', msg: message })
        : `${new Date().toISOString()} [sidewire] ${level} ${message}`;
    if (level === 'error' || level === 'warn') console.error(line);
    else console.log(line);
  }
}

/** The engine the custom server created in this process (for API routes), or throws. */
function getEngine() {
  const engine = globalThis[ENGINE_KEY];
  if (!engine) {
    throw new Error(
      'sidewire: no engine is running in this process. getEngine() answers in the process of the custom ' +
        'server: start the app with it (`npm run dev`, which runs `node server.mjs`; in production ' +
        '`NODE_ENV=production node server.mjs`), not plain `next dev` / `next start`. No server.mjs yet? ' +
        '`npx sidewire init` writes one (startServer() from sidewire/next creates the engine).',
    );
  }
  return engine;
}

// Required here, after the classes above: the Socket.IO layer requires this file lazily.
const { Server, Namespace, Socket, BroadcastOperator, RemoteSocket, Adapter, getServer } = require('./socketio/index.js');

// As socket.io's CommonJS export: require('sidewire')(httpServer, opts) is new Server(...)
// (an arrow function, so `new` on it throws as on socket.io's). The named exports are
// assigned one by one so that Node's ESM loader finds them: import { Server } from 'sidewire'.
const sidewire = (srv, opts) => new Server(srv, opts);
module.exports = sidewire;
module.exports.Engine = Engine;
module.exports.Channel = Channel;
module.exports.Client = Client;
module.exports.getEngine = getEngine;
module.exports.Server = Server;
module.exports.Namespace = Namespace;
module.exports.Socket = Socket;
module.exports.BroadcastOperator = BroadcastOperator;
module.exports.RemoteSocket = RemoteSocket;
module.exports.Adapter = Adapter;
module.exports.getServer = getServer;
module.exports.default = sidewire; // TypeScript's `import sidewire from 'sidewire'` without esModuleInterop
