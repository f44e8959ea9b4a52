#!/usr/bin/env node
// `node bench/scenarios.mjs` (also `npm run bench -- --only=g`): the fan-out as apps run it, at set
// message rates and room shapes, sidewire side by side with socket.io 4.8 and ws 8 in one run:
//   one room of 1,000 (a busy channel), 100 rooms of 10 (team rooms), 10,000 rooms of 1 (direct
//   messages: each message to one user's room).
// For each scenario, rate and server: a fresh server process and one run of the load generator
// (build/sidewire_loadgen --scenario fanout --rooms K --rate R, several threads), which reports
// the server's CPU, its own CPU, deliveries and latency. Raw WebSocket pairs run the scenarios with
// at most 100 rooms (the generator keeps one publisher per room there). One profile
// (perf record, cpu-clock) of sidewire's Socket.IO server in the first scenario at its higher
// rate splits the time by thread: the I/O thread and Node's main thread.
// Results go to bench/SCENARIOS.md and bench/scenarios.json.
//   node bench/scenarios.mjs [--duration=S] [--threads=N] [--only=room,rooms,dm] [--no-perf] [--out=FILE]
// Target per scenario (the engine's): server CPU per delivery at most 1/10 of socket.io's (and of ws's).
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, benchDir, startServer, stopServer } from './child.mjs';

const DURATION = Number(arg('duration', 5));
const THREADS = Number(arg('threads', 2));
const OUT = arg('out', path.join(benchDir, 'SCENARIOS.md'));
const LOADGEN = arg('loadgen', path.join(benchDir, '..', 'build', 'sidewire_loadgen'));
const PERF = !process.argv.includes('--no-perf');
const ONLY = arg('only', null)?.split(',');

const SCENARIOS = [
  { key: 'room', label: '1 room of 1,000', clients: 1000, rooms: 1, rates: [100, 1000], ws: true },
  { key: 'rooms', label: '100 rooms of 10', clients: 1000, rooms: 100, rates: [1000, 10000], ws: true },
  { key: 'dm', label: '10,000 rooms of 1 (direct messages)', clients: 10000, rooms: 10000, rates: [1000, 10000], ws: false },
].filter((s) => !ONLY || ONLY.includes(s.key));
const SERVERS = {
  'sidewire-sio': { file: 'sidewire-sio.mjs', protocol: 'sio', label: 'sidewire (Socket.IO)' },
  socketio: { file: 'socketio.mjs', protocol: 'sio', label: 'socket.io 4.8' },
  'sidewire-ws': { file: 'sidewire-ws.mjs', protocol: 'ws', label: 'sidewire (raw WS)' },
  ws: { file: 'ws.mjs', protocol: 'ws', label: 'ws 8' },
};

if (!existsSync(LOADGEN)) {
  console.error(`no load generator at ${LOADGEN}: cmake -S . -B build -DSIDEWIRE_BUILD_BENCH=ON && cmake --build build --target sidewire_loadgen`);
  process.exit(1);
}

function loadgen(kind, port, pid, scenario, rate) {
  const r = spawnSync(LOADGEN, [
    '--port', String(port), '--protocol', SERVERS[kind].protocol, '--scenario', 'fanout',
    '--clients', String(scenario.clients), '--rooms', String(scenario.rooms), '--rate', String(rate),
    '--window', '256', '--server-pid', String(pid), '--duration-s', String(DURATION), '--payload', '100',
    '--threads', String(THREADS), '--concurrency', '1000',
  ], { encoding: 'utf8', timeout: (DURATION + 180) * 1000 });
  const line = (r.stdout || '').trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`${kind}: the load generator printed no result (${(r.stderr || '').trim().split('\n').slice(-3).join(' / ')})`);
  }
}

