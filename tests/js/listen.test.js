'use strict';
// engine.listen(): the engine accepts on the port, takes the WebSocket upgrades it answers alone
// and hands every other connection to the http.Server untouched. What goes where, and what the
// hooks still see.
const http = require('node:http');
const net = require('node:net');
const WebSocket = require('ws');
const { io: ioClient } = require('socket.io-client');
const { Engine, Server } = require('../../js/index.js');
const { open, messages, sleep } = require('./helpers/ws');

let engine;
let server;
let io;
let port;
let nodeUpgrades; // upgrade URLs that reached Node's 'upgrade' event
let pages; // request URLs that reached Node's request handler
const authorized = [];

beforeAll(async () => {
  engine = new Engine({ global: false, logLevel: 'error' });
  server = http.createServer({ headersTimeout: 600, requestTimeout: 5000, connectionsCheckingInterval: 100 }, (req, res) => {
    if (io && req.url.startsWith('/socket.io/')) return io.handleRequest(req, res);
    pages.push(req.url);
    res.end(`page ${req.url} for ${req.socket.remoteAddress}`);
    return undefined;
  });
  server.on('upgrade', (req) => nodeUpgrades.push(req.url));
  engine.channel('/ws/relay', { relay: true, roomQuery: 'room' });
  const hooked = engine.channel('/ws/hooked', { roomQuery: 'room' });
  hooked.on('connection', (client, req) => client.send(`hello ${req.headers['x-name']} at ${req.url} from ${req.socket.remoteAddress}`));
  engine.channel('/ws/gated', {
    authorize: (req) => {
      authorized.push(req.url);
      return req.headers['x-token'] === 'ok' ? true : { status: 401, message: 'no token' };
    },
  });
  io = new Server({ engine, cors: { origin: 'http://allowed.test' } });
  io.on('connection', (socket) => {
    socket.on('who', (cb) => cb({ name: socket.handshake.headers['x-name'] || null, address: socket.handshake.address, transport: socket.conn.transport.name, query: socket.handshake.query.q || null }));
  });
  port = await engine.listen(server, { host: '127.0.0.1', port: 0 });
});

beforeEach(() => {
  nodeUpgrades = [];
  pages = [];
});

afterAll(async () => {
  await Promise.all([engine.close({ drainMs: 200 }), io.close()]);
});

// Writes `chunks` (gapMs apart) on a raw connection; resolves with what came back once `until`
// matches it, the server closed, or readMs passed.
function rawRequest(chunks, { gapMs = 0, readMs = 1500, until = null } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (until && until.test(got)) sock.destroy();
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
    sock.once('connect', async () => {
      for (const c of chunks) {
        sock.write(c);
        if (gapMs) await sleep(gapMs);
      }
      setTimeout(() => sock.destroy(), readMs);
    });
  });
}

const wsHead = (path, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

test('pages reach the http.Server, keep-alive included, with the client address', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, socket: res.socket }));
    }).on('error', reject);
  });
  const a = await get('/one');
  const b = await get('/two');
  agent.destroy();
  expect(a).toMatchObject({ status: 200, body: 'page /one for 127.0.0.1' });
  expect(b.body).toBe('page /two for 127.0.0.1');
  expect(pages).toEqual(['/one', '/two']);
  expect(engine.address()).toMatchObject({ port });
});

test('a relay channel upgrade is the engine\'s alone: Node never sees it', async () => {
  const a = await open(`ws://127.0.0.1:${port}/ws/relay?room=r1`);
  const b = await open(`ws://127.0.0.1:${port}/ws/relay?room=r1`);
  const got = messages(b, 1);
  a.send('over the engine');
  expect((await got)[0][0]).toBe('over the engine');
  expect(nodeUpgrades).toEqual([]);
  a.close();
  b.close();
});

test('a head that arrives in pieces is still read whole', async () => {
  const head = wsHead('/ws/relay?room=slow');
  const answer = await rawRequest([head.slice(0, 20), head.slice(20, 60), head.slice(60)], { gapMs: 60, readMs: 3000, until: /\r\n\r\n/ });
  expect(answer).toMatch(/^HTTP\/1\.1 101 /);
  expect(answer).toMatch(/Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
  expect(nodeUpgrades).toEqual([]);
});

test('a channel with connection hooks gets the request the engine read', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/hooked?room=h`, { headers: { 'X-Name': 'ada' } });
  const text = await new Promise((resolve, reject) => {
    ws.once('message', (d) => resolve(d.toString()));
    ws.once('error', reject);
  });
  expect(text).toBe('hello ada at /ws/hooked?room=h from 127.0.0.1');
  expect(nodeUpgrades).toEqual([]);
  ws.close();
});

test('a channel with authorize goes through Node, and authorize decides', async () => {
  const ok = await open(`ws://127.0.0.1:${port}/ws/gated?x=1`, { headers: { 'X-Token': 'ok' } });
  ok.close();
  await expect(open(`ws://127.0.0.1:${port}/ws/gated?x=2`)).rejects.toMatchObject({ status: 401 });
  expect(nodeUpgrades).toEqual(['/ws/gated?x=1', '/ws/gated?x=2']);
  expect(authorized).toEqual(['/ws/gated?x=1', '/ws/gated?x=2']);
});

