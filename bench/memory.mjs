#!/usr/bin/env node
// `node bench/memory.mjs` (also `npm run bench -- --only=h`): what an idle connection costs the
// server process, measured as a real server sees it: RSS 10 s after a burst of CLIENTS
// connections, without asking for a garbage collection. For each server a fresh process (no
// --expose-gc) and one run of the load generator (--scenario idle --gc-path none); for sidewire's,
// the engine's allocator figures (engine.stats(): malloc in use and held) before and after.
// Then, for sidewire's servers, a second run with 2,000 connections and heap snapshots (node
// --expose-gc, BENCH_HEAP_SNAPSHOT) before and after, which itemise the JS heap per connection by
// constructor. Results go to bench/MEMORY.md and bench/memory.json.
//   node bench/memory.mjs [--clients=N] [--idle=MS] [--kinds=a,b] [--no-snapshots] [--out=FILE]
// Targets (issue 14): a Socket.IO connection in at most 1.8 KB, a raw-channel connection with JS
// listeners in at most 1 KB.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, benchDir, startServer, stopServer } from './child.mjs';

const CLIENTS = Number(arg('clients', 5000));
const IDLE = Number(arg('idle', 10000));
const OUT = arg('out', path.join(benchDir, 'MEMORY.md'));
const LOADGEN = arg('loadgen', path.join(benchDir, '..', 'build', 'sidewire_loadgen'));
const SNAPSHOTS = !process.argv.includes('--no-snapshots');
const SERVERS = {
  'sidewire-sio': { file: 'sidewire-sio.mjs', protocol: 'sio', label: 'sidewire (Socket.IO)', target: 1800, ours: true },
  socketio: { file: 'socketio.mjs', protocol: 'sio', label: 'socket.io 4.8' },
  'sidewire-ws-hooked': { file: 'sidewire-ws-hooked.mjs', protocol: 'ws', label: 'sidewire raw channel, JS listeners', target: 1024, ours: true },
  'sidewire-ws': { file: 'sidewire-ws.mjs', protocol: 'ws', label: 'sidewire raw channel, native relay', ours: true },
  ws: { file: 'ws.mjs', protocol: 'ws', label: 'ws 8' },
};
const KINDS = String(arg('kinds', Object.keys(SERVERS).join(','))).split(',');

if (!existsSync(LOADGEN)) {
  console.error(`no load generator at ${LOADGEN}: cmake -S . -B build -DSIDEWIRE_BUILD_BENCH=ON && cmake --build build --target sidewire_loadgen`);
  process.exit(1);
}

function idle(kind, port, pid, clients, gcPath) {
  const args = ['--port', String(port), '--protocol', SERVERS[kind].protocol, '--scenario', 'idle', '--clients', String(clients),
    '--concurrency', '1000', '--server-pid', String(pid), '--settle-ms', '1500', '--idle-ms', String(IDLE), '--gc-path', gcPath];
  if (SERVERS[kind].ours) args.push('--stats-path', '/stats');
  const r = spawnSync(LOADGEN, args, { encoding: 'utf8', timeout: 300000 });
  return JSON.parse((r.stdout || '').trim().split('\n').pop());
}

// Self size per constructor (strings, arrays and code by kind) in a .heapsnapshot.
function heapByConstructor(file) {
  const s = JSON.parse(readFileSync(file, 'utf8'));
  const meta = s.snapshot.meta;
  const width = meta.node_fields.length;
  const types = meta.node_types[0];
  const [ti, ni, si] = ['type', 'name', 'self_size'].map((k) => meta.node_fields.indexOf(k));
  const out = new Map();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + ti]];
    const name = type === 'object' ? s.strings[s.nodes[i + ni]] : type === 'closure' ? '(closures)' : `(${type})`;
    const e = out.get(name) || { count: 0, bytes: 0 };
    e.count += 1;
    e.bytes += s.nodes[i + si];
    out.set(name, e);
  }
  return out;
}

async function itemise(kind) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sidewire-memory-'));
  const n = 2000;
  const server = await startServer(SERVERS[kind].file, { NODE_ENV: 'production', NODE_OPTIONS: '--expose-gc', BENCH_HEAP_SNAPSHOT: dir }, kind);
  try {
    idle(kind, server.port, server.child.pid, n, '/gc');
  } finally {
    await stopServer(server);
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot')).sort((a, b) => Number(/(\d+)/.exec(a)[1]) - Number(/(\d+)/.exec(b)[1]));
  let rows = [];
  if (files.length >= 2) {
    const before = heapByConstructor(path.join(dir, files[0]));
    const after = heapByConstructor(path.join(dir, files[files.length - 1]));
    for (const [name, e] of after) {
      const b = before.get(name) || { count: 0, bytes: 0 };
      rows.push({ name, perConnCount: (e.count - b.count) / n, perConnBytes: (e.bytes - b.bytes) / n });
    }
    rows = rows.filter((r) => Math.abs(r.perConnBytes) >= 4).sort((a, b) => b.perConnBytes - a.perConnBytes);
  }
  rmSync(dir, { recursive: true, force: true });
  return rows;
}

