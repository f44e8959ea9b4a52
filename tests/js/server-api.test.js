'use strict';
// The rest of socket.io's server API, differentially: every test body runs against the real
// `socket.io` package and against sidewire (tests/js/helpers/impls.js), with the official
// socket.io-client and raw requests, on 127.0.0.1. Every wait is bounded.
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { io: ioClient } = require('socket.io-client');
const { Server: SocketIoServer } = require('socket.io');
const { IMPLS, startImpl, listenOn } = require('./helpers/impls');
const { connected, connectError, once, sleep, waitFor } = require('./helpers/sio');
const { freePort } = require('./helpers/server-process');
const { Engine, Server } = require('../../js/index.js');

jest.setTimeout(30000);

const SIDEWIRE_ENTRY = path.resolve(__dirname, '../../js/index.js');
const SOCKETIO_ENTRY = require.resolve('socket.io');

// A Server of `kind` on nothing yet (the test attaches it); sidewire's on an Engine of its own.
function bareServer(kind, opts = {}) {
  if (kind === 'socket.io') return { io: new SocketIoServer(opts), engine: null };
  const engine = new Engine({ global: false, logLevel: 'off', drainMs: 200 });
  return { io: new Server({ engine, ...opts }), engine };
}

function plainHttpServer() {
  return http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
  });
}

function canListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function get(port, target, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: target, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

// The Engine.IO open packet of a fresh polling handshake at `prefix`.
async function openPacket(port, prefix = '/socket.io') {
  const r = await get(port, `${prefix}/?EIO=4&transport=polling`);
  if (r.status !== 200) return { status: r.status };
  const text = r.body.toString();
  expect(text[0]).toBe('0');
  return JSON.parse(text.slice(1));
}

// Runs a node script; resolves { code, signal, ms, out } (killed after `timeoutMs`).
function runNode(args, timeoutMs, onStdout) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (onStdout) onStdout(String(d), child);
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ms: Date.now() - started, out });
    });
  });
}

// ============================================================================ adapter views

