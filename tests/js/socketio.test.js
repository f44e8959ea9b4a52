'use strict';
// The socket.io-compatible Server (js/socketio) against the real socket.io-client from npm,
// on 127.0.0.1. Every wait is bounded.
const http = require('node:http');
const net = require('node:net');
const {
  startIo, listen, connected, connectError, once, never, serverSocket, sleep, waitFor, ioClient,
} = require('./helpers/sio');
const { rawExchange, upgradeRequest } = require('./helpers/ws');
const { Engine, Server, Namespace, Socket, BroadcastOperator, RemoteSocket, getServer } = require('../../js/index.js');

jest.setTimeout(20000);

describe('transports', () => {
  let t;
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => {
        socket.on('echo', (...args) => socket.emit('echo', ...args));
        socket.emit('welcome', { id: socket.id, transport: socket.conn.transport.name });
      });
    });
  });
  afterAll(() => t.close());

  test('WebSocket only: connect, handshake, events both ways', async () => {
    const c = t.client('/', { query: { room: 'lobby' }, auth: { token: 'abc' }, extraHeaders: { 'x-test': 'yes' } });
    const welcome = once(c, 'welcome');
    await connected(c);
    const [w] = await welcome;
    expect(w).toEqual({ id: c.id, transport: 'websocket' });
    expect(c.io.engine.transport.name).toBe('websocket');
    const s = await serverSocket(t.io.sockets, c);
    expect(s).toBeInstanceOf(Socket);
    expect(s.connected).toBe(true);
    expect(s.disconnected).toBe(false);
    expect(s.recovered).toBe(false);
    expect(s.nsp).toBe(t.io.sockets);
    expect(s.handshake.auth).toEqual({ token: 'abc' });
    expect(s.handshake.query.room).toBe('lobby');
    expect(s.handshake.query.EIO).toBe('4');
    expect(s.handshake.headers['x-test']).toBe('yes');
    expect(s.handshake.address).toMatch(/127\.0\.0\.1/);
    expect(s.handshake.url).toMatch(/^\/socket\.io\/\?/);
    expect(typeof s.handshake.issued).toBe('number');
    expect(s.rooms).toEqual(new Set([c.id]));
    const back = once(c, 'echo');
    c.emit('echo', 'hello', 1, { deep: [true, null] });
    expect(await back).toEqual(['hello', 1, { deep: [true, null] }]);
    c.disconnect();
  });

  test('polling only: events both ways over long-polling', async () => {
    const c = t.client('/', { transports: ['polling'] });
    const welcome = once(c, 'welcome');
    await connected(c);
    expect((await welcome)[0].transport).toBe('polling');
    expect(c.io.engine.transport.name).toBe('polling');
    for (let i = 0; i < 3; i++) {
      const back = once(c, 'echo');
      c.emit('echo', `message ${i}`);
      expect(await back).toEqual([`message ${i}`]);
    }
    // A server emit while the client's GET is held must be answered at once.
    const s = await serverSocket(t.io.sockets, c);
    const pushed = once(c, 'pushed');
    s.emit('pushed', 'now');
    expect(await pushed).toEqual(['now']);
    c.disconnect();
  });

  test('polling upgraded to WebSocket: both sides see the new transport', async () => {
    const c = t.client('/', { transports: ['polling', 'websocket'] });
    let clientUpgraded = null;
    c.io.engine.on('upgrade', (transport) => {
      clientUpgraded = transport.name;
    });
    await connected(c);
    const s = await serverSocket(t.io.sockets, c);
    expect(s.handshake.query.transport).toBe('polling');
    const serverUpgrade = s.conn.transport.name === 'websocket' ? Promise.resolve([s.conn.transport]) : once(s.conn, 'upgrade', 5000);
    await waitFor(() => c.io.engine.transport.name === 'websocket', 5000);
    expect(clientUpgraded).toBe('websocket');
    const [transport] = await serverUpgrade;
    expect(transport.name).toBe('websocket');
    expect(s.conn.transport.name).toBe('websocket');
    const back = once(c, 'echo');
    c.emit('echo', 'after upgrade');
    expect(await back).toEqual(['after upgrade']);
    c.disconnect();
  });
});

describe('socket.io-client 3.x', () => {
  const ioClientV3 = require('socket.io-client-v3');
  let t;
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => {
        socket.on('echo', (payload, cb) => cb(payload));
        socket.emit('welcome', socket.id);
      });
    });
  });
  afterAll(() => t.close());

  test.each([[['websocket']], [['polling']], [['polling', 'websocket']]])('connects unchanged over %j: events, acks, binary', async (transports) => {
    const c = ioClientV3(t.url('/'), { transports, reconnection: false, forceNew: true });
    try {
      const welcome = once(c, 'welcome');
      await connected(c);
      expect(await welcome).toEqual([c.id]);
      const reply = await new Promise((resolve) => c.emit('echo', { n: 1, bin: Buffer.from([7, 8]) }, resolve));
      expect(reply.n).toBe(1);
      expect([...Buffer.from(reply.bin)]).toEqual([7, 8]);
      const s = await serverSocket(t.io.sockets, c);
      const gone = once(s, 'disconnect');
      c.disconnect();
      expect((await gone)[0]).toBe('client namespace disconnect');
    } finally {
      c.disconnect();
    }
  });
});

