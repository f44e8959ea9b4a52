// Benchmark server for bench/jwt.mjs: node:http + a Socket.IO server that authenticates every
// connection, or not. KIND (env): sidewire | sidewire-jwt (auth.jwt, verified in the engine) |
// socketio | socketio-jwt (socket.io 4.8 with the middleware such apps write: jsonwebtoken in
// io.use, claims into socket.data.user, the user's room joined). GET /cpu answers this
// process's CPU time so far in µs (user + system, every thread: the engine's I/O threads too).
// Run: KIND=sidewire-jwt JWT_SECRET=... node bench/servers/jwt-server.mjs
import { createRequire } from 'node:module';
import { closeHttp, createHttpServer, listen, listenEngine, onShutdown } from './common.mjs';

const require = createRequire(import.meta.url);
const kind = process.env.KIND || 'sidewire';
const secret = process.env.JWT_SECRET || 'bench secret';

function cpu(req, res) {
  if ((req.url || '').split('?', 1)[0] !== '/cpu') return false;
  const u = process.cpuUsage();
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
  res.end(String(u.user + u.system));
  return true;
}
const server = createHttpServer((req, res) => {
  if (cpu(req, res)) return;
  res.writeHead(404);
  res.end();
});

let io;
if (kind.startsWith('sidewire')) {
  const { Server } = require('../../js/index.js');
  io = new Server(server, kind === 'sidewire-jwt' ? { auth: { jwt: { secret, algorithms: ['HS256'] } } } : {});
} else {
  const { Server } = require('socket.io');
  const jsonwebtoken = require('jsonwebtoken');
  io = new Server(server);
  if (kind === 'socketio-jwt') {
    io.use((socket, next) => {
      const token = socket.handshake.auth && socket.handshake.auth.token;
      const refuse = (reason) => next(Object.assign(new Error('unauthorized'), { data: { reason } }));
      if (!token) return refuse('missing');
      try {
        socket.data.user = jsonwebtoken.verify(token, secret, { algorithms: ['HS256'] });
      } catch (err) {
        return refuse(err.name === 'TokenExpiredError' ? 'expired' : 'invalid');
      }
      socket.join(`user:${socket.data.user.sub}`);
      return next();
    });
  }
}
io.on('connection', () => {});

onShutdown(async () => {
  await Promise.race([new Promise((resolve) => io.close(() => resolve())), new Promise((r) => setTimeout(r, 3000))]);
  await closeHttp(server);
});
if (kind.startsWith('sidewire')) await listenEngine(io.sidewire, server);
else await listen(server);