describe.each(IMPLS)('nsp.adapter (%s)', (kind) => {
  let t;
  let log;
  let serverSockets;
  beforeEach(async () => {
    log = [];
    serverSockets = new Map();
    t = await startImpl(kind, {}, (io) => {
      for (const name of ['/', '/x']) {
        io.of(name).on('connection', (socket) => {
          serverSockets.set(socket.id, socket);
          socket.on('join', (rooms, cb) => {
            socket.join(rooms);
            cb();
          });
          socket.on('leave', (room, cb) => {
            socket.leave(room);
            cb();
          });
        });
      }
      const ev = io.of('/ev');
      for (const name of ['create-room', 'delete-room', 'join-room', 'leave-room']) {
        ev.adapter.on(name, (...args) => log.push([name, ...args]));
      }
      ev.on('connection', (socket) => {
        log.push(['connection', socket.id]);
        socket.join('r1');
        socket.join(['r2', 'r3']);
        socket.on('leave', (room, cb) => {
          socket.leave(room);
          cb();
        });
        socket.on('disconnecting', () => log.push(['disconnecting', socket.id]));
        socket.on('disconnect', () => log.push(['disconnect', socket.id]));
      });
    });
  });
  afterEach(() => t.close());

  test('rooms and sids are live Maps of Sets, the own id room included', async () => {
    const rooms = t.io.sockets.adapter.rooms;
    const sids = t.io.sockets.adapter.sids;
    expect(rooms).toBeInstanceOf(Map);
    expect(sids).toBeInstanceOf(Map);
    expect(t.io.sockets.adapter.rooms).toBe(rooms);
    const c = t.client({ transports: ['websocket'] });
    await connected(c);
    await waitFor(() => serverSockets.has(c.id));
    expect(rooms.get(c.id)).toEqual(new Set([c.id]));
    expect(sids.get(c.id)).toEqual(new Set([c.id]));
    await c.emitWithAck('join', ['a', 'b']);
    expect(t.io.sockets.adapter.rooms.get('a')?.size).toBe(1);
    expect(rooms.get('b')).toEqual(new Set([c.id]));
    expect(sids.get(c.id)).toEqual(new Set([c.id, 'a', 'b']));
    expect(t.io.sockets.adapter.socketRooms(c.id)).toEqual(new Set([c.id, 'a', 'b']));
    expect(rooms.get('nowhere')?.size).toBeUndefined();

    const c2 = t.client({ transports: ['polling'] });
    await connected(c2);
    await waitFor(() => serverSockets.has(c2.id));
    await c2.emitWithAck('join', 'a');
    expect(rooms.get('a')).toEqual(new Set([c.id, c2.id]));
    expect([...rooms.keys()].sort()).toEqual([c.id, c2.id, 'a', 'b'].sort());

    await c.emitWithAck('leave', 'b');
    expect(rooms.has('b')).toBe(false);
    expect(sids.get(c.id)).toEqual(new Set([c.id, 'a']));

    const gone = once(serverSockets.get(c.id), 'disconnect');
    c.disconnect();
    await gone;
    expect(sids.has(c.id)).toBe(false);
    expect(rooms.has(c.id)).toBe(false);
    expect(rooms.get('a')).toEqual(new Set([c2.id]));
    c2.disconnect();
  });

  test('each namespace has its own adapter: io.of(x).adapter.sids, nsp, serverCount()', async () => {
    const x = t.io.of('/x');
    expect(x.adapter).not.toBe(t.io.sockets.adapter);
    expect(x.adapter.nsp).toBe(x);
    expect(t.io.sockets.adapter.nsp).toBe(t.io.sockets);
    await expect(x.adapter.serverCount()).resolves.toBe(1);
    expect(typeof t.io.adapter()).toBe('function');
    expect(x.adapter).toBeInstanceOf(t.io.adapter());

    const c = t.client('/x', { transports: ['websocket'] });
    await connected(c);
    await waitFor(() => serverSockets.has(c.id));
    await c.emitWithAck('join', 'team');
    expect(x.adapter.sids.get(c.id)).toEqual(new Set([c.id, 'team']));
    expect(x.adapter.rooms.get('team')).toEqual(new Set([c.id]));
    expect(t.io.sockets.adapter.rooms.has('team')).toBe(false);
    await expect(x.adapter.sockets(new Set(['team']))).resolves.toEqual(new Set([c.id]));
    await expect(x.adapter.sockets(new Set())).resolves.toEqual(new Set([c.id]));
    c.disconnect();
  });

  test('create-room, join-room, leave-room and delete-room come with socket.io\'s arguments, in its order', async () => {
    const c = t.client('/ev', { transports: ['websocket'] });
    await connected(c);
    await waitFor(() => log.some((e) => e[0] === 'connection'));
    const id = c.id;
    expect(log).toEqual([
      ['create-room', id],
      ['join-room', id, id],
      ['connection', id],
      ['create-room', 'r1'],
      ['join-room', 'r1', id],
      ['create-room', 'r2'],
      ['join-room', 'r2', id],
      ['create-room', 'r3'],
      ['join-room', 'r3', id],
    ]);
    log.length = 0;
    await c.emitWithAck('leave', 'r2');
    await c.emitWithAck('leave', 'never-joined');
    expect(log).toEqual([
      ['leave-room', 'r2', id],
      ['delete-room', 'r2'],
    ]);
    log.length = 0;
    const ev = t.io.of('/ev');
    ev.in('r1').socketsJoin(['r4', 'r1']);
    ev.socketsLeave('r3');
    expect(log).toEqual([
      ['create-room', 'r4'],
      ['join-room', 'r4', id],
      ['leave-room', 'r3', id],
      ['delete-room', 'r3'],
    ]);
    log.length = 0;
    c.disconnect();
    await waitFor(() => log.some((e) => e[0] === 'disconnect'));
    expect(log).toEqual([
      ['disconnecting', id],
      ['leave-room', id, id],
      ['delete-room', id],
      ['leave-room', 'r1', id],
      ['delete-room', 'r1'],
      ['leave-room', 'r4', id],
      ['delete-room', 'r4'],
      ['disconnect', id],
    ]);
  });

  test('two sockets: a room is created by the first and deleted by the last', async () => {
    const a = t.client('/ev', { transports: ['websocket'] });
    await connected(a);
    const b = t.client('/ev', { transports: ['polling'] });
    await connected(b);
    await waitFor(() => log.filter((e) => e[0] === 'connection').length === 2);
    const r1 = log.filter((e) => e[1] === 'r1');
    expect(r1).toEqual([
      ['create-room', 'r1'],
      ['join-room', 'r1', a.id],
      ['join-room', 'r1', b.id],
    ]);
    log.length = 0;
    t.io.of('/ev').disconnectSockets();
    expect(log).toEqual([
      ['disconnecting', a.id],
      ['leave-room', a.id, a.id],
      ['delete-room', a.id],
      ['leave-room', 'r1', a.id],
      ['leave-room', 'r2', a.id],
      ['leave-room', 'r3', a.id],
      ['disconnect', a.id],
      ['disconnecting', b.id],
      ['leave-room', b.id, b.id],
      ['delete-room', b.id],
      ['leave-room', 'r1', b.id],
      ['delete-room', 'r1'],
      ['leave-room', 'r2', b.id],
      ['delete-room', 'r2'],
      ['leave-room', 'r3', b.id],
      ['delete-room', 'r3'],
      ['disconnect', b.id],
    ]);
    expect(t.io.of('/ev').adapter.rooms.size).toBe(0);
    expect(t.io.of('/ev').adapter.sids.size).toBe(0);
  });
});