describe('namespaces', () => {
  let t;
  let parentRegex;
  let parentFn;
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => socket.on('where', (cb) => cb('main')));
      io.of('/admin').on('connection', (socket) => socket.on('where', (cb) => cb('admin')));
      parentRegex = io.of(/^\/dyn-\d+$/);
      parentRegex.on('connection', (socket) => {
        socket.emit('hi', socket.nsp.name);
        socket.on('where', (cb) => cb(socket.nsp.name));
      });
      parentFn = io.of((name, auth, next) => next(null, name.startsWith('/fn-') && auth.token === 'ok'));
      parentFn.use((socket, next) => {
        socket.data.checked = true;
        next();
      });
      parentFn.on('connection', (socket) => socket.emit('hi', socket.nsp.name, socket.data.checked));
    });
  });
  afterAll(() => t.close());

  test('io("/") and io("/admin") share one Manager and one connection', async () => {
    const main = ioClient(t.url('/'), { transports: ['websocket'], reconnection: false });
    const admin = ioClient(t.url('/admin'), { transports: ['websocket'], reconnection: false });
    try {
      expect(admin.io).toBe(main.io);
      await Promise.all([connected(main), connected(admin)]);
      expect(await main.timeout(1000).emitWithAck('where')).toBe('main');
      expect(await admin.timeout(1000).emitWithAck('where')).toBe('admin');
      const sMain = await serverSocket(t.io.sockets, main);
      const sAdmin = await serverSocket(t.io.of('/admin'), admin);
      expect(sMain.conn).toBe(sAdmin.conn);
      expect(sAdmin.nsp.name).toBe('/admin');
      expect(t.io.of('/admin')).toBeInstanceOf(Namespace);
      // A namespace emit stays in its namespace.
      const mainQuiet = never(main, 'only-admin', 300);
      const got = once(admin, 'only-admin');
      t.io.of('/admin').emit('only-admin', 1);
      expect(await got).toEqual([1]);
      expect(await mainQuiet).toBe(true);
      // Leaving one namespace keeps the other.
      const gone = once(sAdmin, 'disconnect');
      admin.disconnect();
      expect((await gone)[0]).toBe('client namespace disconnect');
      expect(await main.timeout(1000).emitWithAck('where')).toBe('main');
    } finally {
      main.disconnect();
      admin.disconnect();
    }
  });

  test('an unknown namespace is refused with "Invalid namespace"', async () => {
    const c = t.client('/nowhere');
    const err = await connectError(c);
    expect(err.message).toBe('Invalid namespace');
  });

  test('dynamic namespace by regex', async () => {
    const c = t.client('/dyn-42');
    const hi = once(c, 'hi');
    await connected(c);
    expect(await hi).toEqual(['/dyn-42']);
    const child = t.io._nsps.get('/dyn-42');
    expect(child).toBeInstanceOf(Namespace);
    expect(parentRegex.children.has(child)).toBe(true);
    expect(await c.timeout(1000).emitWithAck('where')).toBe('/dyn-42');
    // A second client reuses the child; a parent emit reaches every child.
    const c2 = await t.connect('/dyn-42');
    const both = Promise.all([once(c, 'from-parent'), once(c2, 'from-parent')]);
    parentRegex.emit('from-parent', 'x');
    expect(await both).toEqual([['x'], ['x']]);
    const bad = t.client('/dyn-abc');
    expect((await connectError(bad)).message).toBe('Invalid namespace');
    c.disconnect();
    c2.disconnect();
  });

  test('dynamic namespace by function, with the parent middleware and auth', async () => {
    const c = t.client('/fn-room', { auth: { token: 'ok' } });
    const hi = once(c, 'hi');
    await connected(c);
    expect(await hi).toEqual(['/fn-room', true]);
    const refused = t.client('/fn-other', { auth: { token: 'wrong' } });
    expect((await connectError(refused)).message).toBe('Invalid namespace');
    c.disconnect();
  });

  test('io.of(name) under a regex parent returns its child; stateful regexes are refused', () => {
    const child = t.io.of('/dyn-7');
    expect(parentRegex.children.has(child)).toBe(true);
    expect(() => t.io.of(/x/g)).toThrow('stateful regular expressions are not supported');
    expect(() => parentRegex.fetchSockets()).toThrow('fetchSockets() is not supported on parent namespaces');
  });
});

