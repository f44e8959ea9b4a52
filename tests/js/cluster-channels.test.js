'use strict';
// Raw channels across nodes: two engines (two nodes of a fleet, in one process here: each has
// its own native engine, its own Redis connections and its own node id) over one redis-server.
// A document's editors connected to different nodes see each other's relayed updates, and
// channel.broadcast() on one node reaches the room's members on the other. Every adapter: the
// classic one (PUBLISH/SUBSCRIBE), the sharded one (SPUBLISH/SSUBSCRIBE) and the streams one
// (whose raw channels relay on pub/sub: they keep no history).
const { createClient } = require('redis');
const { startServer, open, messages, silent } = require('./helpers/ws');
const { startRedis } = require('./helpers/redis-server');
const { createAdapter, createShardedAdapter, createStreamsAdapter } = require('../../js/redis-adapter.js');

let redis;
let a;
let b;
const sockets = [];

function node(factory, url, extra = {}) {
  return startServer((engine) => {
    engine.channel('/ws/doc', { relay: true, roomQuery: 'doc', joinMessages: true, adapter: factory(url, extra) });
    engine.channel('/ws/local', { relay: true, roomQuery: 'doc' }); // no adapter: this node only
  });
}

async function client(n, path) {
  const ws = await open(n.url(path));
  sockets.push(ws);
  return ws;
}

