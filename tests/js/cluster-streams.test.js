'use strict';
// A fleet on Redis streams: @socket.io/redis-streams-adapter on the socket.io nodes and
// sidewire/redis-streams-adapter (createStreamsAdapter) on the sidewire nodes, in one fleet.
// Broadcasts, socketsJoin, socketsLeave and disconnectSockets are stream entries; requests and
// answers go on pub/sub. First the two-node suite every adapter runs; then connection state
// recovery across nodes: a client drops from node A and comes back to node B, which gives it its
// id, rooms and data and the packets it missed, each with its offset (the entry's id).
// socket.io ↔ socket.io checks the tests themselves; the mixed pairs the wire and the sessions.
const msgpack = require('@msgpack/msgpack');
const { startNode, stopAll, poll, fleetFormed, ackOf, sleep } = require('./helpers/cluster');
const { connected } = require('./helpers/sio');
const { describeTwoNodeFleet, ALL_PAIRS, suiteRedis } = require('./helpers/two-node-fleet');

jest.setTimeout(30000);

const MIXED = [
  ['socket.io', 'sidewire'],
  ['sidewire', 'socket.io'],
];
const OFFSET = /^\d+-\d+$/;
const WINDOW_MS = 4000; // maxDisconnectionDuration

const redis = suiteRedis(); // with a node-redis client of the test's own (XRANGE, sessions)

describeTwoNodeFleet('streams: %s', { pairs: ALL_PAIRS, redisUrl: () => redis.url, nodeOptions: { streams: true } });
// Namespaces spread over three streams by the hash of their name ('/' and '/admin' land on
// different ones), requests on sharded pub/sub.
describeTwoNodeFleet('streams, streamCount 3 and useShardedPubSub: %s', {
  pairs: MIXED,
  redisUrl: () => redis.url,
  nodeOptions: { streams: true, streamCount: 3, shardedPubSub: true },
});

/** Every event a client gets, in order, as [event, ...args]. */
function journal(client) {
  const got = [];
  client.onAny((event, ...args) => got.push([event, ...args]));
  return got;
}

/** The journal without each packet's offset (its last argument when it looks like one). */
function withoutOffsets(got) {
  return got.map((entry) => (entry.length > 1 && OFFSET.test(entry[entry.length - 1]) ? entry.slice(0, -1) : entry));
}

let keys = 0;