describe('nsp.adapter (sidewire only)', () => {
  let t;
  beforeEach(async () => {
    t = await startImpl('sidewire', {}, (io) => {
      io.on('connection', (socket) => socket.on('join', (room, cb) => cb(socket.join(room))));
    });
  });
  afterEach(() => t.close());

  test('the views are read-only: changing them throws and leaves the state whole', async () => {
    const c = t.client({ transports: ['websocket'] });
    await connected(c);
    await c.emitWithAck('join', 'a');
    const { rooms, sids } = t.io.sockets.adapter;
    expect(() => rooms.set('x', new Set())).toThrow(TypeError);
    expect(() => rooms.delete('a')).toThrow(TypeError);
    expect(() => rooms.clear()).toThrow(TypeError);
    expect(() => rooms.get('a').add('intruder')).toThrow(TypeError);
    expect(() => rooms.get('a').delete(c.id)).toThrow(TypeError);
    expect(() => sids.get(c.id).clear()).toThrow(TypeError);
    expect(() => sids.delete(c.id)).toThrow(TypeError);
    expect(rooms.get('a')).toEqual(new Set([c.id]));
    expect(sids.get(c.id)).toEqual(new Set([c.id, 'a']));
    // Copies are the app's to change.
    const copy = new Map(rooms);
    copy.delete('a');
    expect(rooms.has('a')).toBe(true);
    const got = once(c, 'to-a');
    t.io.to('a').emit('to-a', 1);
    expect(await got).toEqual([1]);
    c.disconnect();
  });

  test('no views, no per-socket state until someone reads them', async () => {
    const c = t.client({ transports: ['websocket'] });
    await connected(c);
    await c.emitWithAck('join', 'a');
    expect(t.io.sockets._adapter).toBeNull();
    const adapter = t.io.sockets.adapter; // the object alone builds nothing
    expect(adapter._rooms).toBeNull();
    expect(adapter.rooms.get('a')).toEqual(new Set([c.id])); // built from what JS mirrors
    c.disconnect();
  });

  test('a namespace JS did not track: its hooks go on at the first read; earlier sockets stay the engine\'s', async () => {
    const quiet = t.io.of('/quiet'); // no listeners, no middleware: the engine alone has its sockets
    const early = t.client('/quiet', { transports: ['websocket'] });
    await connected(early);
    expect(quiet.sockets.size).toBe(0);
    expect(quiet.adapter.rooms.size).toBe(0); // `early` connected before: not in the views
    const late = t.client('/quiet', { transports: ['websocket'] });
    await connected(late);
    await waitFor(() => quiet.sockets.has(late.id));
    expect(quiet.adapter.rooms.get(late.id)).toEqual(new Set([late.id]));
    expect(quiet.adapter.sids.has(early.id)).toBe(false);
    // The engine still knows both.
    const ids = (await quiet.fetchSockets()).map((s) => s.id).sort();
    expect(ids).toEqual([early.id, late.id].sort());
    const gone = once(quiet.sockets.get(late.id), 'disconnect');
    late.disconnect();
    await gone;
    expect(quiet.adapter.rooms.size).toBe(0);
    early.disconnect();
  });

  test('io.adapter() is the Adapter class; a custom adapter is refused', () => {
    const { Adapter } = require('../../js/index.js');
    expect(t.io.adapter()).toBe(Adapter);
    expect(t.io.adapter(Adapter)).toBe(t.io);
    expect(() => t.io.adapter(class Custom {})).toThrow(/sidewire\/redis-adapter/);
  });
});

// ============================================================== cleanupEmptyChildNamespaces

