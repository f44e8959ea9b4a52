'use strict';
// Engine.IO v4 and Socket.IO v5 on the wire, byte for byte, with plain HTTP requests and a
// plain WebSocket: what the published protocol specifications say a server answers.
const http = require('node:http');
const WebSocket = require('ws');
const { Server } = require('../../js/index.js');
const { sleep } = require('./helpers/ws');

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const RS = '\x1e';

let httpServer;
let io;
let base;
let wsBase;

beforeAll(async () => {
  httpServer = http.createServer();
  io = new Server(httpServer, { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT, connectTimeout: 1500 });
  io.on('connection', (socket) => {
    socket.on('echo', (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      if (ack) ack(...args);
      else socket.emit('echo', ...args);
    });
  });
  io.of('/custom').use((socket, next) => {
    if (socket.handshake.auth && socket.handshake.auth.token === 'secret') return next();
    const err = new Error('not authorized');
    err.data = { hint: 'token' };
    next(err);
  });
  io.of('/custom').on('connection', (socket) => socket.emit('auth', socket.handshake.auth));
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address();
  base = `http://127.0.0.1:${port}/socket.io/`;
  wsBase = `ws://127.0.0.1:${port}/socket.io/`;
});

afterAll(async () => {
  await io.close();
  await new Promise((resolve) => httpServer.close(resolve));
});

const get = (query) => fetch(`${base}?${query}`);
const post = (query, body) => fetch(`${base}?${query}`, { method: 'POST', body });

async function handshake() {
  const res = await get('EIO=4&transport=polling');
  const text = await res.text();
  return JSON.parse(text.slice(1)).sid;
}

// A polling session with the main namespace connected; returns its sid.
async function connectedSession() {
  const sid = await handshake();
  expect(await (await post(`EIO=4&transport=polling&sid=${sid}`, '40')).text()).toBe('ok');
  const body = await (await get(`EIO=4&transport=polling&sid=${sid}`)).text();
  expect(body).toMatch(/^40\{"sid":"[A-Za-z0-9_-]{22}"\}$/);
  return sid;
}

