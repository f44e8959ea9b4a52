// Benchmark server for bench/limits.mjs: node:http + a Socket.IO server whose 'chat' event is
// rate-limited per socket, or not. KIND (env): sidewire | sidewire-limits (limits.events, in the
// engine) | socketio | socketio-limits (socket.io 4.8 with the middleware such apps write: a token
// bucket per socket and event in socket.use, the client told with an 'error' event once per
// burst). POINTS and PER_SECONDS (env) set the rate. 'chat' is counted; 'done' (never limited) is
// acknowledged, so a client knows every event before it was handled. GET /cpu answers this
// process's CPU time so far in µs (user + system, every thread: the engine's I/O threads too),
// GET /count the 'chat' events handlers saw.
import { createRequire } from 'node:module';
import { closeHttp, createHttpServer, listen, listenEngine, onShutdown } from './common.mjs';

const require = createRequire(import.meta.url);
const kind = process.env.KIND || 'sidewire';
const points = Number(process.env.POINTS || 30);
const perSeconds = Number(process.env.PER_SECONDS || 60);
let handled = 0;

const server = createHttpServer((req, res) => {
  const p = (req.url || '').split('?', 1)[0];
  if (p === '/cpu' || p === '/count') {
    const u = process.cpuUsage();
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end(String(p === '/cpu' ? u.user + u.system : handled));
    return;
  }
  res.writeHead(404);
  res.end();
});

let io;
if (kind.startsWith('sidewire')) {
  const { Server } = require('../../js/index.js');
  io = new Server(server, kind === 'sidewire-limits' ? { limits: { events: { chat: { points, perSeconds } } } } : {});
} else {
  const { Server } = require('socket.io');
  io = new Server(server);
  if (kind === 'socketio-limits') {
    io.on('connection', (socket) => {
      const buckets = new Map();
      socket.use(([event], next) => {
        if (event !== 'chat') return next();
        const now = Date.now();
        const b = buckets.get(event) || { tokens: points, at: now, told: false };
        buckets.set(event, b);
        b.tokens = Math.min(points, b.tokens + ((now - b.at) * points) / (perSeconds * 1000));
        b.at = now;
        if (b.tokens >= 1) {
          b.tokens -= 1;
          b.told = false;
          return next();
        }
        if (!b.told) {
          b.told = true;
          socket.emit('error', { message: 'rate limited', data: { event } });
        }
        return undefined;
      });
    });
  }
}
io.on('connection', (socket) => {
  socket.on('chat', () => {
    handled += 1;
  });
  socket.on('done', (ack) => ack(handled));
});

onShutdown(async () => {
  await Promise.race([new Promise((resolve) => io.close(() => resolve())), new Promise((r) => setTimeout(r, 3000))]);
  await closeHttp(server);
});
if (kind.startsWith('sidewire')) await listenEngine(io.sidewire, server);
else await listen(server);