describe.each(IMPLS)('cleanupEmptyChildNamespaces (%s)', (kind) => {
  let t;
  let counts;
  let parents;
  beforeEach(async () => {
    counts = { middleware: 0, connection: 0, newNamespace: 0, fnMiddleware: 0 };
    parents = {};
    t = await startImpl(kind, { cleanupEmptyChildNamespaces: true }, (io) => {
      io.on('new_namespace', () => counts.newNamespace++);
      parents.regex = io.of(/^\/dyn-\d+$/);
      parents.regex.use((socket, next) => {
        counts.middleware++;
        next();
      });
      parents.regex.on('connection', (socket) => {
        counts.connection++;
        socket.emit('hi', socket.nsp.name, counts.connection);
      });
      parents.deny = io.of(/^\/deny-\d+$/);
      parents.deny.use((socket, next) => {
        counts.middleware++;
        next(new Error('not you'));
      });
      parents.deny.on('connection', () => counts.connection++);
      parents.fn = io.of((name, auth, next) => next(null, name.startsWith('/fn-')));
      parents.fn.use((socket, next) => {
        counts.fnMiddleware++;
        next();
      });
      parents.fn.on('connection', (socket) => socket.emit('hi', socket.nsp.name, counts.fnMiddleware));
    });
  });
  afterEach(() => t.close());

  test('a child goes once its last socket left; a client can connect to it again', async () => {
    const a = t.client('/dyn-1', { transports: ['websocket'] });
    const hiA = once(a, 'hi');
    await connected(a);
    expect(await hiA).toEqual(['/dyn-1', 1]);
    const b = t.client('/dyn-1', { transports: ['polling'] });
    await connected(b);
    const first = t.io._nsps.get('/dyn-1');
    expect(first).toBeDefined();
    expect(parents.regex.children.has(first)).toBe(true);
    expect(counts.newNamespace).toBe(1);

    a.disconnect();
    await waitFor(() => first.sockets.size === 1);
    expect(t.io._nsps.get('/dyn-1')).toBe(first); // one socket left
    b.disconnect();
    await waitFor(() => !t.io._nsps.has('/dyn-1'));
    expect(parents.regex.children.size).toBe(0);

    const c = t.client('/dyn-1', { transports: ['websocket'] });
    const hiC = once(c, 'hi');
    await connected(c);
    expect(await hiC).toEqual(['/dyn-1', 3]);
    const second = t.io._nsps.get('/dyn-1');
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expect(parents.regex.children).toEqual(new Set([second]));
    expect(counts.middleware).toBe(3); // the parent's middleware ran again for the fresh child
    expect(counts.newNamespace).toBe(2);
    // The fresh child works: broadcasts, rooms.
    const got = once(c, 'all');
    second.emit('all', 'fresh');
    expect(await got).toEqual(['fresh']);
    const viaParent = once(c, 'parent');
    parents.regex.emit('parent', 1);
    expect(await viaParent).toEqual([1]);
    c.disconnect();
    await waitFor(() => !t.io._nsps.has('/dyn-1'));
  });

  test('a child whose middleware refused the client goes too, and the middleware runs again next time', async () => {
    const a = t.client('/deny-1', { transports: ['websocket'] });
    expect((await connectError(a)).message).toBe('not you');
    await waitFor(() => !t.io._nsps.has('/deny-1'));
    expect(parents.deny.children.size).toBe(0);
    const b = t.client('/deny-1', { transports: ['polling'] });
    expect((await connectError(b)).message).toBe('not you');
    expect(counts.middleware).toBe(2);
    expect(counts.connection).toBe(0);
    await waitFor(() => !t.io._nsps.has('/deny-1'));
  });

  test('children of a function parent, and io.of(name) creating one again', async () => {
    const a = t.client('/fn-a', { transports: ['websocket'] });
    const hi = once(a, 'hi');
    await connected(a);
    expect(await hi).toEqual(['/fn-a', 1]);
    a.disconnect();
    await waitFor(() => !t.io._nsps.has('/fn-a'));
    expect(parents.fn.children.size).toBe(0);
    const b = t.client('/fn-a', { transports: ['polling'] });
    const hiB = once(b, 'hi');
    await connected(b);
    expect(await hiB).toEqual(['/fn-a', 2]);
    b.disconnect();
    await waitFor(() => !t.io._nsps.has('/fn-a'));

    // io.of() with a name a regex parent matches makes a child; it stays until a socket leaves it.
    const made = t.io.of('/dyn-7');
    expect(parents.regex.children.has(made)).toBe(true);
    const c = t.client('/dyn-7', { transports: ['websocket'] });
    await connected(c);
    c.disconnect();
    await waitFor(() => !t.io._nsps.has('/dyn-7'));
    expect(t.io.of('/dyn-7')).not.toBe(made);
  });

  test('many names come and go (the engine reuses each name\'s slot)', async () => {
    for (let round = 0; round < 3; round++) {
      const clients = [];
      for (let i = 0; i < 5; i++) {
        const c = t.client(`/dyn-${100 + i}`, { transports: ['websocket'] });
        clients.push(c);
      }
      await Promise.all(clients.map((c) => connected(c)));
      for (const c of clients) c.disconnect();
      await waitFor(() => parents.regex.children.size === 0);
    }
    expect(counts.connection).toBe(15);
  });
});