const results = [];
for (const kind of KINDS) {
  const server = await startServer(SERVERS[kind].file, { NODE_ENV: 'production' }, kind);
  let out;
  try {
    out = idle(kind, server.port, server.child.pid, CLIENTS, 'none');
  } finally {
    await stopServer(server);
  }
  const r = { kind, out, heap: null };
  if (out.stats && out.stats_before) {
    r.mallocInUsePerConn = (out.stats.mallocInUse - out.stats_before.mallocInUse) / out.connected;
    r.mallocHeldPerConn = (out.stats.mallocHeld - out.stats_before.mallocHeld) / out.connected;
  }
  if (SNAPSHOTS && SERVERS[kind].ours) r.heap = await itemise(kind);
  results.push(r);
  console.error(`[memory] ${kind}: ${out.rss_per_conn_bytes} B per connection (${out.connected}/${CLIENTS}), malloc in use ${r.mallocInUsePerConn?.toFixed(0) ?? '-'} B`);
}

const n0 = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const lines = [];
lines.push('# Memory per idle connection');
lines.push('');
lines.push(`- Date: ${new Date().toISOString()}; ${os.cpus().length} CPU(s); Node ${process.version}`);
lines.push(`- Command: \`node bench/memory.mjs${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}\` (also \`npm run bench -- --only=h\`)`);
lines.push(`- ${CLIENTS.toLocaleString('en-US')} connections opened 1,000 at a time (Socket.IO: joined to a room with an acked \`join\`; raw WebSocket: \`?room=bench\`), then ${IDLE / 1000} s idle (heartbeats only); RSS of the server process before connecting and at the end, **no garbage collection asked for** (the servers run without \`--expose-gc\`). Per connection = (RSS after − RSS before) ÷ connected. sidewire's allocator figures are \`engine.stats().mallocInUse\` / \`mallocHeld\` (the whole process's malloc: the engine's and Node's own) at the same two moments.`);
lines.push('- Targets: a Socket.IO connection in at most 1.8 KB (10× below socket.io\'s), a raw-channel connection with JS listeners in at most 1 KB.');
lines.push('');
lines.push('| server | connected | RSS per connection | malloc in use per connection | malloc held per connection | target | result |');
lines.push('|---|---:|---:|---:|---:|---:|---:|');
for (const r of results) {
  const s = SERVERS[r.kind];
  const per = r.out.rss_per_conn_bytes;
  lines.push(`| ${s.label} | ${n0(r.out.connected)} / ${n0(CLIENTS)} | **${n0(per)} B** | ${r.mallocInUsePerConn === undefined ? '' : `${n0(r.mallocInUsePerConn)} B`} | ${r.mallocHeldPerConn === undefined ? '' : `${n0(r.mallocHeldPerConn)} B`} | ${s.target ? `≤ ${n0(s.target)} B` : ''} | ${s.target ? `**${per <= s.target ? 'PASS' : 'MISS'}**` : ''} |`);
}
lines.push('');
const sio = results.find((r) => r.kind === 'sidewire-sio');
const other = results.find((r) => r.kind === 'socketio');
if (sio && other) lines.push(`socket.io ÷ sidewire (Socket.IO): **${(other.out.rss_per_conn_bytes / sio.out.rss_per_conn_bytes).toFixed(2)}×** (target ≥ 10×).`, '');
for (const r of results.filter((x) => x.heap && x.heap.length)) {
  lines.push(`## JS heap per connection: ${SERVERS[r.kind].label}`);
  lines.push('');
  lines.push('Heap snapshots before connecting and after the idle period (2,000 connections, after `gc()`), self sizes by constructor, per connection; what remains of the RSS is native (the engine\'s, Node\'s and the allocator\'s slack).');
  lines.push('');
  lines.push('| what | objects per connection | bytes per connection |');
  lines.push('|---|---:|---:|');
  let total = 0;
  for (const h of r.heap.slice(0, 16)) {
    lines.push(`| ${h.name} | ${h.perConnCount.toFixed(2)} | ${n0(h.perConnBytes)} |`);
  }
  for (const h of r.heap) total += h.perConnBytes;
  lines.push(`| **all** | | **${n0(total)}** |`);
  lines.push('');
}
writeFileSync(OUT, `${lines.join('\n')}\n`);
writeFileSync(OUT.replace(/\.md$/, '.json'), `${JSON.stringify({ date: new Date().toISOString(), clients: CLIENTS, idleMs: IDLE, results }, null, 1)}\n`);
console.error(`[memory] wrote ${OUT}`);
