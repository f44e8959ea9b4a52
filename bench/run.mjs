#!/usr/bin/env node
// `npm run bench`: sidewire side by side with socket.io 4.8 and ws 8 (issue #5).
//
//   npm run bench                       the full run (about 8 minutes on 2 cores)
//   npm run bench -- --quick            small counts and short durations: checks the pipeline
//   npm run bench -- --only=a,b         scenarios by letter or name: a idle, b fanout, c storm, d next,
//                                       e cluster, f coalesce (bench/coalesce.mjs), g scenarios
//                                       (bench/scenarios.mjs), h memory (bench/memory.mjs)
//   options (argv --name=value, or env BENCH_NAME=value):
//     --reps=N        fan-out (and cluster) repetitions per server (default 3, --quick 1); the median
//                     is reported
//     --loadgen=PATH  load generator binary (default build/sidewire_loadgen, built with CMake)
//     --out=DIR       where RESULTS.md, results.json, ratios.svg and ratios.png go (default bench/)
//     --report-only   rewrite RESULTS.md and the chart from results.json, run nothing
//     --no-build      never build the load generator or the Next app
//
// For each scenario and each server: start the server (bench/servers/*.mjs, node --expose-gc,
// on 127.0.0.1, a fresh process per measurement), run the load generator against it, read
// the JSON line it prints last, stop the server (SIGTERM; SIGKILL after 5 s). The two servers
// of a pair run back to back (fan-out alternates them), on the same machine, in the same run.
// The cluster scenario (e) starts a redis-server of its own (loopback, no persistence, a
// temporary directory) and two servers of one kind on it for each measurement, and stops all
// three after.
// A partial run (--only) replaces its scenarios in results.json and keeps the others when the
// earlier results are of the same mode (quick or full).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeReport } from './report.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(benchDir, '..');
const nextAppDir = path.join(repoRoot, 'examples', 'ticketing');

// ------------------------------------------------------------------------------------ options

