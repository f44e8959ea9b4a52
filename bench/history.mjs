#!/usr/bin/env node
// `node bench/history.mjs`: what a raw channel's room history costs the server, sidewire's
// (history: kept and replayed in the engine) against the same relay on ws 8 with the history such
// apps write (an array per room, replayed on connection), in one run on one machine. For each
// server of bench/servers/history-server.mjs, a fresh process per round:
//   relay:  RECEIVERS clients and one sender in a room; the sender sends MESSAGES messages of
//           SIZE bytes and every receiver gets all of them. Server CPU µs per delivery.
//   replay: then JOINERS clients join the room one after the other, each until it has every kept
//           message. Server CPU µs per replayed message.
// REPS rounds, servers alternated, medians reported. Results go to bench/HISTORY.md.
//   node bench/history.mjs [--receivers=N] [--messages=N] [--size=N] [--joiners=N] [--reps=N] [--out=FILE]
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { arg, benchDir, median, startServer as startChild, stopServer } from './child.mjs';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');

const RECEIVERS = Number(arg('receivers', 20));
const MESSAGES = Number(arg('messages', 5000));
const SIZE = Number(arg('size', 100));
const JOINERS = Number(arg('joiners', 10));
const REPS = Number(arg('reps', 3));
const OUT = arg('out', path.join(benchDir, 'HISTORY.md'));
const KINDS = ['ws', 'ws-history', 'sidewire', 'sidewire-history'];

const cpu = async (port) => Number(await (await fetch(`http://127.0.0.1:${port}/cpu`)).text());

// A client that counts what it receives; resolves `until(n)` once it has n.
function client(port, room) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/bench?room=${room}`, { perMessageDeflate: false });
    ws.count = 0;
    let want = Infinity;
    let done = null;
    ws.until = (n) => new Promise((r) => {
      want = n;
      done = r;
      if (ws.count >= want) r();
    });
    ws.on('message', () => {
      ws.count += 1;
      if (ws.count >= want && done) done();
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function send(ws, n, payload) {
  for (let i = 0; i < n; i += 1) {
    ws.send(payload);
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
}

const results = {};
for (const k of KINDS) results[k] = { relay: [], replay: [] };
const payload = Buffer.alloc(SIZE, 7);

for (let rep = 0; rep < REPS; rep += 1) {
  for (const kind of rep % 2 ? [...KINDS].reverse() : KINDS) {
    const server = await startChild('history-server.mjs', { KIND: kind, SIDEWIRE_LOG_LEVEL: 'warn' });
    const all = [];
    try {
      const receivers = await Promise.all(Array.from({ length: RECEIVERS }, () => client(server.port, 'warm')));
      const sender = await client(server.port, 'warm');
      all.push(...receivers, sender);
      await send(sender, 200, payload); // warm-up, in another room
      await Promise.all(receivers.map((r) => r.until(200)));
      for (const ws of all) ws.close();
      all.length = 0;

      const room = `r${rep}`;
      const members = await Promise.all(Array.from({ length: RECEIVERS }, () => client(server.port, room)));
      const from = await client(server.port, room);
      all.push(...members, from);
      await new Promise((r) => setTimeout(r, 200));
      const before = await cpu(server.port);
      await send(from, MESSAGES, payload);
      await Promise.all(members.map((r) => r.until(MESSAGES)));
      const afterRelay = await cpu(server.port);
      results[kind].relay.push((afterRelay - before) / (MESSAGES * RECEIVERS));

      if (kind.endsWith('-history')) {
        const start = await cpu(server.port);
        for (let j = 0; j < JOINERS; j += 1) {
          const late = await client(server.port, room);
          all.push(late);
          await late.until(MESSAGES);
        }
        const end = await cpu(server.port);
        results[kind].replay.push((end - start) / (MESSAGES * JOINERS));
      }
      process.stderr.write(`[history] rep ${rep + 1} ${kind}: relay ${results[kind].relay.at(-1).toFixed(2)} µs per delivery` +
        (kind.endsWith('-history') ? `, replay ${results[kind].replay.at(-1).toFixed(3)} µs per message\n` : '\n'));
    } finally {
      for (const ws of all) ws.terminate();
      await stopServer(server);
    }
  }
}

const m = Object.fromEntries(KINDS.map((k) => [k, { relay: median(results[k].relay), replay: results[k].replay.length ? median(results[k].replay) : null }]));
const f = (x, d = 2) => (x == null ? '–' : x.toFixed(d));
const lines = [
  '# Room history: server CPU per relayed and per replayed message',
  '',
  `\`node bench/history.mjs --receivers=${RECEIVERS} --messages=${MESSAGES} --size=${SIZE} --joiners=${JOINERS} --reps=${REPS}\` on ${os.cpus().length} × ${os.cpus()[0].model.trim()},`,
  `Node ${process.version}, ${new Date().toISOString().slice(0, 10)}. A raw WebSocket relay: one sender sends ${MESSAGES} binary messages of ${SIZE} bytes to a room`,
  `of ${RECEIVERS} receivers (every receiver gets every message); then ${JOINERS} clients join one after the other and each waits`,
  `for the ${MESSAGES} kept messages. Server CPU (user + system, all threads), medians of ${REPS} rounds, servers alternated.`,
  '',
  '| server | relay: µs per delivery | replay to a late joiner: µs per message |',
  '|---|---|---|',
  `| ws 8 | ${f(m.ws.relay)} | – |`,
  `| ws 8 + an array per room, replayed on connection | ${f(m['ws-history'].relay)} | ${f(m['ws-history'].replay, 3)} |`,
  `| sidewire \`relay: true\` | ${f(m.sidewire.relay)} | – |`,
  `| sidewire \`relay: true, history: {...}\` | ${f(m['sidewire-history'].relay)} | ${f(m['sidewire-history'].replay, 3)} |`,
  '',
  `Keeping the history adds ${f(m['sidewire-history'].relay - m.sidewire.relay)} µs per delivery to sidewire's relay and`,
  `${f(m['ws-history'].relay - m.ws.relay)} µs to ws's. Replaying it costs sidewire ${f(m['sidewire-history'].replay, 3)} µs per message and ws`,
  `${f(m['ws-history'].replay, 3)} µs (${f(m['ws-history'].replay / m['sidewire-history'].replay, 1)}×). sidewire with history against ws with history:`,
  `${f(m['ws-history'].relay / m['sidewire-history'].relay, 1)}× less CPU per delivery.`,
  '',
];
writeFileSync(OUT, lines.join('\n'));
process.stdout.write(lines.join('\n'));
