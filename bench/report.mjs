// bench/run.mjs's output: the key ratios, RESULTS.md, results.json, ratios.svg (hand-written
// SVG) and ratios.png (the SVG rendered by headless Chromium, when /usr/bin/chromium and
// playwright-core are there). `node bench/run.mjs --report-only` rewrites them from results.json.
import { createRequire } from 'node:module';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const CHROMIUM = '/usr/bin/chromium';
const ANALYSIS_PLACEHOLDER = '<!-- analysis -->';

// ------------------------------------------------------------------------------------ ratios

const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);

/** a ÷ b, Infinity when b ≤ 0 < a (e.g. sidewire's RSS did not grow at all), null when unknown. */
function divide(a, b) {
  a = num(a);
  b = num(b);
  if (a === null || b === null) return null;
  if (b <= 0) return a > 0 ? Infinity : null;
  return a / b;
}

function pairResults(results, scenario, pair) {
  const p = results.scenarios?.[scenario]?.pairs?.[pair];
  return { sw: p?.sidewire?.result ?? null, other: p?.other?.result ?? null, entry: p };
}

function whyMissing(results, scenario, pair) {
  const s = results.scenarios?.[scenario];
  if (!s) return 'not run';
  if (s.error) return s.error;
  if (pair) {
    const p = s.pairs?.[pair];
    const errs = [p?.sidewire?.error && `${p.sidewire.server}: ${p.sidewire.error}`, p?.other?.error && `${p.other.server}: ${p.other.error}`].filter(Boolean);
    if (errs.length) return errs.join('; ');
  }
  return 'no result';
}

export function computeRatios(results) {
  const out = [];
  const add = (r) => {
    const value = r.value;
    let status;
    if (value === null || value === undefined || Number.isNaN(value)) status = 'n/a';
    else if (r.informational) status = 'info';
    else status = (r.op === '>=' ? value >= r.target : value <= r.target) ? 'PASS' : 'MISS';
    const meets = value === null || value === undefined ? null : r.op === '>=' ? value >= r.target : value <= r.target;
    out.push({
      ...r,
      value: value === Infinity ? null : value,
      unbounded: value === Infinity || undefined,
      status,
      meets,
      display: value === Infinity ? '∞' : value === null || value === undefined ? 'n/a' : `${fmtRatio(value)}×`,
      targetText: `${r.op === '>=' ? '≥' : '≤'} ${r.target}×`,
    });
  };

  for (const [pair, other, informational] of [['sio', 'socket.io', false], ['ws', 'ws', true]]) {
    const idle = pairResults(results, 'idle', pair);
    add({
      id: `idle-memory-${pair}`, scenario: 'idle', pair, informational, op: '>=', target: 10,
      label: `Idle memory per connection: ${other} ÷ sidewire`,
      short: `Idle RSS/conn, ${other} ÷ sidewire`,
      value: divide(idle.other?.rss_per_conn_bytes, idle.sw?.rss_per_conn_bytes),
      note: idle.sw && idle.other ? undefined : whyMissing(results, 'idle', pair),
      goal: `sidewire ≤ 1/10 of ${other}`,
    });
    add({
      id: `idle-memory-fresh-${pair}`, scenario: 'idle', pair, informational: true, op: '>=', target: 10,
      label: `Memory per connection just after the connect burst: ${other} ÷ sidewire`,
      short: `Fresh RSS/conn, ${other} ÷ sidewire`,
      value: divide(idle.other?.rss_per_conn_fresh_bytes, idle.sw?.rss_per_conn_fresh_bytes),
      note: idle.sw && idle.other ? undefined : whyMissing(results, 'idle', pair),
      goal: 'for comparison',
    });
    const fan = pairResults(results, 'fanout', pair);
    add({
      id: `fanout-cpu-${pair}`, scenario: 'fanout', pair, informational, op: '>=', target: 10,
      label: `Fan-out deliveries per server CPU-second: sidewire ÷ ${other}`,
      short: `Fan-out deliveries/CPU-s, sidewire ÷ ${other}`,
      value: divide(fan.sw?.deliveries_per_cpu_s, fan.other?.deliveries_per_cpu_s),
      note: fan.sw && fan.other ? undefined : whyMissing(results, 'fanout', pair),
      goal: `≥ 10× ${other}'s`,
    });
    const storm = pairResults(results, 'storm', pair);
    add({
      id: `storm-${pair}`, scenario: 'storm', pair, informational, op: '>=', target: 5,
      label: `Connect storm: ${other}'s time ÷ sidewire's`,
      short: `Connect storm, ${other} time ÷ sidewire time`,
      value: divide(storm.other?.connect_ms, storm.sw?.connect_ms),
      note: storm.sw && storm.other ? undefined : whyMissing(results, 'storm', pair),
      goal: `≥ 5× faster than ${other}`,
    });
  }
  const next = results.scenarios?.next;
  add({
    id: 'next-p99-sidewire', scenario: 'next', informational: false, op: '<=', target: 1.2,
    label: 'Next.js page p99 under fan-out ÷ idle p99 (sidewire)',
    short: 'Next p99 loaded ÷ idle, sidewire',
    value: num(next?.servers?.sidewire?.ratio),
    note: num(next?.servers?.sidewire?.ratio) === null ? (next?.servers?.sidewire?.error || whyMissing(results, 'next')) : undefined,
    goal: 'loaded p99 ≤ 1.2× idle p99',
  });
  add({
    id: 'next-p99-in-process', scenario: 'next', informational: true, op: '<=', target: 1.2,
    label: 'Next.js page p99, fan-out in the same process ÷ in another process (sidewire)',
    short: 'Next p99 same ÷ other process, sidewire',
    value: num(next?.servers?.sidewire?.in_process_ratio),
    note: num(next?.servers?.sidewire?.in_process_ratio) === null ? 'not measured' : undefined,
    goal: 'what sharing the process costs',
  });
  add({
    id: 'next-p99-socketio', scenario: 'next', informational: true, op: '<=', target: 1.2,
    label: 'Next.js page p99 under fan-out ÷ idle p99 (socket.io)',
    short: 'Next p99 loaded ÷ idle, socket.io',
    value: num(next?.servers?.other?.ratio),
    note: num(next?.servers?.other?.ratio) === null ? (next?.servers?.other?.error || whyMissing(results, 'next')) : undefined,
    goal: 'for comparison',
  });
  const cl = pairResults(results, 'cluster', 'sio');
  add({
    id: 'cluster-cpu-sio', scenario: 'cluster', pair: 'sio', informational: true, op: '>=', target: 10,
    label: 'Cross-node fan-out over Redis, deliveries per CPU-second of both nodes: sidewire ÷ socket.io',
    short: 'Cluster deliveries/CPU-s (A+B), sidewire ÷ socket.io',
    value: divide(cl.sw?.deliveries_per_cpu_s, cl.other?.deliveries_per_cpu_s),
    note: cl.sw && cl.other ? undefined : whyMissing(results, 'cluster', 'sio'),
    goal: "(b)'s target, for comparison",
  });
  // Key ratios first, in the order of the targets; then the informational ones.
  return [...out.filter((r) => !r.informational), ...out.filter((r) => r.informational)];
}