function parseOptions(argv) {
  const o = {};
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unknown argument ${arg} (see the top of bench/run.mjs)`);
    o[m[1]] = m[2] === undefined ? true : m[2];
  }
  const env = (name) => process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  const get = (name) => (o[name] !== undefined ? o[name] : env(name));
  const flag = (name) => {
    const v = get(name);
    return v === true || (typeof v === 'string' && v !== '' && v !== '0' && v !== 'false');
  };
  const known = ['quick', 'only', 'reps', 'loadgen', 'out', 'report-only', 'no-build'];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new Error(`unknown option --${k} (known: ${known.join(', ')})`);

  const quick = flag('quick');
  const names = { a: 'idle', b: 'fanout', c: 'storm', d: 'next', e: 'cluster', f: 'coalesce', g: 'scenarios', h: 'memory' };
  const all = Object.values(names);
  let only = all;
  if (get('only') && get('only') !== true) {
    only = String(get('only')).split(',').map((s) => s.trim()).filter(Boolean).map((s) => names[s] || s);
    for (const s of only) if (!all.includes(s)) throw new Error(`--only: unknown scenario ${s} (a|idle, b|fanout, c|storm, d|next, e|cluster, f|coalesce, g|scenarios, h|memory)`);
  }
  const reps = Number.parseInt(get('reps') ?? (quick ? '1' : '3'), 10);
  if (!(reps >= 1)) throw new Error('--reps must be ≥ 1');
  return {
    quick,
    only,
    reps,
    loadgen: get('loadgen') && get('loadgen') !== true ? path.resolve(String(get('loadgen'))) : null,
    out: path.resolve(get('out') && get('out') !== true ? String(get('out')) : benchDir),
    reportOnly: flag('report-only'),
    noBuild: flag('no-build'),
    argv,
  };
}

const opts = parseOptions(process.argv.slice(2));

// Counts and durations. --quick keeps the shapes and shrinks the numbers.
const P = opts.quick
  ? { idleClients: 500, fanoutClients: 100, durationS: 3, window: 20, payload: 100, stormClients: 500,
      acDurationS: 3, acWarmupS: 1, acWarmupMinS: 3, acWarmupMaxS: 8, acConnections: 10, settleMs: 500, idleMs: 2000, cooldownMs: 300 }
  : { idleClients: 10000, fanoutClients: 1000, durationS: 10, window: 20, payload: 100, stormClients: 10000,
      acDurationS: 10, acWarmupS: 2, acWarmupMinS: 24, acWarmupMaxS: 60, acConnections: 10, settleMs: 1500, idleMs: 10000, cooldownMs: 1500 };
P.reps = opts.reps;
P.backlog = Number.parseInt(process.env.BENCH_BACKLOG || '4096', 10);
P.idleConcurrency = 1000;
P.nextRounds = opts.quick ? 1 : 3; // (d): alternating idle and loaded windows, pooled
P.nextControl = true; // (d): also the fan-out against another process, for sidewire
P.fanoutConcurrency = 1000;
// (e): receivers split over two nodes of a fleet on one Redis; the profile of node B (sidewire)
// is a run of its own, not one of the measured ones.
P.clusterClients = opts.quick ? 100 : 500;
P.clusterDurationS = opts.quick ? 3 : 10;
P.clusterPerfS = opts.quick ? 1 : 5;
P.clusterDrainMs = 3000;

// The servers, by pair. path/protocol are what the load generator speaks to them.
const SERVERS = {
  'sidewire-sio': { file: 'sidewire-sio.mjs', protocol: 'sio', path: '/socket.io/' },
  socketio: { file: 'socketio.mjs', protocol: 'sio', path: '/socket.io/' },
  'sidewire-ws': { file: 'sidewire-ws.mjs', protocol: 'ws', path: '/ws/bench' },
  ws: { file: 'ws.mjs', protocol: 'ws', path: '/ws/bench' },
  'next-sidewire': { file: 'next-sidewire.mjs', protocol: 'sio', path: '/socket.io/', next: true },
  'next-socketio': { file: 'next-socketio.mjs', protocol: 'sio', path: '/socket.io/', next: true },
  // (e): nodes of a fleet (REDIS_URL), each with its kind's Redis adapter
  'cluster-sidewire': { file: 'cluster-sidewire.mjs', protocol: 'sio', path: '/socket.io/', cluster: true },
  'cluster-socketio': { file: 'cluster-socketio.mjs', protocol: 'sio', path: '/socket.io/', cluster: true },
};
const PAIRS = {
  sio: { sidewire: 'sidewire-sio', other: 'socketio', label: 'Socket.IO: sidewire vs socket.io 4.8' },
  ws: { sidewire: 'sidewire-ws', other: 'ws', label: 'raw WebSocket: sidewire vs ws 8' },
};
// (e): the pair whose servers run two at a time, over one Redis.
const CLUSTER_PAIR = {
  sidewire: 'cluster-sidewire', other: 'cluster-socketio',
  label: 'Socket.IO over Redis: sidewire/redis-adapter vs socket.io 4.8 + @socket.io/redis-adapter 8.3',
};

// ------------------------------------------------------------------------------- small helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const startedAt = Date.now();
const log = (...a) => console.log(`[bench ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s]`, ...a);

function tail(text, lines = 20) {
  return String(text || '').trimEnd().split('\n').slice(-lines).join('\n');
}

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * Per-field median of loadgen JSON objects: numbers, and the numbers of objects one level down
 * (latency_us, the cluster's latency_a_us and per-thread CPU).
 */
function medianResult(results) {
  const ok = results.filter(Boolean);
  if (ok.length === 0) return null;
  const out = { ...ok[Math.floor((ok.length - 1) / 2)] };
  for (const k of Object.keys(out)) {
    if (typeof out[k] === 'number') {
      out[k] = median(ok.map((r) => r[k]));
    } else if (out[k] && typeof out[k] === 'object' && !Array.isArray(out[k])) {
      const keys = [...new Set(ok.flatMap((r) => Object.keys(r[k] || {})))];
      out[k] = {};
      for (const sub of keys) out[k][sub] = median(ok.map((r) => r[k]?.[sub] ?? 0)); // a thread absent from a run: 0 s
    }
  }
  out.runs = ok.length;
  return out;
}

function limitsOf(pid) {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    const n = (s) => (s === 'unlimited' ? Infinity : Number(s));
    return m ? { soft: n(m[1]), hard: n(m[2]) } : null;
  } catch {
    return null;
  }
}

function machineInfo() {
  const cpuinfo = (() => { try { return readFileSync('/proc/cpuinfo', 'utf8'); } catch { return ''; } })();
  const meminfo = (() => { try { return readFileSync('/proc/meminfo', 'utf8'); } catch { return ''; } })();
  const sh = (cmd, args) => {
    const r = spawnSync(cmd, args, { cwd: repoRoot, encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  const commit = sh('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no']);
  const versionOf = (name) => {
    try { return JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')).version; } catch { return null; }
  };
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() || os.cpus()[0]?.model || 'unknown',
    mem_total: /^MemTotal:\s*(.*)$/m.exec(meminfo)?.[1]?.trim() || `${Math.round(os.totalmem() / 1024)} kB`,
    kernel: sh('uname', ['-r']) || os.release(),
    node: process.version,
    commit: commit ? `${commit}${dirty ? ' (with uncommitted changes)' : ''}` : null,
    versions: {
      'socket.io': versionOf('socket.io'), ws: versionOf('ws'), next: versionOf('next'), autocannon: versionOf('autocannon'),
      '@socket.io/redis-adapter': versionOf('@socket.io/redis-adapter'), redis: versionOf('redis'),
    },
    nofile: limitsOf(process.pid),
    loadavg_at_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
    somaxconn: (() => { try { return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')); } catch { return null; } })(),
  };
}

// ----------------------------------------------------------------------------- child processes

const live = new Set(); // { child, pgid }

function track(child) {
  const entry = { child, pgid: child.pid };
  live.add(entry);
  child.once('exit', () => live.delete(entry));
  return entry;
}

function killGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

function cleanupAll() {
  for (const { pgid } of live) killGroup(pgid, 'SIGKILL');
  live.clear();
}
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`[bench] ${sig}: stopping the servers and the load generator`);
    cleanupAll();
    process.exit(130);
  });
}

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/**
 * Starts bench/servers/<file> (node --expose-gc, in its own process group, with the open-files
 * limit raised as far as the hard limit allows) and waits for `READY <port>`.
 */
async function startServer(name, extraEnv = {}) {
  const spec = SERVERS[name];
  const file = path.join(benchDir, 'servers', spec.file);
  // bash raises the soft limit (65536, or the hard limit when that is lower) and execs node,
  // so the pid the load generator watches is node's.
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"';
  const child = spawn('bash', ['-c', script, process.execPath, '--expose-gc', file], {
    cwd: repoRoot,
    env: {
      ...process.env,
      PORT: '0',
      NODE_ENV: 'production',
      SIDEWIRE_LOG_LEVEL: process.env.SIDEWIRE_LOG_LEVEL || 'warn',
      NEXT_TELEMETRY_DISABLED: '1',
      BENCH_BACKLOG: String(P.backlog),
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: stopping it stops whatever it spawned
  });
  const entry = track(child);
  const srv = { name, spec, child, pid: child.pid, entry, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { srv.stdout = tail(srv.stdout + d, 200); });
  child.stderr.on('data', (d) => { srv.stderr = tail(srv.stderr + d, 200); });
  try {
    srv.port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no READY within 90 s\n${tail(srv.stdout, 8)}\n${tail(srv.stderr, 8)}`)), 90000);
      const onData = () => {
        const m = /READY (\d+)\r?$/m.exec(srv.stdout); // Next may leave a line unterminated
        if (m) {
          clearTimeout(timer);
          child.stdout.off('data', onData);
          resolve(Number(m[1]));
        }
      };
      child.stdout.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited before READY (code ${code}, signal ${signal})\n${tail(srv.stderr, 15)}`));
      });
    });
  } catch (err) {
    await stopServer(srv);
    throw err;
  }
  srv.nofile = limitsOf(srv.pid);
  return srv;
}

/** SIGTERM, up to 5 s for a clean exit, then SIGKILL (the whole process group either way). */
async function stopServer(srv) {
  const { child } = srv;
  let clean = child.exitCode !== null || child.signalCode !== null;
  if (!clean) {
    try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
    clean = await waitExit(child, 5000);
    if (!clean) {
      log(`${srv.name} did not exit 5 s after SIGTERM: SIGKILL`);
      killGroup(srv.entry.pgid, 'SIGKILL');
      await waitExit(child, 5000);
    }
  }
  killGroup(srv.entry.pgid, 'SIGKILL'); // anything the server left behind in its group
  srv.exit = { code: child.exitCode, signal: child.signalCode, clean };
  return srv.exit;
}

/**
 * Runs the load generator to completion: { args, code, json, stderr }. `onStderrLine` sees each
 * progress line as it comes.
 */
function runLoadgen(loadgen, args, { timeoutMs, onStderrLine } = {}) {
  return new Promise((resolve) => {
    const child = spawn(loadgen, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const entry = track(child);
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => {
      stderr = tail(stderr + d, 100);
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop();
      for (const line of lines) onStderrLine?.(line);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(entry.pgid, 'SIGKILL');
    }, timeoutMs ?? 300000);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ args, code: null, json: null, stderr: String(err), error: String(err) });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').filter(Boolean).pop();
      let json = null;
      let error = null;
      try {
        json = last ? JSON.parse(last) : null;
        if (!json) error = 'no JSON on stdout';
      } catch (err) {
        error = `bad JSON on stdout: ${err.message}: ${last?.slice(0, 200)}`;
      }
      if (timedOut) error = `timed out after ${Math.round((timeoutMs ?? 300000) / 1000)} s`;
      resolve({ args, code, signal, json, stderr: tail(stderr, 20), error });
    });
  });
}

function loadgenArgs(srv, scenario, extra = {}) {
  const a = {
    host: '127.0.0.1', port: srv.port, protocol: srv.spec.protocol, path: srv.spec.path,
    scenario, room: 'bench', 'server-pid': srv.pid, ...extra,
  };
  return Object.entries(a).flatMap(([k, v]) => [`--${k}`, String(v)]);
}

/** One measurement: fresh server, loadgen, stop. */
async function measure(loadgen, name, scenario, extra, timeoutMs) {
  const t0 = Date.now();
  let srv;
  const rec = { server: name, scenario };
  try {
    srv = await startServer(name);
    Object.assign(rec, { port: srv.port, pid: srv.pid, nofile: srv.nofile });
    const needed = (extra.clients ?? 0) + 256;
    if (srv.nofile && srv.nofile.soft < needed) {
      rec.warning = `server open-files limit ${srv.nofile.soft} < ${needed} needed`;
      log(`WARNING ${name}: ${rec.warning}`);
    }
    const args = loadgenArgs(srv, scenario, extra);
    log(`${scenario} ${name}: ${path.basename(loadgen)} ${args.join(' ')}`);
    const r = await runLoadgen(loadgen, args, { timeoutMs });
    Object.assign(rec, { loadgen_exit: r.code, result: r.json, loadgen_stderr: r.stderr });
    if (r.error) rec.error = r.error;
    else if (r.json && r.json.connected !== undefined && r.json.clients !== undefined && r.json.connected < r.json.clients) {
      rec.error = `only ${r.json.connected}/${r.json.clients} clients connected`;
    }
  } catch (err) {
    rec.error = String(err?.message || err);
  } finally {
    if (srv) {
      rec.server_exit = await stopServer(srv);
      if (rec.error) rec.server_stderr = tail(srv.stderr, 15);
    }
  }
  rec.wall_s = (Date.now() - t0) / 1000;
  if (rec.error) log(`  ${name}: ERROR ${rec.error}`);
  else log(`  ${name}: ${summarize(rec.result)}`);
  await sleep(P.cooldownMs);
  return rec;
}

function summarize(j) {
  if (!j) return '(no result)';
  const f = (n) => (typeof n === 'number' ? Math.round(n).toLocaleString('en-US') : n);
  switch (j.scenario) {
    case 'idle': return `${j.connected}/${j.clients} connected in ${f(j.connect_ms)} ms, ${f(j.rss_per_conn_fresh_bytes)} B RSS/conn just after, ${f(j.rss_per_conn_bytes)} B after ${f(j.idle_ms)} ms idle`;
    case 'storm': return `${j.connected}/${j.clients} connected in ${f(j.connect_ms)} ms`;
    case 'fanout': return `${f(j.deliveries_per_sec)} deliveries/s, ${j.server_cpu_s?.toFixed?.(2)} CPU-s, ${f(j.deliveries_per_cpu_s)} deliveries/CPU-s, p99 ${f(j.latency_us?.p99)} µs`;
    case 'cluster': return `${f(j.deliveries_per_sec)} deliveries/s (A ${f(j.deliveries_a)}, B ${f(j.deliveries_b)}), CPU-s A ${j.cpu_a_s} + B ${j.cpu_b_s}, Redis ${j.redis_cpu_s}: ${f(j.deliveries_per_cpu_s)} deliveries/CPU-s, p99 A ${f(j.latency_a_us?.p99)} µs, B ${f(j.latency_b_us?.p99)} µs; missing A ${f(j.missing_a)} B ${f(j.missing_b)}, duplicates ${f(j.duplicates)}, reordered ${f(j.reordered)}`;
    default: return JSON.stringify(j);
  }
}

// ------------------------------------------------------------------------- (e): Redis and perf

/** A free TCP port on 127.0.0.1 (for redis-server, which cannot report the one it picked). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One command over a fresh connection (RESP); resolves with the raw reply text, or null. */
function redisCommand(port, args, ms = 1000) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (v) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), ms);
    sock.once('connect', () => sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    sock.on('data', (d) => {
      buf += d;
      // Enough for the replies asked here: a status, an integer, or NUMSUB's [channel, count].
      if (/^[+\-:].*\r\n$/s.test(buf) || /^\*2\r\n\$\d+\r\n[^\r]*\r\n:\d+\r\n$/.test(buf)) done(buf);
    });
    sock.once('error', () => done(null));
  });
}

/**
 * redis-server on a free loopback port, no persistence (--save "" --appendonly no), its own
 * temporary directory, in its own process group (stopped with the rest on exit). Resolves once
 * it answers PING.
 */
async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sidewire-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const entry = track(child);
  const r = { name: 'redis-server', child, pid: child.pid, entry, port, url: `redis://127.0.0.1:${port}`, dir, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { r.stdout = tail(r.stdout + d, 50); });
  child.stderr.on('data', (d) => { r.stderr = tail(r.stderr + d, 50); });
  let spawnError = null;
  child.once('error', (err) => { spawnError = err; });
  const deadline = Date.now() + 10000;
  for (;;) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      await stopRedis(r);
      throw new Error(`redis-server did not start${spawnError ? `: ${spawnError.message}` : ` (exit ${child.exitCode ?? child.signalCode})`}\n${tail(r.stdout, 8)}`);
    }
    if ((await redisCommand(port, ['PING'], 300))?.startsWith('+PONG')) break;
    if (Date.now() > deadline) {
      await stopRedis(r);
      throw new Error(`redis-server on port ${port} not ready in 10 s\n${tail(r.stdout, 8)}`);
    }
    await sleep(50);
  }
  return r;
}

