'use strict';
// Compression: perMessageDeflate (RFC 7692 on the WebSocket transport, done by the engine) and
// httpCompression (gzip/deflate of polling responses), as differential pairs that run the same
// body against the `socket.io` package and sidewire; then what only sidewire is asked to do
// (compress(false) over WebSocket, which socket.io 4.8's engine.io 6.6 drops; the log line of a
// decompression bomb; offers it declines rather than refuses).
const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const zlib = require('node:zlib');
const { IMPLS, IMPLS_ALL, startImpl } = require('./helpers/impls.js');
const { clientFrame, waitFor } = require('./helpers/ws.js');
const { wsHead } = require('./helpers/raw-http.js');
const { connected } = require('./helpers/sio.js');

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const CHROME_OFFER = 'permessage-deflate; client_max_window_bits';
// With server_no_context_takeover ws (so socket.io) applies the threshold; with context
// takeover it compresses every message (ws#1954).
const NO_CONTEXT_OFFER = 'permessage-deflate; server_no_context_takeover; client_max_window_bits';

// A realistic ticket as the ticket desk emits it: about 3 KB of JSON.
const WORDS = ('printer queue jams duplex tray paper toner driver update restart ticket customer escalated ' +
  'invoice billing refund login password reset session browser cache cookie network vpn latency timeout').split(' ');
function ticket(i, words = 360) {
  let text = '';
  for (let k = 0; k < words; k++) text += `${WORDS[(i * 7 + k * 13) % WORDS.length]} `;
  return {
    id: i,
    title: `Printer on floor ${i % 7} jams on every duplex job`,
    status: 'open',
    priority: 'high',
    assignee: `agent-${1000 + i}`,
    created_at: '2026-11-29T05:11:33.949Z',
    updated_at: '2026-11-29T05:12:01.102Z',
    description: text,
    comments: [{ id: i * 10, author: 'agent-17', body: 'Seen it on floor 3 as well.', created_at: '2026-11-29T05:11:50.000Z' }],
  };
}

// ------------------------------------------------------------------------- a raw WebSocket

/**
 * A WebSocket client that shows every frame as it arrived (RSV1 included) and inflates
 * compressed messages with one zlib stream for the whole connection (right with or without
 * context takeover).
 */
class RawWs {
  static open(port, extensions, target = '/socket.io/?EIO=4&transport=websocket') {
    return new Promise((resolve, reject) => {
      const ws = new RawWs(net.connect(port, '127.0.0.1'));
      ws.sock.on('data', (d) => {
        ws.buf = Buffer.concat([ws.buf, d]);
        if (ws.head === null) {
          const i = ws.buf.indexOf('\r\n\r\n');
          if (i < 0) return;
          ws.head = ws.buf.subarray(0, i).toString('latin1');
          ws.buf = ws.buf.subarray(i + 4);
          ws.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(ws.head)[1]);
          const ext = /\r\nsec-websocket-extensions:\s*([^\r]*)/i.exec(ws.head);
          ws.extensions = ext ? ext[1] : null;
          resolve(ws);
        }
        ws.parse();
      });
      ws.sock.on('error', () => {});
      ws.sock.on('close', () => {
        ws.closed = true;
        if (ws.waiter) ws.waiter();
        if (ws.head === null) reject(new Error('closed before the handshake answer'));
      });
      ws.sock.write(wsHead(target, extensions ? [['Sec-WebSocket-Extensions', extensions]] : []));
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.head = null;
    this.frames = [];
    this.waiter = null;
    this.closed = false;
    this.inflater = null;
  }

  parse() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = b[1] & 0x7f;
      let p = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        p = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        p = 10;
      }
      if (b.length < p + len) break;
      const frame = { fin: (b[0] & 0x80) !== 0, rsv1: (b[0] & 0x40) !== 0, opcode: b[0] & 0x0f, payload: b.subarray(p, p + len) };
      if (frame.opcode === 8) frame.code = len >= 2 ? frame.payload.readUInt16BE(0) : null;
      this.frames.push(frame);
      this.buf = b.subarray(p + len);
    }
    if (this.waiter) this.waiter();
  }

  nextFrame(timeoutMs = 3000) {
    return new Promise((resolve) => {
      const take = () => {
        if (this.frames.length) {
          clearTimeout(timer);
          this.waiter = null;
          resolve(this.frames.shift());
        } else if (this.closed) {
          clearTimeout(timer);
          this.waiter = null;
          resolve(null);
        }
      };
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, timeoutMs);
      this.waiter = take;
      take();
    });
  }

  inflate(payload) {
    if (!this.inflater) {
      this.inflater = zlib.createInflateRaw();
      this.chunks = [];
      this.inflater.on('data', (c) => this.chunks.push(c));
    }
    return new Promise((resolve, reject) => {
      this.inflater.once('error', reject);
      this.inflater.write(Buffer.concat([payload, TAIL]));
      this.inflater.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.inflater.off('error', reject);
        const out = Buffer.concat(this.chunks);
        this.chunks = [];
        resolve(out);
      });
    });
  }

  /** The next Engine.IO packet (pings answered): a frame with `text`, a close frame, or null. */
  async packet(timeoutMs = 3000) {
    for (;;) {
      const f = await this.nextFrame(timeoutMs);
      if (!f || f.opcode === 8) return f;
      f.text = (f.rsv1 ? await this.inflate(f.payload) : f.payload).toString();
      if (f.text === '2') {
        this.send('3');
        continue;
      }
      return f;
    }
  }

  send(text) {
    this.sock.write(clientFrame(1, text));
  }

  destroy() {
    this.sock.destroy();
    if (this.inflater) this.inflater.close();
  }
}