describe('acknowledgements', () => {
  let t;
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => {
        socket.on('add', (a, b, cb) => cb(a + b));
        socket.on('twice', (cb) => {
          cb('first');
          cb('second'); // ignored, as in socket.io
        });
      });
    });
  });
  afterAll(() => t.close());

  test('client → server ack', async () => {
    const c = await t.connect();
    expect(await c.timeout(1000).emitWithAck('add', 2, 3)).toBe(5);
    const acked = await new Promise((resolve) => c.emit('twice', (...args) => resolve(args)));
    expect(acked).toEqual(['first']);
    c.disconnect();
  });

  test('server → client emitWithAck, with and without timeout', async () => {
    const c = await t.connect();
    c.on('question', (x, cb) => cb(x * 2, 'extra'));
    const s = await serverSocket(t.io.sockets, c);
    expect(await s.emitWithAck('question', 21)).toBe(42);
    expect(await s.timeout(1000).emitWithAck('question', 5)).toBe(10);
    const args = await new Promise((resolve) => s.emit('question', 1, (...a) => resolve(a)));
    expect(args).toEqual([2, 'extra']);
    const withErr = await new Promise((resolve) => s.timeout(1000).emit('question', 2, (...a) => resolve(a)));
    expect(withErr).toEqual([null, 4, 'extra']);
    c.disconnect();
  });

  test('socket.timeout(100).emit to a client that never acks → "operation has timed out"', async () => {
    const c = await t.connect();
    c.on('silent', () => {}); // never calls the ack
    const s = await serverSocket(t.io.sockets, c);
    const started = Date.now();
    const [err] = await new Promise((resolve) => s.timeout(100).emit('silent', (...a) => resolve(a)));
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toBe('operation has timed out');
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    await expect(s.timeout(100).emitWithAck('silent')).rejects.toThrow('operation has timed out');
    c.disconnect();
  });

  test('emit ids come from the namespace counter', async () => {
    const c = await t.connect();
    c.on('q', (cb) => cb('ok'));
    const s = await serverSocket(t.io.sockets, c);
    const before = t.io.sockets._ids;
    await s.emitWithAck('q');
    await s.emitWithAck('q');
    expect(t.io.sockets._ids).toBe(before + 2);
    c.disconnect();
  });
});

describe('binary', () => {
  let t;
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => {
        socket.on('upload', (payload, cb) => {
          cb({
            isBuffer: Buffer.isBuffer(payload.file),
            bytes: [...payload.file],
            nested: [...payload.list[1].inner],
            name: payload.name,
          });
        });
        socket.on('download', (cb) => cb({ blob: Buffer.from([9, 8, 7]), text: 'ok' }));
      });
    });
  });
  afterAll(() => t.close());

  test('client → server: Buffers nested in objects and arrays come back as Buffers', async () => {
    const c = await t.connect();
    const res = await c.timeout(2000).emitWithAck('upload', {
      name: 'f.bin',
      file: Buffer.from([1, 2, 3, 255]),
      list: ['a', { inner: new Uint8Array([4, 5]) }],
    });
    expect(res).toEqual({ isBuffer: true, bytes: [1, 2, 3, 255], nested: [4, 5], name: 'f.bin' });
    c.disconnect();
  });

  test('server → client: Buffer, ArrayBuffer and typed arrays in emits and acks', async () => {
    const c = await t.connect();
    const s = await serverSocket(t.io.sockets, c);
    const got = once(c, 'file');
    const ab = new Uint8Array([10, 11]).buffer;
    s.emit('file', { meta: { size: 3 }, data: Buffer.from('abc'), parts: [ab, new Uint16Array([1])] }, 'tail');
    const [payload, tail] = await got;
    expect(tail).toBe('tail');
    expect(payload.meta).toEqual({ size: 3 });
    expect(Buffer.from(payload.data).toString()).toBe('abc');
    expect([...Buffer.from(payload.parts[0])]).toEqual([10, 11]);
    expect(Buffer.from(payload.parts[1]).length).toBe(2);
    const reply = await c.timeout(2000).emitWithAck('download');
    expect(reply.text).toBe('ok');
    expect([...Buffer.from(reply.blob)]).toEqual([9, 8, 7]);
    // A broadcast with binary.
    const b = once(c, 'bin-broadcast');
    t.io.emit('bin-broadcast', Buffer.from([42]));
    expect([...Buffer.from((await b)[0])]).toEqual([42]);
    c.disconnect();
  });

  test('toJSON is honoured as JSON.stringify does', async () => {
    const c = await t.connect();
    const s = await serverSocket(t.io.sockets, c);
    const got = once(c, 'dated');
    s.emit('dated', { when: new Date(0), custom: { toJSON: () => 'custom!' }, skip: undefined });
    expect((await got)[0]).toEqual({ when: '1970-01-01T00:00:00.000Z', custom: 'custom!' });
    c.disconnect();
  });
});