async function stopRedis(r) {
  await stopServer(r); // SIGTERM, SIGKILL after 5 s, the whole group either way
  rmSync(r.dir, { recursive: true, force: true });
  return r.exit;
}

/** Until `count` nodes subscribe to the root namespace's request channel (both adapters do). */
async function waitSubscribed(port, count, ms = 10000) {
  const deadline = Date.now() + ms;
  let seen = null;
  while (Date.now() < deadline) {
    const reply = await redisCommand(port, ['PUBSUB', 'NUMSUB', 'socket.io-request#/#'], 500);
    seen = Number(/:(\d+)\r\n$/.exec(reply || '')?.[1] ?? NaN);
    if (seen >= count) return seen;
    await sleep(50);
  }
  throw new Error(`only ${seen} node(s) subscribed to socket.io-request#/# after ${ms / 1000} s`);
}

/**
 * What perf can do here: `perf stat -e instructions true` says whether the CPU's counters are
 * there (not in many VMs); without them `perf record` can still sample on the cpu-clock
 * software event.
 */
function perfSupport() {
  const stat = spawnSync('perf', ['stat', '-e', 'instructions', 'true'], { encoding: 'utf8' });
  if (stat.error) return { available: false, note: `no perf (${stat.error.code || stat.error.message})` };
  const hardware = stat.status === 0 && !/<not supported>|<not counted>/.test(`${stat.stdout}${stat.stderr}`);
  const event = hardware ? 'cycles' : 'cpu-clock';
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sidewire-bench-perf-'));
  const rec = spawnSync('perf', ['record', '-q', '-e', event, '-o', path.join(tmp, 'probe.data'), '--', 'true'], { encoding: 'utf8' });
  rmSync(tmp, { recursive: true, force: true });
  if (rec.status !== 0) {
    return { available: false, hardware, note: `perf record -e ${event} failed: ${tail(rec.stderr, 2)}` };
  }
  return {
    available: true, hardware, event,
    note: hardware ? 'hardware counters available' : '`perf stat -e instructions` is <not supported> (no hardware counters): sampled on the cpu-clock software event',
  };
}