function wsOpen(query) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}?${query}`);
    const queue = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      const item = isBinary ? Buffer.from(data) : data.toString();
      const w = waiters.shift();
      if (w) w(item);
      else queue.push(item);
    });
    ws.next = (timeoutMs = 2000) => new Promise((res, rej) => {
      if (queue.length) return res(queue.shift());
      const timer = setTimeout(() => rej(new Error('no message')), timeoutMs);
      waiters.push((m) => { clearTimeout(timer); res(m); });
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode })));
  });
}

const closedWs = (ws, ms = 3000) => new Promise((resolve, reject) => {
  if (ws.readyState === WebSocket.CLOSED) return resolve();
  const t = setTimeout(() => reject(new Error('not closed')), ms);
  ws.once('close', () => { clearTimeout(t); resolve(); });
});

describe('Engine.IO handshake', () => {
  test('polling: open packet with sid, upgrades, pingInterval, pingTimeout, maxPayload', async () => {
    const res = await get('EIO=4&transport=polling');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text[0]).toBe('0');
    const open = JSON.parse(text.slice(1));
    expect(Object.keys(open).sort()).toEqual(['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
    expect(open.sid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(open.upgrades).toEqual(['websocket']);
    expect(open.pingInterval).toBe(PING_INTERVAL);
    expect(open.pingTimeout).toBe(PING_TIMEOUT);
    expect(open.maxPayload).toBe(1000000);
  });

  test.each([
    ['transport=polling', 5, 'Unsupported protocol version'],
    ['EIO=3&transport=polling', 5, 'Unsupported protocol version'],
    ['EIO=abc&transport=polling', 5, 'Unsupported protocol version'],
    ['EIO=4', 0, 'Transport unknown'],
    ['EIO=4&transport=abc', 0, 'Transport unknown'],
    ['EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA', 1, 'Session ID unknown'],
    ['EIO=4&transport=websocket', 3, 'Bad request'],
  ])('GET ?%s → 400 {code: %i}', async (query, code, message) => {
    const res = await get(query);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toEqual({ code, message });
  });

  test('a handshake must be a GET', async () => {
    for (const method of ['POST', 'PUT']) {
      const res = await fetch(`${base}?EIO=4&transport=polling`, { method, body: '' });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ code: 2, message: 'Bad handshake method' });
    }
  });

  test('websocket: the open packet is the first message, with no upgrades', async () => {
    const ws = await wsOpen('EIO=4&transport=websocket');
    const first = await ws.next();
    expect(first[0]).toBe('0');
    const open = JSON.parse(first.slice(1));
    expect(open.upgrades).toEqual([]);
    expect(open.maxPayload).toBe(1000000);
    ws.close();
  });

  test('websocket: a bad EIO or transport is refused with 400', async () => {
    await expect(wsOpen('transport=websocket')).rejects.toMatchObject({ status: 400 });
    await expect(wsOpen('EIO=4&transport=abc')).rejects.toMatchObject({ status: 400 });
    await expect(wsOpen('EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA')).rejects.toMatchObject({ status: 400 });
  });
});

describe('Engine.IO messages over polling', () => {
  test('a payload of several packets is answered in order, binary as base64', async () => {
    const sid = await connectedSession();
    const q = `EIO=4&transport=polling&sid=${sid}`;
    const body = ['42["echo","one"]', '42["echo","two"]', '451-["echo",{"_placeholder":true,"num":0}]', 'bAQIDBA=='].join(RS);
    const res = await post(q, body);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    let got = '';
    for (let i = 0; i < 5 && got.split(RS).length < 4; i++) {
      const r = await (await get(q)).text();
      got = got ? `${got}${RS}${r}` : r;
    }
    expect(got.split(RS).filter((p) => p !== '2')).toEqual([
      '42["echo","one"]', '42["echo","two"]', '451-["echo",{"_placeholder":true,"num":0}]', 'bAQIDBA==',
    ]);
  });

  test('an invalid payload closes the session', async () => {
    const sid = await connectedSession();
    const q = `EIO=4&transport=polling&sid=${sid}`;
    const res = await post(q, 'abc');
    expect(res.status).toBe(400);
    expect((await get(q)).status).toBe(400);
  });

  test('an invalid Socket.IO packet closes the session', async () => {
    const sid = await connectedSession();
    const q = `EIO=4&transport=polling&sid=${sid}`;
    await post(q, '42{"not":"an array"}');
    await sleep(50);
    // the close packet is delivered once, then the sid is gone
    const r = await get(q);
    if (r.status === 200) expect(await r.text()).toMatch(/(^|\x1e)1$/);
    expect((await get(q)).status).toBe(400);
  });

  test('a second concurrent GET closes the session: the first gets the close packet', async () => {
    const sid = await connectedSession();
    const q = `EIO=4&transport=polling&sid=${sid}`;
    const [first, second] = await Promise.all([get(q), sleep(30).then(() => get(`${q}&t=burst`))]);
    expect(first.status).toBe(200);
    expect(await first.text()).toBe('1');
    expect(second.status).toBe(400);
    expect((await get(q)).status).toBe(400);
  });

  test('the client closing its session releases the held GET with a noop', async () => {
    const sid = await connectedSession();
    const q = `EIO=4&transport=polling&sid=${sid}`;
    const held = get(q);
    await sleep(30);
    expect(await (await post(q, '1')).text()).toBe('ok');
    const r = await held;
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('6');
    expect((await get(q)).status).toBe(400);
  });

  test('a body over maxHttpBufferSize gets 413', async () => {
    const sid = await connectedSession();
    const res = await post(`EIO=4&transport=polling&sid=${sid}`, `42["echo","${'x'.repeat(1000001)}"]`);
    expect(res.status).toBe(413);
  });
});

describe('Engine.IO heartbeat', () => {
  test('polling: the server pings, a pong keeps the session', async () => {
    const sid = await connectedSession();
    const q = `EIO=4&transport=polling&sid=${sid}`;
    for (let i = 0; i < 3; i++) {
      expect(await (await get(q)).text()).toBe('2');
      expect(await (await post(q, '3')).text()).toBe('ok');
    }
  });

  test('polling: no pong closes the session', async () => {
    const sid = await connectedSession();
    await sleep(PING_INTERVAL + PING_TIMEOUT + 400);
    const q = `EIO=4&transport=polling&sid=${sid}`;
    const r = await get(q);
    if (r.status === 200) expect(await r.text()).toMatch(/1$/);
    expect((await post(q, '3')).status).toBe(400);
  });

  test('websocket: pings are answered with pongs; silence closes', async () => {
    const ws = await wsOpen('EIO=4&transport=websocket');
    await ws.next(); // open
    ws.send('40');
    expect(await ws.next()).toMatch(/^40\{"sid":/);
    for (let i = 0; i < 3; i++) {
      expect(await ws.next()).toBe('2');
      ws.send('3');
    }
    await closedWs(ws, PING_INTERVAL + PING_TIMEOUT + 1000);
  });
});

describe('Engine.IO upgrade', () => {
  test('probe, noop to the held GET, upgrade, then messages over WebSocket only', async () => {
    const sid = await connectedSession();
    const q = `EIO=4&transport=polling&sid=${sid}`;
    const ws = await wsOpen(`EIO=4&transport=websocket&sid=${sid}`);
    ws.send('2probe');
    expect(await ws.next()).toBe('3probe');
    expect(await (await get(q)).text()).toBe('6');
    ws.send('5');
    ws.send('42["echo","over ws"]');
    let m = await ws.next();
    while (m === '2') { ws.send('3'); m = await ws.next(); }
    expect(m).toBe('42["echo","over ws"]');
    expect((await get(q)).status).toBe(400);
    // a second WebSocket for the same session is refused
    await expect(wsOpen(`EIO=4&transport=websocket&sid=${sid}`)).rejects.toMatchObject({ status: 400 });
    ws.close();
  });
});

describe('Engine.IO upgrade interrupted by a shutdown', () => {
  // A client that has its "3probe" and its GET released pauses polling and listens to the probe
  // for nothing but the upgrade; engine.io-client never resumes polling after a failed probe, so
  // a probe closed in that window would leave it deaf until its ping timeout. The server keeps
  // the probe until the upgrade packet and closes it then, where the client hears it.
  test('the probe stays open until the upgrade packet, then closes with 1001', async () => {
    const srv = http.createServer();
    const own = new Server(srv, { pingInterval: 5000, pingTimeout: 5000 });
    own.on('connection', () => {});
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const at = `127.0.0.1:${srv.address().port}/socket.io/`;
    let closing;
    try {
      const open = await (await fetch(`http://${at}?EIO=4&transport=polling`)).text();
      const { sid } = JSON.parse(open.slice(1));
      const q = `http://${at}?EIO=4&transport=polling&sid=${sid}`;
      expect(await (await fetch(q, { method: 'POST', body: '40' })).text()).toBe('ok');
      expect(await (await fetch(q)).text()).toMatch(/^40/);
      const ws = new WebSocket(`ws://${at}?EIO=4&transport=websocket&sid=${sid}`);
      const messages = [];
      ws.on('message', (d) => messages.push(d.toString()));
      const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      const poll = fetch(q).then((r) => r.text());
      ws.send('2probe');
      expect(await poll).toBe('6');
      expect(messages).toEqual(['3probe']);

      closing = own.close();
      await sleep(300);
      expect(ws.readyState).toBe(WebSocket.OPEN);
      ws.send('5');
      expect(await closed).toBe(1001);
    } finally {
      await (closing || own.close());
    }
  });
});

