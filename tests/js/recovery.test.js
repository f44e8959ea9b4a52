'use strict';
// connectionStateRecovery, each test body run against the `socket.io` package and against
// sidewire: a client that drops and comes back within the window gets its id, rooms, data and
// every packet it missed, in order, before anything new — over WebSocket and over polling.
const { IMPLS, startImpl } = require('./helpers/impls');
const { connected } = require('./helpers/sio');
const { waitFor, sleep } = require('./helpers/ws');

const FAST_RECONNECT = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 150, randomizationFactor: 0 };

// A server where a new socket joins "r", gets data and a first event; on a recoverable drop,
// three packets are sent to it while it is away (a room, everyone, its own id) and one not for it.
function setup(recorded) {
  return (io) => {
    io.on('connection', (socket) => {
      recorded.connections.push({ id: socket.id, recovered: socket.recovered, rooms: [...socket.rooms].sort(), data: socket.data });
      if (socket.recovered) {
        // What the handler sends goes after the replay, a join and a broadcast to it included.
        socket.join('late');
        io.to('late').emit('new', 'to a room joined on recovery');
        socket.emit('new', 'after recovery');
        return;
      }
      socket.join('r');
      socket.data = { user: 'ada', n: 1 };
      socket.emit('hello', 1);
      socket.on('disconnect', (reason) => {
        recorded.reasons.push(reason);
        io.to('r').emit('missed', 'room');
        io.emit('missed', 'everyone');
        io.to(socket.id).emit('missed', 'own id');
        io.to('elsewhere').emit('missed', 'not for it');
        io.except('r').emit('missed', 'excluded');
      });
    });
  };
}

// The network drops (the server sees "transport close"); once the server has noticed (what a
// client's reconnection delay gives it in practice), the client comes back with its private id
// and last offset, as socket.io-client does on reconnection.
async function dropAndReturn(c, serverNoticed) {
  c.io.engine.close();
  await waitFor(serverNoticed, 5000);
  c.connect();
}

function record(client) {
  const events = [];
  client.onAny((name, ...args) => events.push([name, args[0]]));
  return events;
}