/** perf report of `data`: the top symbols and the split of samples by thread. */
function perfSummary(data, pid) {
  const report = (sort, limit) => spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '-g', 'none', '--sort', sort,
    '--percent-limit', String(limit), '-t', '|'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const rows = (r) => String(r.stdout || '').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('|').map((x) => x.trim()));
  const samples = /^# Samples: (\S+)/m.exec(report('dso', 100).stdout || '')?.[1] ?? null;
  const symbols = rows(report('comm,dso,sym', 0.2)).filter((c) => c.length >= 4).slice(0, 60).map(([pct, comm, dso, sym]) => ({
    pct: Number.parseFloat(pct), comm, dso, symbol: sym.replace(/^\[[.k]\]\s*/, ''), kernel: /^\[k\]/.test(sym),
  }));
  const dsos = rows(report('dso', 1)).filter((c) => c.length >= 2).map(([pct, dso]) => ({ pct: Number.parseFloat(pct), dso }));
  // perf's "pid" key is the thread's: tid:comm
  const threads = rows(report('pid', 0.1)).filter((c) => c.length >= 2).map(([pct, tid]) => {
    const m = /^(\d+):(.*)$/.exec(tid) || [];
    return { pct: Number.parseFloat(pct), tid: Number(m[1]), name: Number(m[1]) === pid ? 'main' : (m[2] || tid).trim() };
  });
  return { samples, symbols, dsos, threads };
}

/**
 * One measurement of (e): a fresh redis-server, nodes A and B of `name` on it, the load
 * generator (receivers alternating between A and B, the publisher on A), then all stopped.
 * With `profile`, perf samples B for P.clusterPerfS seconds inside the measured window.
 */
