#!/usr/bin/env node
// Compression, measured on its own (about a minute): bytes on the wire and server CPU for the
// same Socket.IO fan-out with perMessageDeflate off and on, socket.io 4.8 and sidewire side by
// side in one run. Writes bench/COMPRESSION.md.
//
//   node bench/compression.mjs                 200 clients, 300 broadcasts at 50/s per setup
//   node bench/compression.mjs --clients=100 --broadcasts=200 --rate=40 --out=/tmp/x.md
//
// Each setup runs in a fresh server process (this file with --serve, NODE_ENV=production) on
// 127.0.0.1. The clients are `ws` WebSockets speaking Engine.IO/Socket.IO by hand, each offering
// permessage-deflate as browsers do (`permessage-deflate; client_max_window_bits`); the server's
// option decides. The server broadcasts a different ticket (2-4 KB of JSON, as the ticket desk's
// `ticket:updated`) to every client at a fixed rate. Wire bytes: what the clients' TCP sockets
// read during the run. Server CPU: user + system time of the whole server process (every thread)
// from the first broadcast until the last client has its last message.
import { fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(benchDir, '..');

// ------------------------------------------------------------------------------- the workload

const WORDS = (
  'printer queue jams duplex tray paper toner driver update restart ticket customer escalated invoice ' +
  'billing refund login password reset session browser cache cookie network vpn latency timeout laptop ' +
  'monitor docking station keyboard mouse battery charger warranty replacement shipping address order ' +
  'account locked two factor authentication email calendar meeting room projector wifi access point ' +
  'firewall rule certificate expired renewal server outage database backup restore migration schedule ' +
  'weekend maintenance window approved pending review the a to of and in on for with after before when ' +
  'it is not we our they customer reports that since yesterday again every morning please check thanks'
).split(' ');

function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A ticket as the ticket desk emits it (ticket:updated): 2-4 KB of JSON, different each time. */
export function makeTicket(i) {
  const r = prng(1000 + i);
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  const sentence = (n) => {
    const w = [];
    for (let k = 0; k < n; k++) w.push(pick(WORDS));
    const s = w.join(' ');
    return `${s[0].toUpperCase()}${s.slice(1)}.`;
  };
  const paragraph = (sentences) => Array.from({ length: sentences }, () => sentence(8 + Math.floor(r() * 10))).join(' ');
  const stamp = (offset) => new Date(Date.UTC(2026, 10, 29, 5, 0, 0) + (i * 7919 + offset) * 1000).toISOString();
  const comments = Array.from({ length: 2 + Math.floor(r() * 4) }, (_, k) => ({
    id: i * 10 + k,
    ticket_id: i,
    author: `agent-${1000 + Math.floor(r() * 9000)}`,
    body: paragraph(1 + Math.floor(r() * 3)),
    created_at: stamp(60 * (k + 1)),
  }));
  return {
    id: i,
    title: sentence(5 + Math.floor(r() * 6)).slice(0, 120),
    description: paragraph(12 + Math.floor(r() * 12)),
    status: pick(['open', 'in_progress', 'resolved', 'closed']),
    priority: pick(['low', 'normal', 'high', 'urgent']),
    assignee: r() < 0.8 ? `agent-${1000 + Math.floor(r() * 9000)}` : null,
    created_at: stamp(0),
    updated_at: stamp(3600),
    tags: Array.from({ length: 1 + Math.floor(r() * 4) }, () => pick(WORDS)),
    comments,
    attachments: r() < 0.3 ? [{ id: i, filename: `${pick(WORDS)}-${i}.png`, size: Math.floor(r() * 1e6), mime: 'image/png' }] : [],
  };
}

// ------------------------------------------------------------------------------- server mode

async function serve(impl, deflate) {
  const server = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
  });
  let io;
  let engine = null;
  const opts = { perMessageDeflate: deflate, transports: ['websocket'] };
  if (impl === 'socket.io') {
    const { Server } = require('socket.io');
    io = new Server(server, opts);
  } else {
    const { Engine, Server } = require(path.join(repoRoot, 'js/index.js'));
    engine = new Engine({ global: false, logLevel: 'warn' });
    io = new Server(server, { engine, ...opts });
  }
  const port = engine
    ? await engine.listen(server, { host: '127.0.0.1', port: 0 })
    : await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
  let cpu0 = null;
  process.on('message', async (m) => {
    if (m.cmd === 'rss') {
      if (global.gc) global.gc();
      process.send({ rss: rss() });
    } else if (m.cmd === 'start') {
      // The tickets are made before the clock starts: the server's work is the emit itself.
      const tickets = Array.from({ length: m.count }, (_, k) => makeTicket(k));
      cpu0 = process.cpuUsage();
      let sent = 0;
      const timer = setInterval(() => {
        io.emit('ticket:updated', tickets[sent]);
        if (++sent === m.count) clearInterval(timer);
      }, 1000 / m.rate);
    } else if (m.cmd === 'measure') {
      const cpu = process.cpuUsage(cpu0);
      if (global.gc) global.gc();
      process.send({ cpuSeconds: (cpu.user + cpu.system) / 1e6, rss: rss() });
    } else if (m.cmd === 'exit') {
      await Promise.race([new Promise((r) => io.close(() => r())), new Promise((r) => setTimeout(r, 2000))]);
      if (engine) await engine.close({ drainMs: 200 });
      process.exit(0);
    }
  });
  process.send({ ready: port });
}