describe('rooms and broadcasts', () => {
  let t;
  let a; let b; let c;
  let sa; let sb; let sc;
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => {
        socket.on('join', (room, cb) => {
          socket.join(room);
          cb([...socket.rooms]);
        });
        socket.on('leave', (room, cb) => {
          socket.leave(room);
          cb([...socket.rooms]);
        });
        socket.on('to-room', (room, msg) => socket.to(room).emit('room-msg', msg, socket.id));
        socket.on('to-all', (msg) => socket.broadcast.emit('all-msg', msg));
      });
    });
    [a, b, c] = await Promise.all([t.connect(), t.connect(), t.connect()]);
    [sa, sb, sc] = await Promise.all([a, b, c].map((x) => serverSocket(t.io.sockets, x)));
    await a.timeout(1000).emitWithAck('join', 'r1');
    await b.timeout(1000).emitWithAck('join', 'r1');
    expect(await b.timeout(1000).emitWithAck('join', 'vip')).toEqual([b.id, 'r1', 'vip']);
  });
  afterAll(() => t.close());

  test('io.to(a).except(b).emit', async () => {
    expect(sa.rooms).toEqual(new Set([a.id, 'r1']));
    const toA = once(a, 'x');
    const bQuiet = never(b, 'x');
    const cQuiet = never(c, 'x');
    t.io.to('r1').except('vip').emit('x', 1);
    expect(await toA).toEqual([1]);
    expect(await bQuiet).toBe(true);
    expect(await cQuiet).toBe(true);
  });

  test('io.except(room) and a union of rooms', async () => {
    const toC = once(c, 'y');
    const aQuiet = never(a, 'y');
    const bQuiet = never(b, 'y');
    t.io.except('r1').emit('y');
    await toC;
    expect(await aQuiet).toBe(true);
    expect(await bQuiet).toBe(true);

    // to(['vip', c.id]) reaches b and c once each.
    let bCount = 0;
    let cCount = 0;
    b.on('z', () => bCount++);
    c.on('z', () => cCount++);
    t.io.to(['vip', c.id]).to('vip').emit('z');
    await waitFor(() => bCount === 1 && cCount === 1);
    await sleep(150);
    expect([bCount, cCount]).toEqual([1, 1]);
  });

  test('socket.to(room) and socket.broadcast leave the sender out', async () => {
    const toB = once(b, 'room-msg');
    const aQuiet = never(a, 'room-msg');
    a.emit('to-room', 'r1', 'hi r1');
    expect(await toB).toEqual(['hi r1', a.id]);
    expect(await aQuiet).toBe(true);

    const toB2 = once(b, 'all-msg');
    const toC2 = once(c, 'all-msg');
    const aQuiet2 = never(a, 'all-msg');
    a.emit('to-all', 'everyone');
    expect(await toB2).toEqual(['everyone']);
    expect(await toC2).toEqual(['everyone']);
    expect(await aQuiet2).toBe(true);
  });

  test('a socket id is a room; leave() stops delivery', async () => {
    const toC = once(c, 'direct');
    t.io.to(c.id).emit('direct', 'just you');
    expect(await toC).toEqual(['just you']);
    expect(await b.timeout(1000).emitWithAck('leave', 'vip')).toEqual([b.id, 'r1']);
    const bQuiet = never(b, 'vip-only');
    t.io.to('vip').emit('vip-only');
    expect(await bQuiet).toBe(true);
    await b.timeout(1000).emitWithAck('join', 'vip');
  });

  test('volatile, compress and local emit like a plain emit here', async () => {
    const got = Promise.all([once(a, 'v'), once(b, 'v'), once(c, 'v')]);
    t.io.volatile.compress(false).local.emit('v', 'ok');
    expect(await got).toEqual([['ok'], ['ok'], ['ok']]);
  });

  test('reserved event names throw', () => {
    expect(() => sa.emit('disconnect')).toThrow('"disconnect" is a reserved event name');
    expect(() => t.io.emit('connect')).toThrow('"connect" is a reserved event name');
    expect(() => t.io.to('r1').emit('newListener')).toThrow('"newListener" is a reserved event name');
    expect(() => t.io.serverSideEmit('connection')).toThrow('"connection" is a reserved event name');
    expect(t.io.to('r1')).toBeInstanceOf(BroadcastOperator);
  });

  test('broadcast acks from several clients: io.timeout(500).emitWithAck', async () => {
    for (const [client, name] of [[a, 'a'], [b, 'b'], [c, 'c']]) client.on('roll-call', (cb) => cb(name));
    const all = await t.io.timeout(500).emitWithAck('roll-call');
    expect([...all].sort()).toEqual(['a', 'b', 'c']);
    const r1 = await t.io.to('r1').timeout(500).emitWithAck('roll-call');
    expect([...r1].sort()).toEqual(['a', 'b']);
    const none = await t.io.to('empty-room').timeout(500).emitWithAck('roll-call');
    expect(none).toEqual([]);
    const cb = await new Promise((resolve) => t.io.except('vip').timeout(500).emit('roll-call', (...args) => resolve(args)));
    expect(cb[0]).toBeNull();
    expect([...cb[1]].sort()).toEqual(['a', 'c']);
  });

  test('a broadcast ack that not every client answers times out with the responses so far', async () => {
    a.on('partial', (cb) => cb('from a'));
    b.on('partial', (cb) => cb('from b'));
    c.on('partial', () => {}); // never acks
    const started = Date.now();
    const err = await t.io.timeout(300).emitWithAck('partial').then(() => null, (e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toBe('operation has timed out');
    expect([...err.responses].sort()).toEqual(['from a', 'from b']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
  });

  test('onAnyOutgoing sees direct emits and broadcasts; onAny sees incoming events', async () => {
    const out = [];
    const listener = (...args) => out.push(args);
    sa.onAnyOutgoing(listener);
    sa.emit('direct-out', 1);
    t.io.to('r1').emit('room-out', 2);
    t.io.to('vip').emit('not-for-a', 3);
    expect(out).toEqual([['direct-out', 1], ['room-out', 2]]);
    expect(sa.listenersAnyOutgoing()).toEqual([listener]);
    sa.offAnyOutgoing(listener);
    expect(sa.listenersAnyOutgoing()).toEqual([]);

    const anyArgs = [];
    const seen = new Promise((resolve) => {
      sa.onAny((...args) => {
        anyArgs.push(args);
        if (args[0] === 'ping-any') resolve();
      });
    });
    a.emit('ping-any', 'p');
    await seen;
    expect(anyArgs[0]).toEqual(['ping-any', 'p']);
    sa.offAny();
    expect(sa.listenersAny()).toEqual([]);
  });
});

describe('two I/O threads', () => {
  let t;
  let clients;
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => {
        socket.join(Number(socket.handshake.query.n) % 2 ? 'odd' : 'even');
      });
    }, {}, { engineOptions: { ioThreads: 2 } });
    clients = [];
    for (let n = 0; n < 6; n++) clients.push(await t.connect('/', { query: { n: String(n) }, transports: [n % 3 === 0 ? 'polling' : 'websocket'] }));
    clients.forEach((c, n) => c.on('who', (cb) => cb(n)));
    await waitFor(() => t.io.sockets.sockets.size === 6);
  });
  afterAll(() => t.close());

  test('broadcast acks are collected from every thread', async () => {
    expect(t.io.sidewire.options.ioThreads).toBe(2);
    const all = await t.io.timeout(1000).emitWithAck('who');
    expect([...all].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    const odd = await t.io.to('odd').except(clients[1].id).timeout(1000).emitWithAck('who');
    expect([...odd].sort()).toEqual([3, 5]);
  });

  test('selections span threads: fetchSockets, socketsJoin, disconnectSockets', async () => {
    expect((await t.io.in('even').fetchSockets()).length).toBe(3);
    t.io.in('even').socketsJoin('team');
    const got = Promise.all([0, 2, 4].map((n) => once(clients[n], 'team')));
    const quiet = never(clients[1], 'team');
    t.io.to('team').emit('team');
    await got;
    expect(await quiet).toBe(true);
    const gone = Promise.all([0, 2, 4].map((n) => once(clients[n], 'disconnect')));
    t.io.in('team').disconnectSockets();
    expect((await gone).map(([r]) => r)).toEqual(Array(3).fill('io server disconnect'));
    await waitFor(async () => (await t.io.fetchSockets()).length === 3);
  });
});

