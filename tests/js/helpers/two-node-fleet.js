'use strict';
// The two-node fleet suite: every operation of a Socket.IO server made on one node of a fleet of
// two over one Redis, checked on the clients of both. tests/js/cluster.test.js runs it with the
// classic adapters (@socket.io/redis-adapter's createAdapter and sidewire's), and
// tests/js/cluster-sharded.test.js with the sharded ones (createShardedAdapter, Redis 7 sharded
// pub/sub) in each subscription mode; each pair is socket.io and/or sidewire nodes, so a
// difference between the two shows as a failing pair.
const { createClient } = require('redis');
const { startNode, stopAll, record, counts, once, poll, fleetFormed, sleep } = require('./cluster');
const { startRedis } = require('./redis-server');

// Every pair of the two implementations, both ways: socket.io ↔ socket.io checks the suite itself.
const ALL_PAIRS = [
  ['socket.io', 'socket.io'],
  ['socket.io', 'sidewire'],
  ['sidewire', 'socket.io'],
  ['sidewire', 'sidewire'],
];

/**
 * A redis-server for the test file (started in beforeAll, stopped in afterAll with every node)
 * and a node-redis client of the test's own on it: { url, query } once started.
 */
function suiteRedis() {
  const r = { server: null, query: null };
  beforeAll(async () => {
    r.server = await startRedis();
    r.query = createClient({ url: r.server.url });
    r.query.on('error', () => {});
    await r.query.connect();
  });
  afterAll(async () => {
    await stopAll();
    if (r.query) await r.query.disconnect().catch(() => {});
    if (r.server) await r.server.stop();
  });
  return {
    get url() {
      return r.server.url;
    },
    get query() {
      return r.query;
    },
  };
}

// The clients of a two-node fleet and their rooms on '/': a* on node A, b* on node B. a1 is in
// two rooms (a broadcast to both reaches it once); r3 has members on B only; a3/b3 in none.
const LAYOUT = { a1: ['r1', 'r2'], a2: ['r2'], a3: [], b1: ['r1'], b2: ['r2', 'r3'], b3: [] };
const MAIN = Object.keys(LAYOUT);
// '/admin' has a room r1 too, with a member on A: '/' and '/admin' rooms must never mix.
const ADMIN_LAYOUT = { aAdmin: ['r1'], bAdmin: [] };

// Bytes 0..255: a byte-exact check catches any UTF-8 or base64 mangling in the relay.
const BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

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

/**
 * Declares the suite for each [implA, implB] of `pairs`. `redisUrl()` gives the Redis started in
 * the test file's beforeAll; `nodeOptions` go to every startNode (e.g. { sharded: 'dynamic' }).
 */
function describeTwoNodeFleet(title, { pairs, redisUrl, nodeOptions = {} }) {
  // socket.io-adapter's ClusterAdapter: the base of the sharded and the streams adapters.
  const sharded = Boolean(nodeOptions.sharded || nodeOptions.streams);
  describe.each(pairs.map(([a, b]) => [`${a} → ${b}`, a, b]))(title, (_title, implA, implB) => {
    let A;
    let B;
    let c;

    beforeAll(async () => {
      [A, B] = await Promise.all([
        startNode(implA, { ...nodeOptions, redisUrl: redisUrl(), name: 'A' }),
        startNode(implB, { ...nodeOptions, redisUrl: redisUrl(), name: 'B' }),
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

    if (sharded) {
      // socket.io-adapter's ClusterAdapter (the sharded adapter's base) has no allRooms(), and its
      // sockets() is the node's own.
      test("adapter.sockets() is this node's sockets; the adapter has no allRooms()", async () => {
        for (const [node, mine] of [
          [A, ['a1', 'a2', 'a3']],
          [B, ['b1', 'b2', 'b3']],
        ]) {
          expect(await node.call('allRooms', {})).toBeNull();
          expect((await node.call('sockets', {})).sort()).toEqual(mine.map((n) => c[n].id).sort());
          const inR1 = await node.call('sockets', { to: ['r1'] });
          expect(inR1).toEqual([c[node === A ? 'a1' : 'b1'].id]);
        }
      });
    } else {
      test("adapter.allRooms() is every node's rooms of the namespace, sockets' own ids included", async () => {
        for (const node of [A, B]) {
          const rooms = new Set(await node.call('allRooms', {}));
          for (const r of ['r1', 'r2', 'r3']) expect(rooms.has(r)).toBe(true);
          for (const name of MAIN) expect(rooms.has(c[name].id)).toBe(true);
          expect(rooms.has(c.aAdmin.id)).toBe(false);
        }
      });
    }

    test('serverCount() is 2 on both nodes, per namespace', async () => {
      for (const node of [A, B]) {
        expect(await node.call('serverCount', {})).toBe(2);
        expect(await node.call('serverCount', { nsp: '/admin' })).toBe(2);
      }
    });
  });
}

module.exports = { ALL_PAIRS, suiteRedis, describeTwoNodeFleet, LAYOUT, MAIN, BYTES, asBuffer };