// ------------------------------------------------------------------------------- the clients

function connectClients(WebSocket, port, n) {
  const clients = [];
  const url = `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;
  const one = () =>
    new Promise((resolve, reject) => {
      // perMessageDeflate: what browsers offer (client_max_window_bits); the server decides.
      const ws = new WebSocket(url, { perMessageDeflate: { clientMaxWindowBits: true } });
      const c = { ws, received: 0, bytes0: 0 };
      const timer = setTimeout(() => reject(new Error('client did not connect in time')), 10000);
      ws.on('message', (data) => {
        const s = data.toString();
        if (s.startsWith('42')) c.received++;
        else if (s === '2') ws.send('3');
        else if (s[0] === '0') ws.send('40');
        else if (s.startsWith('40')) {
          clearTimeout(timer);
          resolve(c);
        }
      });
      ws.on('error', reject);
    });
  return (async () => {
    for (let i = 0; i < n; i += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, one));
      clients.push(...batch);
    }
    return clients;
  })();
}

function request(child, cmd, extra = {}) {
  return new Promise((resolve) => {
    child.once('message', resolve);
    child.send({ cmd, ...extra });
  });
}

async function runSetup(setup, o, WebSocket) {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', setup.impl, JSON.stringify(setup.deflate)], {
    env: { ...process.env, NODE_ENV: 'production' },
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const { ready: port } = await new Promise((resolve) => child.once('message', resolve));
    const { rss: rssBefore } = await request(child, 'rss');
    const clients = await connectClients(WebSocket, port, o.clients);
    for (const c of clients) c.bytes0 = c.ws._socket.bytesRead;
    const started = Date.now();
    child.send({ cmd: 'start', count: o.broadcasts, rate: o.rate });
    const deadline = started + (o.broadcasts / o.rate) * 1000 + 30000;
    while (clients.some((c) => c.received < o.broadcasts) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const wallSeconds = (Date.now() - started) / 1000;
    const { cpuSeconds, rss: rssAfter } = await request(child, 'measure');
    const bytes = clients.reduce((n, c) => n + c.ws._socket.bytesRead - c.bytes0, 0);
    const deliveries = clients.reduce((n, c) => n + c.received, 0);
    const result = {
      ...setup,
      responseParams: clients[0].ws._extensions?.['permessage-deflate']?.params ?? null,
      deliveries,
      expected: o.clients * o.broadcasts,
      wireBytes: bytes,
      cpuSeconds,
      wallSeconds,
      rssBefore,
      rssAfter,
    };
    for (const c of clients) c.ws.terminate();
    return result;
  } finally {
    if (child.connected) child.send({ cmd: 'exit' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

// ------------------------------------------------------------------------------- the report

function fmt(n, digits = 0) {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function report(results, o, meta) {
  const payload = (() => {
    let total = 0;
    for (let k = 0; k < o.broadcasts; k++) total += Buffer.byteLength(`42${JSON.stringify(['ticket:updated', makeTicket(k)])}`);
    return total / o.broadcasts;
  })();
  const byKey = Object.fromEntries(results.map((r) => [r.key, r]));
  const lines = [];
  lines.push('# Compression: bytes on the wire and server CPU, with and without perMessageDeflate');
  lines.push('');
  lines.push(`- Date: ${meta.date}`);
  lines.push(`- Machine: ${meta.machine}`);
  lines.push(`- Versions: socket.io ${meta.socketio} (ws ${meta.ws}), sidewire at ${meta.commit}; Node ${process.version}`);
  lines.push(`- Command: \`node bench/compression.mjs${meta.args ? ` ${meta.args}` : ''}\` (${fmt(meta.seconds)} s)`);
  lines.push(
    `- Workload: ${o.clients} WebSocket clients connected to \`/\`; the server broadcasts ${o.broadcasts} different ` +
      `tickets (\`io.emit('ticket:updated', ticket)\`, ${fmt(payload)} bytes of Engine.IO packet on average, 2-4 KB ` +
      `of JSON) at ${o.rate}/s to all of them: ${fmt(o.clients * o.broadcasts)} deliveries per setup. Every client offers ` +
      '`permessage-deflate; client_max_window_bits` (as browsers do); the server\'s option decides. Each setup is a ' +
      'fresh server process; everything runs on one machine over loopback, clients included (they inflate too).',
  );
  lines.push(
    '- Wire bytes: what the clients\' TCP sockets read during the run (WebSocket frames, headers included). Server ' +
      'CPU: user + system time of the whole server process, every thread, from the first broadcast until the last ' +
      'client has its last message. RSS: the server\'s, after a GC, before the clients connect and after the run.',
  );
  lines.push('');
  lines.push('| setup | negotiated | delivered | wire bytes per delivery | wire ÷ uncompressed | server CPU-s | CPU µs per delivery | RSS before → after (MiB) |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const off = byKey[`${r.impl}:off`];
    const perDelivery = r.wireBytes / Math.max(1, r.deliveries);
    const offPer = off ? off.wireBytes / Math.max(1, off.deliveries) : perDelivery;
    const params = r.responseParams ? Object.keys(r.responseParams).filter((k) => r.responseParams[k] !== undefined) : null;
    const negotiated = r.responseParams ? `permessage-deflate${params.length ? `; ${params.join('; ')}` : ''}` : 'no';
    lines.push(
      `| ${r.label} | ${negotiated} | ${fmt(r.deliveries)} / ${fmt(r.expected)} | ${fmt(perDelivery)} | ` +
        `${fmt((perDelivery / offPer) * 100, 1)} % | ${fmt(r.cpuSeconds, 2)} | ${fmt((r.cpuSeconds * 1e6) / Math.max(1, r.deliveries), 2)} | ` +
        `${fmt(r.rssBefore / 1048576, 1)} → ${fmt(r.rssAfter / 1048576, 1)} |`,
    );
  }
  lines.push('');
  const sOff = byKey['sidewire:off'];
  const sOn = byKey['sidewire:on'];
  const sCtx = byKey['sidewire:context'];
  const ioOff = byKey['socket.io:off'];
  const ioOn = byKey['socket.io:on'];
  const per = (r) => r.wireBytes / Math.max(1, r.deliveries);
  const cpuPer = (r) => (r.cpuSeconds * 1e6) / Math.max(1, r.deliveries);
  if (sOff && sOn && sCtx && ioOff && ioOn) {
    lines.push('## What it says');
    lines.push('');
    lines.push(
      `- **Bytes.** perMessageDeflate cuts what goes on the wire to ${fmt((per(sOn) / per(sOff)) * 100)} % with sidewire's ` +
        `default (no context takeover, each broadcast compressed once) and to ${fmt((per(ioOn) / per(ioOff)) * 100)} % with ` +
        `socket.io (ws, context takeover: each message compressed per recipient against what that recipient already got). ` +
        `sidewire with context takeover (\`serverNoContextTakeover: false\`) gets ${fmt((per(sCtx) / per(sOff)) * 100)} %.`,
    );
    lines.push(
      `- **Server CPU per delivery.** sidewire: ${fmt(cpuPer(sOff), 2)} µs off, ${fmt(cpuPer(sOn), 2)} µs with ` +
        `compression (the broadcast is deflated once per I/O thread, every compressed recipient queues the same bytes), ` +
        `${fmt(cpuPer(sCtx), 2)} µs with context takeover (one deflate per recipient). socket.io: ${fmt(cpuPer(ioOff), 2)} µs ` +
        `off, ${fmt(cpuPer(ioOn), 2)} µs on.`,
    );
    lines.push(
      `- **Memory.** Context takeover keeps a zlib stream per connection (about 256 KiB of deflate state at zlib's ` +
        `defaults, made on the first compressed message): RSS after the run is ${fmt(sCtx.rssAfter / 1048576, 1)} MiB for ` +
        `sidewire with it and ${fmt(ioOn.rssAfter / 1048576, 1)} MiB for socket.io, against ${fmt(sOn.rssAfter / 1048576, 1)} MiB ` +
        'for sidewire\'s default, whose compressed connections hold no zlib state of their own.',
    );
    const perConn = (r) => (r.rssAfter - r.rssBefore) / o.clients;
    lines.push(
      `- **The choice.** Context takeover sends ${fmt((1 - per(sCtx) / per(sOn)) * 100)} % fewer bytes than the shared ` +
        `frame, for ${fmt(cpuPer(sCtx) / cpuPer(sOn), 1)}× its server CPU per delivery and ` +
        `${fmt((perConn(sCtx) - perConn(sOn)) / 1024)} KiB more RSS per connection. sidewire compresses a broadcast once ` +
        'and shares the compressed frame (no context takeover) by default: for fan-out the deflate cost stays per message, ' +
        'not per recipient, and a connection costs no memory for it. Context takeover stays available ' +
        '(`serverNoContextTakeover: false`) for apps that send streams of similar messages to few clients (there it ' +
        'also pays to lower `threshold`).',
    );
  }
  lines.push('');
  lines.push('<details><summary>Raw results</summary>');
  lines.push('');
  lines.push('```json');
  lines.push(JSON.stringify({ options: { clients: o.clients, broadcasts: o.broadcasts, rate: o.rate }, meta, results }, null, 1));
  lines.push('```');
  lines.push('');
  lines.push('</details>');
  return `${lines.join('\n')}\n`;
}