describe.each(IMPLS)('without cleanupEmptyChildNamespaces (%s)', (kind) => {
  test('a child stays when empty', async () => {
    let parent;
    const t = await startImpl(kind, {}, (io) => {
      parent = io.of(/^\/keep-\d+$/);
      parent.on('connection', () => {});
    });
    try {
      const a = t.client('/keep-1', { transports: ['websocket'] });
      await connected(a);
      const child = t.io._nsps.get('/keep-1');
      a.disconnect();
      await waitFor(() => child.sockets.size === 0);
      await sleep(100);
      expect(t.io._nsps.get('/keep-1')).toBe(child);
      expect(parent.children.has(child)).toBe(true);
    } finally {
      await t.close();
    }
  });
});

// ===================================================================== close, listen again

describe.each(IMPLS)('io.close() and listening again (%s)', (kind) => {
  test('every socket is gone before a client hears of it, and the port is free afterwards', async () => {
    const t = await startImpl(kind, {}, (io) => {
      io.on('connection', () => {});
      io.of('/other').on('connection', () => {});
    });
    const clients = [t.client({ transports: ['websocket'] }), t.client({ transports: ['polling'] }), t.client('/other', { transports: ['websocket'] })];
    await Promise.all(clients.map((c) => connected(c)));
    await waitFor(() => t.io.sockets.sockets.size === 2 && t.io.of('/other').sockets.size === 1);
    const seenByClients = clients.map(
      (c) =>
        new Promise((resolve) => {
          c.on('disconnect', (reason) => resolve({ reason, sockets: t.io.sockets.sockets.size + t.io.of('/other').sockets.size }));
        }),
    );
    const serverReasons = [];
    for (const s of [...t.io.sockets.sockets.values(), ...t.io.of('/other').sockets.values()]) {
      s.on('disconnect', (reason) => serverReasons.push(reason));
    }
    const closing = t.io.close();
    expect(t.io.sockets.sockets.size).toBe(0);
    expect(t.io.of('/other').sockets.size).toBe(0);
    expect(serverReasons).toEqual(['server shutting down', 'server shutting down', 'server shutting down']);
    await closing;
    const seen = await Promise.all(seenByClients);
    expect(seen).toEqual([
      { reason: 'transport close', sockets: 0 }, // WebSocket
      { reason: 'transport error', sockets: 0 }, // polling: its held GET is cut
      { reason: 'transport close', sockets: 0 },
    ]);
    expect(await canListen(t.port)).toBe(true);
    await t.close();
  });

  test('listen(port) again after close(): a reconnecting client is served', async () => {
    const port = await freePort();
    const { io, engine } = bareServer(kind);
    let connections = 0;
    io.on('connection', (socket) => {
      connections++;
      socket.on('echo', (v, cb) => cb(v));
    });
    io.of('/chat').on('connection', (socket) => socket.on('echo', (v, cb) => cb(`chat:${v}`)));
    io.listen(port);
    await waitFor(() => io.httpServer && io.httpServer.listening);
    const opts = { transports: ['websocket'], reconnectionDelay: 50, reconnectionDelayMax: 100, forceNew: true };
    const c = ioClient(`http://127.0.0.1:${port}`, opts);
    const chat = c.io.socket('/chat');
    try {
      await connected(c);
      await connected(chat);
      expect(await c.emitWithAck('echo', 1)).toBe(1);
      const lost = once(c, 'disconnect', 5000);
      await io.close();
      expect((await lost)[0]).toBe('transport close');
      expect(await canListen(port)).toBe(true);

      const back = once(c, 'connect', 10000);
      const chatBack = once(chat, 'connect', 10000);
      io.listen(port);
      await back;
      await chatBack;
      expect(await c.emitWithAck('echo', 2)).toBe(2);
      expect(await chat.emitWithAck('echo', 3)).toBe('chat:3');
      expect(connections).toBe(2);
      expect(io.sockets.sockets.size).toBe(1);
    } finally {
      chat.disconnect();
      c.disconnect();
      await io.close();
      if (engine) await engine.close({ drainMs: 200 });
    }
    expect(await canListen(port)).toBe(true);
  });

  test('a new http.Server and attach() after close(), polling client', async () => {
    const port = await freePort();
    const { io, engine } = bareServer(kind);
    io.on('connection', (socket) => socket.on('echo', (v, cb) => cb(v)));
    const first = plainHttpServer();
    io.attach(first);
    await listenOn(first, port);
    const c = ioClient(`http://127.0.0.1:${port}`, { transports: ['polling'], reconnectionDelay: 50, reconnectionDelayMax: 100, forceNew: true });
    try {
      await connected(c);
      expect(await c.emitWithAck('echo', 'a')).toBe('a');
      await io.close();
      expect(first.listening).toBe(false);
      const back = once(c, 'connect', 10000);
      const second = plainHttpServer();
      io.attach(second);
      await listenOn(second, port);
      await back;
      expect(await c.emitWithAck('echo', 'b')).toBe('b');
      expect(io.httpServer).toBe(second);
    } finally {
      c.disconnect();
      await io.close();
      if (engine) await engine.close({ drainMs: 200 });
    }
  });

  test.each([
    ['new Server(port)', true, (entry) => `const { Server } = require(${JSON.stringify(entry)}); const io = new Server(0); io.close();`],
    [
      'an attached, listening http.Server',
      true,
      (entry) =>
        `const http = require('node:http'); const { Server } = require(${JSON.stringify(entry)}); ` +
        "const srv = http.createServer(); const io = new Server(srv); srv.listen(0, '127.0.0.1', () => io.close());",
    ],
    // socket.io's close() throws here (it has no engine.io server to close): sidewire's only.
    ['no server at all', false, (entry) => `const { Server } = require(${JSON.stringify(entry)}); const io = new Server(); io.close();`],
  ])('a script that only closes it exits by itself: %s', async (_name, bothImpls, script) => {
    if (kind === 'socket.io' && !bothImpls) return;
    const entry = kind === 'socket.io' ? SOCKETIO_ENTRY : SIDEWIRE_ENTRY;
    const r = await runNode(['-e', script(entry)], 8000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(5000);
  });

  test('a server process closed while clients are connected exits by itself', async () => {
    const entry = kind === 'socket.io' ? SOCKETIO_ENTRY : SIDEWIRE_ENTRY;
    const script =
      `const http = require('node:http'); const { Server } = require(${JSON.stringify(entry)}); ` +
      'const srv = http.createServer(); const io = new Server(srv); let n = 0; ' +
      "io.on('connection', (s) => { s.join('room'); if (++n === 2) setTimeout(() => io.close(), 50); }); " +
      "srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));";
    const clients = [];
    const r = await runNode(['-e', script], 10000, (text) => {
      const m = /port (\d+)/.exec(text);
      if (!m) return;
      for (const transports of [['websocket'], ['polling']]) {
        clients.push(ioClient(`http://127.0.0.1:${m[1]}`, { transports, forceNew: true, reconnectionDelay: 100 }));
      }
    });
    for (const c of clients) c.disconnect();
    expect(clients).toHaveLength(2);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(6000);
  });
});

describe('io.close() and listening again (sidewire only)', () => {
  test('a Server that made its own engine gets a new one and serves the same namespaces', async () => {
    const port = await freePort();
    const io = new Server({ engine: undefined });
    expect(io._ownsEngine).toBe(true);
    io.sidewire.options.logLevel = 'off';
    io.on('connection', (socket) => socket.on('echo', (v, cb) => cb(v)));
    io.of('/quiet'); // no listeners: the engine alone
    const parent = io.of(/^\/dyn-\d+$/).on('connection', (socket) => socket.emit('hi', socket.nsp.name));
    io.listen(port);
    await waitFor(() => io.httpServer.listening);
    const firstEngine = io.sidewire;
    await io.close();
    expect(firstEngine._closing).not.toBeNull();
    io.listen(port);
    expect(io.sidewire).not.toBe(firstEngine);
    io.sidewire.options.logLevel = 'off';
    await waitFor(() => io.httpServer.listening);
    const c = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
    const q = c.io.socket('/quiet');
    const d = c.io.socket('/dyn-3');
    try {
      const hi = once(d, 'hi');
      await connected(c);
      await connected(q);
      expect(await hi).toEqual(['/dyn-3']);
      expect(await c.emitWithAck('echo', 'x')).toBe('x');
      expect(parent.children.size).toBe(1);
    } finally {
      q.disconnect();
      d.disconnect();
      c.disconnect();
      await io.close();
    }
  });
});

// ================================================================= the CommonJS/ESM export

describe.each(IMPLS)('the package export (%s)', (kind) => {
  const entry = kind === 'socket.io' ? SOCKETIO_ENTRY : SIDEWIRE_ENTRY;

  test('require(pkg)(httpServer, opts) returns a Server; .Server, .Namespace, .Socket are there', async () => {
    const mod = require(entry);
    expect(typeof mod).toBe('function');
    expect(typeof mod.Server).toBe('function');
    expect(typeof mod.Namespace).toBe('function');
    expect(typeof mod.Socket).toBe('function');
    expect(() => new mod()).toThrow(TypeError); // an arrow function in socket.io
    const srv = plainHttpServer();
    const engine = kind === 'socket.io' ? null : new Engine({ global: false, logLevel: 'off', drainMs: 200 });
    const io = mod(srv, engine ? { engine, path: '/p' } : { path: '/p' });
    try {
      expect(io).toBeInstanceOf(mod.Server);
      expect(io.httpServer).toBe(srv);
      expect(io.path()).toBe('/p');
      const port = await listenOn(srv);
      expect((await openPacket(port, '/p')).sid).toEqual(expect.any(String));
    } finally {
      await io.close();
      if (engine) await engine.close({ drainMs: 200 });
    }
  });

  test('import { Server, Namespace, Socket } from pkg (ESM)', async () => {
    const script =
      `import { Server, Namespace, Socket } from ${JSON.stringify(kind === 'socket.io' ? 'socket.io' : entry)};\n` +
      'const s = new Server();\n' +
      "console.log(JSON.stringify([typeof Server, typeof Namespace, typeof Socket, s.of('/') instanceof Namespace]));\n";
    const r = await runNode(['--input-type=module', '-e', script], 10000);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out.trim().split('\n').filter((l) => l.startsWith('['))[0])).toEqual(['function', 'function', 'function', true]);
  });
});