describe('middleware', () => {
  let t;
  beforeAll(async () => {
    t = await startIo((io) => {
      io.use((socket, next) => {
        socket.data.user = socket.handshake.auth.user || 'anonymous';
        next();
      });
      io.on('connection', (socket) => {
        socket.emit('hello', socket.data.user);
        socket.use(([event, ...args], next) => {
          if (event === 'forbidden') return next(new Error('not allowed'));
          return next();
        });
        socket.on('forbidden', () => socket.emit('should-not-happen'));
        socket.on('error', (err) => socket.emit('middleware-error', err.message));
      });
      const guarded = io.of('/guarded');
      guarded.use((socket, next) => {
        if (socket.handshake.auth.token === 'secret') return next();
        const err = new Error('nope');
        err.data = { code: 42, hint: 'send a token' };
        return next(err);
      });
      guarded.use(async (socket, next) => {
        await sleep(20); // async middleware
        socket.data.late = true;
        next();
      });
      guarded.on('connection', (socket) => socket.emit('in', socket.data.late));
    });
  });
  afterAll(() => t.close());

  test('io.use runs before connection; socket.data is kept', async () => {
    const c = t.client('/', { auth: { user: 'ada' } });
    const hello = once(c, 'hello');
    await connected(c);
    expect(await hello).toEqual(['ada']);
    const s = await serverSocket(t.io.sockets, c);
    expect(s.data).toEqual({ user: 'ada' });
    c.disconnect();
  });

  test('next(err) with err.data → connect_error with message and data', async () => {
    const c = t.client('/guarded', { auth: { token: 'wrong' } });
    const err = await connectError(c);
    expect(err.message).toBe('nope');
    expect(err.data).toEqual({ code: 42, hint: 'send a token' });
    expect(t.io.of('/guarded').sockets.size).toBe(0);
    const ok = t.client('/guarded', { auth: { token: 'secret' } });
    const inside = once(ok, 'in');
    await connected(ok);
    expect(await inside).toEqual([true]);
    ok.disconnect();
  });

  test('per-packet middleware: next(err) emits "error" on the socket and drops the event', async () => {
    const c = await t.connect();
    const quiet = never(c, 'should-not-happen', 300);
    const reported = once(c, 'middleware-error');
    c.emit('forbidden');
    expect(await reported).toEqual(['not allowed']);
    expect(await quiet).toBe(true);
    c.disconnect();
  });
});

