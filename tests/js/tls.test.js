'use strict';
// Native TLS: engine.listen(server, { tls }) serves https and wss on one port, the engine ending
// TLS itself. Node's handler gets the pages (req.socket.encrypted, the client's address), the
// engine its WebSocket upgrades (a raw channel, Socket.IO on every transport), Chromium loads a
// page and opens a wss from it, and certificates reload (engine.reloadTls(), SIGHUP) for new
// connections while open ones go on.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const tls = require('node:tls');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');
const WebSocket = require('ws');
const { io: ioClient } = require('socket.io-client');
const { Engine, Server } = require('../../js/index.js');
const { which } = require('./helpers/nginx');
const { sleep } = require('./helpers/sio');

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];

function makeCert(dir, name) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
}

// The certificate a new TLS connection to `port` is shown.
function peerCertificate(port) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve(c);
    });
    s.once('error', reject);
  });
}

function get(port, p, ca) {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: p, ca }, (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode, body }));
      })
      .on('error', reject);
  });
}

describe('native TLS (engine.listen with tls)', () => {
  let dir;
  let a;
  let b;
  let engine;
  let port;
  let server;
  const keyFile = () => path.join(dir, 'live.key');
  const certFile = () => path.join(dir, 'live.pem');

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-tls-'));
    a = makeCert(dir, 'first');
    b = makeCert(dir, 'second');
    fs.writeFileSync(keyFile(), a.key);
    fs.writeFileSync(certFile(), a.cert);
    engine = new Engine({ global: false, logLevel: 'error', drainMs: 200 });
    server = http.createServer((req, res) => {
      if (req.url === '/page') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(`<!doctype html><p id="out">waiting</p><script>
          const ws = new WebSocket('wss://' + location.host + '/ws/echo');
          ws.onopen = () => ws.send('from the page');
          ws.onmessage = (e) => { document.getElementById('out').textContent = e.data; };
          ws.onerror = () => { document.getElementById('out').textContent = 'error'; };
        </script>`);
        return;
      }
      res.end(JSON.stringify({ encrypted: Boolean(req.socket.encrypted), address: req.socket.remoteAddress, url: req.url }));
    });
    engine.channel('/ws/echo').on('message', (client, data) => client.send(`echo:${data}`));
    const io = new Server(server, { engine });
    io.on('connection', (socket) => socket.on('hello', (ack) => ack({ transport: socket.conn.transport.name })));
    port = await engine.listen(server, { host: '127.0.0.1', port: 0, tls: { key: keyFile(), cert: certFile() } });
  });

  afterAll(async () => {
    if (engine) await engine.close({ drainMs: 200 });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("pages go to Node's handler over https, which sees an encrypted socket and the client's address", async () => {
    const r = await get(port, '/anything?x=1', a.cert);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ encrypted: true, address: '127.0.0.1', url: '/anything?x=1' });
  });

  test('a raw channel over wss', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/ws/echo`, { ca: a.cert });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const got = new Promise((resolve) => ws.once('message', (d) => resolve(String(d))));
    ws.send('hi');
    expect(await got).toBe('echo:hi');
    ws.close();
  });

  test.each([['polling'], ['websocket'], [undefined]])('socket.io-client over https (transports %s)', async (transport) => {
    const c = ioClient(`https://127.0.0.1:${port}`, {
      ca: a.cert,
      reconnection: false,
      forceNew: true,
      ...(transport ? { transports: [transport] } : {}),
    });
    try {
      await new Promise((resolve, reject) => {
        c.once('connect', resolve);
        c.once('connect_error', reject);
      });
      const answer = await c.timeout(5000).emitWithAck('hello');
      if (transport) expect(answer.transport).toBe(transport);
      else expect(['polling', 'websocket']).toContain(answer.transport);
    } finally {
      c.disconnect();
    }
  });

  test('a client that does not speak TLS is closed; the others go on', async () => {
    const raw = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => raw.once('connect', resolve));
    const closed = new Promise((resolve) => raw.once('close', resolve));
    raw.on('error', () => {});
    raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    expect((await get(port, '/still', a.cert)).status).toBe(200);
  });

  test('Chromium loads an https page and opens a wss from it', async () => {
    const executablePath = which('chromium') || '/usr/bin/chromium';
    const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
    try {
      const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the test's own self-signed certificate
      const page = await context.newPage();
      const res = await page.goto(`https://127.0.0.1:${port}/page`, { timeout: 30000 });
      expect(res.status()).toBe(200);
      await page.waitForFunction(() => document.getElementById('out').textContent.startsWith('echo:'), null, { timeout: 10000 });
      expect(await page.textContent('#out')).toBe('echo:from the page');
      expect(res.url()).toMatch(/^https:/);
    } finally {
      await browser.close();
    }
  }, 60000);

  test('certificates reload for new connections; open ones keep theirs; a bad pair is refused', async () => {
    expect((await peerCertificate(port)).subject.CN).toBe('first');
    const open = new WebSocket(`wss://127.0.0.1:${port}/ws/echo`, { ca: a.cert });
    await new Promise((resolve, reject) => {
      open.once('open', resolve);
      open.once('error', reject);
    });
    fs.writeFileSync(keyFile(), b.key);
    fs.writeFileSync(certFile(), b.cert);
    process.emit('SIGHUP'); // what `kill -HUP` delivers to the listener engine.listen installed
    await sleep(50);
    expect((await peerCertificate(port)).subject.CN).toBe('second');
    expect((await get(port, '/after', b.cert)).status).toBe(200);
    // The connection made before the reload still works.
    const got = new Promise((resolve) => open.once('message', (d) => resolve(String(d))));
    open.send('still');
    expect(await got).toBe('echo:still');
    open.close();
    // A key that is not the certificate's: refused, the current pair stays.
    expect(() => engine.reloadTls({ key: a.key, cert: b.cert })).toThrow(/tls\.key: .*(mismatch|not the certificate's key)/);
    expect((await peerCertificate(port)).subject.CN).toBe('second');
    expect(() => engine.reloadTls({ key: Buffer.from('not a key'), cert: Buffer.from('not a cert') })).toThrow(/tls\.(cert|key)/);
    expect((await peerCertificate(port)).subject.CN).toBe('second');
  });
});
