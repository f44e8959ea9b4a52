'use strict';
// sidewire/redis-adapter when Redis goes away: the nodes stay up and keep serving their own
// clients, requests that need the fleet answer within requestsTimeout instead of hanging, the
// adapter's state (engine.stats().adapter.state) says so, and once Redis is back on the same
// port the fleet forms again by itself. Redis is SIGKILLed, as when its host dies.
const { startRedis } = require('./helpers/redis-server');
const { freePort } = require('./helpers/server-process');
const { startNode, stopAll, record, counts, once, poll, fleetFormed, sleep } = require('./helpers/cluster');

jest.setTimeout(40000);

const REQUESTS_TIMEOUT = 1000;
const RECOVERY_MS = 10000; // a restarted Redis is found again within this

/** Polls the adapter state of `node` until `pred(state)`; resolves with the stats. */
function stateBecomes(node, pred, what, timeoutMs = RECOVERY_MS) {
  return poll(
    async () => {
      const s = await node.call('stats', {}, 2000);
      return s && pred(s.state) ? s : null;
    },
    { timeoutMs, intervalMs: 100, what: `${node.label}: adapter state ${what}` },
  );
}

/**
 * Emits from `from` until `to`'s client gets it (each try waits a little), at most RECOVERY_MS:
 * cross-node delivery works again. Every try has its own payload so a late one is not mistaken.
 */
async function crossesAgain(from, client, event = 'probe') {
  let n = 0;
  let hit = null;
  const onProbe = (k) => {
    hit = k;
  };
  client.on(event, onProbe);
  try {
    await poll(
      async () => {
        const k = ++n;
        await from.call('emit', { event, args: [k] }, 2000);
        await sleep(200);
        return hit !== null;
      },
      { timeoutMs: RECOVERY_MS, intervalMs: 0, what: `${from.label} → ${client.clientName} delivery` },
    );
  } finally {
    client.off(event, onProbe);
  }
}

/** The outcome of a call, with how long it took: { ok, result | error, ms }. */
async function timed(promise) {
  const started = Date.now();
  try {
    return { ok: true, result: await promise, ms: Date.now() - started };
  } catch (err) {
    return { ok: false, error: err.message, ms: Date.now() - started };
  }
}