describe('utility methods', () => {
  let t;
  const clients = [];
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => {
        socket.data.n = Number(socket.handshake.query.n);
        socket.join(`group-${socket.data.n % 2}`);
      });
    });
    for (let n = 0; n < 4; n++) clients.push(await t.connect('/', { query: { n: String(n) } }));
    await waitFor(() => t.io.sockets.sockets.size === 4);
  });
  afterAll(() => t.close());

  test('fetchSockets returns RemoteSockets with id, rooms, data and handshake', async () => {
    const all = await t.io.fetchSockets();
    expect(all).toHaveLength(4);
    for (const r of all) {
      expect(r).toBeInstanceOf(RemoteSocket);
      expect(r.rooms.has(r.id)).toBe(true);
      expect(typeof r.handshake.query).toBe('object');
    }
    expect(all.map((r) => r.id).sort()).toEqual(clients.map((c) => c.id).sort());
    const even = await t.io.in('group-0').fetchSockets();
    expect(even.map((r) => r.data.n).sort()).toEqual([0, 2]);
    expect(even.every((r) => r.rooms.has('group-0'))).toBe(true);
    expect(even[0].handshake.query.n).toBe(String(even[0].data.n));
    const odd = await t.io.except('group-0').fetchSockets();
    expect(odd.map((r) => r.data.n).sort()).toEqual([1, 3]);
    expect(await t.io.allSockets()).toEqual(new Set(clients.map((c) => c.id)));
  });

  test('RemoteSocket emit, ack with timeout, join and leave', async () => {
    const [remote] = await t.io.in(clients[1].id).fetchSockets();
    expect(remote.id).toBe(clients[1].id);
    const got = once(clients[1], 'remote-hi');
    remote.emit('remote-hi', 'there');
    expect(await got).toEqual(['there']);
    clients[1].on('remote-q', (cb) => cb('answer'));
    const answer = await new Promise((resolve) => remote.timeout(500).emit('remote-q', (...a) => resolve(a)));
    expect(answer).toEqual([null, 'answer']);
    remote.join('picked');
    await waitFor(async () => (await t.io.in('picked').fetchSockets()).length === 1);
    expect(t.io.sockets.sockets.get(clients[1].id).rooms.has('picked')).toBe(true);
    remote.leave('picked');
    await waitFor(async () => (await t.io.in('picked').fetchSockets()).length === 0);
  });

  test('socketsJoin and socketsLeave', async () => {
    t.io.in('group-1').socketsJoin(['odd', 'numbers']);
    const odd = Promise.all([once(clients[1], 'odd'), once(clients[3], 'odd')]);
    const evenQuiet = never(clients[0], 'odd');
    t.io.to('odd').emit('odd', true);
    await odd;
    expect(await evenQuiet).toBe(true);
    expect(t.io.sockets.sockets.get(clients[3].id).rooms.has('numbers')).toBe(true);
    expect((await t.io.in('numbers').fetchSockets()).length).toBe(2);
    t.io.socketsLeave('numbers');
    await waitFor(async () => (await t.io.in('numbers').fetchSockets()).length === 0);
    expect(t.io.sockets.sockets.get(clients[3].id).rooms.has('numbers')).toBe(false);
  });

  test('disconnectSockets: the selected sockets leave with "server namespace disconnect"', async () => {
    const c0 = clients[0];
    const s0 = t.io.sockets.sockets.get(c0.id);
    const clientSide = once(c0, 'disconnect');
    const serverSide = once(s0, 'disconnect');
    t.io.in(c0.id).disconnectSockets();
    expect((await serverSide)[0]).toBe('server namespace disconnect');
    expect((await clientSide)[0]).toBe('io server disconnect');
    await waitFor(async () => (await t.io.fetchSockets()).length === 3);
    const rest = clients.slice(1);
    const all = Promise.all(rest.map((c) => once(c, 'disconnect')));
    t.io.disconnectSockets(true);
    const reasons = (await all).map(([r]) => r);
    expect(reasons).toEqual(['io server disconnect', 'io server disconnect', 'io server disconnect']);
    await waitFor(async () => (await t.io.fetchSockets()).length === 0);
    expect(t.io.sockets.sockets.size).toBe(0);
  });

  test('serverSideEmit with one server: no other servers, local listeners are not called', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    const local = jest.fn();
    t.io.on('cluster-event', local);
    expect(t.io.serverSideEmit('cluster-event', 1)).toBe(true);
    expect(local).not.toHaveBeenCalled();
    warn.mockRestore();
    t.io.sockets.off('cluster-event', local);
  });
});

