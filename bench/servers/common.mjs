// Shared plumbing of the benchmark servers (bench/servers/*.mjs): the /gc endpoint, listening on
// 127.0.0.1 with `READY <port>` on stdout, and a clean exit on SIGTERM/SIGINT. The app logic
// (join / publish / relay) lives in each server file and is the same across the pairs.
//
//   PORT           (default 0: pick a free port; the chosen one is printed)
//   BENCH_BACKLOG  (default 4096) listen backlog, the same for every server so that a connect
//                  storm measures the server, not SYN retransmits (Node's default is 511)
import fs from 'node:fs';
import http from 'node:http';
import v8 from 'node:v8';

export const HOST = '127.0.0.1';

export function envInt(name, fallback) {
  const n = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

/**
 * Answers GET /gc (global.gc() twice, then 200 "ok"): the loadgen calls it before reading RSS.
 * Returns true when it answered.
 */
let snapshotCount = 0;
export function handleGc(req, res) {
  const pathname = (req.url || '/').split('?', 1)[0];
  if (pathname !== '/gc') return false;
  if (typeof global.gc !== 'function') {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('run node with --expose-gc\n');
    return true;
  }
  global.gc();
  global.gc();
  if (process.env.BENCH_MEM_LOG) logMemory();
  const snapshots = process.env.BENCH_HEAP_SNAPSHOT;
  if (snapshots) {
    // A directory: snapshot-1.heapsnapshot, -2, ... there (else in the working directory).
    const file = snapshots === '1' ? undefined : `${snapshots}/snapshot-${++snapshotCount}.heapsnapshot`;
    process.stderr.write(`[mem] snapshot ${v8.writeHeapSnapshot(file)}\n`);
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2', 'cache-control': 'no-store' });
  res.end('ok');
  return true;
}

let memoryProbe = null;
/** Registers a function returning extra memory figures (sidewire: the engine's malloc stats). */
export function setMemoryProbe(fn) {
  memoryProbe = fn;
}

/** BENCH_MEM_LOG=1: one stderr line per /gc with where the memory is (RSS, V8 spaces, malloc). */
function logMemory() {
  const kb = (n) => Math.round(n / 1024);
  const m = process.memoryUsage();
  const rss = fs.readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\s+(\d+)/)[1];
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((sp) => [sp.space_name, kb(sp.space_size)]));
  const extra = memoryProbe ? memoryProbe() : {};
  process.stderr.write(`[mem] ${JSON.stringify({ rss_kb: Number(rss), heapTotal_kb: kb(m.heapTotal), heapUsed_kb: kb(m.heapUsed), external_kb: kb(m.external), arrayBuffers_kb: kb(m.arrayBuffers), spaces, ...extra })}\n`);
}

let statsProbe = null;
/** Registers a function returning the engine's counters, answered as JSON on GET /stats. */
export function setStatsProbe(fn) {
  statsProbe = fn;
}

/** GET /stats answers a sidewire engine's counters (sendmsg calls, deliveries, allocator figures). */
export function probeEngine(engine) {
  setStatsProbe(() => {
    const st = engine.stats();
    return { writes: st.writes, messagesDelivered: st.messagesDelivered, connections: st.connections, mallocInUse: st.mallocInUse, mallocHeld: st.mallocHeld };
  });
}

function handleStats(req, res) {
  if ((req.url || '/').split('?', 1)[0] !== '/stats' || !statsProbe) return false;
  const body = JSON.stringify(statsProbe());
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
  return true;
}

/** An http.Server whose handler answers /gc (and /stats) and hands everything else to `next` (or 404s). */
export function createHttpServer(next) {
  return http.createServer((req, res) => {
    if (handleGc(req, res) || handleStats(req, res)) return;
    if (next) return next(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
}

/** Listens on 127.0.0.1:PORT and prints `READY <port>`. */
export async function listen(server, port = envInt('PORT', 0)) {
  const backlog = envInt('BENCH_BACKLOG', 4096);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, backlog, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = server.address().port;
  process.stdout.write(`READY ${actual}\n`);
  return actual;
}

/**
 * sidewire's way to listen (as server.mjs does): the engine accepts on 127.0.0.1:PORT and hands
 * Node what is not its own. Prints `READY <port>`.
 */
export async function listenEngine(engine, server, port = envInt('PORT', 0)) {
  const actual = await engine.listen(server, { host: HOST, port, backlog: envInt('BENCH_BACKLOG', 4096) });
  process.stdout.write(`READY ${actual}\n`);
  return actual;
}

/**
 * A raw-channel server on a sidewire Engine: node:http with the engine attached, GET /stats, a
 * clean shutdown, and the engine listening (it accepts; Node gets what is not a /ws/ upgrade).
 */
export async function serveEngine(engine) {
  const server = createHttpServer();
  engine.attach(server);
  probeEngine(engine);
  onShutdown(async () => {
    server.close();
    await engine.close({ drainMs: 500 });
    await closeHttp(server);
  });
  return listenEngine(engine, server);
}

/**
 * On SIGTERM/SIGINT runs `close` (bounded by a watchdog) and exits 0. A second signal exits
 * at once.
 */
export function onShutdown(close, { timeoutMs = 4000 } = {}) {
  let stopping = false;
  const handler = (signal) => {
    if (stopping) process.exit(0);
    stopping = true;
    const watchdog = setTimeout(() => {
      process.stderr.write(`[bench-server] ${signal}: close timed out, exiting\n`);
      process.exit(0);
    }, timeoutMs);
    Promise.resolve()
      .then(close)
      .catch((err) => process.stderr.write(`[bench-server] close failed: ${err?.stack || err}\n`))
      .finally(() => {
        clearTimeout(watchdog);
        process.exit(0);
      });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** server.close() that also drops keep-alive and upgraded sockets node:http still tracks. */
export function closeHttp(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/**
 * The Socket.IO app every sio scenario server runs (sidewire's Server and socket.io's alike):
 *   'join'    (room, ack?) → socket.join(room), then ack()
 *   'publish' (room, payload) → io.to(room).emit('msg', payload)
 */
export function installSioApp(io) {
  io.on('connection', (socket) => {
    socket.on('join', (room, ack) => {
      socket.join(room);
      if (typeof ack === 'function') ack();
    });
    socket.on('publish', (room, payload) => {
      io.to(room).emit('msg', payload);
    });
  });
}
