'use strict';
// A Socket.IO fleet over one Redis, mixing socket.io nodes (@socket.io/redis-adapter) and
// sidewire nodes (sidewire/redis-adapter): the two adapters must be wire-compatible, so every
// operation made on one node reaches exactly the right clients on every node, whatever mix.
// Each node is a child process (tests/fixtures/cluster-node.js) with real socket.io-client
// clients; @socket.io/redis-emitter runs in a process of its own. The socket.io-only cases
// validate the tests themselves against the reference implementation.
const { startRedis } = require('./helpers/redis-server');
const { startNode, startEmitter, stopAll, record, counts, once, poll, fleetFormed, sleep } = require('./helpers/cluster');
const { describeTwoNodeFleet, BYTES, asBuffer } = require('./helpers/two-node-fleet');

jest.setTimeout(30000);

const PAIRS = [
  ['socket.io', 'socket.io'],
  ['socket.io', 'sidewire'],
  ['sidewire', 'socket.io'],
  ['sidewire', 'sidewire'],
];

let redis;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await stopAll();
  if (redis) await redis.stop();
});

describeTwoNodeFleet('%s', { pairs: PAIRS, redisUrl: () => redis.url });

// Three sidewire nodes and a socket.io node; the same with four socket.io nodes checks the test.
describe.each([
  ['3 × sidewire + socket.io', ['sidewire', 'sidewire', 'sidewire', 'socket.io']],
  ['4 × socket.io', ['socket.io', 'socket.io', 'socket.io', 'socket.io']],
])('a fleet of four: %s', (_title, impls) => {
  let nodes;
  const clients = [];

  beforeAll(async () => {
    nodes = await Promise.all(impls.map((impl, i) => startNode(impl, { redisUrl: redis.url, name: `N${i}` })));
    await fleetFormed(nodes);
    for (const [i, node] of nodes.entries()) {
      for (const k of [1, 2]) clients.push(await node.connect('/', { name: `n${i}c${k}`, rooms: k === 1 ? ['odd'] : [] }));
    }
  });

  afterAll(() => stopAll());

  test('io.emit from each node reaches every client of the fleet exactly once', async () => {
    const names = clients.map((cl) => cl.clientName);
    for (const node of nodes) {
      const rec = record(clients, 'news');
      await node.call('emit', { event: 'news', args: [node.name] });
      const got = await rec.settle(names.length);
      expect({ from: node.name, got: counts(got) }).toEqual({ from: node.name, got: once(names) });
      for (const n of names) expect(got[n][0]).toEqual([node.name]);
    }
  });

  test('to(room) from each node reaches its members on all four nodes once', async () => {
    const members = clients.filter((cl) => cl.clientName.endsWith('c1')).map((cl) => cl.clientName);
    for (const node of nodes) {
      const rec = record(clients, 'news');
      await node.call('emit', { to: ['odd'], event: 'news', args: [node.name] });
      expect({ from: node.name, got: counts(await rec.settle(members.length)) }).toEqual({ from: node.name, got: once(members) });
    }
  });

  test('serverCount() is 4 on every node; fetchSockets() sees all eight clients', async () => {
    for (const node of nodes) expect(await node.call('serverCount', {})).toBe(4);
    const ids = clients.map((cl) => cl.id).sort();
    for (const node of nodes) expect((await node.call('fetchSockets', {})).map((s) => s.id).sort()).toEqual(ids);
  });

  test('serverSideEmitWithAck from the first node gets the three other nodes', async () => {
    const r = await nodes[0].call('serverSideEmitWithAck', { event: 'hello', args: [] });
    expect(r.error).toBeNull();
    expect(r.responses.sort()).toEqual(['N1', 'N2', 'N3']);
  });
});