async function until(fn, what, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The subscriber's SUBSCRIBE may still be on its way when the engine says ready: send until
// the other node's member hears one, then drain what else arrived.
async function linked(from, to) {
  await until(async () => {
    from.send('probe');
    try {
      await messages(to, 1, 300);
      return true;
    } catch {
      return false;
    }
  }, 'the two nodes to hear each other');
  await silent(to, 300);
}

describe.each([
  ['createAdapter', createAdapter, 'pubsub'],
  ['createShardedAdapter', createShardedAdapter, 'sharded'],
  ['createStreamsAdapter', createStreamsAdapter, 'streams'],
])('%s', (_name, factory, mode) => {
  beforeAll(async () => {
    redis = await startRedis();
    a = await node(factory, redis.url);
    b = await node(factory, redis.url);
    await until(
      () => a.engine.stats().adapter?.state === 'ready' && b.engine.stats().adapter?.state === 'ready',
      'both adapters ready',
    );
  });

  afterEach(() => {
    for (const ws of sockets.splice(0)) ws.terminate();
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  test('the relay reaches the room members on the other node, text and binary, and not other rooms', async () => {
    const onA = await client(a, '/ws/doc?doc=d1');
    const onB = await client(b, '/ws/doc?doc=d1');
    const otherRoomB = await client(b, '/ws/doc?doc=d2');
    await linked(onA, onB);
    await silent(otherRoomB, 50);

    const textOnB = messages(onB, 1);
    onA.send('update from A');
    expect(await textOnB).toEqual([['update from A', false]]);
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const binaryOnA = messages(onA, 1);
    onB.send(bytes);
    const [[got, binary]] = await binaryOnA;
    expect(binary).toBe(true);
    expect(Buffer.compare(got, bytes)).toBe(0);
    // The sender never hears itself back, across the fleet either; another room hears nothing.
    expect(await silent(onA, 300)).toBe(true);
    expect(await silent(otherRoomB, 300)).toBe(true);
  });

  test('a member of several of the sender\'s rooms on the other node gets a relayed message once', async () => {
    const onA = await client(a, '/ws/doc?doc=m1');
    const onB = await client(b, '/ws/doc?doc=m1');
    const onlyM2 = await client(b, '/ws/doc?doc=m2');
    await linked(onA, onB);
    onA.send(JSON.stringify({ join: 'm2' }));
    onB.send(JSON.stringify({ join: 'm2' }));
    const rooms = (n) => n.engine.getChannel('/ws/doc');
    await until(() => rooms(a).count('m2') === 1 && rooms(b).count('m2') === 2, 'the joins');
    const toB = messages(onB, 1);
    const toM2 = messages(onlyM2, 1);
    onA.send('to m1 and m2');
    expect(await toB).toEqual([['to m1 and m2', false]]);
    expect(await toM2).toEqual([['to m1 and m2', false]]);
    expect(await silent(onB, 400)).toBe(true);
    expect(await silent(onlyM2, 100)).toBe(true);
  });

  test('channel.broadcast() on one node reaches the room on every node, and the whole channel', async () => {
    const onA = await client(a, '/ws/doc?doc=d3');
    const onB = await client(b, '/ws/doc?doc=d3');
    const elsewhere = await client(b, '/ws/doc?doc=d4');
    await linked(onB, onA);

    // Listening before the broadcast: a message that arrives with no listener is gone.
    const both = [messages(onA, 1), messages(onB, 1)];
    const none = silent(elsewhere, 500);
    a.engine.getChannel('/ws/doc').broadcast('d3', 'to d3');
    expect(await Promise.all(both)).toEqual([[['to d3', false]], [['to d3', false]]]);
    expect(await none).toBe(true);

    const all = [onA, onB, elsewhere].map((ws) => messages(ws, 1));
    b.engine.getChannel('/ws/doc').broadcast(null, 'to all');
    expect(await Promise.all(all)).toEqual([[['to all', false]], [['to all', false]], [['to all', false]]]);
  });

  test('a channel without the adapter stays on its node', async () => {
    const onA = await client(a, '/ws/local?doc=d5');
    const onB = await client(b, '/ws/local?doc=d5');
    const localA = await client(a, '/ws/local?doc=d5');
    const here = messages(localA, 1);
    const notThere = silent(onB, 400);
    onA.send('only here');
    expect(await here).toEqual([['only here', false]]);
    expect(await notThere).toBe(true);
    const onThisNode = messages(onA, 1);
    const stillNotThere = silent(onB, 300);
    a.engine.getChannel('/ws/local').broadcast('d5', 'node A only');
    expect(await onThisNode).toEqual([['node A only', false]]);
    expect(await stillNotThere).toBe(true);
  });

  test('another key is another fleet', async () => {
    const c = await node(factory, redis.url, { channelKey: 'other-fleet' });
    try {
      await until(() => c.engine.stats().adapter?.state === 'ready', 'the third adapter ready');
      const onA = await client(a, '/ws/doc?doc=d6');
      const onC = await client(c, '/ws/doc?doc=d6');
      const onB = await client(b, '/ws/doc?doc=d6');
      await linked(onA, onB);
      const inFleet = messages(onB, 1);
      const outside = silent(onC, 400);
      onA.send('same fleet only');
      expect(await inFleet).toEqual([['same fleet only', false]]);
      expect(await outside).toBe(true);
    } finally {
      await c.close();
    }
  });

  test('channel.count(room, { cluster: true }) counts the room on every node', async () => {
    const a1 = await client(a, '/ws/doc?doc=c1');
    const a2 = await client(a, '/ws/doc?doc=c1');
    const b1 = await client(b, '/ws/doc?doc=c1');
    await client(b, '/ws/doc?doc=c2');
    await linked(a1, b1);
    const chA = a.engine.getChannel('/ws/doc');
    const chB = b.engine.getChannel('/ws/doc');
    void a2;
    expect(chA.count('c1')).toBe(2); // without the option: this node's, at once
    expect(await chA.count('c1', { cluster: true })).toBe(3);
    expect(await chB.count('c1', { cluster: true })).toBe(3);
    expect(await chB.count('c2', { cluster: true })).toBe(1);
    expect(await chA.count('nobody', { cluster: true })).toBe(0);
    // The whole channel: every connection of it on both nodes.
    expect(await chA.count(null, { cluster: true })).toBe(4);
    expect(await chB.count(undefined, { cluster: true })).toBe(4);
    // A channel without the adapter: this node's count.
    await client(a, '/ws/local?doc=c1');
    await client(b, '/ws/local?doc=c1');
    expect(await a.engine.getChannel('/ws/local').count('c1', { cluster: true })).toBe(1);
    // Counts follow the members as they leave, across the fleet.
    b1.terminate();
    await until(async () => (await chA.count('c1', { cluster: true })) === 2, 'the count after a member left');
  });

  test('a cluster count that a node never answers rejects after requestsTimeout', async () => {
    const c = await node(factory, redis.url, { channelKey: 'mute-fleet', requestsTimeout: 400 });
    // A subscriber of the count channel that never answers: a node that is stuck.
    const mute = createClient({ url: redis.url });
    mute.on('error', () => {});
    await mute.connect();
    try {
      const count = 'mute-fleet-count#/ws/doc#';
      if (mode === 'sharded') await mute.sSubscribe(count, () => {});
      else await mute.subscribe(count, () => {});
      await until(() => c.engine.stats().adapter?.state === 'ready', 'the third adapter ready');
      const started = Date.now();
      await expect(c.engine.getChannel('/ws/doc').count('r', { cluster: true })).rejects.toThrow(
        'timeout reached: only 0 responses received out of 1',
      );
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await mute.disconnect().catch(() => {});
      await c.close();
    }
  });

  test('the adapter counts what it published and received', () => {
    const sa = a.engine.stats().adapter;
    const sb = b.engine.stats().adapter;
    expect(sa).toMatchObject({ type: 'redis', mode, state: 'ready', publisher: 'ready', subscriber: 'ready', dropped: 0, invalid: 0 });
    expect(sa.published).toBeGreaterThan(0);
    expect(sb.received).toBeGreaterThan(0);
  });
});
