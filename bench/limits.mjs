#!/usr/bin/env node
// `node bench/limits.mjs`: what a per-event rate limit costs the server per event, sidewire's
// (limits.events, checked in the engine) against socket.io's usual middleware (a token bucket in
// socket.use), in one run on one machine. For each server of bench/servers/limits-server.mjs
// (with and without the limit, of each kind), a fresh process per rate: CLIENTS socket.io-client
// connections over WebSocket each emit EVENTS 'chat' events, then a 'done' with an ack (so every
// event was handled or dropped), and the server's CPU time (GET /cpu) is read before and after.
// Two rates: one every event passes (the check's own cost) and one nearly every event is over
// (30 per minute: what a flood costs). Reported: server CPU µs per event. REPS rounds, servers
// alternated, medians reported. Results go to bench/LIMITS.md.
//   node bench/limits.mjs [--clients=N] [--events=N] [--reps=N] [--out=FILE]
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { arg, benchDir, median, startServer as startChild, stopServer } from './child.mjs';

const require = createRequire(import.meta.url);
const { io: ioClient } = require('socket.io-client');

const CLIENTS = Number(arg('clients', 20));
const EVENTS = Number(arg('events', 2000));
const REPS = Number(arg('reps', 3));
const OUT = arg('out', path.join(benchDir, 'LIMITS.md'));
const KINDS = ['socketio', 'socketio-limits', 'sidewire', 'sidewire-limits'];
const RATES = {
  passing: { POINTS: '1000000', PER_SECONDS: '1' },
  flood: { POINTS: '30', PER_SECONDS: '60' },
};

const get = async (port, p) => Number(await (await fetch(`http://127.0.0.1:${port}${p}`)).text());

async function connect(port) {
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, () => new Promise((resolve, reject) => {
      const c = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true });
      c.on('error', () => {}); // told it is throttled
      c.once('connect', () => resolve(c));
      c.once('connect_error', reject);
    })),
  );
  return clients;
}

// Every client emits `n` events, in slices that let the socket drain, then 'done'.
async function burst(clients, n) {
  await Promise.all(clients.map(async (c) => {
    for (let i = 0; i < n; i += 1) {
      c.emit('chat', i);
      if (i % 200 === 199) await new Promise((r) => setImmediate(r));
    }
    await c.timeout(60000).emitWithAck('done');
  }));
}

const results = {};
for (const rate of Object.keys(RATES)) for (const k of KINDS) results[`${k}/${rate}`] = [];

for (let rep = 0; rep < REPS; rep += 1) {
  for (const rate of Object.keys(RATES)) {
    for (const kind of rep % 2 ? [...KINDS].reverse() : KINDS) {
      const server = await startChild('limits-server.mjs', { KIND: kind, ...RATES[rate], SIDEWIRE_LOG_LEVEL: 'warn' });
      try {
        const clients = await connect(server.port);
        await burst(clients, 100); // warm-up
        await new Promise((r) => setTimeout(r, 300));
        const before = await get(server.port, '/cpu');
        const seenBefore = await get(server.port, '/count');
        await burst(clients, EVENTS);
        const after = await get(server.port, '/cpu');
        const seen = (await get(server.port, '/count')) - seenBefore;
        for (const c of clients) c.disconnect();
        const total = CLIENTS * EVENTS;
        if (rate === 'passing' && seen !== total) throw new Error(`${kind}: ${seen} of ${total} events handled`);
        if (rate === 'flood' && kind.endsWith('-limits') && seen > CLIENTS * 2) throw new Error(`${kind}: ${seen} events passed a flood`);
        results[`${kind}/${rate}`].push((after - before) / total);
        process.stderr.write(`[limits] rep ${rep + 1} ${rate} ${kind}: ${results[`${kind}/${rate}`].at(-1).toFixed(2)} µs per event (${seen} handled)\n`);
      } finally {
        await stopServer(server);
      }
    }
  }
}

const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const f = (x) => (x == null ? '–' : x.toFixed(2));
const row = (label, kind) => `| ${label} | ${f(m[`${kind}/passing`])} | ${f(m[`${kind}/flood`])} |`;
const lines = [
  '# Rate limits: server CPU per event',
  '',
  `\`node bench/limits.mjs --clients=${CLIENTS} --events=${EVENTS} --reps=${REPS}\` on ${os.cpus().length} × ${os.cpus()[0].model.trim()}, Node ${process.version},`,
  `${new Date().toISOString().slice(0, 10)}. Server CPU (user + system, all threads) per Socket.IO event: ${CLIENTS} clients over WebSocket`,
  `each emit ${EVENTS} 'chat' events; medians of ${REPS} rounds, servers alternated. "passing": a rate every event is under`,
  '(what the check costs); "flood": 30 per minute, so nearly every event is over it (what a flooding client costs).',
  '',
  '| server | passing: µs per event | flood: µs per event |',
  '|---|---|---|',
  row('socket.io 4.8', 'socketio'),
  row('socket.io 4.8 + token bucket in socket.use', 'socketio-limits'),
  row('sidewire', 'sidewire'),
  row('sidewire + limits.events', 'sidewire-limits'),
  '',
  `What the limit adds to a passing event: socket.io ${f(m['socketio-limits/passing'] - m['socketio/passing'])} µs, sidewire ${f(m['sidewire-limits/passing'] - m['sidewire/passing'])} µs.`,
  `A flooded event costs socket.io ${f(m['socketio-limits/flood'])} µs and sidewire ${f(m['sidewire-limits/flood'])} µs (${f(m['socketio-limits/flood'] / m['sidewire-limits/flood'])}×): sidewire drops it`,
  'on the I/O thread, and it never crosses into JS. The rows without a limit are the same events',
  'handled by a handler (the flood column: every event reaches it).',
  '',
];
writeFileSync(OUT, lines.join('\n'));
process.stdout.write(lines.join('\n'));