test('sidewire\'s ESM default export is the callable (socket.io\'s wrapper has none)', async () => {
  const script =
    `import sidewire, { Server, Engine, getServer } from ${JSON.stringify(SIDEWIRE_ENTRY)};\n` +
    'const io = sidewire();\n' +
    "console.log(JSON.stringify([typeof sidewire, typeof Engine, typeof getServer, io instanceof Server]));\n" +
    'await io.close();\n';
  const r = await runNode(['--input-type=module', '-e', script], 10000);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.out.trim().split('\n').filter((l) => l.startsWith('['))[0])).toEqual(['function', 'function', 'function', true]);
});

// ========================================================== attach() / listen() options

describe.each(IMPLS)('attach(srv, opts) and listen(port, opts) (%s)', (kind) => {
  test('attach()\'s engine options apply; the constructor\'s win over them', async () => {
    const { io, engine } = bareServer(kind, { pingTimeout: 1500 });
    const srv = plainHttpServer();
    io.attach(srv, { pingInterval: 300, pingTimeout: 9999, maxHttpBufferSize: 5000, path: '/custom' });
    const port = await listenOn(srv);
    try {
      const open = await openPacket(port, '/custom');
      expect(open).toEqual(expect.objectContaining({ pingInterval: 300, pingTimeout: 1500, maxPayload: 5000 }));
      expect((await get(port, '/socket.io/?EIO=4&transport=polling')).status).toBe(404);
      // A client on the attached path, with its heartbeat.
      const c = ioClient(`http://127.0.0.1:${port}`, { path: '/custom', transports: ['websocket'], forceNew: true, reconnection: false });
      await connected(c);
      expect(c.io.engine._pingInterval).toBe(300);
      c.disconnect();
    } finally {
      await io.close();
      if (engine) await engine.close({ drainMs: 200 });
    }
  });

  test('listen(port, opts) applies them too; transports from attach()', async () => {
    const port = await freePort();
    const { io, engine } = bareServer(kind);
    io.listen(port, { pingInterval: 700, transports: ['polling'] });
    try {
      await waitFor(() => io.httpServer.listening);
      const open = await openPacket(port);
      expect(open).toEqual(expect.objectContaining({ pingInterval: 700, pingTimeout: 20000, upgrades: [] }));
    } finally {
      await io.close();
      if (engine) await engine.close({ drainMs: 200 });
    }
  });

  test('io.path() set before attach() stays when attach() names no path', async () => {
    const { io, engine } = bareServer(kind);
    io.path('/mine');
    const srv = plainHttpServer();
    io.attach(srv, { pingInterval: 400 });
    const port = await listenOn(srv);
    try {
      expect(await openPacket(port, '/mine')).toEqual(expect.objectContaining({ pingInterval: 400 }));
    } finally {
      await io.close();
      if (engine) await engine.close({ drainMs: 200 });
    }
  });
});