describe.each(ALL_PAIRS.map(([a, b]) => [`${a} → ${b}`, a, b]))('connection state recovery across nodes: %s', (_t, implA, implB) => {
  let A;
  let B;
  let key;

  beforeEach(async () => {
    key = `csr-${++keys}`;
    const opts = { redisUrl: redis.url, key, streams: true, recovery: WINDOW_MS };
    [A, B] = await Promise.all([startNode(implA, { ...opts, name: 'A' }), startNode(implB, { ...opts, name: 'B' })]);
    await fleetFormed([A, B]);
  });

  afterEach(() => stopAll());

  /** The entries of this test's stream so far. */
  const streamLength = () => redis.query.sendCommand(['XLEN', key]).then(Number);

  async function entries(n, what) {
    await poll(async () => (await streamLength()) >= n, { timeoutMs: 3000, intervalMs: 25, what });
  }

  /** A client of A in r1 that got one broadcast (so it has an offset), then dropped. */
  async function dropped(nsp = '/', { rooms = ['r1'] } = {}) {
    const c = await A.connect(nsp, { name: 'x', rooms: nsp === '/' ? rooms : [] });
    const got = journal(c);
    await A.call('emit', { nsp, event: 'before', args: [1] });
    await poll(() => got.length === 1, { timeoutMs: 3000, intervalMs: 20, what: 'the first broadcast' });
    expect(got[0][0]).toBe('before');
    expect(got[0][got[0].length - 1]).toMatch(OFFSET);
    const { id } = c;
    const pid = c._pid;
    const offset = c._lastOffset;
    expect(typeof pid).toBe('string');
    expect(offset).toBe(got[0][got[0].length - 1]);
    // A transport close: a reason socket.io recovers from.
    c.io.engine.close();
    await poll(async () => (await A.call('localCount', { nsp })) === 0, { timeoutMs: 3000, intervalMs: 20, what: 'the socket gone from A' });
    // Its session, as the official adapter keeps it: base64 MessagePack { sid, pid, rooms, data }
    // under sio:session:<pid>, for maxDisconnectionDuration.
    const sessionKey = `sio:session:${pid}`;
    await poll(async () => (await redis.query.exists(sessionKey)) === 1, { timeoutMs: 3000, intervalMs: 10, what: 'the session in Redis' });
    const session = msgpack.decode(Buffer.from(await redis.query.get(sessionKey), 'base64'));
    expect(session).toMatchObject({ sid: id, pid });
    expect([...session.rooms].sort()).toEqual([id, ...(nsp === '/' ? rooms : [])].sort());
    if (nsp === '/') expect(session.data).toEqual({ name: 'x' });
    const ttl = await redis.query.pTTL(sessionKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
    return { id, pid, offset };
  }

  /** A client of `node` that comes back with `pid` and `offset`. */
  async function comeBack(node, nsp, { pid, offset }) {
    const c = node.client(nsp, { auth: { name: 'x' } });
    c._pid = pid;
    c._lastOffset = offset;
    const got = journal(c);
    c.connect();
    await connected(c, 5000);
    return { c, got };
  }

  test('a client that drops from A and comes back to B gets its id, rooms, data and what it missed, in order', async () => {
    const before = await dropped();
    const start = await streamLength();
    // While it is away: to its room from A, to everyone from B, to a room it is not in, to
    // everyone but its room, and a volatile one: the official adapter adds those to the stream
    // like any other and gives them back (only live packets go without an offset).
    await A.call('emit', { to: ['r1'], event: 'missed', args: ['to r1 from A'] });
    await entries(start + 1, 'the first entry');
    await B.call('emit', { event: 'missed', args: ['to all from B', { n: 2 }] });
    await entries(start + 2, 'the second entry');
    await A.call('emit', { to: ['r9'], event: 'not-mine', args: [] });
    await B.call('emit', { except: ['r1'], event: 'not-mine', args: [] });
    await A.call('emit', { volatile: true, event: 'volatile', args: [] });
    await entries(start + 4, 'the other entries');

    const { c, got } = await comeBack(B, '/', before);
    expect(c.recovered).toBe(true);
    expect(c.id).toBe(before.id);
    await poll(() => got.length >= 3, { timeoutMs: 3000, intervalMs: 20, what: 'the missed packets' });
    await sleep(100);
    expect(withoutOffsets(got)).toEqual([
      ['missed', 'to r1 from A'],
      ['missed', 'to all from B', { n: 2 }],
      ['volatile'],
    ]);
    for (const entry of got) expect(entry[entry.length - 1]).toMatch(OFFSET);
    // The offsets are the stream's entries, in its order.
    const ids = (await redis.query.xRange(key, '-', '+')).map((e) => e.id);
    expect(ids).toEqual(expect.arrayContaining(got.map((e) => e[e.length - 1])));
    expect(ids.indexOf(got[0][2])).toBeLessThan(ids.indexOf(got[1][3]));
    expect(c._lastOffset).toBe(got[2][1]);

    // Its rooms and data on B, and a broadcast to its room from either node reaches it there.
    const me = await ackOf(c, 'whoami');
    expect(me.node).toBe('B');
    expect(me.recovered).toBe(true);
    expect(me.id).toBe(before.id);
    expect(me.rooms.sort()).toEqual([before.id, 'r1'].sort());
    expect(me.data).toEqual({ name: 'x' });
    got.length = 0;
    await A.call('emit', { to: ['r1'], event: 'live', args: ['from A'] });
    await B.call('emit', { to: [before.id], event: 'live', args: ['to its id from B'] });
    await poll(() => got.length >= 2, { timeoutMs: 3000, intervalMs: 20, what: 'the live packets' });
    expect(withoutOffsets(got).sort()).toEqual([
      ['live', 'from A'],
      ['live', 'to its id from B'],
    ]);
  });

  test('binary payloads missed are given back byte for byte', async () => {
    const before = await dropped();
    const start = await streamLength();
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await A.call('emit', { to: ['r1'], event: 'bin', args: [bytes, { nested: bytes.subarray(0, 3) }] });
    await entries(start + 1, 'the entry');
    const { c, got } = await comeBack(B, '/', before);
    expect(c.recovered).toBe(true);
    await poll(() => got.length >= 1, { timeoutMs: 3000, intervalMs: 20, what: 'the missed packet' });
    const [event, first, second, offset] = got[0];
    expect(event).toBe('bin');
    expect(Buffer.from(first).equals(bytes)).toBe(true);
    expect(Buffer.from(second.nested).equals(bytes.subarray(0, 3))).toBe(true);
    expect(offset).toMatch(OFFSET);
  });

  test('a session is taken once: a second client with the same pid connects as new', async () => {
    const before = await dropped();
    const first = await comeBack(B, '/', before);
    expect(first.c.recovered).toBe(true);
    const second = await comeBack(A, '/', before);
    expect(second.c.recovered).toBe(false);
    expect(second.c.id).not.toBe(before.id);
  });

  test('an unknown pid, an offset that is not one, or a window that closed: connected as new', async () => {
    const before = await dropped();
    const unknown = await comeBack(B, '/', { pid: 'no-such-pid', offset: before.offset });
    expect(unknown.c.recovered).toBe(false);
    const garbage = await comeBack(B, '/', { pid: before.pid, offset: 'not-an-offset' });
    expect(garbage.c.recovered).toBe(false);
    // (The session was taken by that try, as the official adapter takes it: a fresh drop.)
    const again = await dropped();
    await sleep(WINDOW_MS + 500);
    const late = await comeBack(B, '/', again);
    expect(late.c.recovered).toBe(false);
    expect(late.c.id).not.toBe(again.id);
  });

  test("a namespace without handlers on the node it comes back to is recovered too (the engine's own path on sidewire)", async () => {
    const before = await dropped('/bare');
    const start = await streamLength();
    await B.call('emit', { nsp: '/bare', event: 'missed', args: ['bare'] });
    await A.call('emit', { nsp: '/', event: 'other-namespace', args: [] });
    await entries(start + 2, 'the entries');
    const { c, got } = await comeBack(B, '/bare', before);
    expect(c.recovered).toBe(true);
    expect(c.id).toBe(before.id);
    await poll(() => got.length >= 1, { timeoutMs: 3000, intervalMs: 20, what: 'the missed packet' });
    await sleep(100);
    expect(withoutOffsets(got)).toEqual([['missed', 'bare']]);
    // Dropped again from B (which kept its session, with or without JS), and back to A.
    const offset = c._lastOffset;
    c.io.engine.close();
    await poll(async () => (await B.call('localCount', { nsp: '/bare' })) === 0, { timeoutMs: 3000, intervalMs: 20, what: 'the socket gone from B' });
    const back = await comeBack(A, '/bare', { pid: before.pid, offset });
    expect(back.c.recovered).toBe(true);
    expect(back.c.id).toBe(before.id);
  });
});

describe('the stream itself', () => {
  test('a sidewire node writes the entries the official adapter writes, and reads them', async () => {
    const key = 'stream-shape';
    const [S, W] = await Promise.all([
      startNode('socket.io', { redisUrl: redis.url, key, streams: true, name: 'S' }),
      startNode('sidewire', { redisUrl: redis.url, key, streams: true, name: 'W' }),
    ]);
    try {
      await fleetFormed([S, W]);
      // Each entry in the stream before the next call: a node adds its entry after it answers,
      // so without the wait two nodes' entries may land in either order.
      let list;
      const entries = (n) => poll(
        async () => {
          list = await redis.query.xRange(key, '-', '+');
          return list.length >= n;
        },
        { timeoutMs: 3000, intervalMs: 25, what: `${n} entries` },
      );
      await S.call('emit', { to: ['r1'], except: ['r2'], event: 'e', args: [1, 'two'] });
      await entries(1);
      await W.call('emit', { to: ['r1'], except: ['r2'], event: 'e', args: [1, 'two'] });
      await entries(2);
      await W.call('socketsJoin', { to: ['r1'], rooms: ['r3'] });
      await entries(3);
      await S.call('socketsJoin', { to: ['r1'], rooms: ['r3'] });
      await entries(4);
      const shape = (m) => ({ nsp: m.nsp, type: m.type, data: JSON.parse(m.data), fields: Object.keys(m).sort() });
      const [fromS, fromW, joinW, joinS] = list.map((e) => e.message);
      expect(fromS.uid).not.toBe(fromW.uid);
      expect(shape(fromW)).toEqual(shape(fromS));
      expect(shape(joinW)).toEqual(shape(joinS));
      expect(shape(fromW)).toEqual({
        nsp: '/',
        type: '3',
        data: { packet: { type: 2, data: ['e', 1, 'two'] }, opts: { rooms: ['r1'], except: ['r2'], flags: {} } },
        fields: ['data', 'nsp', 'type', 'uid'],
      });
    } finally {
      await stopAll();
    }
  });

  test('engine.stats().adapter says streams and the reader connection', async () => {
    const W = await startNode('sidewire', { redisUrl: redis.url, key: 'stats', streams: true, name: 'W' });
    try {
      await poll(async () => (await W.call('stats', {})).state === 'ready', { timeoutMs: 5000, intervalMs: 50, what: 'ready' });
      const stats = await W.call('stats', {});
      expect(stats).toMatchObject({ type: 'redis', mode: 'streams', publisher: 'ready', subscriber: 'ready', reader: 'ready' });
    } finally {
      await stopAll();
    }
  });
});