// A Socket.IO connection to '/' over a raw WebSocket that offered `extensions`.
async function rawSio(port, extensions) {
  const ws = await RawWs.open(port, extensions);
  expect(ws.status).toBe(101);
  const open = await ws.packet();
  expect(open && open.text[0]).toBe('0');
  ws.send('40');
  const ack = await ws.packet();
  expect(ack && ack.text.startsWith('40{')).toBe(true);
  return ws;
}

// ------------------------------------------------------------------------- plain HTTP

function request(port, method, target, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// A polling session connected to '/': returns its sid.
async function pollingSession(port) {
  const hs = await request(port, 'GET', '/socket.io/?EIO=4&transport=polling');
  expect(hs.status).toBe(200);
  const { sid } = JSON.parse(hs.body.toString().slice(1));
  const post = await request(port, 'POST', `/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
    body: '40',
    headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
  });
  expect(post.status).toBe(200);
  const ack = await request(port, 'GET', `/socket.io/?EIO=4&transport=polling&sid=${sid}`);
  expect(ack.body.toString()).toMatch(/^40\{/);
  return sid;
}

function decodeBody(res) {
  const enc = res.headers['content-encoding'];
  if (enc === 'gzip') return zlib.gunzipSync(res.body).toString();
  if (enc === 'deflate') return zlib.inflateSync(res.body).toString();
  return res.body.toString();
}

// ------------------------------------------------------------------------- differential pairs

describe.each(IMPLS_ALL)('perMessageDeflate (%s)', (kind) => {
  let t = null;
  const raws = [];
  const raw = async (extensions) => {
    const ws = await rawSio(t.port, extensions);
    raws.push(ws);
    return ws;
  };
  let sockets;
  const start = async (opts) => {
    sockets = [];
    t = await startImpl(kind, opts, (io) => io.on('connection', (s) => sockets.push(s)));
  };
  afterEach(async () => {
    for (const ws of raws.splice(0)) ws.destroy();
    if (t) await t.close();
    t = null;
  });

  test('negotiated when on: the 101 answers Sec-WebSocket-Extensions', async () => {
    await start({ perMessageDeflate: true });
    const ws = await raw(CHROME_OFFER);
    expect(ws.extensions).toMatch(/^permessage-deflate(;|$)/);
    const nc = await raw(NO_CONTEXT_OFFER);
    expect(nc.extensions).toMatch(/^permessage-deflate;.*\bserver_no_context_takeover\b/);
    const none = await raw(null); // offered nothing: nothing answered
    expect(none.extensions).toBeNull();
  });

  test('off by default: no extension answered, big messages go out as they are', async () => {
    await start({});
    const ws = await raw(CHROME_OFFER);
    expect(ws.extensions).toBeNull();
    await waitFor(() => sockets.length === 1);
    sockets[0].emit('ticket', ticket(1));
    const f = await ws.packet();
    expect(f.rsv1).toBe(false);
    expect(JSON.parse(f.text.slice(2))).toEqual(['ticket', ticket(1)]);
  });

  test('a large message arrives compressed (RSV1) and socket.io-client decodes it', async () => {
    await start({ perMessageDeflate: true });
    const ws = await raw(CHROME_OFFER);
    await waitFor(() => sockets.length === 1);
    sockets[0].emit('ticket', ticket(2));
    t.io.emit('ticket', ticket(3)); // a broadcast too
    for (const n of [2, 3]) {
      const f = await ws.packet();
      expect(f.rsv1).toBe(true);
      expect(f.payload.length).toBeLessThan(JSON.stringify(ticket(n)).length / 2);
      expect(JSON.parse(f.text.slice(2))).toEqual(['ticket', ticket(n)]);
    }
    // socket.io-client (Node: ws with perMessageDeflate, as engine.io-client offers by default).
    const clients = [0, 1, 2].map(() => t.client({ transports: ['websocket'], perMessageDeflate: { threshold: 1024 } }));
    await Promise.all(clients.map((c) => connected(c)));
    const got = clients.map((c) => new Promise((resolve) => c.once('ticket', resolve)));
    t.io.emit('ticket', ticket(4));
    for (const g of await Promise.all(got)) expect(g).toEqual(ticket(4));
  });

  test('below the threshold a message goes out uncompressed', async () => {
    await start({ perMessageDeflate: { threshold: 4096 } });
    const ws = await raw(NO_CONTEXT_OFFER);
    await waitFor(() => sockets.length === 1);
    sockets[0].emit('small', 'x'.repeat(200));
    sockets[0].emit('ticket', ticket(5)); // ~3 KB: below 4096
    sockets[0].emit('big', ticket(6, 1000)); // ~8 KB
    const small = await ws.packet();
    expect(small.rsv1).toBe(false);
    expect(small.text).toBe(`42["small","${'x'.repeat(200)}"]`);
    const medium = await ws.packet();
    expect(medium.rsv1).toBe(false);
    const big = await ws.packet();
    expect(big.rsv1).toBe(true);
    expect(JSON.parse(big.text.slice(2))).toEqual(['big', ticket(6, 1000)]);
  });

  test('what the client compresses arrives inflated', async () => {
    await start({ perMessageDeflate: true });
    const received = new Promise((resolve) => t.io.on('connection', (s) => s.on('ticket', (v, ack) => {
      ack('ok');
      resolve(v);
    })));
    const c = t.client({ transports: ['websocket'], perMessageDeflate: { threshold: 0 } });
    await connected(c);
    await expect(c.timeout(3000).emitWithAck('ticket', ticket(7))).resolves.toBe('ok');
    expect(await received).toEqual(ticket(7));
  });

  test('RSV1 on a connection that did not negotiate the extension: close 1002', async () => {
    await start({ perMessageDeflate: true });
    const ws = await raw(null);
    ws.sock.write(clientFrame(0x41, zlib.deflateRawSync(Buffer.from('42["x"]')))); // FIN + RSV1 + text
    const f = await ws.packet();
    expect(f && f.opcode).toBe(8);
    expect(f.code).toBe(1002);
  });

  test('a decompression bomb past maxHttpBufferSize: close 1009', async () => {
    await start({ perMessageDeflate: true, maxHttpBufferSize: 100000 });
    const ws = await raw(CHROME_OFFER);
    const bomb = zlib.deflateRawSync(Buffer.from(`42["x","${'A'.repeat(8 << 20)}"]`), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(bomb.length).toBeLessThan(100000);
    ws.sock.write(clientFrame(0x41, bomb.subarray(0, bomb.length - 4)));
    const f = await ws.packet(5000);
    expect(f && f.opcode).toBe(8);
    expect(f.code).toBe(1009);
  });
});

describe.each(IMPLS)('httpCompression (%s)', (kind) => {
  let t = null;
  let sockets;
  const start = async (opts = {}) => {
    sockets = [];
    t = await startImpl(kind, { transports: ['polling'], ...opts }, (io) => io.on('connection', (s) => sockets.push(s)));
  };
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });
  // Emits with `emit(socket)`, then fetches the next polling response with `acceptEncoding`.
  const fetchAfter = async (emit, acceptEncoding) => {
    const sid = await pollingSession(t.port);
    await waitFor(() => sockets.length === 1);
    emit(sockets[0]);
    const headers = acceptEncoding === undefined ? {} : { 'Accept-Encoding': acceptEncoding };
    return request(t.port, 'GET', `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { headers });
  };

  test.each([
    ['gzip, deflate', 'gzip'],
    ['deflate, gzip', 'deflate'],
    ['deflate;q=0.5, gzip', 'gzip'],
    ['br, deflate', 'deflate'],
    ['*', 'gzip'],
    ['br', undefined],
    ['gzip;q=0, identity', undefined],
  ])('a big response with Accept-Encoding %j: %s', async (acceptEncoding, expected) => {
    await start();
    const res = await fetchAfter((s) => s.emit('ticket', ticket(8)), acceptEncoding);
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe(expected);
    if (expected) expect(res.body.length).toBeLessThan(JSON.stringify(ticket(8)).length / 2);
    expect(decodeBody(res)).toBe(`42${JSON.stringify(['ticket', ticket(8)])}`);
  });

  test('no Accept-Encoding, a small body, compress(false) or httpCompression: false: not compressed', async () => {
    await start();
    let res = await fetchAfter((s) => s.emit('ticket', ticket(9)));
    expect(res.headers['content-encoding']).toBeUndefined();
    await t.close();
    await start();
    res = await fetchAfter((s) => s.emit('small', 'x'.repeat(500)), 'gzip, deflate');
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.body.toString()).toBe(`42["small","${'x'.repeat(500)}"]`);
    await t.close();
    await start();
    res = await fetchAfter((s) => s.compress(false).emit('ticket', ticket(10)), 'gzip, deflate');
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(decodeBody(res)).toBe(`42${JSON.stringify(['ticket', ticket(10)])}`);
    await t.close();
    await start({ httpCompression: false });
    res = await fetchAfter((s) => s.emit('ticket', ticket(11)), 'gzip, deflate');
    expect(res.headers['content-encoding']).toBeUndefined();
  });

  test('the threshold is httpCompression.threshold', async () => {
    await start({ httpCompression: { threshold: 100 } });
    const res = await fetchAfter((s) => s.emit('small', 'x'.repeat(500)), 'gzip');
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(decodeBody(res)).toBe(`42["small","${'x'.repeat(500)}"]`);
  });
});

