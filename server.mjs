// sidewire custom Next.js server: Next.js pages, sidewire WebSocket channels and the
// Socket.IO server share one HTTP port.
//
//   PORT                (default 3000)
//   HOSTNAME            (default localhost)
//   NODE_ENV=production → Next runs the prebuilt app (`next build examples/ticketing`)
//   SIDEWIRE_BACKLOG    (default 4096) the listen backlog
//   SIDEWIRE_DRAIN_MS   (default 5000) how long engine.close() drains on shutdown
//   SIDEWIRE_HEADERS_TIMEOUT_MS (default 10000) a request head (an upgrade too) must arrive within this
//   SIDEWIRE_LOG_LEVEL  (default info)
//   SIDEWIRE_DATA_DIR   (default examples/ticketing/data) the ticket desk's SQLite file and uploads
//   SIDEWIRE_MAX_UPLOAD_BYTES (default 5 MiB) the ticket desk's attachment limit
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
//   that instead of on the real server, and our single 'upgrade' listener decides who
//   gets each socket: sidewire first, and Next only for sockets sidewire declined.
//   Before Next has attached its listener (no HTTP request served yet, e.g. an HMR
//   client reconnecting to a freshly restarted dev server) we use the same handler via
//   app.upgradeHandler, and fall back to app.getUpgradeHandler() if that getter is gone.
//
// Socket.IO (sidewire's socket.io-compatible Server, on the same engine) is not attached to
// the http server: io.attach() would wrap the 'request' listeners and add a second 'upgrade'
// listener. Instead the request handler gives /socket.io/ requests (Engine.IO long-polling,
// CORS preflights, the client bundle) to io.handleRequest() before Next sees them, and the one
// 'upgrade' listener's engine.handleUpgrade() takes WebSocket upgrades under /socket.io/ as well
// as /ws/.
//
// The engine listens on the port (engine.listen), not Node: its accept thread empties the
// accept queue at once, the I/O thread peeks at each request head and answers the WebSocket
// upgrades it can answer alone, and hands every other connection to `server` untouched (Node
// reads the request from the first byte). Upgrades that JS must see first (a channel with an
// authorize hook, a Socket.IO upgrade with an Origin while CORS is configured) go to Node too,
// and reach the 'upgrade' listener below. API routes reach the server with getServer() (e.g. getServer().to(room).emit(...)).
//
// The app is the ticket desk in examples/ticketing: its Socket.IO handlers (rooms, presence)
// are in examples/ticketing/realtime.mjs, its database in examples/ticketing/lib/db.js (opened
// here at startup, so a broken data directory fails the start, and closed on shutdown).
import http from 'node:http';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import next from 'next';
import { attachTicketing } from './examples/ticketing/realtime.mjs';

const require = createRequire(import.meta.url);
const { Engine, Server } = require('./js/index.js');

const repoRoot = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.join(repoRoot, 'examples', 'ticketing');

// The ticket desk's data directory; route handlers read the same variable.
process.env.SIDEWIRE_DATA_DIR = path.resolve(process.env.SIDEWIRE_DATA_DIR || path.join(appDir, 'data'));
const ticketingDb = require('./examples/ticketing/lib/db.js');

const port = Number.parseInt(process.env.PORT || '3000', 10);
const hostname = process.env.HOSTNAME || 'localhost';
// The listen backlog (SIDEWIRE_BACKLOG, default 4096; the kernel caps it at net.core.somaxconn).
const listenBacklog = Number.parseInt(process.env.SIDEWIRE_BACKLOG || '4096', 10) || 4096;
const dev = process.env.NODE_ENV !== 'production';
const drainMs = (() => {
  const n = Number.parseInt(process.env.SIDEWIRE_DRAIN_MS ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : 5000;
})();
const startedAt = process.hrtime.bigint();

// Receives Next's lazily attached 'upgrade' listener (see comment at the top).
const nextUpgradeBus = new EventEmitter();

const app = next({ dev, dir: appDir, hostname, port, httpServer: nextUpgradeBus });
const handle = app.getRequestHandler();

const engine = new Engine({ logLevel: process.env.SIDEWIRE_LOG_LEVEL || 'info' });
engine.channel('/ws/fabric', { roomQuery: 'documentId', relay: true });

// The process's Socket.IO server (getServer() in API routes). A namespace nobody listens to
// runs entirely in the engine; the ticket desk listens on the main namespace. Connection state
// recovery: a page whose connection drops for a moment (a network blip, a laptop lid) comes
// back with its rooms and gets every event it missed, without refetching.
const io = new Server({ engine, connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000 } });
attachTicketing(io);

let nextPublicUpgrade; // app.getUpgradeHandler(): a no-op in Next 16, kept as last resort

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
    console.error('[sidewire] Next upgrade handler failed:', err);
    socket.destroy();
  });
}

function uptimeSeconds() {
  return Number(process.hrtime.bigint() - startedAt) / 1e9;
}

// A client that never finishes its request head (an upgrade included) is answered 408 and
// dropped after this long; Node checks once a second.
const headersTimeout = (() => {
  const n = Number.parseInt(process.env.SIDEWIRE_HEADERS_TIMEOUT_MS ?? '', 10);
  return Number.isFinite(n) && n > 0 ? n : 10000;
})();