describe.each(['url', 'node-redis', 'ioredis'])('sidewire fleet (client %s), Redis killed', (client) => {
  let redis;
  let A;
  let B;
  let c;

  beforeAll(async () => {
    redis = await startRedis();
    [A, B] = await Promise.all([
      startNode('sidewire', { redisUrl: redis.url, client, requestsTimeout: REQUESTS_TIMEOUT, name: 'A' }),
      startNode('sidewire', { redisUrl: redis.url, client, requestsTimeout: REQUESTS_TIMEOUT, name: 'B' }),
    ]);
    await fleetFormed([A, B]);
  });

  afterAll(async () => {
    await stopAll();
    if (redis) await redis.stop();
  });

  // Each test starts from a formed fleet: a test that killed Redis may have left it down.
  beforeEach(async () => {
    if (!A || !B) return;
    if (!redis.running) await redis.restart();
    await fleetFormed([A, B], 2, RECOVERY_MS);
    c = {
      a1: await A.connect('/', { name: 'a1', rooms: ['r'] }),
      a2: await A.connect('/', { name: 'a2' }),
      b1: await B.connect('/', { name: 'b1', rooms: ['r'] }),
    };
  });

  afterEach(() => {
    for (const node of [A, B]) if (node) node.disconnectClients();
  });

  test('nodes stay up and deliver locally; after a restart on the same port the fleet and the ready state come back', async () => {
    await stateBecomes(A, (s) => s === 'ready', "'ready'", 3000);
    let rec = record(c, 'news');
    await A.call('emit', { event: 'news', args: ['before'] });
    expect(counts(await rec.settle(3))).toEqual(once('a1', 'a2', 'b1'));

    await redis.kill();
    for (const node of [A, B]) {
      const s = await stateBecomes(node, (st) => st !== 'ready', 'not ready while Redis is down', 5000);
      expect(['connecting', 'disconnected']).toContain(s.state);
    }

    // A broadcast's local part does not depend on Redis: A's clients get it, B's cannot.
    rec = record(c, 'news');
    await A.call('emit', { event: 'news', args: ['during'] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'a2'));
    rec = record(c, 'news');
    await A.call('emit', { local: true, to: ['r'], event: 'news', args: ['local'] });
    expect(counts(await rec.settle(1))).toEqual(once('a1'));
    rec = record(c, 'news');
    await B.call('emit', { to: ['r'], event: 'news', args: ['b during'] });
    expect(counts(await rec.settle(1))).toEqual(once('b1'));
    // Nobody was disconnected by the outage, and both processes still answer.
    expect(Object.values(c).every((s) => s.connected)).toBe(true);
    expect((await A.call('localSockets', {})).sort()).toEqual([c.a1.id, c.a2.id].sort());
    expect(await B.call('localSockets', {})).toEqual([c.b1.id]);

    await redis.restart();
    await crossesAgain(A, c.b1);
    await crossesAgain(B, c.a1);
    for (const node of [A, B]) await stateBecomes(node, (s) => s === 'ready', "'ready' again");
    await fleetFormed([A, B]);

    // Back to normal: exactly once each, including the room.
    rec = record(c, 'final');
    await B.call('emit', { to: ['r'], event: 'final', args: [] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'b1'));
  });

  test('fetchSockets() and serverSideEmitWithAck() while Redis is down answer within requestsTimeout', async () => {
    await redis.kill();
    const bound = REQUESTS_TIMEOUT + 1000; // the adapter's timeout plus IPC and scheduling
    const local = [c.a1.id, c.a2.id].sort();

    // Right after the kill (the adapter may not have noticed yet) and once it has.
    for (const when of ['at once', 'once not ready']) {
      if (when === 'once not ready') await stateBecomes(A, (s) => s !== 'ready', 'not ready', 5000);
      const f = await timed(A.call('fetchSockets', {}, 8000));
      expect({ when, ms: f.ms < bound, hung: /not answered/.test(f.error || '') }).toEqual({ when, ms: true, hung: false });
      // Either the node's own sockets or an error: never a wrong or partial fleet view.
      if (f.ok) expect(f.result.map((s) => s.id).sort()).toEqual(local);

      const e = await timed(A.call('serverSideEmitWithAck', { event: 'hello', args: [] }, 8000));
      expect({ when, ms: e.ms < bound, ok: e.ok }).toEqual({ when, ms: true, ok: true });
      // { error: null, responses: [] } (no other node reachable) or a timeout with what came.
      if (e.result.error) expect(e.result.responses || []).toEqual([]);
      else expect(e.result.responses).toEqual([]);
    }

    await redis.restart();
    await crossesAgain(A, c.b1);
    const all = await A.call('fetchSockets', {});
    expect(all.map((s) => s.id).sort()).toEqual([c.a1.id, c.a2.id, c.b1.id].sort());
  });
});

describe('a sidewire node started while Redis is absent', () => {
  let redis = null;

  afterAll(async () => {
    await stopAll();
    if (redis) await redis.stop();
  });

  test('comes up, serves its clients, and joins the fleet once Redis starts', async () => {
    const port = await freePort();
    const redisUrl = `redis://127.0.0.1:${port}`;
    const A = await startNode('sidewire', { redisUrl, requestsTimeout: REQUESTS_TIMEOUT, name: 'A', readyTimeoutMs: 10000 });
    const s = await A.call('stats', {});
    expect(['connecting', 'disconnected']).toContain(s.state);
    const a1 = await A.connect('/', { name: 'a1' });
    let rec = record([a1], 'news');
    await A.call('emit', { event: 'news', args: ['alone'] });
    expect(counts(await rec.settle(1))).toEqual(once('a1'));
    const alone = await timed(A.call('fetchSockets', {}, 8000));
    expect(alone.ms).toBeLessThan(REQUESTS_TIMEOUT + 1000);

    redis = await startRedis({ port });
    const B = await startNode('sidewire', { redisUrl, requestsTimeout: REQUESTS_TIMEOUT, name: 'B' });
    const b1 = await B.connect('/', { name: 'b1' });
    await crossesAgain(B, a1);
    await crossesAgain(A, b1);
    await stateBecomes(A, (st) => st === 'ready', "'ready'");
    await fleetFormed([A, B]);
    rec = record([a1, b1], 'news');
    await A.call('emit', { event: 'news', args: ['fleet'] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'b1'));
  });
});