describe('disconnect reasons', () => {
  let t;
  const serverReasons = [];
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => {
        socket.on('disconnecting', (reason) => serverReasons.push({ id: socket.id, reason, rooms: [...socket.rooms] }));
        socket.on('kick', () => socket.disconnect());
        socket.on('kick-all', () => socket.disconnect(true));
        socket.join('members');
      });
      io.of('/other').on('connection', () => {});
    });
  });
  afterAll(() => t.close());

  test('client disconnect → "client namespace disconnect" (rooms still there in disconnecting)', async () => {
    const c = await t.connect();
    const s = await serverSocket(t.io.sockets, c);
    const gone = once(s, 'disconnect');
    c.disconnect();
    expect((await gone)[0]).toBe('client namespace disconnect');
    const rec = serverReasons.find((r) => r.id === s.id);
    expect(rec.reason).toBe('client namespace disconnect');
    expect(rec.rooms.sort()).toEqual([s.id, 'members'].sort());
    expect(s.connected).toBe(false);
    expect(s.rooms.size).toBe(0);
    expect(t.io.sockets.sockets.has(s.id)).toBe(false);
  });

  test('server socket.disconnect() → "server namespace disconnect" / "io server disconnect"', async () => {
    const c = await t.connect();
    const s = await serverSocket(t.io.sockets, c);
    const serverSide = once(s, 'disconnect');
    const clientSide = once(c, 'disconnect');
    c.emit('kick');
    expect((await serverSide)[0]).toBe('server namespace disconnect');
    expect((await clientSide)[0]).toBe('io server disconnect');
  });

  test('socket.disconnect(true) closes the session for every namespace', async () => {
    const main = ioClient(t.url('/'), { transports: ['websocket'], reconnection: false });
    const other = ioClient(t.url('/other'), { transports: ['websocket'], reconnection: false });
    try {
      await Promise.all([connected(main), connected(other)]);
      const sMain = await serverSocket(t.io.sockets, main);
      const sOther = await serverSocket(t.io.of('/other'), other);
      const reasons = Promise.all([once(sMain, 'disconnect'), once(sOther, 'disconnect')]);
      const closed = once(main.io, 'close', 3000);
      main.emit('kick-all');
      const [[r1], [r2]] = await reasons;
      expect(r1).toBe('server namespace disconnect');
      expect(r2).toBe('server namespace disconnect');
      await closed;
      expect(main.io.engine === null || main.io.engine.readyState !== 'open').toBe(true);
    } finally {
      main.disconnect();
      other.disconnect();
    }
  });

  // socket.io 4.8: disconnect(true) sends a DISCONNECT packet to every socket of the session
  // (client._disconnect()), then closes it: every client socket sees "io server disconnect"
  // and does not reconnect by itself, over either transport.
  test.each([['websocket'], ['polling']])('disconnect(true) over %s: every socket of the session gets "io server disconnect"', async (transport) => {
    const main = ioClient(t.url('/'), { transports: [transport], reconnection: false, forceNew: true });
    const other = main.io.socket('/other');
    other.connect();
    try {
      await Promise.all([connected(main), connected(other)]);
      const reasons = Promise.all([once(main, 'disconnect'), once(other, 'disconnect')]);
      main.emit('kick-all');
      expect((await reasons).map(([r]) => r)).toEqual(['io server disconnect', 'io server disconnect']);
    } finally {
      main.disconnect();
      other.disconnect();
    }
  });

  test('the client goes away → "transport close"', async () => {
    const c = await t.connect();
    const s = await serverSocket(t.io.sockets, c);
    const gone = once(s, 'disconnect');
    c.io.engine.close(); // closes the WebSocket without a DISCONNECT packet
    expect((await gone)[0]).toBe('transport close');
    c.disconnect();
  });

  test('a polling client that goes away: "transport close" once its session ends', async () => {
    const c = await t.connect('/', { transports: ['polling'] });
    const s = await serverSocket(t.io.sockets, c);
    const gone = once(s, 'disconnect', 5000);
    c.io.engine.close(); // sends the Engine.IO close packet
    expect((await gone)[0]).toBe('transport close');
    c.disconnect();
  });

  test('nothing is kept for sessions that are gone (sockets, conns, handshakes)', async () => {
    const cs = await Promise.all([t.connect(), t.connect('/', { transports: ['polling'] }), t.connect('/other')]);
    expect(t.io._sockets.size).toBeGreaterThanOrEqual(3);
    expect(t.io._conns.size).toBeGreaterThanOrEqual(3);
    cs.forEach((c) => c.disconnect());
    await waitFor(() => t.io._sockets.size === 0 && t.io._conns.size === 0 && t.io._requestInfo.size === 0, 5000);
    expect(t.io.sockets.sockets.size).toBe(0);
    expect(t.io.of('/other').sockets.size).toBe(0);
    expect(t.io._requests.size).toBe(0);
  });
});