// @socket.io/redis-emitter publishes from outside the fleet; it is how apps reach clients from
// workers, so a sidewire node must take its messages as a socket.io node does.
describe.each([
  ['emitter → socket.io', ['socket.io']],
  ['emitter → sidewire', ['sidewire']],
  ['emitter → mixed fleet (socket.io + sidewire)', ['socket.io', 'sidewire']],
])('%s', (_title, impls) => {
  let emitter;
  let nodes;
  let c;
  let names;

  beforeAll(async () => {
    [emitter, ...nodes] = await Promise.all([
      startEmitter({ redisUrl: redis.url }),
      ...impls.map((impl, i) => startNode(impl, { redisUrl: redis.url, name: `E${i}` })),
    ]);
    await fleetFormed(nodes);
  });

  afterAll(() => stopAll());

  // Each node gets x1 (r1), x2 (r2), x3 (none) and an /admin client, x the node's letter.
  beforeEach(async () => {
    c = {};
    const layout = { 1: ['r1'], 2: ['r2'], 3: [] };
    await Promise.all(
      nodes.map(async (node, i) => {
        const x = 'pq'[i];
        for (const [k, rooms] of Object.entries(layout)) c[`${x}${k}`] = await node.connect('/', { name: `${x}${k}`, rooms });
        c[`${x}Admin`] = await node.connect('/admin', { name: `${x}Admin`, rooms: ['r1'] });
      }),
    );
    names = Object.keys(c).filter((n) => !n.endsWith('Admin'));
  });

  afterEach(() => {
    for (const node of nodes || []) node.disconnectClients();
  });

  const pick = (suffixes) => Object.keys(c).filter((n) => suffixes.some((s) => n.endsWith(s)));

  test('emit to all reaches every client of every node once, none on /admin', async () => {
    const rec = record(c, 'news');
    await emitter.call('emit', { event: 'news', args: ['from emitter', { n: 1 }] });
    const got = await rec.settle(names.length);
    expect(counts(got)).toEqual(once(names));
    for (const n of names) expect(got[n][0]).toEqual(['from emitter', { n: 1 }]);
  });

  test('to(room), except(room), several rooms', async () => {
    let rec = record(c, 'news');
    await emitter.call('emit', { to: ['r1'], event: 'news', args: [] });
    expect(counts(await rec.settle(nodes.length))).toEqual(once(pick(['1'])));

    rec = record(c, 'news');
    await emitter.call('emit', { except: ['r1'], event: 'news', args: [] });
    expect(counts(await rec.settle(2 * nodes.length))).toEqual(once(pick(['2', '3'])));

    rec = record(c, 'news');
    await emitter.call('emit', { to: ['r1', 'r2'], except: ['r2'], event: 'news', args: [] });
    expect(counts(await rec.settle(nodes.length))).toEqual(once(pick(['1'])));
  });

  test("of('/admin') reaches only /admin clients", async () => {
    let rec = record(c, 'news');
    await emitter.call('emit', { nsp: '/admin', event: 'news', args: ['admin'] });
    expect(counts(await rec.settle(nodes.length))).toEqual(once(pick(['Admin'])));

    rec = record(c, 'news');
    await emitter.call('emit', { nsp: '/admin', to: ['r1'], event: 'news', args: ['admin r1'] });
    expect(counts(await rec.settle(nodes.length))).toEqual(once(pick(['Admin'])));
  });

  test('binary payloads arrive byte-exact; volatile and compress(false) are delivered', async () => {
    let rec = record(c, 'bin');
    await emitter.call('emit', { event: 'bin', args: [BYTES, { file: BYTES.subarray(0, 3) }] });
    const got = await rec.settle(names.length);
    expect(counts(got)).toEqual(once(names));
    for (const n of names) {
      expect(asBuffer(got[n][0][0]).equals(BYTES)).toBe(true);
      expect(asBuffer(got[n][0][1].file).equals(BYTES.subarray(0, 3))).toBe(true);
    }

    rec = record(c, 'news');
    await emitter.call('emit', { volatile: true, compress: false, event: 'news', args: ['v'] });
    expect(counts(await rec.settle(names.length))).toEqual(once(names));
  });

  test('socketsJoin then emit to the new room; socketsLeave', async () => {
    await emitter.call('socketsJoin', { to: ['r1'], rooms: ['r9'] });
    let rec = record(c, 'news');
    await emitter.call('emit', { to: ['r9'], event: 'news', args: ['r9'] });
    expect(counts(await rec.settle(nodes.length))).toEqual(once(pick(['1'])));

    await emitter.call('socketsLeave', { to: ['r2'], rooms: ['r9', 'r2'] }); // r2's members were not in r9
    await emitter.call('socketsLeave', { to: ['r1'], rooms: ['r9'] });
    rec = record(c, 'news');
    await emitter.call('emit', { to: ['r9', 'r2'], event: 'news', args: [] });
    expect(counts(await rec.settle(0))).toEqual({});
  });

  test('disconnectSockets() disconnects the clients of every node (a room only, then all)', async () => {
    let rec = record(c, 'disconnect');
    await emitter.call('disconnectSockets', { to: ['r2'] });
    expect(counts(await rec.settle(nodes.length))).toEqual(once(pick(['2'])));

    rec = record(c, 'disconnect');
    await emitter.call('disconnectSockets', {});
    expect(counts(await rec.settle(2 * nodes.length))).toEqual(once(pick(['1', '3'])));
    expect(pick(['Admin']).every((n) => c[n].connected)).toBe(true);
  });

  test("serverSideEmit reaches every node's handler", async () => {
    const from = nodes.map((n) => n.serverEvents.length);
    await emitter.call('serverSideEmit', { event: 'hello', args: ['from emitter', 2] });
    for (const [i, node] of nodes.entries()) {
      const events = await node.waitServerEvents(1, { from: from[i] });
      expect(events).toEqual([{ event: 'server-side', nsp: '/', name: 'hello', args: ['from emitter', 2], withAck: false }]);
    }
    await sleep(300);
    for (const [i, node] of nodes.entries()) expect(node.serverEvents.length - from[i]).toBe(1);
  });
});

