'use strict';
// Abuse limits in the engine (Server and channel options `limits` and `trustProxy`). The Socket.IO
// bodies that socket.io apps write by hand (a token bucket in socket.use, a per-address count in
// io.use) also run against the `socket.io` package, so what a client sees of sidewire's limits is
// checked against what they replace. The HTTP answers (429, Retry-After), trustProxy, the idle
// timeout, per-user caps and raw channels are sidewire's own.
const http = require('node:http');
const jsonwebtoken = require('jsonwebtoken');
const { IMPLS, startImpl } = require('./helpers/impls');
const { connected, connectError, once, sleep, waitFor } = require('./helpers/sio');
const ws = require('./helpers/ws');
const { Engine, Server } = require('../../js/index.js');

const SECRET = 'the desk secret';
const sign = (sub) => jsonwebtoken.sign({ sub }, SECRET, { expiresIn: 3600 });

// What socket.io apps write: a token bucket per socket and event in socket.use, and a count of
// sockets per address in io.use.
function handWritten(limits) {
  return (io) => {
    const open = new Map();
    if (limits.connectionsPerIp) {
      io.use((socket, next) => {
        const ip = socket.handshake.address;
        if ((open.get(ip) || 0) >= limits.connectionsPerIp) return next(new Error('too many connections'));
        open.set(ip, (open.get(ip) || 0) + 1);
        socket.on('disconnect', () => open.set(ip, open.get(ip) - 1));
        return next();
      });
    }
    io.on('connection', (socket) => {
      const buckets = new Map();
      socket.use(([event], next) => {
        const rules = limits.events || {};
        const key = rules[event] ? event : '*';
        const rule = rules[key];
        if (!rule) return next();
        const now = Date.now();
        const b = buckets.get(key) || { tokens: rule.points, at: now, told: false };
        buckets.set(key, b);
        b.tokens = Math.min(rule.points, b.tokens + ((now - b.at) * rule.points) / (rule.perSeconds * 1000));
        b.at = now;
        if (b.tokens >= 1) {
          b.tokens -= 1;
          b.told = false;
          return next();
        }
        if (limits.policy === 'disconnect') return socket.disconnect(true);
        if (!b.told) {
          b.told = true;
          const retryAfterMs = Math.ceil(((1 - b.tokens) * rule.perSeconds * 1000) / rule.points);
          socket.emit('error', { message: 'rate limited', data: { event, retryAfterMs } });
        }
        return undefined;
      });
    });
  };
}

async function start(kind, limits, setup = () => {}, opts = {}) {
  if (kind === 'socket.io') {
    return startImpl(kind, opts, (io) => {
      handWritten(limits)(io);
      setup(io);
    });
  }
  return startImpl(kind, { limits, ...opts }, setup);
}

describe.each(IMPLS)('limits (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test('events over their rate never reach a handler; the client is told once per burst', async () => {
    const seen = [];
    const limits = { events: { 'message:typing': { points: 3, perSeconds: 1 }, '*': { points: 4, perSeconds: 60 } } };
    t = await start(kind, limits, (io) => {
      io.on('connection', (socket) => {
        for (const name of ['message:typing', 'a', 'b']) socket.on(name, (n) => seen.push(`${socket.handshake.auth.who}:${name}:${n}`));
      });
    });
    const c = t.client({ auth: { who: 'c' } });
    const other = t.client({ auth: { who: 'o' } });
    await Promise.all([connected(c), connected(other)]);
    const told = [];
    c.on('error', (e) => told.push(e));
    for (let i = 0; i < 6; i += 1) c.emit('message:typing', i);
    for (let i = 0; i < 3; i += 1) c.emit('a', i);
    for (let i = 0; i < 3; i += 1) c.emit('b', i); // '*' is one bucket for every event not named
    for (let i = 0; i < 3; i += 1) other.emit('message:typing', i); // its own buckets
    await waitFor(() => seen.length === 10 && told.length === 2, 3000);
    await sleep(200);
    expect(seen.filter((s) => s.startsWith('c:message:typing'))).toEqual(['c:message:typing:0', 'c:message:typing:1', 'c:message:typing:2']);
    expect(seen.filter((s) => /^c:[ab]/.test(s))).toEqual(['c:a:0', 'c:a:1', 'c:a:2', 'c:b:0']);
    expect(seen.filter((s) => s.startsWith('o:'))).toHaveLength(3);
    expect(told.map((e) => [e.message, e.data.event])).toEqual([['rate limited', 'message:typing'], ['rate limited', 'b']]);
    expect(told[0].data.retryAfterMs).toBeGreaterThan(0);
    expect(told[0].data.retryAfterMs).toBeLessThanOrEqual(1000);
    // The bucket refills: a second later one more passes, untold.
    await sleep(1100);
    c.emit('message:typing', 'late');
    await waitFor(() => seen.includes('c:message:typing:late'), 2000);
    expect(told).toHaveLength(2);
    expect(c.connected).toBe(true);
  });

  test("policy 'disconnect': the socket over its rate is disconnected, the others go on", async () => {
    let calls = 0;
    const reasons = [];
    t = await start(kind, { events: { 'call:initiate': { points: 2, perSeconds: 60 } }, policy: 'disconnect' }, (io) => {
      io.on('connection', (socket) => {
        socket.on('call:initiate', () => {
          calls += 1;
        });
        socket.on('disconnect', (reason) => reasons.push(reason));
      });
    });
    const c = t.client();
    const other = t.client();
    await Promise.all([connected(c), connected(other)]);
    c.emit('call:initiate');
    c.emit('call:initiate');
    await waitFor(() => calls === 2);
    // (Events queued in the same turn as the one over the limit go with the socket, in both.)
    const gone = once(c, 'disconnect');
    c.emit('call:initiate');
    expect(await gone).toEqual(['io server disconnect']);
    await sleep(100);
    expect(calls).toBe(2);
    await waitFor(() => reasons.length === 1);
    expect(reasons).toEqual([kind === 'socket.io' ? 'server namespace disconnect' : 'rate limited']);
    other.emit('call:initiate');
    await waitFor(() => calls === 3);
    expect(other.connected).toBe(true);
  });

  test('connectionsPerIp: past the cap a client cannot connect, until one of the others leaves', async () => {
    t = await start(kind, { connectionsPerIp: 2 }, (io) => io.on('connection', () => {}));
    const a = t.client();
    const b = t.client({ transports: ['websocket'] });
    await Promise.all([connected(a), connected(b)]);
    await connectError(t.client());
    await connectError(t.client({ transports: ['websocket'] }));
    a.disconnect();
    await waitFor(() => t.io.of('/').sockets.size === 1);
    await sleep(100);
    await connected(t.client());
  });
});

