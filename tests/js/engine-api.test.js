'use strict';
// io.engine (engine.io's Server) and socket.conn (engine.io's Socket) as socket.io users know
// them: each test body runs against the `socket.io` package and against sidewire (and, where
// the engine's own listener changes the path of a request, behind engine.listen()).
const http = require('node:http');
const WebSocket = require('ws');
const session = require('express-session');
const { IMPLS, IMPLS_ALL, startImpl } = require('./helpers/impls');
const { waitFor, sleep } = require('./helpers/ws');

jest.setTimeout(30000);

const isSidewire = (kind) => kind !== 'socket.io';

// One HTTP request: { status, headers, body }.
function request(port, path, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        data += d;
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// A polling handshake: the sid and the response.
async function handshake(port, headers = {}) {
  const res = await request(port, '/socket.io/?EIO=4&transport=polling', { headers });
  expect(res.status).toBe(200);
  return { sid: JSON.parse(res.body.slice(1)).sid, res };
}

// A raw WebSocket upgrade: resolves { status, headers, ws } (ws open on 101, else null).
function upgrade(port, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    ws.on('upgrade', (res) => resolve({ status: 101, headers: res.headers, ws }));
    ws.on('unexpected-response', (req, res) => {
      let data = '';
      res.on('data', (d) => {
        data += d;
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data, ws: null }));
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

function onceEvent(emitter, name) {
  return new Promise((resolve) => emitter.once(name, (...args) => resolve(args)));
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
}

// -------------------------------------------------------------------------------------- io.engine

describe.each(IMPLS_ALL)('io.engine (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test('opts: engine.io defaults under the Server options', async () => {
    t = await startImpl(kind, { pingInterval: 10000, maxHttpBufferSize: 5000, cors: { origin: 'https://a.example' } });
    const o = t.io.engine.opts;
    const picked = {};
    for (const k of ['pingInterval', 'pingTimeout', 'upgradeTimeout', 'maxHttpBufferSize', 'transports', 'allowUpgrades',
      'httpCompression', 'cors', 'allowEIO3', 'path', 'perMessageDeflate']) picked[k] = o[k];
    expect(picked).toEqual({
      pingInterval: 10000,
      pingTimeout: 20000,
      upgradeTimeout: 10000,
      maxHttpBufferSize: 5000,
      transports: ['polling', 'websocket'],
      allowUpgrades: true,
      httpCompression: { threshold: 1024 },
      cors: { origin: 'https://a.example' },
      allowEIO3: false,
      path: '/socket.io',
      perMessageDeflate: undefined,
    });
  });

  test('clientsCount counts open Engine.IO sessions, whatever the transport', async () => {
    t = await startImpl(kind);
    expect(t.io.engine.clientsCount).toBe(0);
    const a = t.client({ transports: ['polling'] });
    const b = t.client({ transports: ['websocket'] });
    await Promise.all([connected(a), connected(b)]);
    await waitFor(() => t.io.engine.clientsCount === 2, 3000);
    // A session without any namespace is a client too.
    const { sid } = await handshake(t.port);
    expect(sid).toEqual(expect.any(String));
    await waitFor(() => t.io.engine.clientsCount === 3, 3000);
    b.disconnect();
    await waitFor(() => t.io.engine.clientsCount === 2, 3000);
    expect(t.io.engine.clientsCount).toBe(2);
  });

  test("'connection' gives engine.io's Socket for every new session", async () => {
    const seen = [];
    t = await startImpl(kind, {}, (io) => {
      io.engine.on('connection', (conn) => {
        seen.push({ id: conn.id, transport: conn.transport.name, readyState: conn.readyState, protocol: conn.protocol,
          remoteAddress: conn.remoteAddress, url: conn.request.url.split('&')[0] });
      });
    });
    const c = t.client({ transports: ['websocket'] });
    await connected(c);
    await waitFor(() => seen.length === 1, 3000);
    expect(seen[0]).toEqual({ id: c.io.engine.id, transport: 'websocket', readyState: 'open', protocol: 4,
      remoteAddress: '127.0.0.1', url: '/socket.io/?EIO=4' });
    const { sid } = await handshake(t.port);
    await waitFor(() => seen.length === 2, 3000);
    expect(seen[1]).toMatchObject({ id: sid, transport: 'polling', readyState: 'open' });
  });

  test("'connection_error' for refused polling requests: code, message, context, req", async () => {
    const errors = [];
    t = await startImpl(kind, {
      allowRequest: (req, cb) => cb(req.headers['x-deny'] ? 'not you' : null, !req.headers['x-deny']),
    }, (io) => {
      io.engine.on('connection_error', (err) => errors.push({ code: err.code, message: err.message, context: err.context,
        method: err.req.method, url: err.req.url }));
    });
    const unknownSid = await request(t.port, '/socket.io/?EIO=4&transport=polling&sid=nope');
    expect([unknownSid.status, JSON.parse(unknownSid.body)]).toEqual([400, { code: 1, message: 'Session ID unknown' }]);
    const badTransport = await request(t.port, '/socket.io/?EIO=4&transport=carrier-pigeon');
    expect([badTransport.status, JSON.parse(badTransport.body)]).toEqual([400, { code: 0, message: 'Transport unknown' }]);
    const badMethod = await request(t.port, '/socket.io/?EIO=4&transport=polling', { method: 'POST', body: '40' });
    expect([badMethod.status, JSON.parse(badMethod.body)]).toEqual([400, { code: 2, message: 'Bad handshake method' }]);
    const denied = await request(t.port, '/socket.io/?EIO=4&transport=polling', { headers: { 'x-deny': '1' } });
    expect([denied.status, JSON.parse(denied.body)]).toEqual([403, { code: 4, message: 'not you' }]);
    await waitFor(() => errors.length === 4, 3000);
    expect(errors).toEqual([
      { code: 1, message: 'Session ID unknown', context: { sid: 'nope' }, method: 'GET', url: '/socket.io/?EIO=4&transport=polling&sid=nope' },
      { code: 0, message: 'Transport unknown', context: { transport: 'carrier-pigeon' }, method: 'GET', url: '/socket.io/?EIO=4&transport=carrier-pigeon' },
      { code: 2, message: 'Bad handshake method', context: { method: 'POST' }, method: 'POST', url: '/socket.io/?EIO=4&transport=polling' },
      { code: 4, message: 'Forbidden', context: { message: 'not you' }, method: 'GET', url: '/socket.io/?EIO=4&transport=polling' },
    ]);
    // A session's own requests are no connection errors.
    const { sid } = await handshake(t.port);
    const post = await request(t.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40' });
    expect(post.status).toBe(200);
    await sleep(100);
    expect(errors).toHaveLength(4);
  });

  test('close() ends every session; clients see "transport close"', async () => {
    t = await startImpl(kind);
    const c = t.client({ transports: ['websocket'] });
    await connected(c);
    const reason = onceEvent(c, 'disconnect');
    expect(t.io.engine.close()).toBe(t.io.engine);
    expect((await reason)[0]).toBe('transport close');
  });
});

describe.each(IMPLS_ALL)('io.engine over WebSocket (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test("'connection_error' for refused upgrades", async () => {
    const errors = [];
    t = await startImpl(kind, {}, (io) => {
      io.engine.on('connection_error', (err) => errors.push({ code: err.code, message: err.message, context: err.context,
        url: err.req.url, host: err.req.headers.host }));
    });
    const unknownSid = await upgrade(t.port, '/socket.io/?EIO=4&transport=websocket&sid=nope');
    expect(unknownSid.status).toBe(400);
    await waitFor(() => errors.length === 1, 3000);
    expect(errors[0]).toEqual({ code: 1, message: 'Session ID unknown', context: { sid: 'nope' },
      url: '/socket.io/?EIO=4&transport=websocket&sid=nope', host: `127.0.0.1:${t.port}` });
  });

  test("'initial_headers' and 'headers' add to the 101 of a new session", async () => {
    const calls = [];
    t = await startImpl(kind, {}, (io) => {
      io.engine.on('initial_headers', (headers, req) => {
        calls.push(['initial', req.url.includes('sid=')]);
        headers['x-initial'] = 'first';
      });
      io.engine.on('headers', (headers, req) => {
        calls.push(['every', req.url.includes('sid=')]);
        headers['x-every'] = 'yes';
      });
    });
    const r = await upgrade(t.port, '/socket.io/?EIO=4&transport=websocket');
    expect(r.status).toBe(101);
    expect([r.headers['x-initial'], r.headers['x-every']]).toEqual(['first', 'yes']);
    r.ws.close();
    // The upgrade of a polling session: 'headers' only.
    const { sid } = await handshake(t.port);
    calls.length = 0;
    const u = await upgrade(t.port, `/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
    expect(u.status).toBe(101);
    expect([u.headers['x-initial'], u.headers['x-every']]).toEqual([undefined, 'yes']);
    expect(calls).toEqual([['every', true]]);
    u.ws.close();
  });

  test('use(): middleware runs on upgrades, sets 101 headers and fields on socket.request', async () => {
    const seen = [];
    t = await startImpl(kind, {}, (io) => {
      io.engine.use((req, res, next) => {
        seen.push(req.url.split('&').slice(0, 2).join('&'));
        req.fromMiddleware = 'yes';
        res.setHeader('x-mw', 'ran');
        setTimeout(next, 10); // asynchronous, as a session store is
      });
      io.on('connection', (socket) => socket.emit('req', socket.request.fromMiddleware));
    });
    const r = await upgrade(t.port, '/socket.io/?EIO=4&transport=websocket');
    expect([r.status, r.headers['x-mw']]).toEqual([101, 'ran']);
    r.ws.close();
    const c = t.client({ transports: ['websocket'] });
    const [value] = await onceEvent(c, 'req');
    expect(value).toBe('yes');
    expect(seen).toEqual(['/socket.io/?EIO=4&transport=websocket', '/socket.io/?EIO=4&transport=websocket']);
  });

  test('use(): next(err) refuses the upgrade with 400 and a MIDDLEWARE_FAILURE connection_error', async () => {
    const errors = [];
    t = await startImpl(kind, {}, (io) => {
      io.engine.use((req, res, next) => next(new Error('no entry')));
      io.engine.on('connection_error', (err) => errors.push([err.code, err.message, err.context]));
    });
    const r = await upgrade(t.port, '/socket.io/?EIO=4&transport=websocket');
    expect(r.status).toBe(400);
    expect(errors).toEqual([[3, 'Bad request', { name: 'MIDDLEWARE_FAILURE' }]]);
  });
});

describe.each(IMPLS)('io.engine over polling (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test("'initial_headers' on the handshake, 'headers' on every polling response", async () => {
    const calls = [];
    t = await startImpl(kind, {}, (io) => {
      io.engine.on('initial_headers', (headers, req) => {
        calls.push(['initial', req.method]);
        headers['x-initial'] = 'first';
      });
      io.engine.on('headers', (headers, req) => {
        calls.push(['every', req.method]);
        headers['x-every'] = 'yes';
      });
    });
    const { sid, res } = await handshake(t.port);
    expect([res.headers['x-initial'], res.headers['x-every']]).toEqual(['first', 'yes']);
    const post = await request(t.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40' });
    expect([post.status, post.headers['x-initial'], post.headers['x-every']]).toEqual([200, undefined, 'yes']);
    const get = await request(t.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    expect([get.status, get.headers['x-initial'], get.headers['x-every']]).toEqual([200, undefined, 'yes']);
    expect(get.body.startsWith('40')).toBe(true);
    expect(calls).toEqual([['initial', 'GET'], ['every', 'GET'], ['every', 'POST'], ['every', 'GET']]);
    // An error answer has no 'headers'.
    const bad = await request(t.port, '/socket.io/?EIO=4&transport=polling&sid=nope');
    expect([bad.status, bad.headers['x-every']]).toEqual([400, undefined]);
  });

  test('use(): middleware on every polling request; its headers and req fields reach the app', async () => {
    const seen = [];
    t = await startImpl(kind, {}, (io) => {
      io.engine.use((req, res, next) => {
        seen.push(req.method);
        req.fromMiddleware = 'yes';
        res.setHeader('x-mw', 'ran');
        next();
      });
      io.on('connection', (socket) => socket.emit('req', socket.request.fromMiddleware));
    });
    const { res } = await handshake(t.port);
    expect(res.headers['x-mw']).toBe('ran');
    const c = t.client({ transports: ['polling'] });
    const [value] = await onceEvent(c, 'req');
    expect(value).toBe('yes');
    expect(seen.slice(0, 3)).toEqual(['GET', 'GET', 'POST']);
  });

  test('use(): next(err) answers 400 "Bad request" with a MIDDLEWARE_FAILURE connection_error', async () => {
    const errors = [];
    t = await startImpl(kind, {}, (io) => {
      io.engine.use((req, res, next) => next(new Error('no entry')));
      io.engine.on('connection_error', (err) => errors.push([err.code, err.message, err.context]));
    });
    const r = await request(t.port, '/socket.io/?EIO=4&transport=polling');
    expect([r.status, JSON.parse(r.body)]).toEqual([400, { code: 3, message: 'Bad request' }]);
    expect(errors).toEqual([[3, 'Bad request', { name: 'MIDDLEWARE_FAILURE' }]]);
  });
});

// express-session shared with Socket.IO, as socket.io's docs show it.
describe.each(IMPLS_ALL)('express-session through io.engine.use (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test.each([['polling'], ['websocket']])('socket.request.session over %s', async (transport) => {
    const sessionMiddleware = session({ secret: 'keyboard cat', resave: false, saveUninitialized: true, name: 'sid' });
    t = await startImpl(kind, {}, (io) => {
      io.engine.use(sessionMiddleware);
      io.on('connection', (socket) => {
        const s = socket.request.session;
        s.views = (s.views || 0) + 1;
        s.save(() => socket.emit('session', { id: socket.request.sessionID, views: s.views }));
      });
    });
    // The first request gets the session cookie (the handshake of a session with no namespace).
    const { res } = await handshake(t.port);
    const cookie = res.headers['set-cookie'][0].split(';')[0];
    expect(cookie).toMatch(/^sid=s%3A/);
    const sessionId = decodeURIComponent(cookie.slice(4)).slice(2).split('.')[0];
    for (const views of [1, 2]) {
      const c = t.client({ transports: [transport], extraHeaders: { cookie } });
      const [info] = await onceEvent(c, 'session');
      expect(info).toEqual({ id: sessionId, views });
      c.disconnect();
    }
  });
});

// ------------------------------------------------------------------------------ socket.request

describe.each(IMPLS_ALL)('socket.request (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test.each([['polling'], ['websocket']])('is the handshake IncomingMessage over %s', async (transport) => {
    let info;
    t = await startImpl(kind, {}, (io) => {
      io.on('connection', (socket) => {
        const req = socket.request;
        info = {
          incoming: req instanceof http.IncomingMessage,
          method: req.method,
          url: req.url.replace(/&t=[^&]*/, ''),
          custom: req.headers['x-custom'],
          address: req.socket.remoteAddress,
          connection: req.connection === req.socket,
          same: socket.conn.request === req && socket.client.request === req,
        };
      });
    });
    const c = t.client({ transports: [transport], extraHeaders: { 'x-custom': 'hello' }, query: { q: '1' } });
    await connected(c);
    await waitFor(() => info, 3000);
    expect(info).toEqual({
      incoming: true,
      method: 'GET',
      url: `/socket.io/?q=1&EIO=4&transport=${transport}`,
      custom: 'hello',
      address: '127.0.0.1',
      connection: true,
      same: true,
    });
  });
});

// ------------------------------------------------------------------------------------ socket.conn

describe.each(IMPLS_ALL)('socket.conn (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test('properties: id is the sid the client has, transport, readyState, protocol, remoteAddress', async () => {
    let conn;
    t = await startImpl(kind, {}, (io) => io.on('connection', (socket) => {
      conn = socket.conn;
    }));
    const c = t.client({ transports: ['websocket'] });
    await connected(c);
    await waitFor(() => conn, 3000);
    expect({ id: conn.id, transport: conn.transport.name, readyState: conn.readyState, protocol: conn.protocol,
      remoteAddress: conn.remoteAddress, upgraded: conn.upgraded, upgrading: conn.upgrading })
      .toEqual({ id: c.io.engine.id, transport: 'websocket', readyState: 'open', protocol: 4, remoteAddress: '127.0.0.1',
        upgraded: false, upgrading: false });
    expect(typeof conn.id).toBe('string');
  });

  test("polling upgraded to WebSocket: 'upgrading', then 'upgrade', then upgraded", async () => {
    const events = [];
    t = await startImpl(kind, {}, (io) => io.engine.on('connection', (conn) => {
      conn.on('upgrading', (transport) => events.push(['upgrading', transport.name, conn.upgrading, conn.upgraded]));
      conn.on('upgrade', (transport) => events.push(['upgrade', transport.name, conn.upgrading, conn.upgraded, conn.transport.name]));
    }));
    const c = t.client();
    await connected(c);
    await waitFor(() => events.length === 2, 5000);
    expect(events).toEqual([
      ['upgrading', 'websocket', true, false],
      ['upgrade', 'websocket', false, true, 'websocket'],
    ]);
  });

  test.each([['polling'], ['websocket']])("'packet' and 'packetCreate' over %s", async (transport) => {
    const incoming = [];
    const outgoing = [];
    let conn;
    t = await startImpl(kind, {}, (io) => io.on('connection', (socket) => {
      conn = socket.conn;
      socket.conn.on('packet', (p) => incoming.push(p));
      socket.conn.on('packetCreate', (p) => outgoing.push({ type: p.type, data: p.data }));
      socket.on('ping!', (payload, ack) => ack('pong!'));
      socket.emit('hello', 1);
    }));
    const c = t.client({ transports: [transport], upgrade: false });
    const [n] = await onceEvent(c, 'hello');
    expect(n).toBe(1);
    expect(await c.emitWithAck('ping!', 'x')).toBe('pong!');
    c.emit('bin', Buffer.from([1, 2, 3]));
    await waitFor(() => incoming.length >= 3 && outgoing.length >= 2, 3000);
    expect(outgoing).toEqual([
      { type: 'message', data: '2["hello",1]' },
      { type: 'message', data: '30["pong!"]' },
    ]);
    const messages = incoming.filter((p) => p.type === 'message');
    expect(messages.slice(0, 3).map((p) => (Buffer.isBuffer(p.data) ? ['buffer', [...p.data]] : p.data))).toEqual([
      '20["ping!","x"]',
      '51-["bin",{"_placeholder":true,"num":0}]',
      ['buffer', [1, 2, 3]],
    ]);
    expect(conn.readyState).toBe('open');
  });

  test("'heartbeat' on each pong, 'drain' once packets went out", async () => {
    let beats = 0;
    let drains = 0;
    t = await startImpl(kind, { pingInterval: 200, pingTimeout: 2000 }, (io) => io.on('connection', (socket) => {
      socket.conn.on('heartbeat', () => {
        beats += 1;
      });
      socket.conn.on('drain', () => {
        drains += 1;
      });
      socket.emit('go');
    }));
    const c = t.client({ transports: ['websocket'] });
    await onceEvent(c, 'go');
    await waitFor(() => beats >= 2 && drains >= 1, 5000);
  });

  test('close(): "forced close" on the server, "transport close" on the client', async () => {
    let conn;
    let closed;
    let disconnect;
    t = await startImpl(kind, {}, (io) => io.on('connection', (socket) => {
      conn = socket.conn;
      conn.on('close', (reason) => {
        closed = [reason, conn.readyState];
      });
      socket.on('disconnect', (reason) => {
        disconnect = reason;
      });
    }));
    for (const transport of ['websocket', 'polling']) {
      closed = undefined;
      disconnect = undefined;
      const c = t.client({ transports: [transport] });
      await connected(c);
      await waitFor(() => conn && conn.readyState === 'open' && conn.id === c.io.engine.id, 3000);
      const clientReason = onceEvent(c, 'disconnect');
      conn.close();
      expect((await clientReason)[0]).toBe('transport close');
      await waitFor(() => closed && disconnect, 3000);
      expect([closed, disconnect]).toEqual([['forced close', 'closed'], 'forced close']);
    }
  });
});

// The engine reports a session's packets only while its conn has listeners (sidewire only: the
// events that cross into JS are watched at the engine's event pump).
describe.each(IMPLS_ALL.filter(isSidewire))('socket.conn events cross into JS only when listened to (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test('no listener: no packet events; a listener: its event only; removed: none again', async () => {
    let socket;
    t = await startImpl(kind, {}, (io) => io.on('connection', (s) => {
      socket = s;
      s.on('echo', (v, ack) => ack(v));
    }));
    const types = [];
    const pump = t.io.sidewire._socketio;
    t.io.sidewire._socketio = (type, ...rest) => {
      types.push(type);
      return pump(type, ...rest);
    };
    const c = t.client({ transports: ['websocket'] });
    await connected(c);
    await waitFor(() => socket, 3000);
    const packetTypes = () => types.filter((x) => x >= 17 && x <= 21);
    await c.emitWithAck('echo', 1);
    expect(packetTypes()).toEqual([]);
    const seen = [];
    const listener = (p) => seen.push(p.data);
    socket.conn.on('packet', listener);
    await sleep(50);
    await c.emitWithAck('echo', 2);
    await waitFor(() => seen.length === 1, 3000);
    expect(new Set(packetTypes())).toEqual(new Set([17])); // EIO_PACKET only: no packetCreate, drain, heartbeat
    socket.conn.off('packet', listener);
    await sleep(50);
    const before = packetTypes().length;
    await c.emitWithAck('echo', 3);
    await sleep(50);
    expect(packetTypes().length).toBe(before);
    expect(seen).toEqual(['21["echo",2]']);
  });
});