describe('Socket.IO packets over WebSocket', () => {
  async function wsSession() {
    const ws = await wsOpen('EIO=4&transport=websocket');
    await ws.next();
    const next = async () => {
      for (;;) {
        const m = await ws.next();
        if (m === '2') { ws.send('3'); continue; }
        return m;
      }
    };
    return { ws, next };
  }

  test('CONNECT to the main namespace, EVENT with an ack id, ACK back', async () => {
    const { ws, next } = await wsSession();
    ws.send('40');
    const connect = await next();
    expect(connect).toMatch(/^40\{"sid":"[A-Za-z0-9_-]{22}"\}$/);
    ws.send('4212["echo",{"a":1},[2]]');
    expect(await next()).toBe('4312[{"a":1},[2]]');
    ws.close();
  });

  test('CONNECT with auth to a namespace with middleware; CONNECT_ERROR with message and data', async () => {
    const { ws, next } = await wsSession();
    ws.send('40/custom,{"token":"wrong"}');
    expect(JSON.parse((await next()).replace(/^44\/custom,/, ''))).toEqual({ message: 'not authorized', data: { hint: 'token' } });
    ws.send('40/custom,{"token":"secret"}');
    expect(await next()).toMatch(/^40\/custom,\{"sid":"[A-Za-z0-9_-]{22}"\}$/);
    expect(await next()).toBe('42/custom,["auth",{"token":"secret"}]');
    ws.close();
  });

  test('CONNECT to an unknown namespace gets CONNECT_ERROR "Invalid namespace"', async () => {
    const { ws, next } = await wsSession();
    ws.send('40/nowhere,');
    expect(await next()).toBe('44/nowhere,{"message":"Invalid namespace"}');
    ws.close();
  });

  test('binary event: placeholder packet then the attachment frame, echoed back the same way', async () => {
    const { ws, next } = await wsSession();
    ws.send('40');
    await next();
    ws.send('451-["echo",{"_placeholder":true,"num":0}]');
    ws.send(Buffer.from([1, 2, 3, 4]));
    expect(await next()).toBe('451-["echo",{"_placeholder":true,"num":0}]');
    const bin = await next();
    expect(Buffer.isBuffer(bin) && [...bin]).toEqual([1, 2, 3, 4]);
    ws.close();
  });

  test('an invalid packet closes the connection', async () => {
    const { ws, next } = await wsSession();
    ws.send('40');
    await next();
    const closed = closedWs(ws);
    ws.send('42["disconnect"]'); // reserved event name
    await closed;
  });

  test('a session that never connects a namespace is closed after connectTimeout', async () => {
    const ws = await wsOpen('EIO=4&transport=websocket');
    await ws.next();
    ws.on('message', (d) => { if (d.toString() === '2') ws.send('3'); }); // stays alive otherwise
    const started = Date.now();
    await closedWs(ws, 4000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000); // connectTimeout 1500, not the heartbeat
  });
});
