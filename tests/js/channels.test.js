'use strict';
// The bindings driven from JS: an http.Server with the Engine attached, real ws clients.
const {
  startServer, open, messages, silent, closed, rawExchange, upgradeRequest, clientFrame, serverFrames,
  afterHead, sleep, waitFor, WebSocket,
} = require('./helpers/ws');

describe('relay channel', () => {
  let t;
  beforeAll(async () => {
    t = await startServer((engine) => {
      engine.channel('/ws/fabric', { roomQuery: 'documentId', relay: true, maxPayload: 64 * 1024 });
    });
  });
  afterAll(() => t.close());

  test('relays text and binary to the other members of the room only', async () => {
    const a = await open(t.url('/ws/fabric?documentId=doc1&clientID=1'));
    const b = await open(t.url('/ws/fabric?documentId=doc1&clientID=2'));
    const c = await open(t.url('/ws/fabric?documentId=doc2&clientID=3'));
    const fromB = messages(b, 2);
    const cSilent = silent(c, 400);
    const aSilent = silent(a, 400);
    a.send('step-1');
    a.send(Buffer.from([0, 1, 2, 250, 255]));
    const got = await fromB;
    expect(got[0]).toEqual(['step-1', false]);
    expect(got[1][1]).toBe(true);
    expect([...got[1][0]]).toEqual([0, 1, 2, 250, 255]);
    expect(await cSilent).toBe(true);
    expect(await aSilent).toBe(true);
    const fabric = t.engine.getChannel('/ws/fabric');
    expect(fabric.count()).toBe(3);
    expect(fabric.count('doc1')).toBe(2);
    expect(fabric.count('doc2')).toBe(1);
    for (const ws of [a, b, c]) ws.close();
    await waitFor(() => fabric.count() === 0);
    expect(fabric.count('doc1')).toBe(0);
  });

  test('a message larger than maxPayload closes the sender with 1009, others keep relaying', async () => {
    const big = await open(t.url('/ws/fabric?documentId=big'));
    const x = await open(t.url('/ws/fabric?documentId=big'));
    const y = await open(t.url('/ws/fabric?documentId=big'));
    const bigClosed = closed(big);
    big.send(Buffer.alloc(64 * 1024 + 1));
    expect((await bigClosed).code).toBe(1009);
    const toY = messages(y, 1);
    x.send('still here');
    expect((await toY)[0][0]).toBe('still here');
    x.close();
    y.close();
  });

  test('invalid UTF-8 in a text frame closes with 1007', async () => {
    const { data } = await rawExchange(t.port, upgradeRequest('/ws/fabric?documentId=u'), {
      after: (sock) => setTimeout(() => sock.write(clientFrame(1, Buffer.from([0x68, 0xc3, 0x28]))), 50),
    });
    expect(data.toString('latin1')).toMatch(/^HTTP\/1\.1 101/);
    const frames = serverFrames(afterHead(data));
    expect(frames.find((f) => f.opcode === 8).code).toBe(1007);
  });

  test('an unmasked client frame closes with 1002', async () => {
    const { data } = await rawExchange(t.port, upgradeRequest('/ws/fabric?documentId=u'), {
      after: (sock) => setTimeout(() => sock.write(clientFrame(1, 'hi', { mask: false })), 50),
    });
    expect(serverFrames(afterHead(data)).find((f) => f.opcode === 8).code).toBe(1002);
  });

  test('frames sent together with the upgrade request are not lost', async () => {
    const peer = await open(t.url('/ws/fabric?documentId=early'));
    const got = messages(peer, 1);
    const bytes = Buffer.concat([
      Buffer.from(upgradeRequest('/ws/fabric?documentId=early')),
      clientFrame(1, 'sent with the request'),
    ]);
    const raw = rawExchange(t.port, bytes, { waitMs: 800 });
    expect((await got)[0][0]).toBe('sent with the request');
    await raw;
    peer.close();
  });

  test('bad upgrades get their HTTP status and do not disturb open connections', async () => {
    const a = await open(t.url('/ws/fabric?documentId=calm'));
    const b = await open(t.url('/ws/fabric?documentId=calm'));
    const cases = [
      [upgradeRequest('/ws/nowhere'), 404],
      [upgradeRequest('/ws/fabric', { 'Sec-WebSocket-Key': null }), 400],
      [upgradeRequest('/ws/fabric', { 'Sec-WebSocket-Key': 'not-base64!' }), 400],
      [upgradeRequest('/ws/fabric', { 'Sec-WebSocket-Version': '8' }), 426],
    ];
    for (const [request, status] of cases) {
      const { data } = await rawExchange(t.port, request);
      expect(data.toString('latin1').split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${{ 404: 'Not Found', 400: 'Bad Request', 426: 'Upgrade Required' }[status]}`);
      if (status === 426) expect(data.toString('latin1')).toMatch(/Sec-WebSocket-Version: 13/);
    }
    const toB = messages(b, 1);
    a.send('unharmed');
    expect((await toB)[0][0]).toBe('unharmed');
    expect(t.engine.stats().upgradesRefused).toBeGreaterThanOrEqual(4);
    a.close();
    b.close();
  });
});

describe('relay over several rooms', () => {
  let t;
  beforeAll(async () => {
    t = await startServer((engine) => {
      engine.channel('/ws/multi', { relay: true, joinMessages: true });
    });
  });
  afterAll(() => t.close());

  test('a peer sharing several rooms with the sender gets each message once; others per room', async () => {
    const ch = t.engine.getChannel('/ws/multi');
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => open(t.url('/ws/multi'))));
    for (const [ws, rooms] of [[a, ['x', 'y']], [b, ['x', 'y']], [c, ['y']], [d, ['z']]]) {
      for (const room of rooms) ws.send(JSON.stringify({ join: room }));
    }
    await waitFor(() => ch.count('x') === 2 && ch.count('y') === 3 && ch.count('z') === 1);
    const toB = messages(b, 2);
    const toC = messages(c, 2);
    a.send('one');
    a.send(Buffer.from([7, 8]));
    expect((await toB).map(([m]) => String(m))).toEqual(['one', '\x07\x08']);
    expect((await toC).map(([m]) => String(m))).toEqual(['one', '\x07\x08']);
    // Nothing more: no second copy for b, nothing for d, nothing back to a.
    const quiet = await Promise.all([silent(a, 300), silent(b, 300), silent(c, 300), silent(d, 300)]);
    expect(quiet).toEqual([true, true, true, true]);
    // Leaving one of the shared rooms still leaves the other.
    b.send(JSON.stringify({ leave: 'y' }));
    await waitFor(() => ch.count('y') === 2);
    const again = messages(b, 1);
    const cAgain = messages(c, 1);
    a.send('two');
    expect((await again)[0][0].toString()).toBe('two');
    expect((await cAgain)[0][0].toString()).toBe('two');
    expect(await silent(b, 200)).toBe(true);
    for (const ws of [a, b, c, d]) ws.close();
    await waitFor(() => ch.count() === 0);
    expect(ch.count('x') + ch.count('y') + ch.count('z')).toBe(0);
  });
});

describe('channel with JS hooks', () => {
  let t;
  let fabric;
  const events = [];
  beforeAll(async () => {
    t = await startServer((engine) => {
      fabric = engine.channel('/ws/chat', {
        roomQuery: 'room',
        authorize: (req) => {
          const token = new URL(req.url, 'http://x').searchParams.get('token');
          if (token === 'good') return true;
          if (token === 'slow') return new Promise((r) => setTimeout(() => r(true), 100));
          return { status: 401, message: 'bad token' };
        },
      });
      fabric.on('connection', (client, req) => {
        events.push(['connection', client.id, client.query.room, req.headers['x-user']]);
        client.send(`welcome ${client.query.room}`);
      });
      fabric.on('message', (client, data, isBinary) => {
        events.push(['message', client.id, isBinary ? [...data] : data]);
        if (data === 'join:extra') client.join('extra');
        else if (data === 'leave:extra') client.leave('extra');
        else if (data === 'bye') client.close(4001, 'asked to leave');
        else fabric.broadcast(client.query.room, `echo:${isBinary ? 'bin' : data}`, { except: client });
      });
      fabric.on('close', (client, code, reason) => events.push(['close', client.id, code, reason]));
    });
  });
  afterAll(() => t.close());

  test('authorize refuses with its status and accepts (also asynchronously)', async () => {
    await expect(open(t.url('/ws/chat?room=r&token=bad'))).rejects.toMatchObject({ status: 401 });
    const slowWelcome = new Promise((resolve, reject) => {
      const ws = new WebSocket(t.url('/ws/chat?room=r&token=slow'));
      ws.once('message', (d) => resolve([ws, d.toString()]));
      ws.once('error', reject);
    });
    const [ws, welcome] = await slowWelcome;
    expect(welcome).toBe('welcome r');
    ws.close();
  });

  test('connection, message and close reach JS; broadcast honours except; send and close work', async () => {
    const mk = (user) => new Promise((resolve, reject) => {
      const ws = new WebSocket(t.url('/ws/chat?room=lobby&token=good'), { headers: { 'x-user': user } });
      ws.once('message', () => resolve(ws)); // the welcome
      ws.once('error', reject);
    });
    const alice = await mk('alice');
    const bob = await mk('bob');
    expect(events.filter((e) => e[0] === 'connection').map((e) => e[3])).toEqual(expect.arrayContaining(['alice', 'bob']));
    const toBob = messages(bob, 1);
    const aliceSilent = silent(alice, 300);
    alice.send('hello');
    expect((await toBob)[0][0]).toBe('echo:hello');
    expect(await aliceSilent).toBe(true);
    alice.send(Buffer.from([9, 8]));
    await waitFor(() => events.some((e) => e[0] === 'message' && Array.isArray(e[2]) && e[2][0] === 9));

    // join/leave from JS
    const aliceId = events.find((e) => e[0] === 'connection' && e[3] === 'alice')[1];
    alice.send('join:extra');
    await waitFor(() => fabric.count('extra') === 1);
    const toAlice = messages(alice, 1);
    fabric.broadcast('extra', 'to extra');
    expect((await toAlice)[0][0]).toBe('to extra');
    expect(fabric.clients.get(aliceId).rooms.has('extra')).toBe(true);
    alice.send('leave:extra');
    await waitFor(() => fabric.count('extra') === 0);

    const direct = messages(bob, 1);
    fabric.send(aliceId, 'not for bob');
    const toAlice2 = messages(alice, 1);
    expect((await toAlice2)[0][0]).toBe('not for bob');
    fabric.send(events.find((e) => e[0] === 'connection' && e[3] === 'bob')[1], 'for bob');
    expect((await direct)[0][0]).toBe('for bob');

    const aliceClosed = closed(alice);
    alice.send('bye');
    expect(await aliceClosed).toEqual({ code: 4001, reason: 'asked to leave' });
    await waitFor(() => events.some((e) => e[0] === 'close' && e[1] === aliceId));
    expect(events.find((e) => e[0] === 'close' && e[1] === aliceId).slice(2)).toEqual([4001, 'asked to leave']);
    const bobClosed = closed(bob);
    bob.close(1000, 'done');
    await bobClosed;
    const bobId = events.find((e) => e[0] === 'connection' && e[3] === 'bob')[1];
    await waitFor(() => events.some((e) => e[0] === 'close' && e[1] === bobId));
    expect(events.find((e) => e[0] === 'close' && e[1] === bobId).slice(2)).toEqual([1000, 'done']);
    expect(fabric.clients.size).toBe(0);
  });
});

describe('heartbeat', () => {
  let t;
  beforeAll(async () => {
    t = await startServer((engine) => {
      engine.channel('/ws/beat', { pingInterval: 300, pingTimeout: 300 });
    });
  });
  afterAll(() => t.close());

  test('a peer that stops answering pings is closed; one that answers stays', async () => {
    const mute = await open(t.url('/ws/beat'), { autoPong: false });
    const lively = await open(t.url('/ws/beat'));
    let pings = 0;
    lively.on('ping', () => pings++);
    const muteClosed = closed(mute, 4000);
    const r = await muteClosed;
    expect(r.code).toBe(1006); // cut without a close frame
    await sleep(700);
    expect(lively.readyState).toBe(WebSocket.OPEN);
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(t.engine.stats().heartbeatTimeouts).toBe(1);
    lively.close();
  });
});

describe('shutdown', () => {
  test('close() sends 1001 to every connection, refuses new ones and resolves', async () => {
    const t = await startServer((engine) => engine.channel('/ws/s', { relay: true, roomQuery: 'r' }));
    const clients = await Promise.all(Array.from({ length: 20 }, () => open(t.url('/ws/s?r=1'))));
    const codes = Promise.all(clients.map((ws) => closed(ws)));
    // keep traffic flowing while the server shuts down
    const timer = setInterval(() => clients.forEach((ws) => ws.readyState === 1 && ws.send('x')), 5);
    const done = t.engine.close({ drainMs: 1000 });
    await expect(open(t.url('/ws/s?r=1'))).rejects.toMatchObject({ status: 503 });
    await done;
    clearInterval(timer);
    expect((await codes).map((c) => c.code)).toEqual(Array(20).fill(1001));
    await new Promise((resolve) => t.server.close(resolve));
  });
});
