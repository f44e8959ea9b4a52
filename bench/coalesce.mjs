#!/usr/bin/env node
// `node bench/coalesce.mjs`: what coalesced writes (the engine's writeDelayMs) buy under fan-out.
// For each server (sidewire's raw channel with native relay, sidewire's Socket.IO), each delay
// (0, 0.5, 1, 2, 5 ms: SIDEWIRE_WRITE_DELAY_MS) and each load (16, 64, 256 messages in flight), a
// fresh server process and one run of the load generator (build/sidewire_loadgen, --scenario
// fanout: RECEIVERS receivers in one room, 100-byte payloads) report the server's CPU per
// delivery, the engine's sendmsg calls per delivery (GET /stats) and the latency p50/p99.
// REPS rounds (servers and delays alternated); medians per cell. Results go to bench/COALESCE.md
// and bench/coalesce.json.
//   node bench/coalesce.mjs [--receivers=N] [--duration=S] [--reps=N] [--delays=0,1] [--windows=16]
//                           [--kinds=sidewire-ws,sidewire-sio] [--threads=N] [--out=FILE]
// Target (issue 14): at 1 ms, CPU per delivery at least 2× lower than with 0 at the same load,
// and p99 at most 1 ms higher.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, benchDir, median, startServer, stopServer } from './child.mjs';

const RECEIVERS = Number(arg('receivers', 1000));
const DURATION = Number(arg('duration', 5));
const REPS = Number(arg('reps', 1));
const DELAYS = String(arg('delays', '0,0.5,1,2,5')).split(',').map(Number);
const WINDOWS = String(arg('windows', '16,64,256')).split(',').map(Number);
// Paced loads too: RATE messages/s (open loop, at most 256 in flight), the way an app's traffic
// arrives, message by message, rather than in the bursts a saturating window makes.
const RATES = String(arg('rates', '1000,4000')).split(',').filter(Boolean).map(Number);
const KINDS = String(arg('kinds', 'sidewire-ws,sidewire-sio')).split(',');
const THREADS = Number(arg('threads', 2));
const OUT = arg('out', path.join(benchDir, 'COALESCE.md'));
const LOADGEN = arg('loadgen', path.join(benchDir, '..', 'build', 'sidewire_loadgen'));
const SERVERS = {
  'sidewire-ws': { file: 'sidewire-ws.mjs', protocol: 'ws', label: 'sidewire raw channel (native relay)' },
  'sidewire-sio': { file: 'sidewire-sio.mjs', protocol: 'sio', label: 'sidewire Socket.IO' },
};

if (!existsSync(LOADGEN)) {
  console.error(`no load generator at ${LOADGEN}: node scripts/build.mjs --tests (or cmake --build build --target sidewire_loadgen)`);
  process.exit(1);
}

const stats = async (port) => (await fetch(`http://127.0.0.1:${port}/stats`)).json();

async function measure(kind, delay, load) {
  const server = await startServer(SERVERS[kind].file, { SIDEWIRE_WRITE_DELAY_MS: String(delay), NODE_ENV: 'production' }, kind);
  try {
    const before = await stats(server.port);
    const r = spawnSync(LOADGEN, [
      '--port', String(server.port), '--protocol', SERVERS[kind].protocol, '--scenario', 'fanout',
      '--clients', String(RECEIVERS), '--server-pid', String(server.child.pid), '--duration-s', String(DURATION),
      '--window', String(load.window), '--rate', String(load.rate), '--payload', '100', '--threads', String(THREADS),
    ], { encoding: 'utf8', timeout: (DURATION + 120) * 1000 });
    const after = await stats(server.port);
    const line = (r.stdout || '').trim().split('\n').pop();
    const out = JSON.parse(line);
    const delivered = after.messagesDelivered - before.messagesDelivered;
    return {
      kind, delay, load: load.label, window: load.window, rate: load.rate,
      messagesPerSec: out.messages_per_sec,
      cpuUsPerDelivery: out.deliveries > 0 ? (out.server_cpu_s * 1e6) / out.deliveries : null,
      writesPerDelivery: delivered > 0 ? (after.writes - before.writes) / delivered : null,
      deliveriesPerSec: out.deliveries_per_sec,
      p50Ms: out.latency_us.p50 / 1000,
      p99Ms: out.latency_us.p99 / 1000,
      loadgenCpuS: out.loadgen_cpu_s,
      serverCpuS: out.server_cpu_s,
      seconds: out.seconds,
      connected: out.connected,
      errors: out.errors,
    };
  } finally {
    await stopServer(server);
  }
}