describe('limits in the engine (sidewire)', () => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  const get = (port, path, headers = {}) =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, headers }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
        })
        .on('error', reject);
    });
  const handshake = '/socket.io/?EIO=4&transport=polling';

  test('a handshake past connectionsPerIp is answered 429, polling and WebSocket alike, and counted', async () => {
    t = await startImpl('sidewire', { limits: { connectionsPerIp: 2 } });
    expect((await get(t.port, handshake)).status).toBe(200);
    expect((await get(t.port, handshake)).status).toBe(200);
    const refused = await get(t.port, handshake);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).message).toMatch(/too many connections from this address \(connectionsPerIp 2\)/);
    const { data } = await ws.rawExchange(t.port, ws.upgradeRequest('/socket.io/?EIO=4&transport=websocket'));
    expect(data.toString('latin1')).toMatch(/^HTTP\/1\.1 429 Too Many Requests/);
    expect(t.engine.stats().limits.connectionsPerIp).toBe(2);
  });

  test('connectRatePerIp: the handshake past the rate gets 429 with Retry-After', async () => {
    t = await startImpl('sidewire', { limits: { connectRatePerIp: { points: 3, perSeconds: 60 } } });
    for (let i = 0; i < 3; i += 1) expect((await get(t.port, handshake)).status).toBe(200);
    const refused = await get(t.port, handshake);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(20);
    expect(JSON.parse(refused.body).message).toMatch(/connectRatePerIp 3 per 60000 ms/);
    expect(t.engine.stats().limits.connectRatePerIp).toBe(1);
  });

  test('connectionsPerUser (with auth.jwt): CONNECT_ERROR past the cap, other users unaffected', async () => {
    t = await startImpl('sidewire', { auth: { jwt: { secret: SECRET } }, limits: { connectionsPerUser: 2 } }, (io) => {
      io.on('connection', () => {});
    });
    const first = t.client({ auth: { token: sign('ada') } });
    await connected(first);
    await connected(t.client({ auth: { token: sign('ada') } }));
    const err = await connectError(t.client({ auth: { token: sign('ada') } }));
    expect(err.message).toBe('too many connections');
    expect(err.data).toEqual({ reason: 'connectionsPerUser', limit: 2 });
    await connected(t.client({ auth: { token: sign('grace') } }));
    first.disconnect();
    await waitFor(() => t.io.of('/').sockets.size === 2);
    await sleep(100);
    await connected(t.client({ auth: { token: sign('ada') } }));
    expect(t.engine.stats().limits.connectionsPerUser).toBe(1);
  });

  test('idleTimeoutMs: a client that sends nothing but heartbeats is disconnected; a busy one stays', async () => {
    const reasons = [];
    t = await startImpl('sidewire', { limits: { idleTimeoutMs: 700 }, pingInterval: 100, pingTimeout: 1000 }, (io) => {
      io.on('connection', (socket) => {
        socket.on('tick', () => {});
        socket.on('disconnect', (r) => reasons.push(r));
      });
    });
    const quiet = t.client({ transports: ['websocket'] });
    const busy = t.client();
    await Promise.all([connected(quiet), connected(busy)]);
    const timer = setInterval(() => busy.emit('tick'), 150);
    try {
      const started = Date.now();
      expect(await once(quiet, 'disconnect', 4000)).toEqual(['io server disconnect']);
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
      await sleep(800);
      expect(busy.connected).toBe(true);
    } finally {
      clearInterval(timer);
    }
    expect(reasons).toEqual(['idle timeout']);
    expect(t.engine.stats().limits.idleTimeout).toBe(1);
  });

  test('trustProxy: X-Forwarded-For from a trusted proxy is the address counted and shown', async () => {
    const addresses = [];
    t = await startImpl('sidewire', { trustProxy: ['loopback'], limits: { connectionsPerIp: 1 } }, (io) => {
      io.on('connection', (socket) => addresses.push([socket.handshake.address, socket.conn.remoteAddress]));
    });
    const via = (xff, o = {}) => t.client({ extraHeaders: { 'x-forwarded-for': xff }, ...o });
    await connected(via('203.0.113.1'));
    await connected(via('203.0.113.2', { transports: ['websocket'] }));
    // The rightmost hop not a trusted proxy is the client: what is left of it may be forged.
    await connected(via('198.51.100.9, 203.0.113.3, 127.0.0.1'));
    await connected(t.client({ extraHeaders: { 'x-real-ip': '203.0.113.4' } }));
    await connectError(via('203.0.113.1'));
    await connectError(via('203.0.113.1', { transports: ['websocket'] }));
    expect(addresses).toEqual([
      ['203.0.113.1', '203.0.113.1'],
      ['203.0.113.2', '203.0.113.2'],
      ['203.0.113.3', '203.0.113.3'],
      ['203.0.113.4', '203.0.113.4'],
    ]);
  });

  test('trustProxy: X-Forwarded-For from a peer that is not a listed proxy is not believed', async () => {
    const addresses = [];
    t = await startImpl('sidewire', { trustProxy: ['10.0.0.0/8', 'fd00::/8'], limits: { connectionsPerIp: 1 } }, (io) => {
      io.on('connection', (socket) => addresses.push(socket.handshake.address));
    });
    await connected(t.client({ extraHeaders: { 'x-forwarded-for': '203.0.113.1' } }));
    // Another forged address changes nothing: the peer (loopback) is what is counted.
    await connectError(t.client({ extraHeaders: { 'x-forwarded-for': '203.0.113.2' } }));
    expect(addresses).toHaveLength(1);
    expect(addresses[0]).toMatch(/127\.0\.0\.1$/);
  });

  test('options that cannot work are refused with a TypeError', async () => {
    const engine = new Engine({ global: false, logLevel: 'off' });
    try {
      const make = (opts) => () => new Server({ engine, ...opts });
      expect(make({ limits: { policy: 'ban' } })).toThrow(/limits.policy must be 'error', 'drop' or 'disconnect'/);
      expect(make({ limits: { events: { chat: { points: 0, perSeconds: 1 } } } })).toThrow(/points must be a whole number/);
      expect(make({ limits: { events: { chat: { points: 1 } } } })).toThrow(/perSeconds/);
      expect(make({ limits: { connectionsPerUser: 2 } })).toThrow(/needs auth.jwt/);
      expect(make({ limits: { errorEvent: 'disconnect' } })).toThrow(/errorEvent/);
      expect(make({ trustProxy: true })).toThrow(/list the proxies/);
      expect(make({ trustProxy: ['10.0.0.0/33'] })).toThrow(/prefix length/);
      expect(make({ trustProxy: ['proxy.internal'] })).toThrow(/no address or network/);
      expect(() => engine.channel('/ws/x', { limits: { events: { chat: { points: 1, perSeconds: 1 } } } })).toThrow(
        /raw channel's messages have no names/,
      );
    } finally {
      await engine.close();
    }
  });
});

