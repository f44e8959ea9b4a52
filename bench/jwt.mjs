#!/usr/bin/env node
// `node bench/jwt.mjs`: what JWT authentication costs the server per connection, sidewire's
// (auth.jwt, verified in the engine) against socket.io's usual middleware (jsonwebtoken in
// io.use), in one run on one machine. For each of the four servers (bench/servers/jwt-server.mjs:
// with and without JWT, of each kind), a fresh process; the client opens CONNECTIONS Socket.IO
// connections over WebSocket (socket.io-client, CONCURRENCY at a time), each with a fresh HS256
// token, then a round of connections with tokens signed by another secret (refused), and reads
// the server's CPU time (GET /cpu) before and after each round. Reported: server CPU µs per
// accepted and per refused connection, and what JWT adds to an accepted one. REPS rounds,
// servers alternated, medians reported. Results go to bench/JWT.md.
//   node bench/jwt.mjs [--connections=N] [--reps=N] [--out=FILE]
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { arg, benchDir, median, startServer as startChild, stopServer } from './child.mjs';

const require = createRequire(import.meta.url);
const { io: ioClient } = require('socket.io-client');
const jsonwebtoken = require('jsonwebtoken');

const CONNECTIONS = Number(arg('connections', 2000));
const REPS = Number(arg('reps', 3));
const CONCURRENCY = 50;
const OUT = arg('out', path.join(benchDir, 'JWT.md'));
const SECRET = 'bench secret';
const KINDS = ['socketio', 'socketio-jwt', 'sidewire', 'sidewire-jwt'];

async function serverCpu(port) {
  const res = await fetch(`http://127.0.0.1:${port}/cpu`);
  return Number(await res.text());
}

// Opens `n` connections, `CONCURRENCY` at a time; each resolves on connect or connect_error.
async function round(port, n, token) {
  let ok = 0;
  let refused = 0;
  const open = [];
  let next = 0;
  const one = () =>
    new Promise((resolve) => {
      const c = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: token() } });
      open.push(c);
      c.once('connect', () => {
        ok += 1;
        resolve();
      });
      c.once('connect_error', () => {
        refused += 1;
        resolve();
      });
    });
  const worker = async () => {
    while (next < n) {
      next += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  for (const c of open) c.disconnect();
  return { ok, refused };
}

const results = Object.fromEntries(KINDS.map((k) => [k, { accepted: [], refused: [] }]));
let sub = 0;
const good = () => jsonwebtoken.sign({ sub: `user-${(sub += 1)}` }, SECRET, { algorithm: 'HS256', expiresIn: 3600 });
const bad = () => jsonwebtoken.sign({ sub: 'mallory' }, 'another secret', { algorithm: 'HS256', expiresIn: 3600 });

for (let rep = 0; rep < REPS; rep += 1) {
  for (const kind of rep % 2 ? [...KINDS].reverse() : KINDS) {
    const server = await startChild('jwt-server.mjs', { KIND: kind, JWT_SECRET: SECRET });
    try {
      await round(server.port, 100, good); // warm-up
      await new Promise((r) => setTimeout(r, 300));
      let before = await serverCpu(server.port);
      const a = await round(server.port, CONNECTIONS, good);
      await new Promise((r) => setTimeout(r, 500)); // the disconnects, counted with the round
      let after = await serverCpu(server.port);
      if (a.ok !== CONNECTIONS) throw new Error(`${kind}: ${a.ok} of ${CONNECTIONS} connected`);
      results[kind].accepted.push((after - before) / CONNECTIONS);
      if (kind.endsWith('-jwt')) {
        before = await serverCpu(server.port);
        const r = await round(server.port, CONNECTIONS, bad);
        await new Promise((res) => setTimeout(res, 500));
        after = await serverCpu(server.port);
        if (r.refused !== CONNECTIONS) throw new Error(`${kind}: ${r.refused} of ${CONNECTIONS} refused`);
        results[kind].refused.push((after - before) / CONNECTIONS);
      }
      process.stderr.write(`[jwt] rep ${rep + 1} ${kind}: ${results[kind].accepted.at(-1).toFixed(1)} µs per connection\n`);
    } finally {
      await stopServer(server);
    }
  }
}

const m = Object.fromEntries(KINDS.map((k) => [k, { accepted: median(results[k].accepted), refused: results[k].refused.length ? median(results[k].refused) : null }]));
const f = (x) => (x == null ? '–' : x.toFixed(1));
const jwtSio = m['socketio-jwt'].accepted - m.socketio.accepted;
const jwtSw = m['sidewire-jwt'].accepted - m.sidewire.accepted;
const lines = [
  '# JWT authentication: server CPU per connection',
  '',
  `\`node bench/jwt.mjs --connections=${CONNECTIONS} --reps=${REPS}\` on ${os.cpus().length} × ${os.cpus()[0].model.trim()}, Node ${process.version},`,
  `${new Date().toISOString().slice(0, 10)}. Server CPU (user + system, all threads) per Socket.IO connection over WebSocket, opened`,
  `${CONCURRENCY} at a time and closed, each with a fresh HS256 token; medians of ${REPS} rounds, servers alternated.`,
  '',
  '| server | accepted: µs per connection | refused (another secret): µs per connection |',
  '|---|---|---|',
  `| socket.io 4.8 | ${f(m.socketio.accepted)} | – |`,
  `| socket.io 4.8 + jsonwebtoken middleware | ${f(m['socketio-jwt'].accepted)} | ${f(m['socketio-jwt'].refused)} |`,
  `| sidewire | ${f(m.sidewire.accepted)} | – |`,
  `| sidewire + auth.jwt | ${f(m['sidewire-jwt'].accepted)} | ${f(m['sidewire-jwt'].refused)} |`,
  '',
  `What JWT adds to an accepted connection: socket.io ${f(jwtSio)} µs, sidewire ${f(jwtSw)} µs. A refused`,
  `connection costs socket.io ${f(m['socketio-jwt'].refused)} µs and sidewire ${f(m['sidewire-jwt'].refused)} µs (${f(m['socketio-jwt'].refused / m['sidewire-jwt'].refused)}×):`,
  'sidewire answers it in the engine, on an I/O thread, without a turn of the main thread (its',
  'figure includes the info log line each refusal writes). The per-connection figures include the',
  'handshake and the close, so they compare whole connections; the JWT rows minus the rows above',
  'them are what authentication adds.',
  '',
];
writeFileSync(OUT, lines.join('\n'));
process.stdout.write(lines.join('\n'));