const LOADS = [
  ...WINDOWS.map((w) => ({ window: w, rate: 0, label: `${w} in flight` })),
  ...RATES.map((r) => ({ window: 256, rate: r, label: `${r.toLocaleString('en-US')} msg/s` })),
];
const runs = [];
for (let rep = 0; rep < REPS; ++rep) {
  for (const load of LOADS) {
    for (const delay of DELAYS) {
      for (const kind of KINDS) {
        const m = await measure(kind, delay, load);
        runs.push(m);
        console.error(`[coalesce] ${kind} delay ${delay} ms ${load.label}: ${m.cpuUsPerDelivery?.toFixed(3)} µs/delivery, ` +
          `${m.writesPerDelivery?.toFixed(3)} writes/delivery, p50 ${m.p50Ms} ms p99 ${m.p99Ms} ms, loadgen ${m.loadgenCpuS} CPU-s`);
      }
    }
  }
}

const cell = (kind, delay, load) => {
  const xs = runs.filter((r) => r.kind === kind && r.delay === delay && r.load === load.label);
  const med = (k) => median(xs.map((x) => x[k]));
  return {
    cpu: med('cpuUsPerDelivery'), writes: med('writesPerDelivery'), p50: med('p50Ms'), p99: med('p99Ms'),
    rate: med('deliveriesPerSec'), messages: med('messagesPerSec'), loadgen: med('loadgenCpuS') / med('seconds'), server: med('serverCpuS') / med('seconds'),
    errors: xs.reduce((a, x) => a + x.errors, 0), connected: Math.min(...xs.map((x) => x.connected)),
  };
};

const f = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(d));
const lines = [];
lines.push('# Coalesced writes: CPU and latency against the write delay');
lines.push('');
lines.push(`- Date: ${new Date().toISOString()}; ${os.cpus().length} CPU(s), ${os.cpus()[0]?.model}; Node ${process.version}; load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
lines.push(`- Command: \`node bench/coalesce.mjs ${process.argv.slice(2).join(' ')}\`.trim() (also \`npm run bench -- --only=f\`)`.replace('`.trim()', '`'));
lines.push(`- ${RECEIVERS} receivers in one room and one publisher sending 100-byte payloads with 16, 64 or 256 messages in flight, for ${DURATION} s after a 1 s warm-up, with the load generator's ${THREADS} threads on the same machine; a fresh server per cell (\`SIDEWIRE_WRITE_DELAY_MS\` = the delay), ${REPS} round(s), medians. CPU per delivery = the server process's user + system time ÷ deliveries; writes per delivery = the engine's \`sendmsg\` calls ÷ messages delivered (\`engine.stats()\`).`);
lines.push('- Target: at 1 ms, CPU per delivery at least 2× lower than with 0 at the same load; p99 at most 1 ms higher.');
lines.push('');
const verdicts = [];
for (const kind of KINDS) {
  lines.push(`## ${SERVERS[kind].label}`);
  lines.push('');
  lines.push('| load | delay (ms) | CPU µs / delivery | vs 0 ms | writes / delivery | messages/s | deliveries/s | p50 (ms) | p99 (ms) | server CPU (cores) | load generator CPU (cores) |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const load of LOADS) {
    const base = cell(kind, 0, load);
    for (const delay of DELAYS) {
      const c = cell(kind, delay, load);
      const gain = base.cpu && c.cpu ? base.cpu / c.cpu : null;
      lines.push(`| ${load.label} | ${delay} | ${f(c.cpu, 3)} | ${delay === 0 ? '' : `${f(gain)}× lower`} | ${f(c.writes, 3)} | ${Math.round(c.messages).toLocaleString('en-US')} | ${Math.round(c.rate).toLocaleString('en-US')} | ${f(c.p50)} | ${f(c.p99)} | ${f(c.server)} | ${f(c.loadgen)} |`);
      if (delay === 1) {
        const pass = gain >= 2 && c.p99 - base.p99 <= 1;
        verdicts.push(`| ${SERVERS[kind].label} | ${load.label} | ${f(gain)}× | ${f(c.p99 - base.p99)} ms | **${pass ? 'PASS' : 'MISS'}** |`);
      }
    }
  }
  lines.push('');
}
if (verdicts.length) {
  lines.push('## Against the target (1 ms against 0 ms)');
  lines.push('');
  lines.push('| server | load | CPU per delivery, 0 ÷ 1 ms | p99, 1 ms − 0 ms | result |');
  lines.push('|---|---:|---:|---:|---:|');
  lines.push(...verdicts);
  lines.push('');
}
writeFileSync(OUT, `${lines.join('\n')}\n`);
writeFileSync(OUT.replace(/\.md$/, '.json'), `${JSON.stringify({ date: new Date().toISOString(), receivers: RECEIVERS, duration: DURATION, runs }, null, 1)}\n`);
console.error(`[coalesce] wrote ${OUT}`);