describe('limits of raw channels (sidewire)', () => {
  let t;
  const got = {};
  const addresses = [];
  const rate = { events: { '*': { points: 3, perSeconds: 60 } } };
  beforeAll(async () => {
    t = await ws.startServer((engine) => {
      for (const [path, limits] of [
        ['/ws/drop', rate],
        ['/ws/error', { ...rate, policy: 'error' }],
        ['/ws/cut', { ...rate, policy: 'disconnect' }],
      ]) {
        got[path] = [];
        engine.channel(path, { limits }).on('message', (_client, data) => got[path].push(String(data)));
      }
      engine
        .channel('/ws/cap', { trustProxy: 'loopback', limits: { connectionsPerIp: 2 } })
        .on('connection', (client) => addresses.push(client.remoteAddress));
      engine.channel('/ws/idle', { limits: { idleTimeoutMs: 600 }, pingInterval: 100 });
      engine.channel('/ws/user', { auth: { jwt: { secret: SECRET } }, limits: { connectionsPerUser: 1 } });
    });
  });
  afterAll(() => t.close());

  const send6 = (c) => {
    for (let i = 0; i < 6; i += 1) c.send(`m${i}`);
  };

  test("messages past '*' are dropped before JS, silently by default", async () => {
    const c = await ws.open(t.url('/ws/drop'));
    const quiet = ws.silent(c, 400);
    send6(c);
    expect(await quiet).toBe(true);
    expect(got['/ws/drop']).toEqual(['m0', 'm1', 'm2']);
    c.close();
  });

  test("policy 'error': the client is told once, in a JSON text frame", async () => {
    const c = await ws.open(t.url('/ws/error'));
    const told = ws.messages(c, 1);
    send6(c);
    const [[frame, binary]] = await told;
    expect(binary).toBe(false);
    expect(JSON.parse(frame)).toMatchObject({ error: 'rate limited' });
    expect(await ws.silent(c, 300)).toBe(true);
    await waitFor(() => got['/ws/error'].length === 3);
    c.close();
  });

  test("policy 'disconnect': closed with 1008 'rate limited'", async () => {
    const c = await ws.open(t.url('/ws/cut'));
    const gone = ws.closed(c);
    send6(c);
    const { code, reason } = await gone;
    expect(code).toBe(1008);
    expect(String(reason)).toBe('rate limited');
    expect(got['/ws/cut']).toEqual(['m0', 'm1', 'm2']);
  });

  test('connectionsPerIp through trustProxy: 429 past the cap, the address in client.remoteAddress', async () => {
    const from = (ip) => ({ headers: { 'x-forwarded-for': ip } });
    const a = await ws.open(t.url('/ws/cap'), from('203.0.113.7'));
    const b = await ws.open(t.url('/ws/cap'), from('203.0.113.7'));
    await expect(ws.open(t.url('/ws/cap'), from('203.0.113.7'))).rejects.toMatchObject({ status: 429 });
    const c = await ws.open(t.url('/ws/cap'), from('203.0.113.8'));
    await waitFor(() => addresses.length === 3);
    expect(addresses).toEqual(['203.0.113.7', '203.0.113.7', '203.0.113.8']);
    const closedA = ws.closed(a);
    a.close();
    await closedA;
    await sleep(100);
    const d = await ws.open(t.url('/ws/cap'), from('203.0.113.7'));
    for (const x of [b, c, d]) x.close();
  });

  test('idleTimeoutMs: closed with 1000 after no message for that long; pongs do not count', async () => {
    const quiet = await ws.open(t.url('/ws/idle'));
    const busy = await ws.open(t.url('/ws/idle'));
    const timer = setInterval(() => busy.send('tick'), 150);
    try {
      const { code, reason } = await ws.closed(quiet, 4000);
      expect(code).toBe(1000);
      expect(String(reason)).toBe('idle timeout');
      await sleep(700);
      expect(busy.readyState).toBe(ws.WebSocket.OPEN);
    } finally {
      clearInterval(timer);
      busy.close();
    }
  });

  test('connectionsPerUser: a second connection of one user is refused 429', async () => {
    const a = await ws.open(t.url(`/ws/user?token=${sign('ada')}`));
    await expect(ws.open(t.url(`/ws/user?token=${sign('ada')}`))).rejects.toMatchObject({ status: 429 });
    const g = await ws.open(t.url(`/ws/user?token=${sign('grace')}`));
    const limits = t.engine.stats().limits;
    expect(limits.connectionsPerUser).toBe(1);
    expect(limits.rateLimited).toBe(3 + 3 + 1); // dropped, told, and the one that closed its connection
    expect(limits.idleTimeout).toBeGreaterThanOrEqual(1);
    a.close();
    g.close();
  });
});

describe('limits checked in the option lists', () => {
  test('an unknown limits option is warned about with the closest name', async () => {
    const warnings = [];
    const spy = jest.spyOn(process, 'emitWarning').mockImplementation((message) => warnings.push(String(message)));
    const engine = new Engine({ global: false, logLevel: 'off' });
    try {
      // eslint-disable-next-line no-new
      new Server({ engine, limits: { conectionsPerIp: 3 } });
      expect(warnings.join('\n')).toMatch(/unknown limits option 'limits.conectionsPerIp'.*'limits.connectionsPerIp'/);
    } finally {
      spy.mockRestore();
      await engine.close();
    }
  });
});