// ---------------------------------------------------------------------------------- formatting

function fmtRatio(v) {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function fmtInt(v) {
  return num(v) === null ? '–' : Math.round(v).toLocaleString('en-US');
}

function fmtNum(v, digits = 1) {
  return num(v) === null ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtBytes(v) {
  if (num(v) === null) return '–';
  if (Math.abs(v) >= 10 * 1024) return `${fmtNum(v / 1024, 1)} KiB`;
  return `${fmtInt(v)} B`;
}

function fmtMs(us) {
  return num(us) === null ? '–' : fmtNum(us / 1000, us >= 100000 ? 0 : 2);
}

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function mdCell(s) {
  return String(s ?? '–').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A markdown table: the first column left-aligned, the others right-aligned unless `left` lists them. */
function table(header, rows, left = []) {
  const lines = [`| ${header.map(mdCell).join(' | ')} |`, `|${header.map((_, i) => (i === 0 || left.includes(i) ? '---' : '---:')).join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map(mdCell).join(' | ')} |`);
  return lines.join('\n');
}

const SERVER_LABEL = {
  'sidewire-sio': 'sidewire (Socket.IO)',
  socketio: 'socket.io 4.8',
  'sidewire-ws': 'sidewire (raw WS)',
  ws: 'ws 8',
  'next-sidewire': 'Next + sidewire',
  'next-socketio': 'Next + socket.io 4.8',
  'cluster-sidewire': 'sidewire + sidewire/redis-adapter',
  'cluster-socketio': 'socket.io 4.8 + @socket.io/redis-adapter',
};

/** The four servers' columns of a pair scenario: [{ name, result, error }]. */
function columns(s) {
  const cols = [];
  for (const pair of ['sio', 'ws']) {
    for (const role of ['sidewire', 'other']) {
      const e = s?.pairs?.[pair]?.[role];
      if (e) cols.push({ name: e.server, result: e.result, error: e.error, runs: e.runs });
    }
  }
  return cols;
}

function errorsNote(cols) {
  const bad = cols.filter((c) => c.error);
  return bad.length ? `\n\nFailed: ${bad.map((c) => `${SERVER_LABEL[c.name] || c.name}: ${c.error}`).join('; ')}.` : '';
}

// ----------------------------------------------------------------------------------- markdown

function sectionIdle(s) {
  if (!s) return '_Not run._';
  const cols = columns(s);
  const r = (label, f) => [label, ...cols.map((c) => (c.result ? f(c.result) : 'failed'))];
  return [
    `${fmtInt(s.params.clients)} connections, each joined to room \`bench\` (Socket.IO: \`join\` emitted with an ack; raw WebSocket: \`?room=bench\`), opened ${fmtInt(s.params.concurrency)} at a time. The load generator calls \`GET /gc\` (\`global.gc()\` twice) and waits ${fmtInt(s.params.settle_ms)} ms before reading the server's RSS: before connecting, just after (\"fresh\"), and once more after the connections sat idle for ${fmtInt(s.params.idle_ms ?? 0)} ms (heartbeats only) — the figure the ratio uses: what an idle server keeps once its runtime has given back what the connect burst took (V8 shrinks its young generation, grown by the burst, only after some seconds of low allocation). Per connection = (RSS − RSS before) ÷ connected. Run ${s.date}.`,
    '',
    table(['', ...cols.map((c) => SERVER_LABEL[c.name] || c.name)], [
      r('connected', (x) => `${fmtInt(x.connected)} / ${fmtInt(x.clients)}`),
      r('time to connect and join (ms)', (x) => fmtInt(x.connect_ms)),
      r('RSS before (MiB)', (x) => fmtNum(x.rss_before_kb / 1024)),
      r('RSS just after (MiB)', (x) => (x.rss_fresh_kb !== undefined ? fmtNum(x.rss_fresh_kb / 1024) : 'n/a')),
      r('RSS per connection, just after', (x) => (x.rss_per_conn_fresh_bytes !== undefined ? fmtBytes(x.rss_per_conn_fresh_bytes) : 'n/a')),
      r('RSS after the idle period (MiB)', (x) => fmtNum(x.rss_after_kb / 1024)),
      r('**RSS per connection, idle**', (x) => `**${fmtBytes(x.rss_per_conn_bytes)}**`),
      r('client errors', (x) => fmtInt(x.errors)),
    ]) + errorsNote(cols),
  ].join('\n');
}

function sectionFanout(s) {
  if (!s) return '_Not run._';
  const cols = columns(s);
  const r = (label, f) => [label, ...cols.map((c) => (c.result ? f(c.result) : 'failed'))];
  const p = s.params;
  const perRun = cols.map((c) => `${SERVER_LABEL[c.name] || c.name}: ${(c.runs || []).map((x) => (x.result ? fmtInt(x.result.deliveries_per_cpu_s) : 'failed')).join(', ')}`);
  return [
    `${fmtInt(p.receivers)} receivers in one room and one publisher that sends ${p.payload}-byte payloads with up to ${p.window} messages in flight, for ${p.duration_s} s (after a 1 s warm-up). Socket.IO: the publisher emits \`publish\` and the server runs \`io.to(room).emit('msg', payload)\`; raw WebSocket: the server relays the publisher's message to the other members of the room. Server CPU = user + system time of the whole server process (every thread) over the measured window. Each server ran ${p.reps} time(s), alternating with its counterpart, a fresh process each time; every number is the **median of ${p.reps}** (per metric). Run ${s.date}.`,
    '',
    table(['', ...cols.map((c) => SERVER_LABEL[c.name] || c.name)], [
      r('deliveries/s', (x) => fmtInt(x.deliveries_per_sec)),
      r('server CPU-seconds', (x) => fmtNum(x.server_cpu_s, 2)),
      r('**deliveries per server CPU-second**', (x) => `**${fmtInt(x.deliveries_per_cpu_s)}**`),
      r('latency p50 (ms)', (x) => fmtMs(x.latency_us?.p50)),
      r('latency p99 (ms)', (x) => fmtMs(x.latency_us?.p99)),
      r('latency max (ms)', (x) => fmtMs(x.latency_us?.max)),
      r('receivers connected', (x) => `${fmtInt(x.connected)} / ${fmtInt(x.clients)}`),
      r('client errors', (x) => fmtInt(x.errors)),
    ]),
    '',
    `Deliveries per server CPU-second, each run: ${perRun.join('; ')}.${errorsNote(cols)}`,
  ].join('\n');
}

function sectionStorm(s) {
  if (!s) return '_Not run._';
  const cols = columns(s);
  const r = (label, f) => [label, ...cols.map((c) => (c.result ? f(c.result) : 'failed'))];
  return [
    `${fmtInt(s.params.clients)} clients connect at once (concurrency ${fmtInt(s.params.concurrency)}) and join room \`bench\`; the time runs from the first connect until the last client has joined (Socket.IO: its \`join\` acked; raw WebSocket: the upgrade answered). Each server ran ${s.params.reps ?? 1} time(s), alternating with its counterpart; the table shows the **median**. The kernel's accept queue holds at most 4,096 connections here (\`net.core.somaxconn\`): when a server falls behind, the kernel drops the overflow and those clients retry after a second, which is why single runs jump between a few hundred ms and over a second. Run ${s.date}.`,
    '',
    table(['', ...cols.map((c) => SERVER_LABEL[c.name] || c.name)], [
      r('connected', (x) => `${fmtInt(x.connected)} / ${fmtInt(x.clients)}`),
      r('**time until all connected and joined (ms)**', (x) => `**${fmtInt(x.connect_ms)}**`),
      r('connections/s', (x) => (num(x.connect_ms) > 0 ? fmtInt((x.connected * 1000) / x.connect_ms) : '–')),
      r('client errors', (x) => fmtInt(x.errors)),
      ['each run (ms)', ...cols.map((c) => (c.runs || []).map((x) => (x.result && x.result.connect_ms > 0 ? fmtInt(x.result.connect_ms) : 'failed')).join(', '))],
    ]) + errorsNote(cols),
  ].join('\n');
}

function sectionNext(s) {
  if (!s) return '_Not run._';
  const p = s.params;
  const cols = ['sidewire', 'other'].map((role) => s.servers?.[role]).filter(Boolean);
  const r = (label, f) => [label, ...cols.map((c) => (c.error && !c.idle ? 'failed' : f(c) ?? '–'))];
  const lat = (x, k) => (x && num(x.latency_ms?.[k]) !== null ? x.latency_ms[k].toLocaleString('en-US', { maximumFractionDigits: 2 }) : '–');
  return [
    `One process serves the production build of \`examples/ticketing\` (its \`/\` renders on every request from SQLite, in a fresh \`SIDEWIRE_DATA_DIR\`) and Socket.IO on the same port (\`bench/servers/next-sidewire.mjs\`: sidewire routed as in \`server.mjs\`; \`next-socketio.mjs\`: \`new Server(httpServer)\`). autocannon (in the runner's process) requests \`${p.page}\` with ${p.autocannon_connections} connections in ${p.rounds ?? 1} round(s) of two ${p.autocannon_duration_s} s windows: idle, then while the load generator runs the fan-out of (b) (${fmtInt(p.fanout.receivers)} receivers, ${p.fanout.payload}-byte payloads, window ${p.fanout.window}) against the same process. Every response time is pooled per kind (idle, loaded) across the rounds, and the percentiles are those of the pools: alternating cancels the page's drift, pooling steadies the p99 of a single window. The load generator and autocannon share the server's CPUs, so part of what the load costs the page is the machine's, not the process's${p.control ? ': as a control, each sidewire round adds a third window with the same fan-out against a second sidewire process (\`sidewire-sio.mjs\`) while autocannon still asks the Next process for the page; loaded ÷ loaded elsewhere is what sharing the process costs' : ''}. Before that, warm-up rounds of ${p.warmup?.round_s ?? '?'} s until the last three rounds' request rates are within 15 % of their mean (at least ${p.warmup?.min_s ?? '?'} s, at most ${p.warmup?.max_s ?? '?'} s): the page keeps getting faster for a while after the server starts. Run ${s.date}.${s.error ? `\n\nFailed: ${s.error}.` : ''}`,
    '',
    cols.length
      ? table(['', ...cols.map((c) => SERVER_LABEL[c.server] || c.server)], [
        r('idle: page p50 (ms)', (c) => lat(c.idle, 'p50')),
        r('idle: page p99 (ms)', (c) => lat(c.idle, 'p99')),
        r('idle: requests/s', (c) => fmtInt(c.idle?.rps)),
        r('loaded: page p50 (ms)', (c) => lat(c.loaded, 'p50')),
        r('loaded: page p99 (ms)', (c) => lat(c.loaded, 'p99')),
        r('loaded: requests/s', (c) => fmtInt(c.loaded?.rps)),
        r('**p99 loaded ÷ idle**', (c) => (num(c.ratio) === null ? '–' : `**${fmtRatio(c.ratio)}×**`)),
        r('control, the fan-out against another process: page p99 (ms)', (c) => (c.loaded_elsewhere ? lat(c.loaded_elsewhere, 'p99') : '–')),
        r('in-process cost: p99 loaded ÷ loaded elsewhere', (c) => (num(c.in_process_ratio) === null ? '–' : `${fmtRatio(c.in_process_ratio)}×`)),
        r('p99 per round, idle / loaded (ms)', (c) => (c.rounds ? c.rounds.map((x) => `${lat(x.idle, 'p99')} / ${lat(x.loaded, 'p99')}`).join('; ') : '–')),
        r('warm-up rounds (req/s)', (c) => (c.warmup ? c.warmup.rps.join(', ') : '–')),
        r('fan-out meanwhile (last round): deliveries/s', (c) => fmtInt(c.fanout?.deliveries_per_sec)),
        r('fan-out meanwhile (last round): latency p99 (ms)', (c) => fmtMs(c.fanout?.latency_us?.p99)),
        r('non-2xx / errors (all windows)', (c) => {
          const runs = [c.idle, c.loaded].filter(Boolean);
          return `${fmtInt(runs.reduce((a, x) => a + (x.non2xx ?? 0), 0))} / ${fmtInt(runs.reduce((a, x) => a + (x.errors ?? 0) + (x.timeouts ?? 0), 0))}`;
        }),
      ])
      : '',
    cols.filter((c) => c.error || c.fanout_error).map((c) => `\n${SERVER_LABEL[c.server] || c.server}: ${c.error || c.fanout_error}.`).join(''),
  ].join('\n');
}

const pct = (part, whole) => (num(part) !== null && num(whole) > 0 ? `${fmtNum((100 * part) / whole, 0)} %` : '–');
const KIND = { 'cluster-sidewire': 'sidewire', 'cluster-socketio': 'socket.io' };

/** CPU-seconds of the threads of a node, main first, then the engine's, then the rest. */
function threadRows(names) {
  const rank = (n) => (n === 'main' ? 0 : n.startsWith('sidewire-io') ? 1 : n.startsWith('sidewire') ? 2 : 3);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const THREAD_LABEL = (n) => (n === 'main' ? "main (Node's JS thread)" : n === 'node' ? 'other Node threads (V8 platform, libuv; unnamed, "node")' : n);

function sectionCluster(s, results) {
  if (!s) return '_Not run._';
  const p = s.params;
  const v = results.machine?.versions || {};
  const cols = ['sidewire', 'other'].map((role) => s.pairs?.sio?.[role]).filter(Boolean);
  const r = (label, f) => [label, ...cols.map((c) => (c.result ? f(c.result) : 'failed'))];
  const lat = (x, node, k) => fmtMs(x[`latency_${node}_us`]?.[k]);
  const perRun = cols.map((c) => `${KIND[c.server] || c.server}: ${(c.runs || []).map((x) => (x.result ? fmtInt(x.result.deliveries_per_cpu_s) : 'failed')).join(', ')}`);
  const lines = [
    `${fmtInt(p.receivers)} receivers in room \`bench\`, alternating between two server processes of the same kind, node A and node B (half on each), which share one redis-server${s.redis ? ` (${s.redis.replace(/^Redis server /, '').split(' ')[0]})` : ''} that the bench starts for each measurement on loopback (\`--save "" --appendonly no\`, its own temporary directory) and stops after. sidewire: \`bench/servers/cluster-sidewire.mjs\`, \`new Server(httpServer, { adapter: createAdapter(url) })\` with sidewire/redis-adapter; socket.io: \`cluster-socketio.mjs\`, @socket.io/redis-adapter ${v['@socket.io/redis-adapter'] || '?'} over node-redis ${v.redis || '?'} (one pub and one sub client). One publisher, connected to A, emits \`publish\` with ${p.payload}-byte payloads, up to ${p.window} messages in flight (a message is done when every receiver on both nodes has it), and A runs \`io.to(room).emit('msg', payload)\`: A's receivers get it from A, B's through Redis (A publishes once, Redis sends it to both subscribers, A drops its own). ${p.duration_s} s measured after a 1 s warm-up; then the publisher stops, what is in flight drains (up to ${fmtInt(p.drain_ms)} ms), and every receiver checks that it got every message sent, once and in order. CPU = user + system time over the measured window, per process from \`/proc/<pid>/stat\` and per thread from \`/proc/<pid>/task/*/stat\`; deliveries per CPU-second divide by A's plus B's, Redis's CPU is shown apart. Each kind ran ${p.reps} time(s), alternating with the other, with fresh processes (Redis too) each time; every number is the **median of ${p.reps}** (per metric). Run ${s.date}.`,
    '',
    table(['', ...cols.map((c) => SERVER_LABEL[c.server] || c.server)], [
      r('receivers connected, A + B', (x) => `${fmtInt(x.connected_a)} + ${fmtInt(x.connected_b)} / ${fmtInt(x.clients)}`),
      r('messages published/s', (x) => fmtInt(x.messages_per_sec)),
      r('deliveries/s (A\'s and B\'s receivers)', (x) => fmtInt(x.deliveries_per_sec)),
      r('CPU-seconds, node A', (x) => fmtNum(x.cpu_a_s, 2)),
      r('CPU-seconds, node B', (x) => fmtNum(x.cpu_b_s, 2)),
      r('CPU-seconds, A + B', (x) => fmtNum(x.server_cpu_s, 2)),
      r('**deliveries per CPU-second of A + B**', (x) => `**${fmtInt(x.deliveries_per_cpu_s)}**`),
      r('CPU-seconds, redis-server', (x) => fmtNum(x.redis_cpu_s, 2)),
      r('CPU per message: A / B / Redis (µs)', (x) => (x.messages > 0 ? [x.cpu_a_s, x.cpu_b_s, x.redis_cpu_s].map((c) => fmtInt((c * 1e6) / x.messages)).join(' / ') : '–')),
      r('latency p50, receivers on A / on B (ms)', (x) => `${lat(x, 'a', 'p50')} / ${lat(x, 'b', 'p50')}`),
      r('latency p99, receivers on A / on B (ms)', (x) => `${lat(x, 'a', 'p99')} / ${lat(x, 'b', 'p99')}`),
      r('latency max, receivers on A / on B (ms)', (x) => `${lat(x, 'a', 'max')} / ${lat(x, 'b', 'max')}`),
      r('messages missing after the drain, on A / on B', (x) => `${fmtInt(x.missing_a)} / ${fmtInt(x.missing_b)}`),
      r('duplicates / out of order', (x) => `${fmtInt(x.duplicates)} / ${fmtInt(x.reordered)}`),
      r('client errors', (x) => fmtInt(x.errors)),
    ]),
    '',
    `Deliveries per CPU-second of A + B, each run: ${perRun.join('; ')}.`,
  ];
  const ok = cols.filter((c) => c.result);
  const names = new Set(ok.flatMap((c) => [...Object.keys(c.result.threads_a || {}), ...Object.keys(c.result.threads_b || {})]));
  if (names.size) {
    const header = ['CPU-seconds by thread (measured window)'];
    for (const c of ok) header.push(`${KIND[c.server] || c.server}: A`, `${KIND[c.server] || c.server}: B`);
    const rows = threadRows(names).map((n) => [THREAD_LABEL(n), ...ok.flatMap((c) => [c.result.threads_a, c.result.threads_b].map((t) => (t && n in t ? fmtNum(t[n], 2) : '–')))]);
    lines.push('', table(header, rows));
  }
  lines.push('', '### Where the time goes', '', whereTheTimeGoes(s, ok));
  const bad = cols.filter((c) => c.error);
  if (bad.length) lines.push('', `Failed: ${bad.map((c) => `${SERVER_LABEL[c.server] || c.server}: ${c.error}`).join('; ')}.`);
  return lines.join('\n');
}

/** A C++ symbol without its template arguments and nlohmann's ABI tag, at most `max` characters. */
function shortSymbol(sym, max = 90) {
  let out = '';
  let depth = 0;
  for (const ch of String(sym).replace(/json_abi_v[\d_]+::/g, '')) {
    if (ch === '<') {
      if (depth++ === 0) out += '<…>';
    } else if (ch === '>' && depth > 0) {
      depth--;
    } else if (depth === 0) {
      out += ch;
    }
  }
  return out.length > max ? `${out.slice(0, max - 1)}…` : out;
}

/** The paragraph under (e), from the numbers of this run (and the profile, when there is one). */
function whereTheTimeGoes(s, ok) {
  const out = [];
  const perMsg = (cpu, x) => (x.messages > 0 ? `${fmtInt((cpu * 1e6) / x.messages)} µs` : '–');
  for (const c of ok) {
    const x = c.result;
    const kind = KIND[c.server] || c.server;
    const total = (x.cpu_a_s ?? 0) + (x.cpu_b_s ?? 0) + (x.redis_cpu_s ?? 0);
    const ta = x.threads_a || {};
    const tb = x.threads_b || {};
    const io = (t) => Object.entries(t).filter(([n]) => n.startsWith('sidewire-io')).reduce((a, [, v]) => a + v, 0);
    let text = `**${kind}**: the three processes used ${fmtNum(total, 2)} CPU-s in the ${fmtNum(x.seconds, 1)} s window: A ${fmtNum(x.cpu_a_s, 2)} (${pct(x.cpu_a_s, total)}), B ${fmtNum(x.cpu_b_s, 2)} (${pct(x.cpu_b_s, total)}), Redis ${fmtNum(x.redis_cpu_s, 2)} (${pct(x.redis_cpu_s, total)}), for ${fmtInt(x.messages)} messages (${perMsg(x.cpu_a_s, x)} of A's CPU, ${perMsg(x.cpu_b_s, x)} of B's and ${perMsg(x.redis_cpu_s, x)} of Redis's per message, ${fmtInt(x.clients / 2)} receivers a node). `;
    if (c.server === 'cluster-sidewire') {
      text += `On A, Node's main thread took ${fmtNum(ta.main, 2)} CPU-s (${pct(ta.main, x.cpu_a_s)} of A: the \`publish\` handler and its \`io.to(room).emit\`, one call per message) and the engine's I/O thread(s) ${fmtNum(io(ta), 2)} (${pct(io(ta), x.cpu_a_s)}: the local fan-out, the MessagePack encoding and the PUBLISH). On B, the I/O thread(s) took ${fmtNum(io(tb), 2)} CPU-s (${pct(io(tb), x.cpu_b_s)} of B: the Redis subscription, decoding, fan-out to B's receivers) and Node's main thread ${fmtNum(tb.main, 2)} (${pct(tb.main, x.cpu_b_s)})`;
      text += num(tb.main) !== null && num(x.cpu_b_s) > 0 && tb.main / x.cpu_b_s < 0.05 ? ': B\'s JS thread is nearly idle, the broadcasts never reach it.' : '.';
    } else {
      text += `Everything but a little GC and I/O help (the unnamed "node" threads: A ${fmtNum(ta.node, 2)}, B ${fmtNum(tb.node, 2)}) is on Node's main thread: A's ${fmtNum(ta.main, 2)} CPU-s (${pct(ta.main, x.cpu_a_s)} of A) run the handler, the local fan-out and the adapter's encoding and PUBLISH; B's ${fmtNum(tb.main, 2)} (${pct(tb.main, x.cpu_b_s)} of B) decode every message from Redis and fan it out in JS.`;
    }
    out.push(text);
  }
  const [sw, other] = [ok.find((c) => c.server === 'cluster-sidewire')?.result, ok.find((c) => c.server === 'cluster-socketio')?.result];
  if (sw && other && sw.messages > 0 && other.messages > 0) {
    const rb = (x) => (x.cpu_b_s * 1e6) / x.messages;
    const rr = (x) => (x.redis_cpu_s * 1e6) / x.messages;
    const ra = (x) => (x.cpu_a_s * 1e6) / x.messages;
    const window = s.params?.window;
    const hop = (x) => (num(x.latency_b_us?.p50) !== null && num(x.latency_a_us?.p50) !== null ? fmtMs(x.latency_b_us.p50 - x.latency_a_us.p50) : '–');
    out.push(`Per message, socket.io's A cost ${fmtRatio(ra(other) / ra(sw))}× sidewire's A and socket.io's B ${fmtRatio(rb(other) / rb(sw))}× sidewire's B (${fmtInt(sw.clients / 2)} receivers each). Redis does the same work per message for both kinds (one PUBLISH in, two subscribers out, A drops its own copy) and stays a small part of the bill: ${pct(sw.redis_cpu_s, sw.cpu_a_s + sw.cpu_b_s + sw.redis_cpu_s)} of the three processes' CPU with sidewire's nodes, ${pct(other.redis_cpu_s, other.cpu_a_s + other.cpu_b_s + other.redis_cpu_s)} with socket.io's (per message ${fmtInt(rr(sw))} against ${fmtInt(rr(other))} µs, but /proc counts in 10 ms ticks and an idle redis-server takes about 0.02 CPU-s per 10 s by itself, so at socket.io's rate that figure is too coarse to compare). The latencies are those of a closed loop: with ${window} messages in flight, a message reaches its last receiver about ${window} ÷ the message rate after it was sent (sidewire ${fmtMs((window / sw.messages_per_sec) * 1e6)} ms, socket.io ${fmtMs((window / other.messages_per_sec) * 1e6)} ms), so they mostly mirror throughput; what the Redis hop adds is the gap between B's receivers and A's: p50 ${hop(sw)} ms later on B for sidewire, ${hop(other)} ms for socket.io.`);
  }
  const m = s.machine || {}; // this scenario's own, from run.mjs
  if (Array.isArray(m.loadavg_at_start) && m.nproc && m.loadavg_at_start[0] > m.nproc * 0.25) {
    const end = Array.isArray(m.loadavg_at_end) ? ` and ${m.loadavg_at_end[0]} at the end` : '';
    out.push(`The machine was shared while this ran (load average ${m.loadavg_at_start[0]} at the start${end}, on ${m.nproc} CPUs): the rates and latencies are lower and noisier than on a quiet machine; CPU-seconds per delivery hold up better.`);
  }
  const perf = s.perf;
  const prof = s.profile;
  if (!perf) {
    out.push('perf: not probed.');
  } else if (!perf.available) {
    out.push(`perf: not available here (${perf.note}); the per-thread split above, from /proc, is what there is.`);
  } else if (!prof || prof.error) {
    out.push(`perf: ${perf.note}; the profile run failed (${prof?.error || 'no profile'}).`);
  } else {
    const threads = (prof.threads || []).map((t) => `${t.name === 'main' ? 'main' : t.name} ${fmtNum(t.pct, 1)} %`).join(', ');
    const dsos = (prof.dsos || []).slice(0, 6).map((d) => `${d.dso} ${fmtNum(d.pct, 1)} %`).join(', ');
    const top = (prof.symbols || []).slice(0, 15);
    const engine = (prof.symbols || []).filter((t) => t.dso === 'sidewire.node').slice(0, 8);
    out.push(`perf on sidewire's node B, a separate run of the same load (not one of the measured ones: sampling with call graphs slows B): \`${prof.command}\`, ${prof.samples ?? '?'} samples; ${perf.note}. Samples by thread: ${threads || '–'}; by object: ${dsos || '–'}. Top symbols (self time; \`[k]\` = kernel):`);
    out.push(table(['% of B\'s samples', 'thread', 'object', 'symbol'], top.map((t) => [fmtNum(t.pct, 2), t.comm, t.dso, `${t.kernel ? '[k] ' : ''}\`${shortSymbol(t.symbol)}\``]), [1, 2, 3]));
    const kernel = (prof.dsos || []).filter((d) => /kernel/.test(d.dso)).reduce((a, d) => a + d.pct, 0);
    if (kernel > 50) {
      out.push(`${fmtNum(kernel, 0)} % of B's samples are in the kernel, most of them on the socket send path (a \`sendmsg\` per receiver connection per flush, through TCP and the loopback device). Over loopback the sending thread also runs the receiving side's TCP processing (\`tcp_rcv_established\`, \`sock_def_readable\` and the like), so part of that is the clients' share of each delivery, paid here; over a real network it would be the other machine's.`);
    }
    if (engine.length) {
      out.push(`In the engine (\`sidewire.node\`) alone: ${engine.map((t) => `\`${shortSymbol(t.symbol)}\` ${fmtNum(t.pct, 1)} %`).join(', ')}.`);
    }
  }
  return out.join('\n\n');
}

function summaryTable(ratios, informational) {
  const rows = ratios.filter((r) => Boolean(r.informational) === informational).map((r) => [
    r.label,
    r.display + (r.note ? ` (${r.note})` : ''),
    `${r.targetText} (${r.goal})`,
    informational ? (r.meets === null ? '–' : r.meets ? 'meets' : 'below') : `**${r.status}**`,
  ]);
  return table(['ratio', 'measured', 'target', informational ? 'vs the same target' : 'result'], rows);
}

function defaultAnalysis() {
  return ANALYSIS_PLACEHOLDER;
}

/** The body of "## What limits it" in an existing RESULTS.md, when someone has written one. */
function keptAnalysis(mdPath) {
  let md;
  try {
    md = readFileSync(mdPath, 'utf8');
  } catch {
    return null;
  }
  const m = /^## What limits it[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(md);
  if (!m) return null;
  const body = m[1].trim();
  return body && body !== ANALYSIS_PLACEHOLDER ? body : null;
}

// (f)-(h): reports their own scripts wrote beside RESULTS.md, embedded with their headings one
// level down (the first line, their title, becomes the section's).
const EXTRA_REPORTS = [
  ['(f) Coalesced writes (`writeDelayMs`)', 'COALESCE.md'],
  ['(g) Scenarios: message rates and room shapes', 'SCENARIOS.md'],
  ['(h) Memory per idle connection, no forced GC', 'MEMORY.md'],
];
function extraSections(outDir) {
  const parts = [];
  for (const [title, file] of EXTRA_REPORTS) {
    let md;
    try {
      md = readFileSync(path.join(outDir, file), 'utf8');
    } catch {
      continue;
    }
    const body = md.split('\n').slice(1).join('\n').replace(/^(#{2,5}) /gm, '#$1 ').trim();
    parts.push(`## ${title}\n\nFrom [${file}](${file}).\n\n${body}\n`);
  }
  return parts.join('\n');
}

function renderMarkdown(results, ratios, chart, analysis, extras = '') {
  const m = results.machine || {};
  const scen = results.scenarios || {};
  const commands = [...new Set(Object.values(scen).map((s) => s?.command).filter(Boolean))];
  const v = m.versions || {};
  return `# sidewire benchmarks: side by side with socket.io ${v['socket.io'] || '4.8'} and ws ${v.ws || '8'}

${results.mode === 'quick' ? '> **Quick run** (`--quick`: small counts, short durations). It checks the pipeline; its numbers are not the benchmark.\n\n' : ''}- Date: ${results.date}
- Machine: ${m.nproc} CPU(s), ${m.cpu}; MemTotal ${m.mem_total}; kernel ${m.kernel}; Node ${m.node}${m.loadavg_at_start ? `; load average at start ${m.loadavg_at_start.join(' ')}` : ''}
- Versions: socket.io ${v['socket.io'] || '?'}, ws ${v.ws || '?'}, Next.js ${v.next || '?'}, autocannon ${v.autocannon || '?'}${m.commit ? `; sidewire at ${m.commit}` : ''}
- Command: \`${results.command}\`${commands.some((c) => c !== results.command) ? ` (some scenarios come from earlier runs: ${commands.filter((c) => c !== results.command).map((c) => `\`${c}\``).join(', ')}; each section gives its date)` : ''}
- Everything on one machine over loopback (127.0.0.1): the server, the load generator (\`${results.loadgen}\`${results.loadgen === 'build/sidewire_loadgen' ? ', from `bench/loadgen.cpp`' : ''}) and autocannon share ${m.nproc} CPU(s). Each measurement starts a fresh server process (\`node --expose-gc bench/servers/<name>.mjs\`, \`NODE_ENV=production\`, listen backlog ${results.params?.backlog ?? 4096}); the two servers of a pair run back to back. sidewire runs its default of ${results.env?.SIDEWIRE_IO_THREADS ? `${results.env.SIDEWIRE_IO_THREADS} (SIDEWIRE_IO_THREADS)` : '1'} engine I/O thread(s). Open files: ${m.nofile ? `soft ${m.nofile.soft}, hard ${m.nofile.hard}` : '?'}.
- Raw numbers: [results.json](results.json).

## Summary

${summaryTable(ratios, false)}

Informational, the same measurements against \`ws\` 8 (raw WebSocket), socket.io's Next.js isolation, and the fan-out across two nodes over Redis (e), which has no target of its own (that of (b) is shown):

${summaryTable(ratios, true)}

${chart ? `![Key ratios against their targets](${chart})` : ''}

## (a) Idle connections: memory

${sectionIdle(scen.idle)}

## (b) Fan-out: throughput and CPU

${sectionFanout(scen.fanout)}

## (c) Connect storm

${sectionStorm(scen.storm)}

## (d) Next.js isolation: page latency under real-time load

${sectionNext(scen.next)}

## (e) Cross-node fan-out over Redis

${sectionCluster(scen.cluster, results)}

${extras}
## What limits it

${analysis || defaultAnalysis()}

## Reproduce

\`\`\`sh
npm run bench              # the full run; writes bench/RESULTS.md, results.json, ratios.svg, ratios.png
npm run bench -- --quick   # small counts: checks the pipeline
npm run bench -- --only=b  # one scenario (a idle, b fanout, c storm, d next, e cluster, f coalesce, g scenarios, h memory); the others are kept
\`\`\`

The servers are \`bench/servers/*.mjs\` (one app, four stacks, and two fleets over Redis for (e)), the load generator \`bench/loadgen.cpp\`
(built as \`build/sidewire_loadgen\` with \`-DSIDEWIRE_BUILD_BENCH=ON\`), the runner \`bench/run.mjs\`.
`;
}

// --------------------------------------------------------------------------------------- chart

export function renderSvg(ratios, results) {
  const W = 980;
  const x0 = 390; // plot area
  const plotW = 500;
  const rowH = 50;
  const key = ratios.filter((r) => !r.informational);
  const info = ratios.filter((r) => r.informational);
  const headerH = 70;
  const groupH = 30;
  const axisH = 22;
  const H = headerH + axisH + groupH + key.length * rowH + groupH + info.length * rowH + axisH + 44;
  const colors = { PASS: '#2e7d32', MISS: '#c62828', info: '#546e7a', 'n/a': '#9e9e9e' };
  const m = results.machine || {};

  // One logarithmic axis for every row, in decades, with 1× (parity) in it.
  const finite = ratios.map((r) => r.value).filter((v) => typeof v === 'number' && v > 0);
  const targets = ratios.map((r) => r.target);
  const lo = 10 ** Math.floor(Math.log10(Math.min(0.1, ...finite.map((v) => v / 1.5), ...targets)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(100, ...finite.map((v) => v * 1.5), ...targets)));
  const L = (v) => Math.log10(v);
  const sx = (v) => x0 + ((L(Math.min(Math.max(v, lo), hi)) - L(lo)) / (L(hi) - L(lo))) * plotW;
  const decades = [];
  for (let d = lo; d <= hi * 1.0001; d *= 10) decades.push(d);
  const fmtAxis = (d) => `${d >= 1 ? d.toFixed(0) : d.toPrecision(1)}×`;

  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif">`);
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="16" y="28" font-size="18" font-weight="bold" fill="#111">sidewire vs socket.io ${esc(m.versions?.['socket.io'] || '4.8')} and ws ${esc(m.versions?.ws || '8')}: key ratios against their targets</text>`);
  parts.push(`<text x="16" y="50" font-size="12" fill="#555">${esc(`${(results.date || '').slice(0, 10)} · ${m.nproc} CPU(s), ${m.cpu} · Node ${m.node}${results.mode === 'quick' ? ' · QUICK RUN (small counts, not the benchmark)' : ''}`)}</text>`);
  parts.push(`<text x="16" y="66" font-size="11" fill="#777">Bars start at parity (1×); log scale; dashed black line = target. Green PASS / red MISS; grey-blue = informational.</text>`);

  let y = headerH;
  const plotTop = y + axisH;
  const axis = (yy, above) => {
    for (const d of decades) {
      parts.push(`<text x="${sx(d).toFixed(1)}" y="${above ? yy - 6 : yy + 14}" font-size="11" fill="#666" text-anchor="middle">${fmtAxis(d)}</text>`);
    }
  };
  axis(plotTop, true);
  y = plotTop;

  const row = (r) => {
    const cy = y + rowH / 2 + 4;
    const color = colors[r.status] || '#9e9e9e';
    parts.push(`<text x="16" y="${cy - 3}" font-size="13" fill="#111">${esc(r.short)}</text>`);
    parts.push(`<text x="16" y="${cy + 13}" font-size="11" fill="#666">${esc(`target ${r.targetText}${r.op === '<=' ? ' (lower is better)' : ''}`)}</text>`);
    const x1 = sx(1);
    const targetX = sx(r.target);
    parts.push(`<line x1="${targetX.toFixed(1)}" y1="${cy - 16}" x2="${targetX.toFixed(1)}" y2="${cy + 16}" stroke="#111" stroke-width="2" stroke-dasharray="5,3"/>`);
    if (typeof r.value === 'number' || r.unbounded) {
      const end = r.unbounded ? x0 + plotW : sx(r.value);
      const left = Math.min(x1, end);
      parts.push(`<rect x="${left.toFixed(1)}" y="${cy - 9}" width="${Math.max(2, Math.abs(end - x1)).toFixed(1)}" height="18" rx="2" fill="${color}"${r.informational ? ' fill-opacity="0.8"' : ''}/>`);
      const right = end >= x1;
      const text = `${r.display}${r.informational ? '' : ` ${r.status}`}`;
      const tx = right ? Math.max(end, x1 + 2) + 6 : Math.min(end, x1 - 2) - 6;
      parts.push(`<text x="${tx.toFixed(1)}" y="${cy + 5}" font-size="13" font-weight="bold" fill="${color}" text-anchor="${right ? 'start' : 'end'}" stroke="#fff" stroke-width="4" paint-order="stroke">${esc(text)}</text>`);
    } else {
      parts.push(`<text x="${(x1 + 6).toFixed(1)}" y="${cy + 5}" font-size="12" fill="#777" stroke="#fff" stroke-width="4" paint-order="stroke">${esc(`n/a${r.note ? `: ${r.note}` : ''}`.slice(0, 64))}</text>`);
    }
    y += rowH;
  };

  const gridTop = y;
  parts.push(`<text x="16" y="${y + 20}" font-size="14" font-weight="bold" fill="#333">Targets (issue #5)</text>`);
  y += groupH;
  key.forEach(row);
  parts.push(`<line x1="16" y1="${y + 2}" x2="${W - 16}" y2="${y + 2}" stroke="#ddd"/>`);
  parts.push(`<text x="16" y="${y + 22}" font-size="14" font-weight="bold" fill="#333">Informational: against ws 8, socket.io's own Next.js ratio, fan-out over Redis</text>`);
  y += groupH;
  info.forEach(row);
  const gridBottom = y;
  // Grid behind the bars: decades (parity darker).
  const grid = decades.map((d) => `<line x1="${sx(d).toFixed(1)}" y1="${gridTop}" x2="${sx(d).toFixed(1)}" y2="${gridBottom}" stroke="${d === 1 ? '#888' : '#e3e3e3'}" stroke-width="1"/>`);
  parts.splice(5, 0, ...grid);
  axis(gridBottom, false);
  parts.push('</svg>');
  return { svg: `${parts.join('\n')}\n`, width: W, height: H };
}

async function renderPng(svg, width, height, pngPath) {
  if (!existsSync(CHROMIUM)) return `no ${CHROMIUM}`;
  let chromium;
  try {
    const require = createRequire(import.meta.url);
    ({ chromium } = require('playwright-core'));
  } catch {
    return 'playwright-core is not installed';
  }
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 30000,
    });
    const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 2 });
    await page.setContent(`<!doctype html><html><body style="margin:0;background:#fff">${svg}</body></html>`);
    await page.locator('svg').screenshot({ path: pngPath, timeout: 30000 });
    return null;
  } catch (err) {
    return String(err?.message || err).split('\n')[0];
  } finally {
    await browser?.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------- write all

export async function writeReport(results, outDir) {
  const ratios = computeRatios(results);
  results.ratios = ratios;

  const { svg, width, height } = renderSvg(ratios, results);
  const svgPath = path.join(outDir, 'ratios.svg');
  const pngPath = path.join(outDir, 'ratios.png');
  writeFileSync(svgPath, svg);
  rmSync(pngPath, { force: true }); // never embed a chart of an earlier run
  const pngError = await renderPng(svg, width, height, pngPath);
  results.png = !pngError && existsSync(pngPath);
  if (pngError) console.log(`[bench] ratios.png not rendered (${pngError}); RESULTS.md embeds ratios.svg`);

  const mdPath = path.join(outDir, 'RESULTS.md');
  const md = renderMarkdown(results, ratios, results.png ? 'ratios.png' : 'ratios.svg', keptAnalysis(mdPath), extraSections(outDir));
  writeFileSync(mdPath, md);
  writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  return results;
}
