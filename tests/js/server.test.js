'use strict';
// End to end: the real server.mjs serving the example Next.js app, with the engine's
// channels on the same port, driven by the `ws` client.
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { startServerProcess, deskAuth } = require('./helpers/server-process');
const {
  open, messages, silent, closed, rawExchange, upgradeRequest, sleep, waitFor, WebSocket,
} = require('./helpers/ws');
const { io: ioClient } = require('socket.io-client');

describe('server.mjs: Next.js and the engine on one port', () => {
  let srv;
  let dataDir;
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-server-test-'));
    srv = await startServerProcess({ SIDEWIRE_HEADERS_TIMEOUT_MS: '1500', SIDEWIRE_DRAIN_MS: '2000', SIDEWIRE_DATA_DIR: dataDir });
  }, 120000);
  afterAll(async () => {
    if (srv) await srv.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('serves the Next.js page and /health on the same port', async () => {
    const page = await fetch(srv.url('/'));
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/sidewire/);
    const health = await fetch(srv.url('/health'));
    expect(health.status).toBe(200);
    const body = await health.json();
    expect(body.status).toBe('ok');
    expect(typeof body.uptime).toBe('number');
    expect(body.connections.channels['/ws/fabric']).toBeDefined();
  }, 90000);

  test('/ws/fabric relays within a documentId room, text and binary, and isolates rooms', async () => {
    const a = await open(srv.wsUrl('/ws/fabric?documentId=d1&clientID=a'));
    const b = await open(srv.wsUrl('/ws/fabric?documentId=d1&clientID=b'));
    const c = await open(srv.wsUrl('/ws/fabric?documentId=d2&clientID=c'));
    const toB = messages(b, 2);
    const cQuiet = silent(c, 400);
    a.send('yjs-update');
    a.send(Buffer.from([1, 2, 3, 4]));
    const got = await toB;
    expect(got[0]).toEqual(['yjs-update', false]);
    expect([...got[1][0]]).toEqual([1, 2, 3, 4]);
    expect(await cQuiet).toBe(true);
    const health = await (await fetch(srv.url('/health'))).json();
    expect(health.connections.channels['/ws/fabric'].rooms).toMatchObject({ d1: 2, d2: 1 });
    [a, b, c].forEach((ws) => ws.close());
  });

  test('pages keep being served while the channel relays', async () => {
    const peers = await Promise.all(Array.from({ length: 10 }, () => open(srv.wsUrl('/ws/fabric?documentId=busy'))));
    let received = 0;
    peers.forEach((ws) => ws.on('message', () => received++));
    const timer = setInterval(() => peers.forEach((ws) => ws.send('tick')), 10);
    try {
      for (let i = 0; i < 5; i++) {
        const r = await fetch(srv.url('/'));
        expect(r.status).toBe(200);
        await r.text();
      }
    } finally {
      clearInterval(timer);
    }
    expect(received).toBeGreaterThan(0);
    peers.forEach((ws) => ws.close());
  });

  test('bad upgrades get their status; other connections are untouched', async () => {
    const a = await open(srv.wsUrl('/ws/fabric?documentId=safe'));
    const b = await open(srv.wsUrl('/ws/fabric?documentId=safe'));
    const unknown = await rawExchange(srv.port, upgradeRequest('/ws/unknown'));
    expect(unknown.data.toString('latin1')).toMatch(/^HTTP\/1\.1 404 /);
    const version = await rawExchange(srv.port, upgradeRequest('/ws/fabric', { 'Sec-WebSocket-Version': '7' }));
    expect(version.data.toString('latin1')).toMatch(/^HTTP\/1\.1 426 /);
    const garbage = await rawExchange(srv.port, 'GET /ws/fabric HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n');
    expect(garbage.data.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    const toB = messages(b, 1);
    a.send('still fine');
    expect((await toB)[0][0]).toBe('still fine');
    a.close();
    b.close();
  });

  test('a client that never finishes its handshake gets 408 and is dropped', async () => {
    const a = await open(srv.wsUrl('/ws/fabric?documentId=slow'));
    const started = Date.now();
    const { data, ended } = await rawExchange(srv.port, 'GET /ws/fabric?documentId=slow HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n', { waitMs: 6000 });
    expect(ended).toBe(true);
    expect(data.toString('latin1')).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(a.readyState).toBe(WebSocket.OPEN);
    a.close();
    expect(srv.output().stderr + srv.output().stdout).toMatch(/client error .*ERR_HTTP_REQUEST_TIMEOUT -> 408/);
  });

  test('Socket.IO on the same port: polling upgraded to WebSocket, client bundle, /health', async () => {
    const c = ioClient(srv.url('/'), { reconnection: false, forceNew: true, auth: deskAuth() });
    try {
      await new Promise((resolve, reject) => {
        c.once('connect', resolve);
        c.once('connect_error', reject);
      });
      await waitFor(() => c.io.engine.transport.name === 'websocket', 5000);
      const health = await (await fetch(srv.url('/health'))).json();
      expect(health.socketio.sessions).toBeGreaterThanOrEqual(1);
      expect(health.socketio.namespaces['/'].sockets).toBeGreaterThanOrEqual(1);
      const bundle = await fetch(srv.url('/socket.io/socket.io.min.js'));
      expect(bundle.status).toBe(200);
      expect(bundle.headers.get('etag')).toBeTruthy();
      await bundle.arrayBuffer();
      // The channel keeps working next to it.
      const a = await open(srv.wsUrl('/ws/fabric?documentId=mixed'));
      const b = await open(srv.wsUrl('/ws/fabric?documentId=mixed'));
      const toB = messages(b, 1);
      a.send('together');
      expect((await toB)[0][0]).toBe('together');
      a.close();
      b.close();
    } finally {
      c.disconnect();
    }
  });

  test('SIGTERM under load: every client gets 1001 and the process exits 0', async () => {
    // A socket.io client is dropped without a DISCONNECT packet: it would reconnect by itself.
    const sio = ioClient(srv.url('/'), { transports: ['websocket'], reconnection: false, forceNew: true, auth: deskAuth() });
    await new Promise((resolve, reject) => {
      sio.once('connect', resolve);
      sio.once('connect_error', reject);
    });
    const sioReason = new Promise((resolve) => sio.once('disconnect', resolve));
    const clients = await Promise.all(Array.from({ length: 40 }, (_, i) => open(srv.wsUrl(`/ws/fabric?documentId=load${i % 4}`))));
    const codes = Promise.all(clients.map((ws) => closed(ws, 15000)));
    const timer = setInterval(() => {
      for (const ws of clients) if (ws.readyState === WebSocket.OPEN) ws.send(Buffer.alloc(512, 7));
    }, 5);
    await sleep(300);
    srv.child.kill('SIGTERM');
    const exit = await srv.exited;
    clearInterval(timer);
    expect(exit).toEqual({ code: 0, signal: null });
    expect((await codes).map((c) => c.code)).toEqual(Array(40).fill(1001));
    expect(await sioReason).toBe('transport close');
    const { stdout, stderr } = srv.output();
    expect(stdout).toMatch(/bye/);
    expect(stderr).not.toMatch(/Segmentation|Aborted|core dumped|FATAL/);
    // the port is free again
    await new Promise((resolve, reject) => {
      const s = net.createServer().once('error', reject).listen(srv.port, '127.0.0.1', () => s.close(resolve));
    });
  }, 30000);
});