// ------------------------------------------------------------------------------- main

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--serve') return serve(args[1], JSON.parse(args[2]));
  const o = { clients: 200, broadcasts: 300, rate: 50, out: path.join(benchDir, 'COMPRESSION.md') };
  for (const a of args) {
    const m = /^--(clients|broadcasts|rate|out)=(.+)$/.exec(a);
    if (!m) throw new Error(`unknown argument ${a} (see the top of bench/compression.mjs)`);
    o[m[1]] = m[1] === 'out' ? path.resolve(m[2]) : Number(m[2]);
  }
  const WebSocket = require('ws');
  const t0 = Date.now();
  const loadAtStart = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const setups = [
    { key: 'socket.io:off', impl: 'socket.io', label: 'socket.io 4.8, perMessageDeflate off (default)', deflate: false },
    { key: 'socket.io:on', impl: 'socket.io', label: 'socket.io 4.8, perMessageDeflate: true', deflate: true },
    { key: 'sidewire:off', impl: 'sidewire', label: 'sidewire, perMessageDeflate off (default)', deflate: false },
    { key: 'sidewire:on', impl: 'sidewire', label: 'sidewire, perMessageDeflate: true', deflate: true },
    {
      key: 'sidewire:context',
      impl: 'sidewire',
      label: 'sidewire, perMessageDeflate with context takeover',
      deflate: { serverNoContextTakeover: false, clientNoContextTakeover: false },
    },
  ];
  const results = [];
  for (const s of setups) {
    process.stdout.write(`[compression] ${s.label} ... `);
    const r = await runSetup(s, o, WebSocket);
    results.push(r);
    process.stdout.write(
      `${r.deliveries}/${r.expected} delivered, ${fmt(r.wireBytes / Math.max(1, r.deliveries))} B/delivery, ` +
        `${fmt(r.cpuSeconds, 2)} CPU-s, ${fmt(r.wallSeconds, 1)} s\n`,
    );
  }
  let commit = 'unknown';
  try {
    const { execSync } = await import('node:child_process');
    commit = execSync('git rev-parse --short HEAD', { cwd: repoRoot }).toString().trim();
    if (execSync('git status --porcelain -- native js', { cwd: repoRoot }).toString().trim()) commit += ' + local changes';
  } catch {
    // not a git checkout
  }
  const cpus = os.cpus();
  const meta = {
    date: new Date().toISOString(),
    machine: `${cpus.length} CPU(s), ${cpus[0]?.model?.trim() ?? '?'}; load average at start ${loadAtStart}`,
    socketio: require('socket.io/package.json').version,
    ws: require('ws/package.json').version,
    commit,
    args: args.join(' '),
    seconds: (Date.now() - t0) / 1000,
  };
  writeFileSync(o.out, report(results, o, meta));
  process.stdout.write(`[compression] wrote ${path.relative(process.cwd(), o.out)}\n`);
}

await main();
