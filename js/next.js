'use strict';
// sidewire/next: a custom Next.js server with sidewire in one call.
//
//   // server.mjs
//   import { startServer } from 'sidewire/next';
//   await startServer({
//     setup({ io }) {
//       io.on('connection', (socket) => socket.emit('hello', 'world'));
//     },
//   });
//
// startServer() runs Next.js (dev or production) behind one http.Server, with sidewire's
// engine listening on the port, the process's Socket.IO server (getServer() in route handlers),
// a /health endpoint and a graceful shutdown on SIGINT/SIGTERM. Options and defaults (each
// option falls back to its variable, as a Next.js custom server reads PORT and HOSTNAME):
//
//   dir             process.cwd()          the Next.js app's directory
//   dev             NODE_ENV !== 'production'
//   port            PORT, 3000
//   hostname        HOSTNAME, 'localhost'
//   backlog         SIDEWIRE_BACKLOG, 4096  the listen backlog (the kernel caps it at net.core.somaxconn)
//   drainMs         SIDEWIRE_DRAIN_MS, 5000 how long engine.close() drains on shutdown
//   headersTimeout  SIDEWIRE_HEADERS_TIMEOUT_MS, 10000  a request head (an upgrade too) must arrive within this
//   logLevel        SIDEWIRE_LOG_LEVEL, 'info'
//   engine          Engine options, or an Engine
//   socketio        Socket.IO Server options; false: no Socket.IO server
//   setup(ctx)      { io, engine, app, server }, may be async: handlers, channels; runs before listening
//   beforeShutdown() may be async: runs first on shutdown, while every connection is still open
//                   (save what the clients hold: a channel's history)
//   onShutdown()    may be async: cleanup once the engine has drained and Next has closed
//   health          '/health'; false: none
//   ready           '/ready'; false: none (503 until Next is prepared and the adapter connected, and while shutting down)
//   metrics         '/metrics'; false: none (Prometheus text: engine.metrics())
//   metricsAllow    ['loopback']: who may read /metrics (addresses, networks, 'loopback' …); others get 403
//   logFormat       SIDEWIRE_LOG_FORMAT, 'text'; 'json': one JSON object a line (the engine's lines and these)
//   tls             { key, cert, ca? } (PEM or file paths): https and wss on the port, ended by the engine; SIGHUP reloads
//   signals         true: SIGINT/SIGTERM shut down gracefully and exit
//   nextOptions     more options for next() (turbopack, quiet, conf …)
//
// How Next 16 handles 'upgrade' in a custom server (node_modules/next/dist/server/next.js,
// class NextCustomServer), and why this file does what it does:
//
// * app.getUpgradeHandler() returns the *inner* NextServer's handler, which ends in
//   NextNodeServer.handleUpgrade(): an empty function. It neither handles nor closes the
//   socket. It also throws before app.prepare().
// * The real handler (router-server's upgradeHandler: dev HMR on /_next/hmr, and
//   proxying of upgrades that match external rewrites) is attached lazily by
//   setupWebSocketHandler() on the first HTTP request that goes through
//   app.getRequestHandler(): `(options.httpServer || req.socket.server).on('upgrade', ...)`.
//   Left alone it would add a second 'upgrade' listener to our http server and see every
//   /ws/... upgrade too. It awaits resolveRoutes() for the URL and, if a page/route
//   matches (e.g. a catch-all route), calls socket.end() on the socket; otherwise it
//   leaves the socket untouched (an upgrade nobody claims just stays open, as with
//   `next start`). On a socket sidewire already adopted and destroyed that is a no-op,
//   but while a channel's async authorize() runs the engine keeps the socket alive and
//   paused, and Next's socket.end() would kill it.
// * So we pass Next a private EventEmitter as `httpServer`: Next hangs its listener on
//   that instead of on the real server, and the single 'upgrade' listener (the engine's,
//   engine.attach(server, nextUpgrade)) decides who gets each socket: sidewire first, and
//   Next only for sockets sidewire declined. Before Next has attached its listener (no HTTP
//   request served yet, e.g. an HMR client reconnecting to a freshly restarted dev server)
//   we use the same handler via app.upgradeHandler, and fall back to app.getUpgradeHandler()
//   if that getter is gone. That is what keeps HMR working from the first upgrade on.
//
// Socket.IO (sidewire's socket.io-compatible Server, on the same engine) is not attached to
// the http server: io.attach() would wrap the 'request' listeners. Instead the request handler
// gives /socket.io/ requests (Engine.IO long-polling, CORS preflights, the client bundle) to
// io.handleRequest() before Next sees them, and the one 'upgrade' listener's
// engine.handleUpgrade() takes WebSocket upgrades under /socket.io/ as well as /ws/.
//
// The engine listens on the port (engine.listen), not Node: its accept thread empties the
// accept queue at once, the I/O thread peeks at each request head and answers the WebSocket
// upgrades it can answer alone, and hands every other connection to `server` untouched (Node
// reads the request from the first byte). Upgrades that JS must see first (a channel with an
// authorize hook, a Socket.IO upgrade with an Origin while CORS is configured) go to Node too,
// and reach the 'upgrade' listener. API routes reach the Socket.IO server with getServer()
// (e.g. getServer().to(room).emit(...)) and the engine with getEngine().
const http = require('node:http');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const { createRequire } = require('node:module');
const { addressMatcher } = require('./limits.js');
const { Engine, Server } = require('./index.js');
const { checkOptions, groups: OPTION_GROUPS } = require('./options.js');

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'critical', 'off'];