async function measureCluster(loadgen, name, extra, { timeoutMs = 300000, profile = null } = {}) {
  const t0 = Date.now();
  const rec = { server: name, scenario: 'cluster' };
  let redis;
  const nodes = [];
  let perfChild = null;
  let perfDir = null;
  try {
    redis = await startRedis();
    rec.redis = { port: redis.port, pid: redis.pid };
    for (const label of ['A', 'B']) {
      const srv = await startServer(name, { REDIS_URL: redis.url });
      nodes.push(srv);
      rec[`node_${label.toLowerCase()}`] = { port: srv.port, pid: srv.pid, nofile: srv.nofile };
    }
    const [a, b] = nodes;
    await waitSubscribed(redis.port, 2);
    const needed = Math.ceil((extra.clients ?? 0) / 2) + 256;
    for (const srv of nodes) {
      if (srv.nofile && srv.nofile.soft < needed) {
        rec.warning = `server open-files limit ${srv.nofile.soft} < ${needed} needed`;
        log(`WARNING ${name}: ${rec.warning}`);
      }
    }
    const args = loadgenArgs(a, 'cluster', { ...extra, 'port-b': b.port, 'server-pid-b': b.pid, 'redis-pid': redis.pid });
    log(`cluster ${name}${profile ? ' (profile of B)' : ''}: ${path.basename(loadgen)} ${args.join(' ')}`);
    let perfDone = null;
    const onStderrLine = profile
      ? (line) => {
        if (perfDone || !/\bjoined\b/i.test(line)) return;
        perfDir = mkdtempSync(path.join(os.tmpdir(), 'sidewire-bench-perf-'));
        const data = path.join(perfDir, 'perf.data');
        // after the load generator's 1 s warm-up, inside its measured window
        perfDone = sleep(1500).then(() => new Promise((resolve) => {
          perfChild = spawn('perf', ['record', '-q', '-e', profile.event, '-F', '999', '-g', '-p', String(b.pid), '-o', data, '--', 'sleep', String(P.clusterPerfS)],
            { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
          track(perfChild);
          let err = '';
          perfChild.stderr.on('data', (d) => { err = tail(err + d, 10); });
          perfChild.once('error', (e) => resolve({ error: String(e) }));
          perfChild.once('close', (code) => resolve(code === 0 && existsSync(data) ? { data } : { error: `perf record exited ${code}: ${err}` }));
        }));
      }
      : undefined;
    const r = await runLoadgen(loadgen, args, { timeoutMs, onStderrLine });
    Object.assign(rec, { loadgen_exit: r.code, result: r.json, loadgen_stderr: r.stderr });
    if (r.error) rec.error = r.error;
    else if (r.json && r.json.connected < r.json.clients) rec.error = `only ${r.json.connected}/${r.json.clients} clients connected`;
    if (profile) {
      const p = perfDone ? await perfDone : { error: 'the load generator never joined' };
      rec.profile = p.error
        ? { error: p.error }
        : { pid: b.pid, seconds: P.clusterPerfS, event: profile.event, command: `perf record -e ${profile.event} -F 999 -g -p <B> -- sleep ${P.clusterPerfS}`, ...perfSummary(p.data, b.pid) };
    }
  } catch (err) {
    rec.error = String(err?.message || err);
  } finally {
    if (perfChild && perfChild.exitCode === null) killGroup(perfChild.pid, 'SIGKILL');
    if (perfDir) rmSync(perfDir, { recursive: true, force: true });
    for (const [i, srv] of nodes.entries()) {
      const key = `node_${i ? 'b' : 'a'}`;
      rec[key].exit = await stopServer(srv);
      if (rec.error) rec[key].stderr = tail(srv.stderr, 15);
    }
    if (redis) {
      rec.redis.exit = await stopRedis(redis);
      if (rec.error) rec.redis.output = tail(redis.stdout + redis.stderr, 10);
    }
  }
  rec.wall_s = (Date.now() - t0) / 1000;
  if (rec.error) log(`  ${name}: ERROR ${rec.error}`);
  else log(`  ${name}: ${summarize(rec.result)}`);
  await sleep(P.cooldownMs);
  return rec;
}

// -------------------------------------------------------------------------------- preparation

function ensureLoadgen() {
  if (opts.loadgen) {
    if (!existsSync(opts.loadgen)) throw new Error(`--loadgen ${opts.loadgen} does not exist`);
    return opts.loadgen;
  }
  const buildDir = path.join(repoRoot, 'build');
  const bin = path.join(buildDir, 'sidewire_loadgen');
  if (opts.noBuild) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing (and --no-build)`);
    return bin;
  }
  const cache = (() => { try { return readFileSync(path.join(buildDir, 'CMakeCache.txt'), 'utf8'); } catch { return ''; } })();
  if (!/^SIDEWIRE_BUILD_BENCH:BOOL=ON$/m.test(cache)) {
    log('configuring build/ with -DSIDEWIRE_BUILD_BENCH=ON');
    const r = spawnSync('cmake', ['-S', repoRoot, '-B', buildDir, '-DSIDEWIRE_BUILD_BENCH=ON'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('cmake configure failed');
  }
  log('building sidewire_loadgen');
  const r = spawnSync('cmake', ['--build', buildDir, '--target', 'sidewire_loadgen', '-j', String(os.availableParallelism?.() ?? 2)], { stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(bin)) {
    throw new Error(`building sidewire_loadgen failed${existsSync(bin) ? ' (--no-build runs the binary already there)' : ''}`);
  }
  return bin;
}

function ensureNextBuild(dataDir) {
  if (existsSync(path.join(nextAppDir, '.next', 'BUILD_ID'))) return;
  if (opts.noBuild) throw new Error('examples/ticketing has no production build (and --no-build)');
  log('building examples/ticketing for production (npx next build examples/ticketing)');
  const r = spawnSync('npx', ['next', 'build', 'examples/ticketing'], {
    cwd: repoRoot, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production', SIDEWIRE_DATA_DIR: dataDir, NEXT_TELEMETRY_DISABLED: '1' },
  });
  if (r.status !== 0 || !existsSync(path.join(nextAppDir, '.next', 'BUILD_ID'))) throw new Error('next build examples/ticketing failed');
}

// --------------------------------------------------------------------------------- scenarios

async function scenarioIdle(loadgen) {
  const out = { date: new Date().toISOString(), params: { clients: P.idleClients, concurrency: P.idleConcurrency, settle_ms: P.settleMs, idle_ms: P.idleMs }, pairs: {} };
  for (const [pairId, pair] of Object.entries(PAIRS)) {
    const extra = { clients: P.idleClients, concurrency: P.idleConcurrency, 'settle-ms': P.settleMs, 'idle-ms': P.idleMs, 'gc-path': '/gc' };
    const entry = { label: pair.label };
    for (const role of ['sidewire', 'other']) {
      const rec = await measure(loadgen, pair[role], 'idle', extra, 300000);
      entry[role] = { server: pair[role], runs: [rec], result: rec.error ? null : rec.result, error: rec.error };
    }
    out.pairs[pairId] = entry;
  }
  return out;
}

/**
 * Runs `scenario` P.reps times per server of `pair`, alternating which goes first so that a slow
 * drift of the machine hits both, and keeps the median of the good runs (`isGood(result)`).
 */
async function alternatingReps(loadgen, pair, scenario, extra, isGood = () => true, run = (name) => measure(loadgen, name, scenario, extra, 300000)) {
  const runs = { sidewire: [], other: [] };
  for (let i = 0; i < P.reps; i++) {
    const order = i % 2 === 0 ? ['sidewire', 'other'] : ['other', 'sidewire'];
    for (const role of order) {
      log(`${scenario} rep ${i + 1}/${P.reps}`);
      runs[role].push(await run(pair[role]));
    }
  }
  const entry = { label: pair.label };
  for (const role of ['sidewire', 'other']) {
    const good = runs[role].filter((r) => !r.error && r.result && isGood(r.result)).map((r) => r.result);
    entry[role] = {
      server: pair[role],
      runs: runs[role],
      result: medianResult(good),
      error: good.length === 0 ? runs[role].map((r) => r.error || `no good ${scenario} run`).join('; ') : undefined,
    };
  }
  return entry;
}

async function scenarioFanout(loadgen) {
  const out = {
    date: new Date().toISOString(),
    params: { receivers: P.fanoutClients, publishers: 1, payload: P.payload, window: P.window, duration_s: P.durationS, reps: P.reps },
    pairs: {},
  };
  for (const [pairId, pair] of Object.entries(PAIRS)) {
    const extra = {
      clients: P.fanoutClients, concurrency: P.fanoutConcurrency, 'duration-s': P.durationS, window: P.window, payload: P.payload,
    };
    out.pairs[pairId] = await alternatingReps(loadgen, pair, 'fanout', extra);
  }
  return out;
}

async function scenarioStorm(loadgen) {
  // A storm's time is bimodal on a small machine: when the kernel's accept queue overflows
  // (somaxconn caps it at 4096 here), the clients it dropped retry after 1 s. Several runs,
  // alternating, and the median of those in which every client connected.
  const out = { date: new Date().toISOString(), params: { clients: P.stormClients, concurrency: P.stormClients, reps: P.reps }, pairs: {} };
  for (const [pairId, pair] of Object.entries(PAIRS)) {
    const extra = { clients: P.stormClients, concurrency: P.stormClients };
    out.pairs[pairId] = await alternatingReps(loadgen, pair, 'storm', extra, (r) => r.connect_ms > 0);
  }
  return out;
}

/** One autocannon window; every response time (ms) also goes to `samples` when given. */
async function autocannonRun(url, durationS, samples = null) {
  const { default: autocannon } = await import('autocannon');
  const r = await new Promise((resolve, reject) => {
    const instance = autocannon({ url, connections: P.acConnections, duration: durationS, timeout: 10 }, (err, res) => (err ? reject(err) : resolve(res)));
    if (samples) instance.on('response', (client, statusCode, bytes, responseTime) => samples.push(responseTime));
  });
  return {
    duration_s: durationS,
    connections: P.acConnections,
    requests: r.requests?.total,
    rps: r.requests?.average,
    latency_ms: {
      p50: r.latency?.p50, p90: r.latency?.p90, p99: r.latency?.p99, max: r.latency?.max, mean: r.latency?.average,
    },
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
}

/** Percentiles of pooled response times (ms), in the shape autocannonRun returns. */
function pooled(samples, runs) {
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] : null);
  const seconds = runs.reduce((a, x) => a + x.duration_s, 0);
  return {
    duration_s: seconds,
    connections: P.acConnections,
    requests: sorted.length,
    rps: seconds > 0 ? sorted.length / seconds : null,
    latency_ms: {
      p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1] : null,
      mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null,
    },
    non2xx: runs.reduce((a, x) => a + (x.non2xx ?? 0), 0),
    errors: runs.reduce((a, x) => a + (x.errors ?? 0), 0),
    timeouts: runs.reduce((a, x) => a + (x.timeouts ?? 0), 0),
  };
}

/**
 * The page gets faster for a good while after start (V8 tiers up React's and Next's code; on
 * 2 CPUs the request rate can double over 20–30 s): autocannon rounds of acWarmupS seconds,
 * at least acWarmupMinS in all, until the last three rounds' request rates are within 15 % of
 * their mean, at most acWarmupMaxS.
 */
async function warmUp(url, name) {
  const rounds = [];
  for (let spent = 0; spent < P.acWarmupMaxS; spent += P.acWarmupS) {
    const r = await autocannonRun(url, P.acWarmupS);
    rounds.push(Math.round(r.rps));
    const last = rounds.slice(-3);
    const mean = last.reduce((a, b) => a + b, 0) / last.length;
    const stable = last.length === 3 && mean > 0 && last.every((x) => Math.abs(x - mean) / mean < 0.15);
    if (stable && spent + P.acWarmupS >= P.acWarmupMinS) break;
  }
  log(`next ${name}: warm-up ${rounds.length} × ${P.acWarmupS} s, req/s ${rounds.join(', ')}`);
  return { round_s: P.acWarmupS, rps: rounds };
}

/**
 * autocannon on the page while the load generator runs the fan-out of (b) against the same
 * process: autocannon starts once the clients joined and the load generator's 1 s warm-up
 * passed, and the fan-out lasts past autocannon's end.
 */
async function loadedWindow(loadgen, srv, url, name, samples, label = 'loaded') {
  const extra = {
    clients: P.fanoutClients, concurrency: P.fanoutConcurrency, 'duration-s': P.acDurationS + 3, window: P.window, payload: P.payload,
  };
  let joined;
  const joinedP = new Promise((resolve) => { joined = resolve; });
  const args = loadgenArgs(srv, 'fanout', extra);
  log(`next ${name}: ${label}: ${path.basename(loadgen)} ${args.join(' ')}`);
  const lgP = runLoadgen(loadgen, args, {
    timeoutMs: 300000,
    onStderrLine: (line) => { if (/\bjoined\b/i.test(line)) joined(line); },
  });
  let joinTimer;
  const how = await Promise.race([
    joinedP.then(() => 'joined'),
    lgP.then(() => 'exited'),
    new Promise((resolve) => { joinTimer = setTimeout(() => resolve('timed out'), 120000); }),
  ]);
  clearTimeout(joinTimer);
  if (how !== 'joined') {
    const r = await Promise.race([lgP, sleep(1000).then(() => null)]);
    throw new Error(`load generator ${how} before its clients joined${r ? `: ${r.error || ''} ${r.stderr}` : ''}`);
  }
  await sleep(1500); // the loadgen's 1 s warm-up before it measures
  const loaded = await autocannonRun(url, P.acDurationS, samples);
  log(`  ${label} p99 ${loaded.latency_ms.p99} ms, ${Math.round(loaded.rps)} req/s`);
  const lg = await lgP;
  if (lg.json) log(`  fan-out meanwhile: ${summarize(lg.json)}`);
  return { loaded, fanout: lg.json, loadgen_exit: lg.code, loadgen_stderr: lg.stderr, fanout_error: lg.error || undefined };
}

async function scenarioNext(loadgen) {
  const out = {
    date: new Date().toISOString(),
    params: {
      page: '/', rounds: P.nextRounds, control: P.nextControl, autocannon_connections: P.acConnections, autocannon_duration_s: P.acDurationS,
      warmup: { round_s: P.acWarmupS, min_s: P.acWarmupMinS, max_s: P.acWarmupMaxS },
      fanout: { receivers: P.fanoutClients, payload: P.payload, window: P.window },
    },
    servers: {},
  };
  const dataRoot = mkdtempSync(path.join(os.tmpdir(), 'sidewire-bench-data-'));
  try {
    ensureNextBuild(path.join(dataRoot, 'build'));
    for (const [role, name] of [['sidewire', 'next-sidewire'], ['other', 'next-socketio']]) {
      const rec = { server: name };
      let srv;
      let controlSrv = null;
      try {
        const dataDir = path.join(dataRoot, name);
        mkdirSync(dataDir, { recursive: true });
        srv = await startServer(name, { SIDEWIRE_DATA_DIR: dataDir });
        Object.assign(rec, { port: srv.port, pid: srv.pid, nofile: srv.nofile });
        const url = `http://127.0.0.1:${srv.port}/`;
        const probe = await fetch(url);
        rec.page_status = probe.status;
        await probe.arrayBuffer();
        if (probe.status !== 200) throw new Error(`GET / answered ${probe.status}`);
        rec.warmup = await warmUp(url, name);
        // Rounds of an idle window then a loaded window, every response time pooled per kind:
        // alternating cancels the page's drift, pooling steadies a p99 that one 10 s window
        // (a few thousand requests) leaves noisy.
        const idleSamples = [];
        const loadedSamples = [];
        const elsewhereSamples = [];
        rec.rounds = [];
        // The control (sidewire only): the same fan-out against a second sidewire process
        // (bench/servers/sidewire-sio.mjs) while autocannon still asks this one for the page.
        // What the page loses then is the machine's doing (the CPUs the load takes), not the
        // process's: the in-process cost is loaded ÷ loaded elsewhere.
        if (role === 'sidewire' && P.nextControl) controlSrv = await startServer('sidewire-sio');
        for (let round = 1; round <= P.nextRounds; round++) {
          log(`next ${name}: round ${round}/${P.nextRounds}: idle, autocannon ${P.acConnections} connections ${P.acDurationS} s`);
          const idle = await autocannonRun(url, P.acDurationS, idleSamples);
          log(`  idle p99 ${idle.latency_ms.p99} ms, ${Math.round(idle.rps)} req/s`);
          const loaded = await loadedWindow(loadgen, srv, url, name, loadedSamples);
          const entry = { idle, ...loaded };
          if (controlSrv) {
            await sleep(P.cooldownMs);
            const other = await loadedWindow(loadgen, controlSrv, url, name, elsewhereSamples, 'loaded elsewhere');
            entry.loaded_elsewhere = other.loaded;
          }
          rec.rounds.push(entry);
          await sleep(P.cooldownMs);
        }
        rec.idle = pooled(idleSamples, rec.rounds.map((x) => x.idle));
        rec.loaded = pooled(loadedSamples, rec.rounds.map((x) => x.loaded));
        if (elsewhereSamples.length) {
          rec.loaded_elsewhere = pooled(elsewhereSamples, rec.rounds.map((x) => x.loaded_elsewhere));
          rec.in_process_ratio = rec.loaded.latency_ms.p99 / rec.loaded_elsewhere.latency_ms.p99;
          log(`  pooled: loaded elsewhere p99 ${rec.loaded_elsewhere.latency_ms.p99} ms: in-process cost ${rec.in_process_ratio.toFixed(2)}x`);
        }
        const last = rec.rounds[rec.rounds.length - 1];
        rec.fanout = last.fanout;
        if (last.fanout_error) rec.fanout_error = last.fanout_error;
        rec.ratio = rec.idle.latency_ms.p99 > 0 ? rec.loaded.latency_ms.p99 / rec.idle.latency_ms.p99 : null;
        log(`  pooled: idle p99 ${rec.idle.latency_ms.p99} ms, loaded p99 ${rec.loaded.latency_ms.p99} ms: ${rec.ratio?.toFixed(2)}x`);
      } catch (err) {
        rec.error = String(err?.message || err);
        log(`  ${name}: ERROR ${rec.error}`);
      } finally {
        if (srv) {
          rec.server_exit = await stopServer(srv);
          if (rec.error) rec.server_stderr = tail(srv.stderr, 15);
        }
        if (controlSrv) await stopServer(controlSrv);
      }
      out.servers[role] = rec;
      await sleep(P.cooldownMs);
    }
  } catch (err) {
    out.error = String(err?.message || err);
    log(`next: ERROR ${out.error}`);
  } finally {
    rmSync(dataRoot, { recursive: true, force: true });
  }
  return out;
}