// ======================================================================= the client bundle

describe.each(IMPLS)('the client bundle\'s Content-Encoding (%s)', (kind) => {
  let t;
  beforeAll(async () => {
    t = await startImpl(kind);
  });
  afterAll(() => t.close());

  test.each([
    ['gzip, br, deflate', 'gzip'],
    ['gzip,br,deflate', 'gzip'],
    ['br, gzip, deflate', 'br'],
    ['deflate, gzip', 'deflate'],
    ['deflate, br;q=1.0, gzip;q=0.9', 'deflate'],
    ['gzip;q=0.5, br;q=0.9', 'br'],
    ['*', 'br'],
    ['gzip;q=0, *', 'br'],
    ['br;q=0, gzip;q=0, deflate;q=0', undefined],
    ['identity', undefined],
    ['', undefined],
    [null, undefined],
    ['GZIP', 'gzip'],
    ['x-gzip, deflate;q=0.2', 'deflate'],
  ])('Accept-Encoding %j → %s', async (acceptEncoding, expected) => {
    const headers = acceptEncoding === null ? {} : { 'accept-encoding': acceptEncoding };
    const r = await get(t.port, '/socket.io/socket.io.js', headers);
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBe(expected);
    expect(r.body.length).toBeGreaterThan(1000);
  });
});