// The sidewire node with each way of giving it Redis, next to a socket.io node (node-redis); and
// socket.io with ioredis, which validates the fixture's ioredis path.
describe.each([
  ['socket.io', 'ioredis'],
  ['sidewire', 'url'],
  ['sidewire', 'node-redis'],
  ['sidewire', 'ioredis'],
])('%s node with client %s ↔ socket.io node', (impl, client) => {
  let X;
  let S;
  let c;

  beforeAll(async () => {
    [X, S] = await Promise.all([
      startNode(impl, { redisUrl: redis.url, client, name: 'X' }),
      startNode('socket.io', { redisUrl: redis.url, client: 'node-redis', name: 'S' }),
    ]);
    await fleetFormed([X, S]);
  });

  afterAll(() => stopAll());

  beforeEach(async () => {
    c = {
      x1: await X.connect('/', { name: 'x1', rooms: ['r'] }),
      x2: await X.connect('/', { name: 'x2' }),
      s1: await S.connect('/', { name: 's1', rooms: ['r'] }),
      s2: await S.connect('/', { name: 's2' }),
    };
  });

  afterEach(() => {
    for (const node of [X, S]) if (node) node.disconnectClients();
  });

  test('io.emit both ways reaches every client once', async () => {
    for (const node of [X, S]) {
      const rec = record(c, 'news');
      await node.call('emit', { event: 'news', args: [node.name] });
      expect({ from: node.name, got: counts(await rec.settle(4)) }).toEqual({ from: node.name, got: once('x1', 'x2', 's1', 's2') });
    }
  });

  test('to(room) both ways, binary', async () => {
    for (const node of [X, S]) {
      const rec = record(c, 'bin');
      await node.call('emit', { to: ['r'], event: 'bin', args: [BYTES] });
      const got = await rec.settle(2);
      expect(counts(got)).toEqual(once('x1', 's1'));
      expect(asBuffer(got.s1[0][0]).equals(BYTES) && asBuffer(got.x1[0][0]).equals(BYTES)).toBe(true);
    }
  });

  test('fetchSockets(), serverSideEmitWithAck and serverCount() both ways', async () => {
    const ids = Object.values(c).map((s) => s.id).sort();
    for (const [node, other] of [[X, S], [S, X]]) {
      expect((await node.call('fetchSockets', {})).map((s) => s.id).sort()).toEqual(ids);
      expect(await node.call('serverSideEmitWithAck', { event: 'hello', args: [] })).toEqual({ error: null, responses: [other.name] });
      expect(await node.call('serverCount', {})).toBe(2);
    }
  });
});