/**
 * (e) Cross-node fan-out: the fan-out of (b) over a fleet of two nodes of one kind sharing one
 * Redis: half the receivers on A, half on B, the publisher on A (its `publish` makes A run
 * io.to(room).emit). The kinds alternate as in (b); then, for sidewire, one more run (not
 * measured) with perf sampling B.
 */
async function scenarioCluster(loadgen) {
  const out = {
    date: new Date().toISOString(),
    params: {
      receivers: P.clusterClients, nodes: 2, publishers: 1, payload: P.payload, window: P.window,
      duration_s: P.clusterDurationS, reps: P.reps, drain_ms: P.clusterDrainMs, perf_s: P.clusterPerfS,
    },
    redis: spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout?.trim() || null,
    machine: { nproc: os.availableParallelism?.() ?? os.cpus().length, loadavg_at_start: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    pairs: {},
  };
  const extra = {
    clients: P.clusterClients, concurrency: P.fanoutConcurrency, 'duration-s': P.clusterDurationS, window: P.window,
    payload: P.payload, 'drain-ms': P.clusterDrainMs,
  };
  const good = (r) => r.connected === r.clients && r.deliveries > 0;
  out.pairs.sio = await alternatingReps(loadgen, CLUSTER_PAIR, 'cluster', extra, good, (name) => measureCluster(loadgen, name, extra));
  out.perf = perfSupport();
  log(`cluster: perf: ${out.perf.note}`);
  if (out.perf.available) {
    log(`cluster: profile of node B (${CLUSTER_PAIR.sidewire}), ${P.clusterPerfS} s`);
    const rec = await measureCluster(loadgen, CLUSTER_PAIR.sidewire, extra, { profile: out.perf });
    out.profile = { ...(rec.profile || { error: rec.error || 'no profile' }), run: rec.result ?? null };
    if (out.profile.error) log(`  profile: ERROR ${out.profile.error}`);
  }
  out.machine.loadavg_at_end = os.loadavg().map((x) => Math.round(x * 100) / 100);
  return out;
}

// --------------------------------------------------------------------------------------- main

async function main() {
  mkdirSync(opts.out, { recursive: true });
  const jsonPath = path.join(opts.out, 'results.json');
  const mode = opts.quick ? 'quick' : 'full';
  const previous = (() => { try { return JSON.parse(readFileSync(jsonPath, 'utf8')); } catch { return null; } })();

  if (opts.reportOnly) {
    if (!previous) throw new Error(`${jsonPath} not found`);
    await writeReport(previous, opts.out);
    return;
  }

  const command = `npm run bench${opts.argv.length ? ` -- ${opts.argv.join(' ')}` : ''}`;
  const machine = machineInfo();
  log(`${mode} run on ${machine.nproc} × ${machine.cpu}, Node ${machine.node}, load average ${machine.loadavg_at_start.join(' ')}`);
  if (machine.loadavg_at_start[0] > machine.nproc * 0.25) {
    log('WARNING: the machine is busy (load average above a quarter of the CPUs): the numbers will be noisy');
  }
  if (machine.nofile && machine.nofile.hard < Math.max(P.idleClients, P.stormClients) + 256) {
    log(`WARNING: the open-files hard limit is ${machine.nofile.hard}: too low for ${Math.max(P.idleClients, P.stormClients)} connections`);
  }

  const loadgen = ensureLoadgen();
  log(`load generator: ${loadgen}`);

  const runners = { idle: scenarioIdle, fanout: scenarioFanout, storm: scenarioStorm, next: scenarioNext, cluster: scenarioCluster };
  // (f)-(h) are scripts of their own with reports of their own (COALESCE.md, SCENARIOS.md,
  // MEMORY.md in bench/), run here one after the other; --quick shortens them.
  const scripts = {
    coalesce: ['coalesce.mjs', opts.quick ? ['--duration=2', '--delays=0,1', '--windows=16', '--rates=1000', '--receivers=200'] : []],
    scenarios: ['scenarios.mjs', opts.quick ? ['--duration=2', '--only=room', '--no-perf'] : []],
    memory: ['memory.mjs', opts.quick ? ['--clients=500', '--idle=2000', '--no-snapshots'] : []],
  };
  for (const [name, [file, args]] of Object.entries(scripts)) {
    if (!opts.only.includes(name)) continue;
    log(`=== scenario ${name} (bench/${file})`);
    const outArgs = opts.out === benchDir ? [] : [`--out=${path.join(opts.out, file.replace('.mjs', '').toUpperCase() + '.md')}`];
    const r = spawnSync(process.execPath, [path.join(benchDir, file), `--loadgen=${loadgen}`, ...args, ...outArgs], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`bench/${file} failed (${r.status ?? r.signal})`);
  }
  if (!opts.only.some((s) => s in runners)) {
    // Only (f)-(h): RESULTS.md embeds their reports, so it is written again from the last results.
    if (previous) await writeReport(previous, opts.out);
    return;
  }
  const scenarios = previous && previous.mode === mode && opts.only.length < Object.keys(runners).length ? { ...(previous.scenarios || {}) } : {};
  for (const s of Object.keys(runners)) {
    if (!opts.only.includes(s)) continue;
    log(`=== scenario ${s}`);
    scenarios[s] = await runners[s](loadgen);
    scenarios[s].command = command;
  }

  const results = {
    version: 1,
    mode,
    date: new Date().toISOString(),
    command,
    machine,
    params: P,
    env: Object.fromEntries(['SIDEWIRE_IO_THREADS'].filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
    loadgen: loadgen.startsWith(repoRoot + path.sep) ? path.relative(repoRoot, loadgen) : loadgen,
    scenarios,
  };
  await writeReport(results, opts.out);
  log(`wrote ${path.relative(process.cwd(), opts.out) || '.'}/RESULTS.md, results.json, ratios.svg${results.png ? ', ratios.png' : ''}`);
  for (const r of results.ratios) {
    log(`${r.status.padEnd(4)} ${r.label}: ${r.display} (target ${r.targetText})`);
  }
}

main().catch((err) => {
  console.error('[bench]', err?.stack || err);
  cleanupAll();
  process.exit(1);
});