// perf's samples of the server split by thread, and each thread's top symbols.
function profile(data, pid) {
  const report = (sort, limit, extra = []) => spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '-g', 'none',
    '--sort', sort, '--percent-limit', String(limit), '-t', '|', ...extra], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const rows = (r) => String(r.stdout || '').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('|').map((x) => x.trim()));
  const threads = rows(report('comm', 0.5)).filter((c) => c.length >= 2).map(([pct, comm]) => ({ pct: Number.parseFloat(pct), comm }));
  const byThread = {};
  for (const { comm } of threads.slice(0, 4)) {
    byThread[comm] = rows(report('dso,sym', 1.5, ['--comms', comm])).filter((c) => c.length >= 3).slice(0, 12)
      .map(([pct, dso, sym]) => ({ pct: Number.parseFloat(pct), dso, symbol: sym.replace(/^\[[.k]\]\s*/, ''), kernel: /^\[k\]/.test(sym) }));
  }
  return { threads, byThread, pid };
}

async function measure(kind, scenario, rate, withPerf) {
  const server = await startServer(SERVERS[kind].file, { NODE_ENV: 'production' }, kind);
  let perfChild = null;
  let tmp = null;
  try {
    if (withPerf) {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'sidewire-scenarios-perf-'));
      // Starts with the run: the connect phase and warm-up are a small part of the samples.
      perfChild = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '999', '-p', String(server.child.pid),
        '-o', path.join(tmp, 'perf.data'), '--', 'sleep', String(DURATION + 2)], { stdio: 'ignore' });
    }
    const out = loadgen(kind, server.port, server.child.pid, scenario, rate);
    let prof = null;
    if (perfChild) {
      await new Promise((resolve) => (perfChild.exitCode !== null ? resolve() : perfChild.once('exit', resolve)));
      prof = profile(path.join(tmp, 'perf.data'), server.child.pid);
    }
    return { kind, scenario: scenario.key, rate, out, profile: prof };
  } finally {
    if (perfChild && perfChild.exitCode === null) perfChild.kill('SIGINT');
    await stopServer(server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

const perfOk = PERF && spawnSync('perf', ['record', '-q', '-e', 'cpu-clock', '-o', '/dev/null', '--', 'true']).status === 0;
const runs = [];
for (const scenario of SCENARIOS) {
  const kinds = scenario.ws ? ['sidewire-sio', 'socketio', 'sidewire-ws', 'ws'] : ['sidewire-sio', 'socketio'];
  for (const rate of scenario.rates) {
    for (const kind of kinds) {
      const m = await measure(kind, scenario, rate, false);
      runs.push(m);
      const o = m.out;
      console.error(`[scenarios] ${scenario.key} ${rate}/s ${kind}: ${o.deliveries_per_sec} deliveries/s, ` +
        `${o.deliveries ? ((o.server_cpu_s * 1e6) / o.deliveries).toFixed(2) : '-'} µs CPU/delivery, p99 ${o.latency_us.p99 / 1000} ms, loadgen ${o.loadgen_cpu_s} CPU-s, errors ${o.errors}`);
    }
  }
}
let prof = null;
if (perfOk && SCENARIOS.length) {
  const s = SCENARIOS[0];
  prof = await measure('sidewire-sio', s, s.rates[s.rates.length - 1], true);
  prof.label = `${SERVERS['sidewire-sio'].label}, ${s.label}, ${s.rates[s.rates.length - 1].toLocaleString('en-US')} msg/s`;
}

// ------------------------------------------------------------------------------------ report
const f = (v, d = 2) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));
const n0 = (v) => Math.round(v).toLocaleString('en-US');
const cpuPer = (o) => (o.deliveries > 0 ? (o.server_cpu_s * 1e6) / o.deliveries : null);
const lines = [];
lines.push('# Scenarios: message rates and room shapes');
lines.push('');
lines.push(`- Date: ${new Date().toISOString()}; ${os.cpus().length} CPU(s), ${os.cpus()[0]?.model}; Node ${process.version}`);
lines.push(`- Command: \`node bench/scenarios.mjs${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}\` (also \`npm run bench -- --only=g\`)`);
lines.push(`- Each cell: a fresh server (\`bench/servers/<name>.mjs\`, \`NODE_ENV=production\`), then the load generator with ${THREADS} threads on the same machine: receivers joined to their rooms (Socket.IO: \`join\` acked; raw WebSocket: \`?room=\`), one publisher sending 100-byte payloads at the rate given (open loop, at most 256 messages in flight; message n goes to room n mod K), ${DURATION} s measured after a 1 s warm-up. Server CPU = user + system time of the whole server process over the window; the load generator's own CPU is shown beside it (it shares the ${os.cpus().length} CPUs with the server).`);
lines.push('- Target: server CPU per delivery at most 1/10 of socket.io\'s (raw WebSocket: of ws\'s), at every rate and room shape.');
lines.push('');
lines.push('## Results');
lines.push('');
lines.push('| scenario | rate (msg/s) | server | deliveries/s | server CPU (cores) | CPU µs / delivery | p50 (ms) | p99 (ms) | load generator CPU (cores) | errors |');
lines.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|');
for (const m of runs) {
  const o = m.out;
  const s = SCENARIOS.find((x) => x.key === m.scenario);
  lines.push(`| ${s.label} | ${n0(m.rate)} | ${SERVERS[m.kind].label} | ${n0(o.deliveries_per_sec)} | ${f(o.server_cpu_s / o.seconds)} | ${f(cpuPer(o), 3)} | ${f(o.latency_us.p50 / 1000)} | ${f(o.latency_us.p99 / 1000)} | ${f(o.loadgen_cpu_s / o.seconds)} | ${o.errors} |`);
}
lines.push('');
lines.push('## Against the target');
lines.push('');
lines.push('| scenario | rate (msg/s) | pair | CPU per delivery: other ÷ sidewire | p99: sidewire / other (ms) | result |');
lines.push('|---|---:|---|---:|---:|---:|');
const find = (kind, s, rate) => runs.find((r) => r.kind === kind && r.scenario === s && r.rate === rate);
for (const s of SCENARIOS) {
  for (const rate of s.rates) {
    for (const [ours, other] of s.ws ? [['sidewire-sio', 'socketio'], ['sidewire-ws', 'ws']] : [['sidewire-sio', 'socketio']]) {
      const a = find(ours, s.key, rate);
      const b = find(other, s.key, rate);
      if (!a || !b) continue;
      const ratio = cpuPer(b.out) / cpuPer(a.out);
      const delivered = a.out.deliveries_per_sec >= 0.9 * b.out.deliveries_per_sec;
      const pass = ratio >= 10 && delivered;
      lines.push(`| ${s.label} | ${n0(rate)} | ${SERVERS[ours].label} vs ${SERVERS[other].label} | ${f(ratio)}× | ${f(a.out.latency_us.p99 / 1000)} / ${f(b.out.latency_us.p99 / 1000)} | **${pass ? 'PASS' : 'MISS'}** |`);
    }
  }
}
lines.push('');
if (prof && prof.profile) {
  lines.push(`## Where the time goes: ${prof.label}`);
  lines.push('');
  lines.push('`perf record -e cpu-clock -F 999 -p <server>` over the run; the share of the server\'s samples by thread, then each busy thread\'s top symbols (`[k]`: the kernel).');
  lines.push('');
  lines.push('| thread | share of samples |');
  lines.push('|---|---:|');
  for (const t of prof.profile.threads) lines.push(`| ${t.comm} | ${f(t.pct, 1)} % |`);
  lines.push('');
  for (const [comm, syms] of Object.entries(prof.profile.byThread)) {
    lines.push(`### ${comm}`);
    lines.push('');
    lines.push('| share of the thread | where | symbol |');
    lines.push('|---:|---|---|');
    for (const x of syms) lines.push(`| ${f(x.pct, 1)} % | ${x.kernel ? '[k] ' : ''}${x.dso} | \`${x.symbol.replace(/\|/g, '\\|').slice(0, 90)}\` |`);
    lines.push('');
  }
}
writeFileSync(OUT, `${lines.join('\n')}\n`);
writeFileSync(OUT.replace(/\.md$/, '.json'), `${JSON.stringify({ date: new Date().toISOString(), duration: DURATION, threads: THREADS, runs, profile: prof }, null, 1)}\n`);
console.error(`[scenarios] wrote ${OUT}`);