// ------------------------------------------------------------------------- sidewire only

describe('perMessageDeflate (sidewire only)', () => {
  let t = null;
  const raws = [];
  let sockets;
  const start = async (opts, kind = 'sidewire') => {
    sockets = [];
    t = await startImpl(kind, opts, (io) => io.on('connection', (s) => {
      s.join('desk');
      sockets.push(s);
    }));
  };
  const raw = async (extensions) => {
    const ws = await rawSio(t.port, extensions);
    raws.push(ws);
    return ws;
  };
  afterEach(async () => {
    for (const ws of raws.splice(0)) ws.destroy();
    if (t) await t.close();
    t = null;
  });

  // socket.io 4.8.4 (engine.io 6.6) no longer hands the compress flag to ws, so it compresses
  // these too; socket.io documents compress(false) as "not compressed", which sidewire does.
  test('compress(false) sends that packet uncompressed, however it is emitted', async () => {
    await start({ perMessageDeflate: true });
    const ws = await raw(CHROME_OFFER);
    await waitFor(() => sockets.length === 1);
    const s = sockets[0];
    s.compress(false).emit('a', ticket(12));
    t.io.compress(false).emit('b', ticket(13));
    t.io.to('desk').compress(false).emit('c', ticket(14));
    s.emit('d', ticket(15)); // the flag was for one packet only
    t.io.to('desk').emit('e', ticket(16));
    const frames = [];
    for (let i = 0; i < 5; i++) frames.push(await ws.packet());
    expect(frames.map((f) => [JSON.parse(f.text.slice(2))[0], f.rsv1])).toEqual([
      ['a', false], ['b', false], ['c', false], ['d', true], ['e', true],
    ]);
  });

  test('a broadcast is compressed once: compressed recipients get the same bytes, others the plain frame', async () => {
    await start({ perMessageDeflate: true });
    const a = await raw(CHROME_OFFER);
    const b = await raw(NO_CONTEXT_OFFER);
    const plain = await raw(null);
    await waitFor(() => sockets.length === 3);
    t.io.to('desk').emit('ticket', ticket(17));
    const [fa, fb, fp] = [await a.packet(), await b.packet(), await plain.packet()];
    expect(fa.rsv1 && fb.rsv1).toBe(true);
    expect(fa.payload.equals(fb.payload)).toBe(true);
    expect(fp.rsv1).toBe(false);
    expect(fa.text).toBe(fp.text);
  });

  test('the response asks no context takeover both ways unless told otherwise', async () => {
    await start({ perMessageDeflate: true });
    expect((await raw(CHROME_OFFER)).extensions).toBe('permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    await t.close();
    await start({ perMessageDeflate: { serverNoContextTakeover: false, clientNoContextTakeover: false } });
    const ws = await raw(CHROME_OFFER);
    expect(ws.extensions).toBe('permessage-deflate');
    await waitFor(() => sockets.length === 1);
    sockets[0].emit('ticket', ticket(18));
    sockets[0].emit('ticket', ticket(18));
    const [f1, f2] = [await ws.packet(), await ws.packet()];
    expect(f1.rsv1 && f2.rsv1).toBe(true);
    expect(f2.payload.length).toBeLessThan(f1.payload.length / 4); // the second refers to the first
    expect(f2.text).toBe(f1.text);
  });

  test('offers it cannot honour are declined, not refused (RFC 7692: the connection goes on uncompressed)', async () => {
    await start({ perMessageDeflate: true });
    for (const offer of ['permessage-deflate; server_max_window_bits=8', 'permessage-deflate; bogus', 'permessage-deflate; x="open']) {
      const ws = await raw(offer);
      expect(ws.extensions).toBeNull();
    }
    const ws = await raw('permessage-deflate; server_max_window_bits=10, permessage-deflate');
    expect(ws.extensions).toBe('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10');
    await waitFor(() => sockets.length === 4);
    sockets[3].emit('ticket', ticket(19));
    const f = await ws.packet();
    expect(f.rsv1).toBe(true);
    expect(JSON.parse(f.text.slice(2))).toEqual(['ticket', ticket(19)]);
  });

  test('a decompression bomb closes its own connection with 1009 and a log line, nobody else\'s', async () => {
    const index = path.resolve(__dirname, '../../js/index.js');
    const script = `
      const http = require('node:http');
      const { Engine, Server } = require(${JSON.stringify(index)});
      const engine = new Engine({ global: false, logLevel: 'warn', drainMs: 100 });
      const srv = http.createServer();
      const io = new Server(srv, { engine, perMessageDeflate: true, maxHttpBufferSize: 100000 });
      io.on('connection', (s) => s.on('echo', (v, ack) => ack(v)));
      srv.listen(0, '127.0.0.1', () => console.log('PORT ' + srv.address().port));
      process.on('SIGTERM', async () => { io.close(); await engine.close({ drainMs: 100 }); process.exit(0); });
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const port = Number((await waitFor(() => /PORT (\d+)/.exec(stdout), 10000))[1]);
      const bystander = await rawSio(port, CHROME_OFFER);
      raws.push(bystander);
      const ws = await rawSio(port, CHROME_OFFER);
      raws.push(ws);
      const bomb = zlib.deflateRawSync(Buffer.from(`42["echo","${'A'.repeat(8 << 20)}"]`), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      ws.sock.write(clientFrame(0x41, bomb.subarray(0, bomb.length - 4)));
      const f = await ws.packet(5000);
      expect(f && f.code).toBe(1009);
      await waitFor(() => /inflates past the size limit; closing with 1009/.test(stderr), 3000);
      bystander.send('421["echo","still here"]');
      expect((await bystander.packet()).text).toBe('431["still here"]');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  test('engine.listen negotiates it too', async () => {
    await start({ perMessageDeflate: true }, 'sidewire+listen');
    const ws = await raw(CHROME_OFFER);
    expect(ws.extensions).toMatch(/^permessage-deflate;/);
    t.io.emit('ticket', ticket(20));
    const f = await ws.packet();
    expect(f.rsv1).toBe(true);
    expect(JSON.parse(f.text.slice(2))).toEqual(['ticket', ticket(20)]);
  });
});
