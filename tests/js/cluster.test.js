'use strict';
// A Socket.IO fleet over one Redis, mixing socket.io nodes (@socket.io/redis-adapter) and
// sidewire nodes (sidewire/redis-adapter): the two adapters must be wire-compatible, so every
// operation made on one node reaches exactly the right clients on every node, whatever mix.
// Each node is a child process (tests/fixtures/cluster-node.js) with real socket.io-client
// clients; @socket.io/redis-emitter runs in a process of its own. The socket.io-only cases
// validate the tests themselves against the reference implementation.
const { startRedis } = require('./helpers/redis-server');
const { startNode, startEmitter, stopAll, record, counts, once, poll, fleetFormed, sleep } = require('./helpers/cluster');

jest.setTimeout(30000);

const PAIRS = [
  ['socket.io', 'socket.io'],
  ['socket.io', 'sidewire'],
  ['sidewire', 'socket.io'],
  ['sidewire', 'sidewire'],
];

// The clients of a two-node fleet and their rooms on '/': a* on node A, b* on node B. a1 is in
// two rooms (a broadcast to both reaches it once); r3 has members on B only; a3/b3 in none.
const LAYOUT = { a1: ['r1', 'r2'], a2: ['r2'], a3: [], b1: ['r1'], b2: ['r2', 'r3'], b3: [] };
const MAIN = Object.keys(LAYOUT);
// '/admin' has a room r1 too, with a member on A: '/' and '/admin' rooms must never mix.
const ADMIN_LAYOUT = { aAdmin: ['r1'], bAdmin: [] };

// Bytes 0..255: a byte-exact check catches any UTF-8 or base64 mangling in the relay.
const BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

let redis;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await stopAll();
  if (redis) await redis.stop();
});

/** Connects LAYOUT's clients to A (a*) and B (b*) and ADMIN_LAYOUT's to '/admin'. */
async function connectClients(A, B) {
  const c = {};
  const all = { ...LAYOUT, ...ADMIN_LAYOUT };
  await Promise.all(
    Object.entries(all).map(async ([name, rooms]) => {
      const node = name[0] === 'a' ? A : B;
      const nsp = name.endsWith('Admin') ? '/admin' : '/';
      c[name] = await node.connect(nsp, { name, rooms });
    }),
  );
  return c;
}

/** Waits (bounded) until `node`'s fetchSockets() of `room` is exactly `ids`. */
async function members(node, room, ids) {
  const want = JSON.stringify([...ids].sort());
  await poll(async () => JSON.stringify((await node.call('fetchSockets', { to: [room] })).map((s) => s.id).sort()) === want, {
    timeoutMs: 3000,
    intervalMs: 50,
    what: `${node.label}: members of ${room} = ${want}`,
  });
}

function asBuffer(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  throw new Error(`not binary: ${typeof x} ${x && x.constructor && x.constructor.name}`);
}