const server = http.createServer({ headersTimeout, requestTimeout: Math.max(300000, headersTimeout), connectionsCheckingInterval: 1000 }, (req, res) => {
  const pathname = (req.url || '/').split('?', 1)[0];
  if (pathname === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
    let body;
    try {
      const engineStats = engine.stats();
      const sio = io.stats();
      let websocket = 0; // raw channel connections (/ws/...)
      for (const channel of Object.values(engineStats.channels || {})) websocket += channel.connections;
      body = JSON.stringify({
        status: shuttingDown ? 'shutting_down' : 'ok',
        uptime: Math.round(uptimeSeconds() * 1000) / 1000,
        // The summary first, then the engine's counters and per-channel rooms as before.
        connections: { websocket, socketio: { sessions: sio.sessions, sockets: sio.sockets }, ...engineStats },
        socketio: sio,
      });
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ status: 'error', error: String(err?.message || err) }));
      return;
    }
    res.writeHead(shuttingDown ? 503 : 200, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  if (io.handleRequest(req, res)) return; // /socket.io/...
  handle(req, res).catch((err) => {
    console.error('[sidewire] request failed:', err);
    if (!res.headersSent) res.statusCode = 500;
    res.end();
  });
});

// Every TCP connection, so shutdown can destroy what is left after the drain
// (except sockets the engine took: those are the engine's to close):
// closeAllConnections() only knows HTTP connections, not upgraded sockets, and an
// upgrade nobody claimed (Next leaves those open, see above) sits paused forever and
// would keep server.close() from ever calling back.
const sockets = new Set();
const engineSockets = new WeakSet();
server.on('connection', (socket) => {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
});

// Malformed or unfinished request heads: Node's own status, and a log line. (A listener here
// replaces Node's default answer, so it is written out.)
server.on('clientError', (err, socket) => {
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408
    : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const text = { 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 400: 'Bad Request' }[status];
  if (err.code !== 'ECONNRESET') {
    console.warn(`[sidewire] client error from ${socket.remoteAddress ?? '?'}: ${err.code || err.message} -> ${status}`);
  }
  if (socket.writable && !socket.destroyed) {
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
  socket.destroy();
});

// The only 'upgrade' listener on the real server: /ws/... and /socket.io/... go to the engine.
server.on('upgrade', (req, socket, head) => {
  let taken = false;
  try {
    taken = engine.handleUpgrade(req, socket, head);
  } catch (err) {
    console.error('[sidewire] engine.handleUpgrade failed:', err);
    socket.destroy();
    return;
  }
  if (taken) {
    engineSockets.add(socket); // the engine owns it now; shutdown leaves it alone
    return;
  }
  nextUpgrade(req, socket, head);
});

let shuttingDown = false;

async function shutdown(signal) {
  if (shuttingDown) {
    console.log(`[sidewire] ${signal} received again, exiting now`);
    process.exit(0);
  }
  shuttingDown = true;
  console.log(`[sidewire] ${signal} received, shutting down (drain ${drainMs} ms)`);
  let failed = false;

  // Watchdog: never hang forever (PM2's kill_timeout would SIGKILL us anyway).
  // Deliberately not unref'd: it also keeps the event loop alive, so a step that
  // awaits something no handle keeps alive cannot silently end the process (Node
  // exits with code 0 when the loop empties) before the shutdown has finished.
  setTimeout(() => {
    console.error('[sidewire] shutdown timed out, forcing exit');
    process.exit(1);
  }, drainMs + 10000);

  // Stop accepting new connections right away; in-flight HTTP requests and
  // engine connections keep running while the engine drains.
  const serverClosed = new Promise((resolve) => server.close(() => resolve()));

  // The engine closes every connection (channels and Socket.IO sessions alike, without a
  // Socket.IO DISCONNECT packet, so socket.io clients reconnect to the next process); the
  // Socket.IO server hears its sockets go and lets go of the engine.
  try {
    await Promise.all([engine.close({ drainMs }), io.close()]);
  } catch (err) {
    failed = true;
    console.error('[sidewire] engine.close failed:', err);
  }

  server.closeAllConnections?.();
  for (const socket of sockets) if (!engineSockets.has(socket)) socket.destroy();
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
    failed = true;
    console.error('[sidewire] app.close failed:', err);
  }

  try {
    ticketingDb.closeDb();
  } catch (err) {
    failed = true;
    console.error('[sidewire] closing the ticket database failed:', err);
  }

  console.log('[sidewire] bye');
  process.exit(failed ? 1 : 0);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    shutdown(signal).catch((err) => {
      console.error('[sidewire] shutdown failed:', err);
      process.exit(1);
    });
  });
}

ticketingDb.openDb(); // creates the data directory and the schema
await app.prepare();

// A signal may have arrived while Next was preparing: then shutdown() owns the exit.
if (!shuttingDown) {
  // The engine listens: its accept thread takes connections off the queue at once, WebSocket
  // upgrades to /ws/ and /socket.io/ never touch this thread, and everything else (pages, API
  // routes, long-polling, Next's dev websocket) reaches `server` as if it had accepted it.
  const shownPort = await engine.listen(server, { port, host: hostname, backlog: listenBacklog });
  const shownHost = hostname.includes(':') ? `[${hostname}]` : hostname;
  console.log(`> sidewire ready (${dev ? 'development' : 'production'})`);
  console.log(`>   http://${shownHost}:${shownPort}  (ticket desk; /fabric: the channel demo)`);
  console.log(`>   http://${shownHost}:${shownPort}${io.path()}/  (Socket.IO)`);
  console.log(`>   ws://${shownHost}:${shownPort}/ws/fabric  (raw WebSocket channel)`);
  console.log(`>   http://${shownHost}:${shownPort}/health`);
  console.log(`>   data: ${ticketingDb.dataDir()}`);
}