describe('a burst while Redis is up', () => {
  let redis;
  let A;
  let B;

  beforeAll(async () => {
    redis = await startRedis();
    [A, B] = await Promise.all([
      startNode('sidewire', { redisUrl: redis.url, name: 'A' }),
      startNode('sidewire', { redisUrl: redis.url, name: 'B' }),
    ]);
    await fleetFormed([A, B]);
  });

  afterAll(async () => {
    await stopAll();
    if (redis) await redis.stop();
  });

  // The pending bound is for a Redis that is away: a connected adapter whose writes queue up
  // behind one another in one turn (20 MB here) sends them all, and a broadcast bigger than
  // that bound goes out too.
  test('200 broadcasts of 100 KB in one turn, and one of 9 MB, all reach the other node', async () => {
    const c = B.client('/', { transports: ['websocket'] });
    await new Promise((resolve, reject) => {
      c.once('connect', resolve);
      c.once('connect_error', reject);
    });
    const got = new Set();
    let big = 0;
    c.on('bulk', (i, body) => {
      if (body.length === 100000) got.add(i);
    });
    c.on('huge', (i, body) => {
      if (body.length === 9000000) big++;
    });
    await A.call('burst', { event: 'bulk', count: 200, size: 100000 });
    await A.call('burst', { event: 'huge', count: 1, size: 9000000 });
    await poll(async () => got.size === 200 && big === 1, { timeoutMs: 15000, what: 'every broadcast on B' });
    const stats = await A.call('stats', {});
    expect(stats).toMatchObject({ state: 'ready', dropped: 0 });
    c.close();
  });
});

// The streams adapter (createStreamsAdapter) with connectionStateRecovery: its third connection
// reads the stream and must come back too; while Redis is away a recoverable broadcast still
// reaches the node's own clients at once (without an offset: there is no stream to give one).
describe('sidewire streams fleet, Redis killed', () => {
  let redis;
  let A;
  let B;

  beforeAll(async () => {
    redis = await startRedis();
    const opts = { redisUrl: redis.url, streams: true, key: 'faults', recovery: 5000, requestsTimeout: REQUESTS_TIMEOUT };
    [A, B] = await Promise.all([startNode('sidewire', { ...opts, name: 'A' }), startNode('sidewire', { ...opts, name: 'B' })]);
    await fleetFormed([A, B]);
  });

  afterAll(async () => {
    await stopAll();
    if (redis) await redis.stop();
  });

  test('local delivery goes on, the reader reconnects and resumes, offsets come back', async () => {
    const c = {
      a1: await A.connect('/', { name: 'a1', rooms: ['r'] }),
      b1: await B.connect('/', { name: 'b1', rooms: ['r'] }),
    };
    await stateBecomes(A, (s) => s === 'ready', "'ready'", 3000);
    const offsets = [];
    c.a1.on('news', (...args) => offsets.push(args[args.length - 1]));
    let rec = record(c, 'news');
    await B.call('emit', { event: 'news', args: ['before'] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'b1'));
    expect(offsets.pop()).toMatch(/^\d+-\d+$/);

    await redis.kill();
    for (const node of [A, B]) {
      const s = await stateBecomes(node, (st) => st !== 'ready', 'not ready while Redis is down', 5000);
      expect(['connecting', 'disconnected']).toContain(s.state);
      expect(['connecting', 'disconnected']).toContain(s.reader);
    }
    rec = record(c, 'news');
    await A.call('emit', { to: ['r'], event: 'news', args: ['during'] });
    expect(counts(await rec.settle(1))).toEqual(once('a1'));
    expect(offsets.pop()).toBe('during'); // no offset appended
    expect(Object.values(c).every((s) => s.connected)).toBe(true);

    await redis.restart();
    for (const node of [A, B]) {
      const s = await stateBecomes(node, (st) => st === 'ready', "'ready' again");
      expect(s.reader).toBe('ready');
    }
    await crossesAgain(A, c.b1);
    await crossesAgain(B, c.a1);
    rec = record(c, 'final');
    offsets.length = 0;
    c.a1.on('final', (...args) => offsets.push(args[args.length - 1]));
    await B.call('emit', { to: ['r'], event: 'final', args: [] });
    expect(counts(await rec.settle(2))).toEqual(once('a1', 'b1'));
    expect(offsets[0]).toMatch(/^\d+-\d+$/);
  });
});
