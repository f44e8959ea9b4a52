'use strict';
// sidewire's presence (namespace.presence, sidewire-only: socket.io has nothing to compare
// with): a room's members as distinct users across their devices, 'join' and 'leave' per user,
// the user from socket.data.user or the JWT's sub, and the same across two nodes of a fleet.
const jwt = require('jsonwebtoken');
const { startImpl } = require('./helpers/impls');
const { connected, once, never, sleep, waitFor } = require('./helpers/sio');
const { startRedis } = require('./helpers/redis-server');
const { createAdapter } = require('../../js/redis-adapter.js');

function recorder(presence) {
  const log = [];
  presence.on('join', (room, user) => log.push(['join', room, user]));
  presence.on('leave', (room, user) => log.push(['leave', room, user]));
  return log;
}

// Sockets say who they are in the handshake (as an app's middleware would check a session).
function setupChat(io) {
  io.use((socket, next) => {
    socket.data.user = socket.handshake.auth.user;
    next();
  });
  io.on('connection', (socket) => {
    socket.on('join', (room, ack) => {
      socket.join(room);
      ack();
    });
    socket.on('leave', (room, ack) => {
      socket.leave(room);
      ack();
    });
  });
}

describe('presence on one node', () => {
  let t;
  let log;
  beforeAll(async () => {
    t = await startImpl('sidewire', {}, setupChat);
    log = recorder(t.io.presence);
  });
  afterAll(() => t.close());
  beforeEach(() => log.splice(0));

  test("one 'join' for a user's first device and one 'leave' after its last", async () => {
    const phone = t.client({ auth: { user: 'alice' } });
    const laptop = t.client({ auth: { user: 'alice' } });
    const bob = t.client({ auth: { user: { id: 7, name: 'Bob' } } });
    await Promise.all([connected(phone), connected(laptop), connected(bob)]);
    await phone.emitWithAck('join', 'chat:1');
    await laptop.emitWithAck('join', 'chat:1');
    await bob.emitWithAck('join', 'chat:1');
    expect(log).toEqual([['join', 'chat:1', 'alice'], ['join', 'chat:1', '7']]);
    expect(t.io.presence.local('chat:1')).toEqual([{ user: 'alice', sockets: 2 }, { user: '7', sockets: 1 }]);
    expect(await t.io.presence.users('chat:1')).toEqual([{ user: 'alice', sockets: 2 }, { user: '7', sockets: 1 }]);
    expect(t.io.presence.has('chat:1', 'alice')).toBe(true);

    phone.disconnect();
    await waitFor(() => t.io.presence.local('chat:1').find((u) => u.user === 'alice').sockets === 1);
    expect(log).toEqual([['join', 'chat:1', 'alice'], ['join', 'chat:1', '7']]);
    await laptop.emitWithAck('leave', 'chat:1');
    expect(log.slice(2)).toEqual([['leave', 'chat:1', 'alice']]);
    expect(t.io.presence.has('chat:1', 'alice')).toBe(false);
    bob.disconnect();
    await waitFor(() => log.length === 4);
    expect(log[3]).toEqual(['leave', 'chat:1', '7']);
    expect(t.io.presence.local('chat:1')).toEqual([]);
  });

  test('a socket without a user is not counted; a namespace has its own presence', async () => {
    const anon = t.client({ auth: {} });
    await connected(anon);
    await anon.emitWithAck('join', 'chat:2');
    await sleep(50);
    expect(log).toEqual([]);
    expect(t.io.presence.local('chat:2')).toEqual([]);
    expect(t.io.of('/other').presence).not.toBe(t.io.presence);
    anon.disconnect();
  });

  test('members already in a room when presence is first read are counted, without events', async () => {
    const t2 = await startImpl('sidewire', {}, setupChat);
    try {
      const c = t2.client({ auth: { user: 'carol' } });
      await connected(c);
      await c.emitWithAck('join', 'early');
      const late = recorder(t2.io.presence);
      expect(t2.io.presence.local('early')).toEqual([{ user: 'carol', sockets: 1 }]);
      c.disconnect();
      await waitFor(() => late.length === 1);
      expect(late).toEqual([['leave', 'early', 'carol']]);
    } finally {
      await t2.close();
    }
  });
});

describe('presence with auth.jwt', () => {
  const secret = 'presence-test-secret-0123456789abcdef';
  let t;
  beforeAll(async () => {
    t = await startImpl('sidewire', { auth: { jwt: { secret, algorithms: ['HS256'] } } }, (io) => io.on('connection', () => {}));
  });
  afterAll(() => t.close());

  test("the token's sub is the user, and the user's own room counts it from its first byte", async () => {
    const log = recorder(t.io.presence);
    const token = jwt.sign({ sub: 'dave' }, secret, { algorithm: 'HS256', expiresIn: 60 });
    const a = t.client({ auth: { token } });
    const b = t.client({ auth: { token } });
    await Promise.all([connected(a), connected(b)]);
    await waitFor(() => t.io.presence.local('user:dave').length === 1);
    expect(t.io.presence.local('user:dave')).toEqual([{ user: 'dave', sockets: 2 }]);
    expect(log).toEqual([['join', 'user:dave', 'dave']]);
    a.disconnect();
    b.disconnect();
    await waitFor(() => log.length === 2);
    expect(log[1]).toEqual(['leave', 'user:dave', 'dave']);
  });
});

describe('presence across two nodes', () => {
  let redis;
  let a;
  let b;
  let logA;
  let logB;
  beforeAll(async () => {
    redis = await startRedis();
    a = await startImpl('sidewire', { adapter: createAdapter(redis.url) }, setupChat);
    b = await startImpl('sidewire', { adapter: createAdapter(redis.url) }, setupChat);
    logA = recorder(a.io.presence);
    logB = recorder(b.io.presence);
    // Both nodes hear each other (the fleet's requests go through).
    await waitFor(async () => (await a.io.of('/').adapter.serverCount()) === 2 && (await b.io.of('/').adapter.serverCount()) === 2, 10000, 100);
  }, 30000);
  afterAll(async () => {
    await Promise.all([a && a.close(), b && b.close()]);
    if (redis) await redis.stop();
  });

  test("a user on both nodes: one 'join' for the fleet, and 'leave' only when its last device anywhere goes", async () => {
    const onA = a.client({ auth: { user: 'erin' } });
    await connected(onA);
    await onA.emitWithAck('join', 'team');
    await waitFor(() => logA.length === 1);
    expect(logA).toEqual([['join', 'team', 'erin']]);
    const onB = b.client({ auth: { user: 'erin' } });
    const frank = b.client({ auth: { user: 'frank' } });
    await Promise.all([connected(onB), connected(frank)]);
    await onB.emitWithAck('join', 'team');
    await frank.emitWithAck('join', 'team');
    await waitFor(() => logB.length === 1);
    await sleep(300);
    // erin was already in the room on A: B reports frank only.
    expect(logB).toEqual([['join', 'team', 'frank']]);
    expect(await a.io.presence.users('team')).toEqual(
      expect.arrayContaining([{ user: 'erin', sockets: 2 }, { user: 'frank', sockets: 1 }]),
    );
    expect(a.io.presence.local('team')).toEqual([{ user: 'erin', sockets: 1 }]);
    // erin leaves A but is still on B: no 'leave'.
    onA.disconnect();
    await sleep(500);
    expect(logA).toEqual([['join', 'team', 'erin']]);
    onB.disconnect();
    await waitFor(() => logB.length === 2, 5000);
    expect(logB[1]).toEqual(['leave', 'team', 'erin']);
    await never(a.io.presence, 'leave', 300);
  });
});
