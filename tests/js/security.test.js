'use strict';
// The JS side of the hostile-input findings: what used to kill the process or bypass a check
// through the binding and the README's wiring. allowRequest mirrors socket.io's, so its tests run
// the same body against the `socket.io` package and against sidewire.
const http = require('node:http');
const { io: ioClient } = require('socket.io-client');
const { Engine, Server } = require('../../js/index.js');
const { startImpl, listenOn } = require('./helpers/impls');
const { open, closed, rawExchange, upgradeRequest, waitFor, sleep } = require('./helpers/ws');
const { connected, connectError } = require('./helpers/sio');

function get(port, path, headers = {}) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode, body }));
      })
      .on('error', reject);
  });
}

describe.each(['socket.io', 'sidewire', 'sidewire+listen'])('allowRequest (%s)', (kind) => {
  let t;
  let asked;
  beforeEach(async () => {
    asked = [];
    t = await startImpl(kind, {
      allowRequest: (req, callback) => {
        asked.push(req.url);
        const token = req.headers['x-token'];
        if (token === 'ok') callback(null, true);
        else if (token === 'later') setTimeout(() => callback(null, true), 50);
        else callback('token required', false);
      },
    });
  });
  afterEach(() => t.close());

  test('a refused polling handshake gets 403 with Engine.IO error 4 and the message', async () => {
    const r = await get(t.port, '/socket.io/?EIO=4&transport=polling');
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toEqual({ code: 4, message: 'token required' });
    expect(asked).toHaveLength(1);
  });

  test('a refused WebSocket handshake gets 400 with the message, and the client connect_error', async () => {
    const reply = (await rawExchange(t.port, upgradeRequest("/socket.io/?EIO=4&transport=websocket"))).data;
    expect(reply.toString().split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(reply.toString()).toContain('token required');
    const c = t.client({ transports: ['websocket'] });
    await connectError(c);
    expect(asked.length).toBe(2);
  });

  test('an allowed client connects, over polling and the upgrade; only the handshake is asked about', async () => {
    const c = t.client({ extraHeaders: { 'x-token': 'later' } });
    await connected(c);
    await waitFor(() => c.io.engine.transport.name === 'websocket', 3000);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatch(/transport=polling/);
    const w = t.client({ transports: ['websocket'], extraHeaders: { 'x-token': 'ok' } });
    await connected(w);
    expect(asked).toHaveLength(2);
  });
});

describe('the binding and the README wiring', () => {
  test('a namespace flood over one connection gets CONNECT_ERRORs; the process lives, others connect', async () => {
    const engine = new Engine({ global: false, logLevel: 'off', drainMs: 200 });
    const server = http.createServer();
    const io = new Server(server, { engine });
    const joined = [];
    io.of(/^\/dyn-\d+$/).on('connection', (socket) => joined.push(socket.nsp.name));
    const port = await listenOn(server);
    try {
      const ws = await open(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
      const errors = [];
      ws.on('message', (data) => {
        const s = data.toString();
        if (s === '2') ws.send('3');
        if (s.startsWith('44/dyn-')) errors.push(s);
      });
      await sleep(50);
      for (let i = 0; i <= 4100; i += 1) ws.send(`40/dyn-${i},`);
      await waitFor(() => joined.length + errors.length === 4101, 20000);
      expect(joined.length).toBe(100); // the per-connection limit
      expect(errors[0]).toMatch(/Too many namespaces/);
      expect(engine.stats().limits.namespaces).toBeGreaterThanOrEqual(4001);
      const other = ioClient(`http://127.0.0.1:${port}/dyn-7`, { transports: ['websocket'], forceNew: true, reconnection: false });
      await connected(other);
      other.disconnect();
      ws.close();
    } finally {
      io.close();
      await engine.close({ drainMs: 200 });
    }
  }, 40000);

  test('past the engine\'s namespace limit io.of throws a JS error instead of aborting', async () => {
    const engine = new Engine({ global: false, logLevel: 'off' });
    const io = new Server({ engine });
    let thrown = null;
    try {
      for (let i = 0; i < 5000; i += 1) io.of(`/n${i}`);
    } catch (err) {
      thrown = err;
    }
    expect(thrown && thrown.constructor.name).toBe('Error'); // a JS Error (the addon's realm, not Jest's)
    expect(thrown.message).toMatch(/too many namespaces/);
    io.close();
    await engine.close({ drainMs: 100 });
  });

  test('with listen() and the app\'s own upgrade listener, a refusal answers once and authorize runs once', async () => {
    const engine = new Engine({ global: false, logLevel: 'off', drainMs: 200 });
    let asked = 0;
    engine.channel('/ws/gated', {
      authorize: () => {
        asked += 1;
        return { status: 401, message: 'no token' };
      },
    });
    const server = http.createServer((req, res) => res.end('page'));
    const io = new Server({ engine, cors: { origin: 'http://allowed.test' } });
    server.on('request', (req, res) => io.handleRequest(req, res));
    // The README's wiring: the app's listener, then listen() attaches the engine's as well.
    server.on('upgrade', (req, socket, head) => {
      if (engine.handleUpgrade(req, socket, head)) return;
      socket.destroy();
    });
    const port = await engine.listen(server, { host: '127.0.0.1', port: 0 });
    const errors = [];
    const onError = (err) => errors.push(err);
    process.on('uncaughtException', onError);
    try {
      const reply = (await rawExchange(port, upgradeRequest('/ws/gated'))).data.toString();
      expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 401 Unauthorized');
      expect(reply.match(/HTTP\/1\.1/g)).toHaveLength(1);
      expect(asked).toBe(1);
      const cors = (await rawExchange(port, upgradeRequest('/socket.io/?EIO=4&transport=websocket', { Origin: 'http://evil.test' }))).data.toString();
      expect(cors.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
      expect(cors.match(/HTTP\/1\.1/g)).toHaveLength(1);
      await sleep(100);
      expect(errors).toEqual([]);
    } finally {
      process.off('uncaughtException', onError);
      io.close();
      await engine.close({ drainMs: 200 });
    }
  });

  test('a client flooding a channel whose JS listener is slow is paused, and every message arrives in order', async () => {
    const engine = new Engine({ global: false, logLevel: 'off', drainMs: 200 });
    const channel = engine.channel('/ws/busy', {});
    const got = [];
    channel.on('message', (client, data) => {
      const until = process.hrtime.bigint() + 200000n; // 200 µs of work per message
      while (process.hrtime.bigint() < until);
      got.push(data.slice(0, 8));
    });
    const server = http.createServer();
    engine.attach(server);
    const port = await listenOn(server);
    try {
      const ws = await open(`ws://127.0.0.1:${port}/ws/busy`);
      // 160 MB at 200 µs a message: JS needs 4 s, the engine reads it far faster, so the
      // events waiting for JS pass the bound whatever the machine (or a sanitizer) costs.
      const n = 20000;
      const pad = 'x'.repeat(8000);
      const rssBefore = process.memoryUsage().rss;
      let peak = rssBefore;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 50);
      for (let i = 0; i < n; i += 1) ws.send(`${String(i).padStart(8, '0')}${pad}`);
      await waitFor(() => got.length === n, 60000, 100);
      clearInterval(sampler);
      for (let i = 0; i < n; i += 1) if (got[i] !== String(i).padStart(8, '0')) throw new Error(`message ${i} is ${got[i]}`);
      const stats = engine.stats();
      expect(stats.jsBackpressurePauses).toBeGreaterThan(0);
      expect(stats.limits.eventsForJs).toBeGreaterThan(0);
      // 160 MB were sent; with the bound on events waiting for JS the process never holds it all.
      expect(peak - rssBefore).toBeLessThan(600 * 1024 * 1024);
      ws.close();
      await closed(ws);
    } finally {
      await engine.close({ drainMs: 200 });
      server.close();
    }
  }, 90000);

  test('a fragment in the target and a repeated room key are refused before authorize runs', async () => {
    const engine = new Engine({ global: false, logLevel: 'off', drainMs: 200 });
    const seen = [];
    engine.channel('/ws/fabric', { roomQuery: 'documentId', relay: true, authorize: (req) => seen.push(req.url) && true });
    const server = http.createServer();
    engine.attach(server);
    const port = await listenOn(server);
    try {
      for (const path of ['/ws/fabric#?documentId=secret', '/ws/fabric?documentId=secret&documentId=mine']) {
        const reply = (await rawExchange(port, upgradeRequest(path))).data.toString();
        expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
      }
      expect(seen).toEqual([]);
      const ok = await open(`ws://127.0.0.1:${port}/ws/fabric?documentId=mine`);
      expect(seen).toEqual(['/ws/fabric?documentId=mine']);
      ok.close();
    } finally {
      await engine.close({ drainMs: 200 });
      server.close();
    }
  });
});