// An integer from the option, else from the variable, else the default. A bad option throws;
// a bad variable falls back to the default, as server.mjs always read its variables.
function intSetting(value, envName, fallback, ok, optionName, what) {
  if (value !== undefined && value !== null) {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || !ok(n)) {
      throw new TypeError(`sidewire/next: startServer({ ${optionName} }) must be ${what}: ${String(value)}`);
    }
    return n;
  }
  const n = Number.parseInt(process.env[envName] ?? '', 10);
  return Number.isFinite(n) && ok(n) ? n : fallback;
}

/** The app's `next` (resolved from its directory first, then from sidewire's). */
function loadNext(dir) {
  const tried = [];
  for (const from of [path.join(dir, 'package.json'), __filename]) {
    let file;
    try {
      file = createRequire(from).resolve('next');
    } catch {
      tried.push(path.dirname(from));
      continue;
    }
    const mod = require(file);
    const next = typeof mod === 'function' ? mod : mod && mod.default;
    if (typeof next !== 'function') throw new Error(`sidewire/next: ${file} does not export the next() function`);
    return next;
  }
  throw new Error(
    `sidewire/next: cannot find the 'next' package (looked from ${tried.join(' and ')}). ` +
      'Install it in the app (`npm install next react react-dom`), or point startServer({ dir }) at the Next.js app.',
  );
}

function shownHost(hostname) {
  return hostname.includes(':') ? `[${hostname}]` : hostname;
}

/**
 * Starts Next.js with sidewire on one port. Resolves once the engine listens, with
 * { app, server, engine, io, port, url, close() }.
 */
