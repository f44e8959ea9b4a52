'use strict';
// Engine.IO's edge cases on the wire, each test body run against the `socket.io` package and
// against sidewire (tests/js/helpers/impls.js): heartbeat over long-polling, a second WebSocket
// for an upgraded session, invalid packets on either transport, Socket.IO protocol violations.
const http = require('node:http');
const { WebSocket } = require('ws');
const { IMPLS, IMPLS_ALL, startImpl } = require('./helpers/impls');
const { connected } = require('./helpers/sio');
const { sleep, waitFor } = require('./helpers/ws');

function request(port, method, query, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: `/socket.io/?EIO=4&transport=polling${query}`,
        agent: false,
        headers: body !== undefined ? { 'content-type': 'text/plain;charset=UTF-8' } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// A raw long-polling Engine.IO session.
async function pollingSession(port) {
  const hs = await request(port, 'GET', '');
  expect(hs.status).toBe(200);
  expect(hs.body[0]).toBe('0');
  const open = JSON.parse(hs.body.slice(1));
  return {
    sid: open.sid,
    open,
    get: () => request(port, 'GET', `&sid=${open.sid}`),
    post: (body) => request(port, 'POST', `&sid=${open.sid}`, body),
  };
}

// A raw WebSocket for Engine.IO (text frames as strings); `sid` for an upgrade probe.
function eioSocket(port, sid) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket${sid ? `&sid=${sid}` : ''}`);
  const messages = [];
  const state = { ws, messages, opened: false, closed: null, response: null };
  ws.on('message', (data, isBinary) => messages.push(isBinary ? data : data.toString()));
  ws.on('open', () => {
    state.opened = true;
  });
  ws.on('unexpected-response', (req, res) => {
    state.response = res.statusCode;
    res.resume();
    state.closed = { code: 0 };
  });
  ws.on('close', (code) => {
    if (!state.closed) state.closed = { code };
  });
  ws.on('error', () => {});
  return state;
}

describe.each(IMPLS_ALL)('Engine.IO heartbeat over long-polling (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test('a client that answers every ping keeps its session for many cycles', async () => {
    t = await startImpl(kind, { pingInterval: 300, pingTimeout: 200 });
    const s = await pollingSession(t.port);
    expect(s.open.pingInterval).toBe(300);
    expect(s.open.pingTimeout).toBe(200);
    const bodies = [];
    for (let i = 0; i < 6; i++) {
      const g = await s.get();
      bodies.push(g.body);
      expect((await s.post('3')).body).toBe('ok');
    }
    expect(bodies).toEqual(['2', '2', '2', '2', '2', '2']);
  });

  test('the official client over polling only stays connected through heartbeats', async () => {
    t = await startImpl(kind, { pingInterval: 300, pingTimeout: 200 });
    const disconnects = [];
    t.io.on('connection', (socket) => socket.on('disconnect', (r) => disconnects.push(r)));
    const c = t.client({ transports: ['polling'] });
    await connected(c);
    const id = c.id;
    await sleep(2000);
    expect(c.connected).toBe(true);
    expect(c.id).toBe(id);
    expect(disconnects).toEqual([]);
  });

  test('a packet while the pong is awaited extends the ping timeout once', async () => {
    t = await startImpl(kind, { pingInterval: 500, pingTimeout: 600 });
    const reasons = [];
    t.io.on('connection', (socket) => socket.on('disconnect', (r) => reasons.push(r)));
    const s = await pollingSession(t.port);
    await s.post('40');
    expect((await s.get()).body.slice(0, 2)).toBe('40');
    expect((await s.get()).body).toBe('2');
    const pingAt = Date.now();
    await sleep(400);
    expect((await s.post('42["still here"]')).body).toBe('ok');
    // No pong: without the extension the session would end 600 ms after the ping, with it
    // 600 ms after the message.
    const last = await s.get();
    const closedAfter = Date.now() - pingAt;
    expect(last.body).toBe('1');
    expect(closedAfter).toBeGreaterThanOrEqual(850);
    expect(closedAfter).toBeLessThan(2000);
    await waitFor(() => reasons.length === 1, 2000);
    expect(reasons).toEqual(['ping timeout']);
  });

  test('a client that stops answering is dropped with "ping timeout"', async () => {
    t = await startImpl(kind, { pingInterval: 300, pingTimeout: 200 });
    const reasons = [];
    t.io.on('connection', (socket) => socket.on('disconnect', (r) => reasons.push(r)));
    const s = await pollingSession(t.port);
    await s.post('40');
    expect((await s.get()).body.slice(0, 2)).toBe('40');
    expect((await s.get()).body).toBe('2');
    // No pong: the session ends pingTimeout after the ping went out.
    await waitFor(() => reasons.length === 1, 3000);
    expect(reasons).toEqual(['ping timeout']);
  });
});

describe.each(IMPLS_ALL)('Engine.IO upgrades (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test('a second WebSocket for a session that already upgraded is closed, the first one goes on', async () => {
    t = await startImpl(kind, {});
    t.io.on('connection', (socket) => socket.on('hello', (v, ack) => ack(v + 1)));
    const c = t.client();
    await connected(c);
    await waitFor(() => c.io.engine.transport.name === 'websocket', 4000);
    const sid = c.io.engine.id;
    const second = eioSocket(t.port, sid);
    await waitFor(() => second.closed !== null, 4000);
    // Nothing usable came over it: no pong to a probe, no packets.
    expect(second.messages).toEqual([]);
    expect(await c.timeout(2000).emitWithAck('hello', 1)).toBe(2);
  });
});

describe.each(IMPLS)('invalid packets (%s)', (kind) => {
  let t;
  let errors;
  let reasons;
  beforeEach(async () => {
    errors = [];
    reasons = [];
    t = await startImpl(kind, {}, (io) => {
      io.on('connection', (socket) => {
        socket.on('error', (err) => errors.push(err.message));
        socket.on('disconnect', (r) => reasons.push(r));
      });
      io.of('/other').on('connection', () => {});
    });
  });
  afterEach(async () => {
    await t.close();
  });

  async function connectedPolling() {
    const s = await pollingSession(t.port);
    expect((await s.post('40')).body).toBe('ok');
    expect((await s.get()).body.slice(0, 2)).toBe('40');
    return s;
  }

  test('on a polling session, the held GET gets the close packet and the next one noop and close', async () => {
    const s = await connectedPolling();
    const held = s.get();
    await sleep(50);
    expect((await s.post('4abc')).body).toBe('ok');
    expect(await held).toMatchObject({ status: 200, body: '1' });
    await waitFor(() => reasons.length === 1, 2000);
    expect(reasons).toEqual(['forced close']);
    expect(errors).toEqual(['unknown packet type NaN']);
  });

  test('on a polling session with no GET held, the next GET gets noop and close', async () => {
    const s = await connectedPolling();
    expect((await s.post('4abc')).body).toBe('ok');
    const next = await s.get();
    expect(next).toMatchObject({ status: 200, body: '6\x1e1' });
    await waitFor(() => reasons.length === 1, 2000);
    expect(reasons).toEqual(['forced close']);
    expect(errors).toEqual(['unknown packet type NaN']);
    // The session is gone after that.
    expect((await s.get()).status).toBe(400);
  });

  // Each violation, over WebSocket: socket.io closes the connection; the socket's 'error' event
  // carries the parser's message where there is one.
  const violations = [
    ['a second CONNECT for a namespace already connected', ['40'], []],
    ['an EVENT for a namespace not joined', ['42/other,["x"]'], []],
    ['an ACK for a namespace not joined', ['43/other,1[]'], []],
    ['a BINARY_EVENT with no attachment count', ['45-["x",{"_placeholder":true,"num":0}]'], ['Illegal attachments']],
    ['a BINARY_EVENT with a bad attachment count', ['45x-["x"]'], ['Illegal attachments']],
    ['raw binary where a packet is expected', [Buffer.from([1, 2, 3])], ['got binary data when not reconstructing a packet']],
    ['an empty binary message', [Buffer.alloc(0)], ['got binary data when not reconstructing a packet']],
    [
      'a text packet where an attachment is expected',
      ['451-["x",{"_placeholder":true,"num":0}]', '42["y"]'],
      ['got plaintext data when reconstructing a packet'],
    ],
    ['an unknown packet type', ['4abc'], ['unknown packet type NaN']],
    ['an event with an invalid payload', ['42{"not":"an array"}'], ['invalid payload']],
  ];
  test.each(violations)('over WebSocket: %s closes the connection', async (name, frames, expected) => {
    const ws = eioSocket(t.port);
    await waitFor(() => ws.opened && ws.messages.length === 1, 4000);
    ws.ws.send('40');
    await waitFor(() => ws.messages.length === 2, 4000);
    expect(ws.messages[1].slice(0, 2)).toBe('40');
    for (const f of frames) ws.ws.send(f);
    await waitFor(() => ws.closed !== null && reasons.length === 1, 4000);
    expect(reasons).toEqual(['forced close']);
    expect(errors).toEqual(expected);
  });
});