describe.each(PAIRS.map(([a, b]) => [`${a} → ${b}`, a, b]))('%s', (_title, implA, implB) => {
  let A;
  let B;
  let c;

  beforeAll(async () => {
    [A, B] = await Promise.all([
      startNode(implA, { redisUrl: redis.url, name: 'A' }),
      startNode(implB, { redisUrl: redis.url, name: 'B' }),
    ]);
    await fleetFormed([A, B]);
  });

  afterAll(() => stopAll());

  beforeEach(async () => {
    c = await connectClients(A, B);
  });

  // Guarded: when a node failed to start, beforeAll's error is the one to report.
  afterEach(() => {
    for (const node of [A, B]) if (node) node.disconnectClients();
  });

  test('io.emit reaches every client of both nodes once, none on /admin', async () => {
    const rec = record(c, 'news');
    await A.call('emit', { event: 'news', args: ['hello', 42, { nested: [true, null] }] });
    const got = await rec.settle(MAIN.length);
    expect(counts(got)).toEqual(once(MAIN));
    for (const name of MAIN) expect(got[name][0]).toEqual(['hello', 42, { nested: [true, null] }]);
  });

  test('to(room) reaches its members on both nodes; a room with members only on B; a socket id', async () => {
    let rec = record(c, 'news');
    await A.call('emit', { to: ['r1'], event: 'news', args: ['r1'] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'b1'));

    rec = record(c, 'news');
    await A.call('emit', { to: ['r3'], event: 'news', args: ['r3'] });
    expect(counts(await rec.settle(1))).toEqual(once('b2'));

    // A socket's own id is a room: a private message to a client of the other node.
    rec = record(c, 'news');
    await A.call('emit', { to: [c.b3.id], event: 'news', args: ['private'] });
    const got = await rec.settle(1);
    expect(counts(got)).toEqual(once('b3'));
    expect(got.b3[0]).toEqual(['private']);
  });

  test('except(room) reaches everyone outside it', async () => {
    const rec = record(c, 'news');
    await A.call('emit', { except: ['r2'], event: 'news', args: ['not r2'] });
    expect(counts(await rec.settle(3))).toEqual(once('a3', 'b1', 'b3'));
  });

  test('several rooms at once: a member of two gets it once; to(r1).except(r2)', async () => {
    let rec = record(c, 'news');
    await A.call('emit', { to: ['r1', 'r2', 'r3'], event: 'news', args: ['rooms'] });
    expect(counts(await rec.settle(4))).toEqual(once('a1', 'a2', 'b1', 'b2'));

    rec = record(c, 'news');
    await A.call('emit', { to: ['r1'], except: ['r2'], event: 'news', args: ['r1 not r2'] });
    expect(counts(await rec.settle(1))).toEqual(once('b1'));

    rec = record(c, 'news');
    await A.call('emit', { to: ['r2', 'r3'], except: ['r1'], event: 'news', args: ['r2|r3 not r1'] });
    expect(counts(await rec.settle(2))).toEqual(once('a2', 'b2'));
  });

  test('local reaches only the clients of the emitting node', async () => {
    let rec = record(c, 'news');
    await A.call('emit', { local: true, event: 'news', args: ['local'] });
    expect(counts(await rec.settle(3))).toEqual(once('a1', 'a2', 'a3'));

    rec = record(c, 'news');
    await A.call('emit', { local: true, to: ['r1'], event: 'news', args: ['local r1'] });
    expect(counts(await rec.settle(1))).toEqual(once('a1'));
  });

  test('volatile is delivered to connected clients on both nodes', async () => {
    const rec = record(c, 'news');
    await A.call('emit', { volatile: true, event: 'news', args: ['volatile'] });
    const got = await rec.settle(MAIN.length);
    expect(counts(got)).toEqual(once(MAIN));
    for (const name of MAIN) expect(got[name][0]).toEqual(['volatile']);
  });

  test('compress(false) delivers the payload intact', async () => {
    const big = 'x'.repeat(8192);
    const rec = record(c, 'news');
    await A.call('emit', { compress: false, event: 'news', args: [big] });
    const got = await rec.settle(MAIN.length);
    expect(counts(got)).toEqual(once(MAIN));
    for (const name of MAIN) expect(got[name][0][0]).toBe(big);
  });

  test('binary payloads arrive byte-exact, also nested in an object', async () => {
    const rec = record(c, 'bin');
    const nested = { meta: 'file', file: BYTES.subarray(10, 20), list: [Buffer.from('hé'), 7] };
    await A.call('emit', { event: 'bin', args: [BYTES, nested] });
    const got = await rec.settle(MAIN.length);
    expect(counts(got)).toEqual(once(MAIN));
    for (const name of MAIN) {
      const [top, obj] = got[name][0];
      expect(asBuffer(top).equals(BYTES)).toBe(true);
      expect(obj.meta).toBe('file');
      expect(asBuffer(obj.file).equals(BYTES.subarray(10, 20))).toBe(true);
      expect(asBuffer(obj.list[0]).equals(Buffer.from('hé'))).toBe(true);
      expect(obj.list[1]).toBe(7);
    }
  });

  test("namespace '/admin' is isolated from '/' (rooms with the same name too)", async () => {
    let rec = record(c, 'news');
    await A.call('emit', { nsp: '/admin', event: 'news', args: ['admin'] });
    expect(counts(await rec.settle(2))).toEqual(once('aAdmin', 'bAdmin'));

    rec = record(c, 'news');
    await B.call('emit', { nsp: '/admin', to: ['r1'], event: 'news', args: ['admin r1'] });
    expect(counts(await rec.settle(1))).toEqual(once('aAdmin'));

    rec = record(c, 'news');
    await B.call('emit', { to: ['r1'], event: 'news', args: ['/ r1'] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'b1'));
  });

  test('timeout(2000).emit with an ack collects every client answer across nodes', async () => {
    for (const [name, s] of Object.entries(c)) s.on('ask', (q, cb) => cb({ name, q }));
    const started = Date.now();
    const { error, responses } = await A.call('emit', { timeout: 2000, event: 'ask', args: ['q?'] });
    expect(error).toBeNull();
    expect(responses.map((r) => r.name).sort()).toEqual([...MAIN].sort());
    for (const r of responses) expect(r.q).toBe('q?');
    // Done once every node counted its clients and they all answered, not at the timeout.
    expect(Date.now() - started).toBeLessThan(1500);

    const r1 = await A.call('emit', { timeout: 2000, to: ['r1'], event: 'ask', args: ['r1?'] });
    expect(r1.error).toBeNull();
    expect(r1.responses.map((r) => r.name).sort()).toEqual(['a1', 'b1']);
  });

  test('timeout(ms).emit with a client that never answers: the error and the answers that came', async () => {
    for (const [name, s] of Object.entries(c)) if (name !== 'b3') s.on('ask', (q, cb) => cb({ name }));
    const { error, responses } = await A.call('emit', { timeout: 700, event: 'ask', args: ['q?'] });
    expect(error).toBe('operation has timed out');
    expect(responses.map((r) => r.name).sort()).toEqual(MAIN.filter((n) => n !== 'b3').sort());
  });

  test('fetchSockets() returns the ids, handshake auth, rooms and data of the clients on both nodes', async () => {
    const sockets = await A.call('fetchSockets', {});
    expect(sockets.map((s) => s.id).sort()).toEqual(MAIN.map((n) => c[n].id).sort());
    for (const name of MAIN) {
      const s = sockets.find((x) => x.id === c[name].id);
      expect(s.auth).toEqual({ name });
      expect(s.data).toEqual({ name });
      expect([...s.rooms].sort()).toEqual([c[name].id, ...LAYOUT[name]].sort());
    }

    const inR1 = await B.call('fetchSockets', { to: ['r1'] });
    expect(inR1.map((s) => s.id).sort()).toEqual([c.a1.id, c.b1.id].sort());
    const notR2 = await B.call('fetchSockets', { except: ['r2'] });
    expect(notR2.map((s) => s.id).sort()).toEqual([c.a3.id, c.b1.id, c.b3.id].sort());
    const admin = await B.call('fetchSockets', { nsp: '/admin' });
    expect(admin.map((s) => s.id).sort()).toEqual([c.aAdmin.id, c.bAdmin.id].sort());
  });

  test('in(room).socketsJoin(): a to(newRoom).emit then reaches the joined clients on both nodes', async () => {
    await A.call('socketsJoin', { to: ['r1'], rooms: ['r8', 'r9'] });
    // socket.io's adapter applies a socketsJoin on every node, its own included, when the
    // request comes back from Redis: the emitting node's own emit can overtake it, so wait
    // until the fleet shows the new members.
    await members(A, 'r9', [c.a1.id, c.b1.id]);
    const rec = record(c, 'news');
    await A.call('emit', { to: ['r9'], event: 'news', args: ['r9'] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'b1'));
    const inR8 = await B.call('fetchSockets', { to: ['r8'] });
    expect(inR8.map((s) => s.id).sort()).toEqual([c.a1.id, c.b1.id].sort());
  });

  test('in(room).socketsLeave() takes exactly the selected sockets out, on both nodes', async () => {
    // b2 is in r2 and r3: only it leaves r2.
    await A.call('socketsLeave', { to: ['r3'], rooms: ['r2'] });
    await members(A, 'r2', [c.a1.id, c.a2.id]);
    let rec = record(c, 'news');
    await A.call('emit', { to: ['r2'], event: 'news', args: ['r2'] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'a2'));

    // Everyone leaves r1, A's client and B's.
    await B.call('socketsLeave', { rooms: ['r1'] });
    await members(B, 'r1', []);
    rec = record(c, 'news');
    await B.call('emit', { to: ['r1'], event: 'news', args: ['r1'] });
    expect(counts(await rec.settle(0))).toEqual({});
    const b2 = (await A.call('fetchSockets', { to: [c.b2.id] }))[0];
    expect([...b2.rooms].sort()).toEqual([c.b2.id, 'r3'].sort());
  });

  test('disconnectSockets() disconnects the clients of both nodes, not /admin', async () => {
    const rec = record(c, 'disconnect');
    await A.call('disconnectSockets', {});
    const got = await rec.settle(MAIN.length);
    expect(counts(got)).toEqual(once(MAIN));
    for (const name of MAIN) expect(got[name][0][0]).toBe('io server disconnect');
    expect(c.aAdmin.connected && c.bAdmin.connected).toBe(true);
  });

  test('in(room).disconnectSockets() and disconnectSockets(true) on a room', async () => {
    let rec = record(c, 'disconnect');
    await A.call('disconnectSockets', { to: ['r1'] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'b1'));

    rec = record(c, 'disconnect');
    await A.call('disconnectSockets', { to: ['r3'], close: true });
    expect(counts(await rec.settle(1))).toEqual(once('b2'));
    expect(['a2', 'a3', 'b3'].every((n) => c[n].connected)).toBe(true);
  });

  test("serverSideEmit reaches the other node's handler, not its own", async () => {
    const fromA = A.serverEvents.length;
    const fromB = B.serverEvents.length;
    await A.call('serverSideEmit', { event: 'hello', args: [1, 'two', { three: [3] }] });
    const events = await B.waitServerEvents(1, { from: fromB });
    await sleep(300); // strays
    expect(events).toEqual([{ event: 'server-side', nsp: '/', name: 'hello', args: [1, 'two', { three: [3] }], withAck: false }]);
    expect(B.serverEvents.length - fromB).toBe(1);
    expect(A.serverEvents.length).toBe(fromA);
  });

  test('serverSideEmitWithAck collects the answers of the other nodes', async () => {
    const fromB = B.serverEvents.length;
    const started = Date.now();
    const r = await A.call('serverSideEmitWithAck', { event: 'hello', args: ['ack?'] });
    expect(r).toEqual({ error: null, responses: ['B'] });
    expect(Date.now() - started).toBeLessThan(3000); // the answer, not the requests timeout
    expect(B.serverEvents.slice(fromB)).toEqual([{ event: 'server-side', nsp: '/', name: 'hello', args: ['ack?'], withAck: true }]);
    const back = await B.call('serverSideEmitWithAck', { event: 'hello', args: ['back?'] });
    expect(back).toEqual({ error: null, responses: ['A'] });
  });

  test("adapter.allRooms() is every node's rooms of the namespace, sockets' own ids included", async () => {
    for (const node of [A, B]) {
      const rooms = new Set(await node.call('allRooms', {}));
      for (const r of ['r1', 'r2', 'r3']) expect(rooms.has(r)).toBe(true);
      for (const name of MAIN) expect(rooms.has(c[name].id)).toBe(true);
      expect(rooms.has(c.aAdmin.id)).toBe(false);
    }
  });

  test('serverCount() is 2 on both nodes, per namespace', async () => {
    for (const node of [A, B]) {
      expect(await node.call('serverCount', {})).toBe(2);
      expect(await node.call('serverCount', { nsp: '/admin' })).toBe(2);
    }
  });
});

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
