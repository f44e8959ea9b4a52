'use strict';
// Test helpers: a plain http.Server with an Engine attached, ws clients, raw TCP upgrades.
const http = require('node:http');
const net = require('node:net');
const crypto = require('node:crypto');
const WebSocket = require('ws');
const { Engine } = require('../../../js/index.js');

async function startServer(setup, engineOptions = {}) {
  const engine = new Engine({ global: false, logLevel: 'error', ...engineOptions });
  setup(engine);
  const server = http.createServer((req, res) => res.end('page'));
  engine.attach(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    engine,
    server,
    port,
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    async close() {
      await engine.close({ drainMs: 200 });
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function open(url, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode })));
  });
}

// Resolves with the next `n` messages as [text-or-buffer, isBinary].
function messages(ws, n = 1, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`timed out with ${got.length}/${n} messages`));
    }, timeoutMs);
    function onMessage(data, isBinary) {
      got.push([isBinary ? Buffer.from(data) : data.toString(), isBinary]);
      if (got.length === n) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(got);
      }
    }
    ws.on('message', onMessage);
  });
}

// Resolves true if no message arrives within `ms`.
function silent(ws, ms = 300) {
  return new Promise((resolve) => {
    const onMessage = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      resolve(true);
    }, ms);
    ws.once('message', onMessage);
  });
}

function closed(ws, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve({ code: 1006, reason: '' });
    const timer = setTimeout(() => reject(new Error('socket did not close')), timeoutMs);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

// Sends raw bytes on a TCP connection and collects everything the server sends back until it closes.
function rawExchange(port, bytes, { waitMs = 3000, after } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ data: Buffer.concat(chunks), ended: false });
    }, waitMs);
    sock.on('connect', () => {
      sock.write(bytes);
      if (after) after(sock);
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), ended: true });
    });
    sock.on('timeout', reject);
  });
}

function upgradeRequest(path, extraHeaders = {}) {
  const headers = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...extraHeaders,
  };
  let s = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) if (v !== null) s += `${k}: ${v}\r\n`;
  return `${s}\r\n`;
}

// A masked client frame.
function clientFrame(opcode, payload, { fin = true, mask = true } = {}) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = body.length;
  const head = [((fin ? 0x80 : 0) | opcode)];
  if (len < 126) head.push((mask ? 0x80 : 0) | len);
  else if (len < 65536) head.push((mask ? 0x80 : 0) | 126, len >> 8, len & 0xff);
  else {
    head.push((mask ? 0x80 : 0) | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), body]);
  const key = crypto.randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = body[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), key, masked]);
}

// Parses server frames (unmasked) out of a buffer that starts after the HTTP response head.
function serverFrames(buf) {
  const frames = [];
  let pos = 0;
  while (pos + 2 <= buf.length) {
    const opcode = buf[pos] & 0x0f;
    let len = buf[pos + 1] & 0x7f;
    let p = pos + 2;
    if (len === 126) {
      if (p + 2 > buf.length) break;
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (p + 8 > buf.length) break;
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    if (p + len > buf.length) break;
    const payload = buf.subarray(p, p + len);
    const frame = { opcode, payload };
    if (opcode === 8) frame.code = len >= 2 ? payload.readUInt16BE(0) : null;
    frames.push(frame);
    pos = p + len;
  }
  return frames;
}

function afterHead(buf) {
  const i = buf.indexOf('\r\n\r\n');
  return i < 0 ? Buffer.alloc(0) : buf.subarray(i + 4);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A small deterministic PRNG (mulberry32): a failing run can be replayed with the same seed.
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

async function waitFor(predicate, timeoutMs = 3000, stepMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(stepMs);
  }
}

module.exports = {
  startServer, open, messages, silent, closed, rawExchange, upgradeRequest, clientFrame, serverFrames,
  afterHead, sleep, waitFor, prng, WebSocket,
};