async function startServer(options = {}) {
  if (options === null || typeof options !== 'object') throw new TypeError('sidewire/next: startServer(options): options is an object');
  checkOptions(OPTION_GROUPS.START_SERVER, options);

  const dir = path.resolve(options.dir ?? process.cwd());
  const dev = options.dev ?? process.env.NODE_ENV !== 'production';
  const port = intSetting(options.port, 'PORT', 3000, (n) => n >= 0 && n <= 65535, 'port', 'a port number (0 to 65535)');
  const hostname = options.hostname ?? (process.env.HOSTNAME || 'localhost');
  if (typeof hostname !== 'string' || hostname === '') throw new TypeError('sidewire/next: startServer({ hostname }) is a host name or an address');
  const backlog = intSetting(options.backlog, 'SIDEWIRE_BACKLOG', 4096, (n) => n > 0, 'backlog', 'an integer above 0');
  const drainMs = intSetting(options.drainMs, 'SIDEWIRE_DRAIN_MS', 5000, (n) => n >= 0, 'drainMs', 'a number of ms (0 or more)');
  const headersTimeout = intSetting(options.headersTimeout, 'SIDEWIRE_HEADERS_TIMEOUT_MS', 10000, (n) => n > 0, 'headersTimeout', 'a number of ms above 0');
  const logLevel = options.logLevel ?? (process.env.SIDEWIRE_LOG_LEVEL || 'info');
  if (!LOG_LEVELS.includes(logLevel)) throw new TypeError(`sidewire/next: startServer({ logLevel }) is one of ${LOG_LEVELS.join(', ')}: ${logLevel}`);
  const healthPath = options.health === undefined || options.health === true ? '/health' : options.health;
  if (healthPath !== false && (typeof healthPath !== 'string' || !healthPath.startsWith('/'))) {
    throw new TypeError("sidewire/next: startServer({ health }) is a path ('/health') or false");
  }
  const pathOption = (name, fallback) => {
    const v = options[name] === undefined || options[name] === true ? fallback : options[name];
    if (v !== false && (typeof v !== 'string' || !v.startsWith('/'))) {
      throw new TypeError(`sidewire/next: startServer({ ${name} }) is a path ('${fallback}') or false`);
    }
    return v;
  };
  const readyPath = pathOption('ready', '/ready');
  const metricsPath = pathOption('metrics', '/metrics');
  // Who may read /metrics: loopback by default (Prometheus on the host, or nginx passing on only
  // what deploy/nginx.conf allows); addresses, networks or 'loopback' ... (trustProxy's forms).
  const mayReadMetrics = addressMatcher(options.metricsAllow ?? ['loopback']);
  const logFormat = options.logFormat ?? (process.env.SIDEWIRE_LOG_FORMAT || 'text');
  if (logFormat !== 'text' && logFormat !== 'json') throw new TypeError(`sidewire/next: startServer({ logFormat }) is 'text' or 'json': ${logFormat}`);
  // This file's own lines, in the engine's format.
  const say = (level, message, fields = {}) => {
    const stream = level === 'error' || level === 'warn' ? console.error : console.log;
    if (logFormat === 'json') {
      // Level names as the engine's lines have them (spdlog's: 'warning').
      stream(JSON.stringify({ time: new Date().toISOString(), level: level === 'warn' ? 'warning' : level, logger: 'sidewire/next', msg: message, ...fields }));
    } else {
      stream(`[sidewire] ${message}`);
    }
  };
  const signals = options.signals !== false;
  for (const name of ['setup', 'beforeShutdown', 'onShutdown']) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new TypeError(`sidewire/next: startServer({ ${name} }) is a function`);
  }
  const nextOptions = options.nextOptions ?? {};
  if (typeof nextOptions !== 'object') throw new TypeError('sidewire/next: startServer({ nextOptions }) is an object');
  for (const own of ['dev', 'dir', 'hostname', 'port', 'httpServer']) {
    if (Object.prototype.hasOwnProperty.call(nextOptions, own)) {
      throw new TypeError(`sidewire/next: nextOptions.${own} is startServer's to set${own === 'httpServer' ? ' (Next gets a private emitter: see js/next.js)' : `: use startServer({ ${own} })`}`);
    }
  }
  const socketioOptions = options.socketio ?? {};
  if (socketioOptions !== false && (typeof socketioOptions !== 'object' || Array.isArray(socketioOptions))) {
    throw new TypeError('sidewire/next: startServer({ socketio }) is Socket.IO Server options, or false');
  }

  const createNext = loadNext(dir);
  const startedAt = process.hrtime.bigint();

  // Receives Next's lazily attached 'upgrade' listener (see the comment at the top).
  const nextUpgradeBus = new EventEmitter();
  const app = createNext({ ...nextOptions, dev, dir, hostname, port, httpServer: nextUpgradeBus });
  const handle = app.getRequestHandler();

  let engine;
  let ownEngine = false;
  if (options.engine instanceof Engine) {
    engine = options.engine;
    if (engine._closing) throw new Error('sidewire/next: the Engine given as startServer({ engine }) is closing');
  } else {
    if (options.engine !== undefined && (options.engine === null || typeof options.engine !== 'object')) {
      throw new TypeError('sidewire/next: startServer({ engine }) is Engine options or an Engine');
    }
    engine = new Engine({ logLevel, logFormat, drainMs, ...(options.engine || {}) });
    ownEngine = true;
  }

  let io = null;
  if (socketioOptions !== false) {
    if (socketioOptions.engine !== undefined && socketioOptions.engine !== engine) {
      if (ownEngine) await engine.close({ drainMs: 0 });
      throw new TypeError('sidewire/next: socketio.engine is not the engine startServer runs; pass the Engine as startServer({ engine })');
    }
    try {
      io = new Server({ ...socketioOptions, engine });
    } catch (err) {
      if (ownEngine) await engine.close({ drainMs: 0 });
      throw err;
    }
  }

  let nextPublicUpgrade; // app.getUpgradeHandler(): a no-op in Next 16, kept as last resort

  // Every upgrade the engine leaves: Next's (HMR in dev, upgrades of external rewrites).
  function nextUpgrade(req, socket, head) {
    if (nextUpgradeBus.listenerCount('upgrade') > 0) {
      nextUpgradeBus.emit('upgrade', req, socket, head);
      return;
    }
    let handler;
    try {
      handler = app.upgradeHandler; // NextCustomServer getter (not public API)
    } catch {
      handler = undefined;
    }
    if (typeof handler !== 'function') handler = nextPublicUpgrade ??= app.getUpgradeHandler();
    Promise.resolve(handler(req, socket, head)).catch((err) => {
      say('error', `Next upgrade handler failed: ${(err && err.stack) || err}`);
      socket.destroy();
    });
  }

  let shuttingDown = false;
  let prepared = false; // Next is prepared and the server listens

  function uptimeSeconds() {
    return Number(process.hrtime.bigint() - startedAt) / 1e9;
  }

  function answerHealth(req, res) {
    let body;
    try {
      const engineStats = engine.stats();
      const sio = io ? io.stats() : null;
      let websocket = 0; // raw channel connections (/ws/...)
      for (const channel of Object.values(engineStats.channels || {})) websocket += channel.connections;
      body = JSON.stringify({
        status: shuttingDown ? 'shutting_down' : 'ok',
        uptime: Math.round(uptimeSeconds() * 1000) / 1000,
        // The summary first, then the engine's counters and per-channel rooms.
        connections: {
          websocket,
          socketio: sio ? { sessions: sio.sessions, sockets: sio.sockets } : { sessions: 0, sockets: 0 },
          ...engineStats,
        },
        socketio: sio,
        // In a fleet (sidewire/redis-adapter): the Redis connections' state and counters. A node
        // whose Redis is away still serves its own clients, so the status stays 'ok'.
        adapter: engineStats.adapter || null,
      });
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ status: 'error', error: String((err && err.message) || err) }));
      return;
    }
    res.writeHead(shuttingDown ? 503 : 200, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  // /ready: 200 once Next is prepared (the server listens only then) and the adapter, when
  // there is one, has its Redis connections; 503 before and while shutting down, so that a
  // load balancer sends nothing to a node that cannot serve it yet or any more.
  function answerReady(req, res) {
    const adapter = engine.stats().adapter;
    let status = 'ready';
    if (shuttingDown) status = 'shutting_down';
    else if (!prepared) status = 'starting';
    else if (adapter && adapter.state !== 'ready') status = 'adapter_not_ready';
    const body = JSON.stringify({ status, adapter: adapter ? adapter.state : null });
    res.writeHead(status === 'ready' ? 200 : 503, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function answerMetrics(req, res) {
    if (!mayReadMetrics(req.socket.remoteAddress)) {
      res.writeHead(403, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end('forbidden: /metrics is for the monitoring host (startServer({ metricsAllow }))\n');
      return;
    }
    engine.metrics().then(
      (text) => {
        res.writeHead(200, {
          'content-type': engine.metricsContentType,
          'cache-control': 'no-store',
          'content-length': Buffer.byteLength(text),
        });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err) => {
        res.writeHead(500, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end(String((err && err.message) || err));
      },
    );
  }

  // A client that never finishes its request head (an upgrade included) is answered 408 and
  // dropped after headersTimeout; Node checks once a second.
  const server = http.createServer(
    { headersTimeout, requestTimeout: Math.max(300000, headersTimeout), connectionsCheckingInterval: 1000 },
    (req, res) => {
      if (req.method === 'GET' || req.method === 'HEAD') {
        const pathname = (req.url || '/').split('?', 1)[0];
        if (healthPath !== false && pathname === healthPath) {
          answerHealth(req, res);
          return;
        }
        if (readyPath !== false && pathname === readyPath) {
          answerReady(req, res);
          return;
        }
        if (metricsPath !== false && pathname === metricsPath) {
          answerMetrics(req, res);
          return;
        }
      }
      if (io && io.handleRequest(req, res)) return; // /socket.io/...
      handle(req, res).catch((err) => {
        say('error', `request failed: ${(err && err.stack) || err}`);
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
    },
  );

  // Every TCP connection, so shutdown can destroy what is left after the drain:
  // closeAllConnections() only knows HTTP connections, not upgraded sockets, and an upgrade
  // nobody claimed (Next leaves those open, see above) sits paused forever and would keep
  // server.close() from ever calling back. (Sockets the engine adopted are destroyed on
  // Node's side at once; one held while a channel's authorize() runs is cut too if the drain
  // ends first.)
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  // Malformed or unfinished request heads: Node's own status, and a log line. (A listener here
  // replaces Node's default answer, so it is written out.)
  server.on('clientError', (err, socket) => {
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const text = { 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 400: 'Bad Request' }[status];
    if (err.code !== 'ECONNRESET') {
      say('warn', `client error from ${socket.remoteAddress ?? '?'}: ${err.code || err.message} -> ${status}`, {
        address: socket.remoteAddress,
        reason: err.code || err.message,
      });
    }
    if (socket.writable && !socket.destroyed) {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  });

  // The only 'upgrade' listener on the real server: the engine's. /ws/... and /socket.io/... go
  // to the engine, every other upgrade to Next. (engine.listen() below attaches no second one.)
  engine.attach(server, nextUpgrade);

  let closing = null;

  async function shutdown(why) {
    shuttingDown = true;
    say('info', `${why}, shutting down (drain ${drainMs} ms)`);
    const errors = [];
    const failed = (what, err) => {
      errors.push(err);
      say('error', `${what} failed: ${(err && err.stack) || err}`);
    };

    if (options.beforeShutdown) {
      try {
        await options.beforeShutdown();
      } catch (err) {
        failed('beforeShutdown', err);
      }
    }

    // Stop accepting new connections right away; in-flight HTTP requests and engine
    // connections keep running while the engine drains.
    const serverClosed = new Promise((resolve) => server.close(() => resolve()));

    // The engine closes every connection (channels and Socket.IO sessions alike, without a
    // Socket.IO DISCONNECT packet, so socket.io clients reconnect to the next process); the
    // Socket.IO server hears its sockets go and lets go of the engine.
    try {
      await Promise.all([engine.close({ drainMs }), io ? io.close() : null]);
    } catch (err) {
      failed('engine.close', err);
    }

    server.closeAllConnections?.();
    for (const socket of sockets) socket.destroy();
    let closeTimer;
    await Promise.race([
      serverClosed,
      new Promise((resolve) => {
        closeTimer = setTimeout(resolve, 2000);
      }),
    ]);
    clearTimeout(closeTimer);

    try {
      await app.close?.();
    } catch (err) {
      failed('app.close', err);
    }

    if (options.onShutdown) {
      try {
        await options.onShutdown();
      } catch (err) {
        failed('onShutdown', err);
      }
    }
    removeSignalHandlers();
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'sidewire/next: the shutdown failed');
  }

  /** Graceful shutdown; resolves once done (rejects with what failed). Called twice: the same promise. */
  function close(why = 'close() called') {
    if (!closing) closing = shutdown(why);
    return closing;
  }

  const signalHandlers = new Map();
  function removeSignalHandlers() {
    for (const [signal, fn] of signalHandlers) process.off(signal, fn);
    signalHandlers.clear();
  }
  if (signals) {
    for (const signal of ['SIGINT', 'SIGTERM']) {
      const onSignal = () => {
        if (closing) {
          say('info', `${signal} received again, exiting now`);
          process.exit(0);
        }
        // Watchdog: never hang forever (PM2's kill_timeout would SIGKILL us anyway).
        // Deliberately not unref'd: it also keeps the event loop alive, so a step that
        // awaits something no handle keeps alive cannot silently end the process (Node
        // exits with code 0 when the loop empties) before the shutdown has finished.
        setTimeout(() => {
          say('error', 'shutdown timed out, forcing exit');
          process.exit(1);
        }, drainMs + 10000);
        close(`${signal} received`).then(
          () => {
            say('info', 'bye');
            process.exit(0);
          },
          () => {
            say('info', 'bye');
            process.exit(1);
          },
        );
      };
      signalHandlers.set(signal, onSignal);
      process.on(signal, onSignal);
    }
  }

  // Until the engine listens, a failure undoes what was made.
  async function abandon(err) {
    removeSignalHandlers();
    try {
      if (io) await io.close();
      if (ownEngine) await engine.close({ drainMs: 0 });
      await app.close?.();
    } catch (cleanupErr) {
      say('error', `cleaning up after a failed start: ${(cleanupErr && cleanupErr.stack) || cleanupErr}`);
    }
    throw err;
  }

  try {
    if (options.setup) await options.setup({ io, engine, app, server });
    if (!closing) await app.prepare();
  } catch (err) {
    if (closing) return new Promise(() => {}); // a signal came meanwhile: shutdown() owns the exit
    return abandon(err);
  }

  // A signal may have arrived while Next was preparing: then the shutdown owns the exit.
  if (closing) return new Promise(() => {});

  // The engine listens: its accept thread takes connections off the queue at once, WebSocket
  // upgrades to /ws/ and /socket.io/ never touch this thread, and everything else (pages, API
  // routes, long-polling, Next's dev websocket) reaches `server` as if it had accepted it.
  let listeningPort;
  try {
    listeningPort = await engine.listen(server, { port, host: hostname, backlog, ...(options.tls ? { tls: options.tls } : {}) });
  } catch (err) {
    if (closing) return new Promise(() => {});
    return abandon(err);
  }
  const base = `${shownHost(hostname)}:${listeningPort}`;
  const url = `${options.tls ? 'https' : 'http'}://${base}`;
  prepared = true;
  if (logFormat === 'json') {
    say('info', `sidewire ready (${dev ? 'development' : 'production'})`, {
      url,
      socketio: io ? `${url}${io.path()}/` : undefined,
      channels: [...engine._channels.keys()].map((p) => `${options.tls ? 'wss' : 'ws'}://${base}${p}`),
      health: healthPath !== false ? `${url}${healthPath}` : undefined,
      ready: readyPath !== false ? `${url}${readyPath}` : undefined,
      metrics: metricsPath !== false ? `${url}${metricsPath}` : undefined,
    });
  } else {
    console.log(`> sidewire ready (${dev ? 'development' : 'production'})`);
    console.log(`>   ${url}`);
    if (io) console.log(`>   ${url}${io.path()}/  (Socket.IO)`);
    for (const channelPath of engine._channels.keys()) console.log(`>   ${options.tls ? 'wss' : 'ws'}://${base}${channelPath}  (raw WebSocket channel)`);
    if (healthPath !== false) console.log(`>   ${url}${healthPath}`);
    if (readyPath !== false) console.log(`>   ${url}${readyPath}`);
    if (metricsPath !== false) console.log(`>   ${url}${metricsPath}`);
  }

  return { app, server, engine, io, port: listeningPort, url, close: () => close() };
}

module.exports = { startServer };