test('an unknown /ws/ path and other upgrades reach Node (404 from the engine\'s listener)', async () => {
  await expect(open(`ws://127.0.0.1:${port}/ws/nowhere`)).rejects.toMatchObject({ status: 404 });
  expect(nodeUpgrades).toEqual(['/ws/nowhere']);
});

test('Socket.IO: websocket straight to the engine with the handshake intact; polling through Node', async () => {
  const ws = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], extraHeaders: { 'x-name': 'grace' }, query: { q: 'w' } });
  const polling = ioClient(`http://127.0.0.1:${port}`, { transports: ['polling'], extraHeaders: { 'x-name': 'poll' }, query: { q: 'p' } });
  try {
    expect(await ws.timeout(3000).emitWithAck('who')).toEqual({ name: 'grace', address: '127.0.0.1', transport: 'websocket', query: 'w' });
    expect(await polling.timeout(3000).emitWithAck('who')).toEqual({ name: 'poll', address: '127.0.0.1', transport: 'polling', query: 'p' });
    expect(nodeUpgrades).toEqual([]);
  } finally {
    ws.close();
    polling.close();
  }
});

test('Socket.IO with CORS: an upgrade with an Origin goes through the CORS check', async () => {
  const bad = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { headers: { Origin: 'http://evil.test' } });
  const status = await new Promise((resolve) => {
    bad.once('unexpected-response', (req, res) => resolve(res.statusCode));
    bad.once('open', () => resolve(101));
    bad.once('error', () => resolve(-1));
  });
  expect(status).toBe(403);
  const good = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { headers: { Origin: 'http://allowed.test' } });
  const first = await new Promise((resolve, reject) => {
    good.once('message', (d) => resolve(d.toString()));
    good.once('error', reject);
  });
  expect(first).toMatch(/^0\{.*"sid":/);
  good.close();
  expect(nodeUpgrades).toHaveLength(2);
});

test('a connection that sends nothing goes to Node after a while, whose headersTimeout answers 408', async () => {
  const started = Date.now();
  const answer = await rawRequest([], { readMs: 4500 });
  expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
}, 10000);

test('a head over 16 KiB goes to Node, which answers 431; other connections are untouched', async () => {
  const keep = await open(`ws://127.0.0.1:${port}/ws/relay?room=k`);
  const peer = await open(`ws://127.0.0.1:${port}/ws/relay?room=k`);
  const answer = await rawRequest([`GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`], { readMs: 800 });
  expect(answer).toMatch(/^HTTP\/1\.1 431 /);
  const got = messages(peer, 1);
  keep.send('still here');
  expect((await got)[0][0]).toBe('still here');
  keep.close();
  peer.close();
});

test('a burst of 500 upgrades at once all open', async () => {
  const clients = await Promise.all(Array.from({ length: 500 }, () => open(`ws://127.0.0.1:${port}/ws/relay?room=burst`)));
  expect(engine.getChannel('/ws/relay').count('burst')).toBe(500);
  for (const c of clients) c.terminate();
});

test('close() stops listening: new connections are refused', async () => {
  const e2 = new Engine({ global: false, logLevel: 'error' });
  const s2 = http.createServer((req, res) => res.end('x'));
  const p2 = await e2.listen(s2, { host: '127.0.0.1', port: 0 });
  expect(await (await fetch(`http://127.0.0.1:${p2}/`)).text()).toBe('x');
  await e2.close({ drainMs: 100 });
  expect(e2.address()).toBeNull();
  const refused = await new Promise((resolve) => {
    const sock = net.connect(p2, '127.0.0.1');
    sock.once('connect', () => { sock.destroy(); resolve('connected'); });
    sock.once('error', (err) => resolve(err.code));
  });
  expect(refused).toBe('ECONNREFUSED');
});

test('listening on a taken port fails with a clear error', async () => {
  const e3 = new Engine({ global: false, logLevel: 'error' });
  try {
    await expect(e3.listen(http.createServer(), { host: '127.0.0.1', port })).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+: Address already in use/);
  } finally {
    await e3.close({ drainMs: 0 });
  }
});

test('handed-over connections count in server.getConnections(), as accepted ones do', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const get = () => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/count', agent }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
  });
  await Promise.all([get(), get()]);
  const open = await new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  expect(open).toBeGreaterThanOrEqual(2);
  agent.destroy();
  await sleep(100);
  const after = await new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  expect(after).toBe(open - 2);
});