// ================================================================================ volatile

describe.each(IMPLS)('volatile (%s)', (kind) => {
  let t;
  beforeAll(async () => {
    t = await startImpl(kind, {}, (io) => {
      io.on('connection', (socket) => {
        socket.volatile.emit('early', 'after CONNECT in the same turn: dropped');
        socket.emit('hello');
        socket.on('ask', (ack) => {
          ack('answer');
          socket.volatile.emit('v', 'after the ack, same turn: dropped');
          setTimeout(() => socket.emit('done'), 20);
        });
        socket.on('burst', (mode) => {
          if (mode === 'socket') {
            for (let i = 0; i < 5; i++) socket.volatile.emit('v', i);
            socket.emit('done');
          } else if (mode === 'broadcast') {
            for (let i = 0; i < 5; i++) io.volatile.emit('v', i);
            io.emit('done');
          } else if (mode === 'regular-first') {
            socket.emit('r');
            socket.volatile.emit('v', 0);
            socket.emit('done');
          } else if (mode === 'later') {
            socket.volatile.emit('v', 0);
            setTimeout(() => {
              socket.volatile.emit('v', 1);
              io.to(socket.id).volatile.emit('v', 2);
              socket.emit('done');
            }, 100);
          }
        });
      });
    });
  });
  afterAll(() => t.close());

  describe.each([['websocket'], ['polling']])('over %s', (transport) => {
    async function run(mode) {
      const c = t.client({ transports: [transport] });
      const events = [];
      c.onAny((ev, ...args) => events.push([ev, ...args]));
      try {
        await connected(c);
        await waitFor(() => events.some((e) => e[0] === 'hello'));
        await sleep(50); // idle: a polling client's GET is held again
        events.length = 0;
        const done = once(c, 'done', 5000);
        c.emit('burst', mode);
        await done;
        await sleep(50);
        return events;
      } finally {
        c.disconnect();
      }
    }

    test('of several volatile emits in one turn only the first goes; a regular emit after them arrives', async () => {
      for (let round = 0; round < 5; round++) expect(await run('socket')).toEqual([['v', 0], ['done']]);
    });

    test('io.volatile.emit(): the same for a broadcast', async () => {
      for (let round = 0; round < 5; round++) expect(await run('broadcast')).toEqual([['v', 0], ['done']]);
    });

    test('a volatile emit after a regular one in the same turn is dropped', async () => {
      for (let round = 0; round < 3; round++) expect(await run('regular-first')).toEqual([['r'], ['done']]);
    });

    test('the volatile emit right after CONNECT (in the connection handler) is dropped', async () => {
      const c = t.client({ transports: [transport] });
      const events = [];
      c.onAny((ev) => events.push(ev));
      try {
        await connected(c);
        await waitFor(() => events.includes('hello'));
        expect(events).toEqual(['hello']);
      } finally {
        c.disconnect();
      }
    });

    test('a volatile emit right after an ack in the same turn is dropped', async () => {
      const c = t.client({ transports: [transport] });
      const events = [];
      c.onAny((ev, ...args) => events.push([ev, ...args]));
      try {
        await connected(c);
        await waitFor(() => events.some((e) => e[0] === 'hello'));
        await sleep(50);
        events.length = 0;
        const done = once(c, 'done', 5000);
        expect(await c.timeout(3000).emitWithAck('ask')).toBe('answer');
        await done;
        await sleep(50);
        expect(events).toEqual([['done']]);
      } finally {
        c.disconnect();
      }
    });

    test('a volatile emit in a later turn, on an idle transport, arrives', async () => {
      // v2 (a broadcast to the socket) comes in the turn that wrote v1: dropped.
      expect(await run('later')).toEqual([['v', 0], ['v', 1], ['done']]);
    });
  });
});