describe.each(IMPLS)('connection state recovery (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test.each([
    ['websocket', ['websocket']],
    ['polling', ['polling']],
    ['polling then websocket', ['polling', 'websocket']],
  ])('over %s: same id, rooms, data, and the missed packets in order before new ones', async (name, transports) => {
    const recorded = { connections: [], reasons: [] };
    t = await startImpl(kind, { connectionStateRecovery: { maxDisconnectionDuration: 10000 } }, setup(recorded));
    const c = t.client({ transports });
    const events = record(c);
    await connected(c);
    expect(c.recovered).toBe(false);
    await waitFor(() => events.length === 1, 2000);
    if (transports.length === 2) await waitFor(() => c.io.engine.transport.name === 'websocket', 3000);
    const firstId = c.id;
    await dropAndReturn(c, () => recorded.reasons.length === 1);
    await waitFor(() => recorded.connections.length === 2, 5000);
    await waitFor(() => events.length === 6, 3000);
    expect(c.id).toBe(firstId);
    expect(c.recovered).toBe(true);
    expect(recorded.reasons).toEqual(['transport close']);
    expect(recorded.connections[1]).toEqual({ id: firstId, recovered: true, rooms: [firstId, 'r'].sort(), data: { user: 'ada', n: 1 } });
    expect(events).toEqual([
      ['hello', 1],
      ['missed', 'room'],
      ['missed', 'everyone'],
      ['missed', 'own id'],
      ['new', 'to a room joined on recovery'],
      ['new', 'after recovery'],
    ]);
    // It is in its rooms again.
    const more = [];
    c.on('again', (v) => more.push(v));
    t.io.to('r').emit('again', 'r');
    t.io.to(firstId).emit('again', 'id');
    await waitFor(() => more.length === 2, 2000);
    expect(more).toEqual(['r', 'id']);
    const sockets = await t.io.fetchSockets();
    expect(sockets.map((s) => s.id)).toEqual([firstId]);
    expect([...sockets[0].rooms].sort()).toEqual([firstId, 'late', 'r'].sort());
  });

  test.each([['with', true], ['without', false]])(
    'a stream of broadcasts through a drop arrives exactly once, in order (%s JS listeners)',
    async (name, listeners) => {
      let n = 0;
      let timer = null;
      t = await startImpl(kind, { connectionStateRecovery: {} }, (io) => {
        const stream = io.of('/stream'); // there before the client asks for it
        if (listeners) stream.on('connection', () => {});
        timer = setInterval(() => {
          for (let i = 0; i < 3; i++) stream.emit('tick', ++n);
        }, 2);
      });
      try {
        const c = t.client('/stream', { transports: ['websocket'] });
        const got = [];
        c.on('tick', (v) => got.push(v));
        await connected(c);
        await waitFor(() => got.length > 30, 3000);
        // The server has noticed: its record of the socket is there (sidewire counts it; socket.io
        // has dropped the socket).
        await dropAndReturn(c, () =>
          kind === 'socket.io' ? t.io.of('/stream').sockets.size === 0 : t.io.stats().recovery.sessions === 1);
        await waitFor(() => c.recovered === true, 5000);
        const after = got.length;
        await waitFor(() => got.length > after + 60, 3000);
        clearInterval(timer);
        timer = null;
        await sleep(100);
        const first = got[0];
        expect(got).toEqual(Array.from({ length: got.length }, (_, i) => first + i));
      } finally {
        if (timer) clearInterval(timer);
      }
    },
  );

  test('events carry the offset as their last argument; acks and volatile packets do not', async () => {
    t = await startImpl(kind, { connectionStateRecovery: {} }, (io) => {
      io.on('connection', (socket) => {
        socket.emit('direct', 1);
        io.emit('broadcast', 2);
        socket.volatile.emit('volatile', 3);
        socket.emit('withAck', 4, () => {});
      });
    });
    const c = t.client({ transports: ['websocket'] });
    const got = {};
    for (const n of ['direct', 'broadcast', 'volatile', 'withAck']) c.on(n, (...args) => (got[n] = args));
    await connected(c);
    await waitFor(() => Object.keys(got).length >= 3 && got.withAck, 3000);
    expect(got.direct).toHaveLength(2);
    expect(typeof got.direct[1]).toBe('string');
    expect(got.broadcast).toHaveLength(2);
    expect(got.broadcast[1]).not.toBe(got.direct[1]);
    expect(got.withAck).toHaveLength(2); // 4 and the ack callback
    expect(typeof got.withAck[1]).toBe('function');
    if (got.volatile) expect(got.volatile).toEqual([3]);
  });

  test('after the window, it connects as new', async () => {
    const recorded = { connections: [], reasons: [] };
    t = await startImpl(kind, { connectionStateRecovery: { maxDisconnectionDuration: 200 } }, setup(recorded));
    const c = t.client({ transports: ['websocket'] });
    const events = record(c);
    await connected(c);
    await waitFor(() => events.length === 1, 2000);
    const firstId = c.id;
    await dropAndReturn(c, async () => {
      if (recorded.reasons.length !== 1) return false;
      await sleep(500); // past the window
      return true;
    });
    await waitFor(() => recorded.connections.length === 2, 5000);
    await waitFor(() => events.length === 2, 2000);
    expect(c.recovered).toBe(false);
    expect(c.id).not.toBe(firstId);
    expect(recorded.connections[1].recovered).toBe(false);
    expect(events.map((e) => e[0])).toEqual(['hello', 'hello']);
  });

  test('an unknown private id connects as new', async () => {
    const recorded = { connections: [], reasons: [] };
    t = await startImpl(kind, { connectionStateRecovery: {} }, setup(recorded));
    const c = t.client({ transports: ['websocket'], auth: { pid: 'not-a-session', offset: 'nothing' } });
    await connected(c);
    expect(c.recovered).toBe(false);
    await waitFor(() => recorded.connections.length === 1, 2000);
    expect(recorded.connections[0].recovered).toBe(false);
  });

  test('a disconnect the client asked for is not recoverable', async () => {
    const recorded = { connections: [], reasons: [] };
    t = await startImpl(kind, { connectionStateRecovery: {} }, setup(recorded));
    const c = t.client({ transports: ['websocket'] });
    const events = record(c);
    await connected(c);
    await waitFor(() => events.length === 1, 2000);
    c.disconnect();
    await waitFor(() => recorded.reasons.length === 1, 2000);
    expect(recorded.reasons).toEqual(['client namespace disconnect']);
    c.connect();
    await connected(c);
    expect(c.recovered).toBe(false);
  });

  test.each([
    [true, 1],
    [false, 2],
  ])('skipMiddlewares %s: the middleware runs %i time(s)', async (skipMiddlewares, runs) => {
    const recorded = { connections: [], reasons: [] };
    let middleware = 0;
    t = await startImpl(kind, { connectionStateRecovery: { skipMiddlewares } }, (io) => {
      io.use((socket, next) => {
        middleware += 1;
        next();
      });
      setup(recorded)(io);
    });
    const c = t.client({ transports: ['websocket'] });
    const events = record(c);
    await connected(c);
    await waitFor(() => events.length === 1, 2000);
    await dropAndReturn(c, () => recorded.reasons.length === 1);
    await waitFor(() => recorded.connections.length === 2, 5000);
    // The server's handler runs before its CONNECT reaches the client (a later turn, or later
    // still under a sanitizer): the client says whether it was recovered once it is connected.
    await waitFor(() => c.connected, 3000);
    expect(c.recovered).toBe(true);
    expect(middleware).toBe(runs);
  });

  test('without the option, nothing is recovered and events carry no offset', async () => {
    const recorded = { connections: [], reasons: [] };
    t = await startImpl(kind, {}, setup(recorded));
    const c = t.client({ transports: ['websocket'], ...FAST_RECONNECT });
    const args = [];
    c.on('hello', (...a) => args.push(a));
    await connected(c);
    await waitFor(() => args.length === 1, 2000);
    expect(args[0]).toEqual([1]);
    const firstId = c.id;
    c.io.engine.close();
    await waitFor(() => recorded.connections.length === 2, 5000);
    await waitFor(() => c.connected, 3000);
    expect(c.recovered).toBeFalsy(); // the client leaves it undefined when the server sent no pid
    expect(c.id).not.toBe(firstId);
  });
});

describe('connection state recovery: the engine counts what it keeps (sidewire)', () => {
  test('stats().recovery', async () => {
    const recorded = { connections: [], reasons: [] };
    const t = await startImpl('sidewire', { connectionStateRecovery: { maxDisconnectionDuration: 10000 } }, setup(recorded));
    try {
      const c = t.client({ transports: ['websocket'], reconnection: false });
      const events = record(c);
      await connected(c);
      await waitFor(() => events.length === 1, 2000);
      c.io.engine.close();
      await waitFor(() => recorded.reasons.length === 1, 2000);
      await waitFor(() => t.io.stats().recovery.sessions === 1, 2000);
      const r = t.io.stats().recovery;
      expect(r.packets).toBeGreaterThanOrEqual(6); // hello and the five sent while it was away
      expect(r.bytes).toBeGreaterThan(0);
      expect(r.recovered).toBe(0);
    } finally {
      await t.close();
    }
  });
});