describe('HTTP: CORS, client bundle, routing', () => {
  let t;
  beforeAll(async () => {
    t = await startIo((io) => {
      io.on('connection', (socket) => socket.emit('ok'));
    }, {
      cors: { origin: ['http://allowed.test', /\.good\.test$/], credentials: true, exposedHeaders: ['x-exposed'], maxAge: 600 },
    });
  });
  afterAll(() => t.close());

  test('preflight: 204 with the CORS headers for an allowed origin', async () => {
    const res = await fetch(t.url('/socket.io/?EIO=4&transport=polling'), {
      method: 'OPTIONS',
      headers: { origin: 'http://allowed.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://allowed.test');
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET,HEAD,PUT,PATCH,POST,DELETE');
    expect(res.headers.get('access-control-allow-headers')).toBe('content-type');
    expect(res.headers.get('access-control-max-age')).toBe('600');
  });

  test('polling handshake: CORS headers for an allowed origin, 403 for another', async () => {
    const ok = await fetch(t.url('/socket.io/?EIO=4&transport=polling'), { headers: { origin: 'https://app.good.test' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.good.test');
    expect(ok.headers.get('access-control-expose-headers')).toBe('x-exposed');
    const body = await ok.text();
    expect(body[0]).toBe('0'); // Engine.IO OPEN packet
    expect(JSON.parse(body.slice(1)).sid).toBeTruthy();
    const bad = await fetch(t.url('/socket.io/?EIO=4&transport=polling'), { headers: { origin: 'http://evil.test' } });
    expect(bad.status).toBe(403);
    const pre = await fetch(t.url('/socket.io/?EIO=4&transport=polling'), {
      method: 'OPTIONS', headers: { origin: 'http://evil.test', 'access-control-request-method': 'GET' },
    });
    expect(pre.status).toBe(403);
  });

  test('WebSocket upgrade from a disallowed origin → 403; allowed origin connects', async () => {
    const { data } = await rawExchange(t.port, upgradeRequest('/socket.io/?EIO=4&transport=websocket', { Origin: 'http://evil.test' }), { waitMs: 1500 });
    expect(data.toString('latin1')).toMatch(/^HTTP\/1\.1 403/);
    const c = t.client('/', { extraHeaders: { origin: 'http://allowed.test' } });
    const okEvent = once(c, 'ok');
    await connected(c);
    await okEvent;
    c.disconnect();
  });

  test('serves the client bundle with an ETag and answers 304', async () => {
    const res = await fetch(t.url('/socket.io/socket.io.js'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    const version = require('socket.io-client/package.json').version;
    expect(res.headers.get('etag')).toBe(`"${version}"`);
    const text = await res.text();
    expect(text).toMatch(/Socket\.IO v\d/);
    const again = await fetch(t.url('/socket.io/socket.io.min.js.map'), { headers: { 'if-none-match': `"${version}"` } });
    expect(again.status).toBe(304);
    const esm = await fetch(t.url('/socket.io/socket.io.esm.min.js'));
    expect(esm.status).toBe(200);
    await esm.arrayBuffer();
  });

  test('requests outside the path go to the previous listeners; handleRequest says no', async () => {
    const res = await fetch(t.url('/elsewhere'));
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('not socket.io');
    expect(t.io.handleRequest({ url: '/api/x', method: 'GET', headers: {} }, {})).toBe(false);
    expect(t.io.handleRequest({ url: '/socket.iox/', method: 'GET', headers: {} }, {})).toBe(false);
  });

  test('a body over maxHttpBufferSize is refused with 413', async () => {
    const hs = await (await fetch(t.url('/socket.io/?EIO=4&transport=polling'))).text();
    const { sid } = JSON.parse(hs.slice(1));
    const status = await new Promise((resolve, reject) => {
      const req = http.request(t.url(`/socket.io/?EIO=4&transport=polling&sid=${sid}`), {
        method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' },
      }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject); // only matters if no response came first
      req.end(`4${'x'.repeat(1e6 + 10)}`);
    });
    expect(status).toBe(413);
  });
});

describe('Server construction and lifecycle', () => {
  test('getServer(), option getters, one Server per Engine, refused arguments', async () => {
    const engine = new Engine({ global: false, logLevel: 'error', drainMs: 200 });
    const io = new Server({ engine, serveClient: false });
    try {
      expect(getServer()).toBe(io);
      expect(io.sidewire).toBe(engine);
      expect(io.path()).toBe('/socket.io');
      expect(io.serveClient()).toBe(false);
      expect(io.connectTimeout()).toBe(45000);
      expect(() => new Server({ engine })).toThrow(/already has a Socket.IO server/);
      expect(() => io.attach(() => {})).toThrow(/express request handler/);
      expect(() => io.adapter(class {})).toThrow(/not one the engine can drive/);
    } finally {
      await io.close();
      await engine.close({ drainMs: 100 });
    }
    expect(engine._sioServer).toBe(null);
  });

  test('handleRequest + engine.handleUpgrade without attach (as server.mjs routes them)', async () => {
    const engine = new Engine({ global: false, logLevel: 'error', drainMs: 200 });
    const io = new Server({ engine });
    io.on('connection', (socket) => socket.on('ping', (cb) => cb('pong')));
    const srv = http.createServer((req, res) => {
      if (io.handleRequest(req, res)) return;
      res.writeHead(200);
      res.end('app');
    });
    srv.on('upgrade', (req, socket, head) => {
      if (!engine.handleUpgrade(req, socket, head)) socket.destroy();
    });
    const port = await listen(srv);
    const clients = [];
    try {
      for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
        const c = ioClient(`http://127.0.0.1:${port}`, { transports, reconnection: false, forceNew: true });
        clients.push(c);
        await connected(c);
        expect(await c.timeout(1000).emitWithAck('ping')).toBe('pong');
      }
      expect(await (await fetch(`http://127.0.0.1:${port}/page`)).text()).toBe('app');
    } finally {
      clients.forEach((c) => c.disconnect());
      await io.close();
      await engine.close({ drainMs: 100 });
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });

  test('the client reconnects by itself after a server restart on the same port', async () => {
    let t = await startIo((io) => io.on('connection', (s) => s.emit('welcome', 1)), {}, { ownEngine: true });
    const { port } = t;
    const c = ioClient(t.url('/'), {
      transports: ['websocket'], reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0, forceNew: true,
    });
    try {
      expect(await once(c, 'welcome')).toEqual([1]);
      const dropped = once(c, 'disconnect', 8000);
      await t.close();
      expect(['transport close', 'transport error']).toContain((await dropped)[0]);
      t = await startIo((io) => io.on('connection', (s) => s.emit('welcome', 2)), {}, { port, ownEngine: true });
      expect(await once(c, 'welcome', 8000)).toEqual([2]);
      expect(c.connected).toBe(true);
    } finally {
      c.disconnect();
      await t.close();
    }
  });
});