// X is the node under test, next to socket.io nodes; X = socket.io checks the test.
describe.each(['socket.io', 'sidewire'])('adapter options (%s node ↔ socket.io node)', (implX) => {
  afterEach(() => stopAll());

  test('key: nodes with the same custom key form a fleet; nodes on the default key do not see it', async () => {
    const [X, S, D] = await Promise.all([
      startNode(implX, { redisUrl: redis.url, key: 'custom-key', name: 'X' }),
      startNode('socket.io', { redisUrl: redis.url, key: 'custom-key', name: 'S' }),
      startNode('socket.io', { redisUrl: redis.url, name: 'D' }),
    ]);
    await fleetFormed([X, S]);
    const c = {
      x: await X.connect('/', { name: 'x' }),
      s: await S.connect('/', { name: 's' }),
      d: await D.connect('/', { name: 'd' }),
    };
    for (const node of [X, S]) {
      const rec = record(c, 'news');
      await node.call('emit', { event: 'news', args: [] });
      expect(counts(await rec.settle(2))).toEqual(once('x', 's'));
    }
    const rec = record(c, 'news');
    await D.call('emit', { event: 'news', args: [] });
    expect(counts(await rec.settle(1))).toEqual(once('d'));
    expect(await D.call('serverCount', {})).toBe(1);
  });

  test('publishOnSpecificResponseChannel: fetchSockets() and serverSideEmitWithAck both ways', async () => {
    const [X, S] = await Promise.all([
      startNode(implX, { redisUrl: redis.url, specificResponse: true, name: 'X' }),
      startNode('socket.io', { redisUrl: redis.url, specificResponse: true, name: 'S' }),
    ]);
    await fleetFormed([X, S]);
    const ids = [(await X.connect('/', { name: 'x' })).id, (await S.connect('/', { name: 's' })).id].sort();
    for (const [node, other] of [[X, S], [S, X]]) {
      expect((await node.call('fetchSockets', {})).map((s) => s.id).sort()).toEqual(ids);
      expect(await node.call('serverSideEmitWithAck', { event: 'hello', args: [] })).toEqual({ error: null, responses: [other.name] });
    }
  });

  test('requestsTimeout: fetchSockets() with a node that never answers fails after it, not later', async () => {
    // A socket.io node counted by PUBSUB NUMSUB but stopped from answering is hard to make; a
    // silent subscriber is the same to the requester: a third subscriber of the request channel.
    const { createClient } = require('redis');
    const [X, S] = await Promise.all([
      startNode(implX, { redisUrl: redis.url, requestsTimeout: 800, name: 'X' }),
      startNode('socket.io', { redisUrl: redis.url, requestsTimeout: 800, name: 'S' }),
    ]);
    await fleetFormed([X, S]);
    const silent = createClient({ url: redis.url });
    silent.on('error', () => {});
    await silent.connect();
    try {
      await silent.subscribe(['socket.io-request#/#'], () => {});
      for (const node of [X, S]) {
        await poll(async () => (await node.call('serverCount', {})) === 3, { timeoutMs: 3000, intervalMs: 50, what: 'serverCount() = 3' });
      }
      for (const node of [X, S]) {
        const started = Date.now();
        await expect(node.call('fetchSockets', {})).rejects.toThrow(/timeout reached while waiting for fetchSockets response/);
        const took = Date.now() - started;
        expect(took).toBeGreaterThanOrEqual(700);
        expect(took).toBeLessThan(2500);
      }
    } finally {
      await silent.quit();
    }
  });

  test('io.adapter(createAdapter(...)) works as the adapter option does', async () => {
    const [X, S] = await Promise.all([
      startNode(implX, { redisUrl: redis.url, attach: 'method', name: 'X' }),
      startNode('socket.io', { redisUrl: redis.url, attach: 'method', name: 'S' }),
    ]);
    await fleetFormed([X, S]);
    const c = { x: await X.connect('/', { name: 'x' }), s: await S.connect('/', { name: 's' }) };
    for (const node of [X, S]) {
      const rec = record(c, 'news');
      await node.call('emit', { event: 'news', args: [] });
      expect(counts(await rec.settle(2))).toEqual(once('x', 's'));
    }
  });
});

// Guards the helpers themselves: a poll that never succeeds fails in bounded time.
test('poll() gives up in bounded time', async () => {
  const started = Date.now();
  await expect(poll(async () => false, { timeoutMs: 300, intervalMs: 50, what: 'never' })).rejects.toThrow(/never not reached/);
  expect(Date.now() - started).toBeLessThan(1000);
});
