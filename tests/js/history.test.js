'use strict';
// Raw channel history (the channel option `history`): the engine keeps what each room was
// relayed or broadcast and replays it, in order, to a client that joins later, exactly once
// with what arrives live; the compact and load hooks; bounds, ttl and stats; across two nodes.
const http = require('node:http');
const { startServer, silent, sleep, waitFor, WebSocket } = require('./helpers/ws');
const { startRedis } = require('./helpers/redis-server');
const { createAdapter } = require('../../js/redis-adapter.js');
const { Engine } = require('../../js/index.js');

const sockets = [];

// A client whose messages are collected from the first byte: the replay can arrive in the same
// segment as the 101.
function join(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.got = [];
    ws.on('message', (data, isBinary) => ws.got.push(isBinary ? Buffer.from(data) : data.toString()));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    sockets.push(ws);
  });
}

const received = (ws, n, ms = 5000) => waitFor(() => ws.got.length >= n, ms).then(() => ws.got);

afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate();
});

describe('a channel with history', () => {
  let t;
  const compacted = [];
  const loads = [];
  const stored = new Map([['saved', ['stored-1', Buffer.from([7, 7])]]]);
  beforeAll(async () => {
    t = await startServer((engine) => {
      engine.channel('/ws/doc', { roomQuery: 'doc', relay: true, joinMessages: true, history: true });
      engine.channel('/ws/sync', {
        roomQuery: 'doc',
        relay: true,
        history: { prefixes: [Buffer.from([0])], maxMessages: 4 },
      });
      engine.channel('/ws/compact', {
        roomQuery: 'doc',
        relay: true,
        history: {
          compactAfter: 3,
          compact(room, list) {
            compacted.push([room, list]);
            if (room === 'keep') return null; // left as it is
            return [`merged:${list.join('+')}`];
          },
        },
      });
      engine.channel('/ws/stored', {
        roomQuery: 'doc',
        relay: true,
        history: {
          async load(room) {
            loads.push(room);
            await sleep(50);
            return stored.get(room) || null;
          },
        },
      });
      engine.channel('/ws/ttl', { roomQuery: 'doc', relay: true, history: { ttlMs: 300 } });
      engine.channel('/ws/plain', { roomQuery: 'doc', relay: true });
    });
  });
  afterAll(() => t.close());

  test('a late joiner gets what the room was sent, in order, then the live messages, each once', async () => {
    const a = await join(t.url('/ws/doc?doc=d1'));
    const other = await join(t.url('/ws/doc?doc=d2'));
    a.send('one');
    a.send(Buffer.from([1, 2, 3]));
    a.send('three');
    await waitFor(() => t.engine.getChannel('/ws/doc').history('d1').length === 3);
    const b = await join(t.url('/ws/doc?doc=d1'));
    expect(await received(b, 3)).toEqual(['one', Buffer.from([1, 2, 3]), 'three']);
    a.send('four');
    expect(await received(b, 4)).toEqual(['one', Buffer.from([1, 2, 3]), 'three', 'four']);
    expect(await silent(b, 200)).toBe(true);
    // The sender is not replayed its own messages while it is in the room; the other room heard nothing.
    expect(a.got).toEqual([]);
    expect(other.got).toEqual([]);
    // A join message replays too.
    other.send(JSON.stringify({ join: 'd1' }));
    expect(await received(other, 4)).toEqual(['one', Buffer.from([1, 2, 3]), 'three', 'four']);
  });

  test('every message exactly once and in order, for joiners arriving during a flood, on two I/O threads', async () => {
    const t2 = await startServer((engine) => {
      engine.channel('/ws/doc', { roomQuery: 'doc', relay: true, history: { maxMessages: 5000 } });
    }, { ioThreads: 2 });
    try {
      const writer = await join(t2.url('/ws/doc?doc=flood'));
      const n = 1500;
      const joiners = [];
      for (let i = 0; i < n; i++) {
        writer.send(`m${i}`);
        if (i % 300 === 150) joiners.push(join(t2.url('/ws/doc?doc=flood')));
        if (i % 100 === 0) await sleep(1);
      }
      const clients = await Promise.all(joiners);
      expect(clients.length).toBe(5);
      const expected = Array.from({ length: n }, (_, i) => `m${i}`);
      for (const c of clients) expect(await received(c, n, 10000)).toEqual(expected);
      await sleep(200);
      for (const c of clients) expect(c.got.length).toBe(n);
    } finally {
      await t2.close();
    }
  });

  test('broadcasts to a room are kept, broadcasts to the whole channel are not', async () => {
    const ch = t.engine.getChannel('/ws/doc');
    ch.broadcast('d3', 'to-room');
    ch.broadcast(null, 'to-all');
    await waitFor(() => ch.history('d3').length === 1);
    const c = await join(t.url('/ws/doc?doc=d3'));
    expect(await received(c, 1)).toEqual(['to-room']);
    expect(await silent(c, 200)).toBe(true);
  });

  test('prefixes choose what is kept; maxMessages bounds each room; stats count it', async () => {
    const a = await join(t.url('/ws/sync?doc=s'));
    const b = await join(t.url('/ws/sync?doc=s'));
    for (let i = 0; i < 6; i++) a.send(Buffer.from([0, i]));
    a.send(Buffer.from([1, 9])); // relayed, not kept
    expect((await received(b, 7)).length).toBe(7);
    const ch = t.engine.getChannel('/ws/sync');
    expect(ch.history('s')).toEqual([2, 3, 4, 5].map((i) => Buffer.from([0, i])));
    const late = await join(t.url('/ws/sync?doc=s'));
    expect(await received(late, 4)).toEqual([2, 3, 4, 5].map((i) => Buffer.from([0, i])));
    const stats = t.engine.stats().channels['/ws/sync'].history;
    expect(stats).toMatchObject({ rooms: 1, messages: 4, dropped: 2 });
    expect(stats.bytes).toBe(4 * 4);
    expect(t.engine.stats().channels['/ws/plain'].history).toBeUndefined();
  });

  test('compact runs after compactAfter messages; its result replaces what it was handed', async () => {
    const a = await join(t.url('/ws/compact?doc=c'));
    for (const m of ['u1', 'u2', 'u3']) a.send(m);
    await waitFor(() => compacted.some(([room]) => room === 'c'));
    expect(compacted.find(([room]) => room === 'c')[1]).toEqual(['u1', 'u2', 'u3']);
    const ch = t.engine.getChannel('/ws/compact');
    await waitFor(() => ch.history('c')[0] === 'merged:u1+u2+u3');
    a.send('u4');
    await waitFor(() => ch.history('c').length === 2);
    const late = await join(t.url('/ws/compact?doc=c'));
    expect(await received(late, 2)).toEqual(['merged:u1+u2+u3', 'u4']);
    expect(t.engine.stats().channels['/ws/compact'].history.compactions).toBe(1);
    // compactHistory(room) runs it now.
    expect(await ch.compactHistory('c')).toBe(true);
    expect(ch.history('c')).toEqual(['merged:merged:u1+u2+u3+u4']);
    // A hook that returns nothing leaves the room as it was, and is asked again later.
    const k = await join(t.url('/ws/compact?doc=keep'));
    for (const m of ['k1', 'k2', 'k3']) k.send(m);
    await waitFor(() => compacted.filter(([room]) => room === 'keep').length === 1);
    await sleep(50);
    expect(ch.history('keep')).toEqual(['k1', 'k2', 'k3']);
    k.send('k4');
    await waitFor(() => compacted.filter(([room]) => room === 'keep').length === 2);
  });

  test('setHistory, clearHistory and history(room) from JS', async () => {
    const ch = t.engine.getChannel('/ws/doc');
    ch.setHistory('seeded', ['s1', Buffer.from('s2')]);
    expect(ch.history('seeded')).toEqual(['s1', Buffer.from('s2')]);
    const c = await join(t.url('/ws/doc?doc=seeded'));
    expect(await received(c, 2)).toEqual(['s1', Buffer.from('s2')]);
    ch.clearHistory('seeded');
    expect(ch.history('seeded')).toEqual([]);
    expect(() => t.engine.getChannel('/ws/plain').history('x')).toThrow(/keeps no history/);
    expect(() => ch.setHistory('x', 'not an array')).toThrow(TypeError);
  });

  test('load fills a room from the app before its first client joins, once', async () => {
    const [x, y] = await Promise.all([join(t.url('/ws/stored?doc=saved')), join(t.url('/ws/stored?doc=saved'))]);
    expect(loads.filter((r) => r === 'saved').length).toBe(1);
    for (const c of [x, y]) expect(await received(c, 2)).toEqual(['stored-1', Buffer.from([7, 7])]);
    x.send('new');
    expect(await received(y, 3)).toEqual(['stored-1', Buffer.from([7, 7]), 'new']);
    const z = await join(t.url('/ws/stored?doc=saved'));
    expect(await received(z, 3)).toEqual(['stored-1', Buffer.from([7, 7]), 'new']);
    expect(loads.filter((r) => r === 'saved').length).toBe(1);
    // A room the store does not know starts empty.
    const e = await join(t.url('/ws/stored?doc=unknown'));
    expect(await silent(e, 200)).toBe(true);
    expect(loads).toContain('unknown');
  });

  test('entries older than ttlMs are not replayed', async () => {
    const a = await join(t.url('/ws/ttl?doc=t'));
    a.send('soon-gone');
    await waitFor(() => t.engine.getChannel('/ws/ttl').history('t').length === 1);
    await sleep(400);
    const late = await join(t.url('/ws/ttl?doc=t'));
    expect(await silent(late, 200)).toBe(true);
    expect(t.engine.getChannel('/ws/ttl').history('t')).toEqual([]);
  });

  test('rooms() and count() give the connections per document', async () => {
    await join(t.url('/ws/plain?doc=p1'));
    await join(t.url('/ws/plain?doc=p1'));
    await join(t.url('/ws/plain?doc=p2'));
    const ch = t.engine.getChannel('/ws/plain');
    await waitFor(() => ch.count() === 3);
    expect(ch.rooms()).toEqual(new Map([['p1', 2], ['p2', 1]]));
    expect(ch.count('p1')).toBe(2);
  });

  test('options are checked', () => {
    const engine = new Engine({ global: false, logLevel: 'off' });
    try {
      expect(() => engine.channel('/ws/a', { history: { maxMessages: 0 } })).toThrow(/maxMessages/);
      expect(() => engine.channel('/ws/b', { history: { compactAfter: 5 } })).toThrow(/needs history.compact/);
      expect(() => engine.channel('/ws/c', { history: { prefixes: [''] } })).toThrow(/empty/);
      expect(() => engine.channel('/ws/d', { history: { compact: 'no' } })).toThrow(/function/);
      expect(() => engine.channel('/ws/e', { history: 'yes' })).toThrow(TypeError);
      expect(() => engine.channel('/ws/f', { history: { maxMessages: 10, compactAfter: 20, compact: () => [] } })).toThrow(/at most/);
    } finally {
      engine.close({ drainMs: 0 });
    }
  });
});

describe('history with engine.listen()', () => {
  test('a channel with a load hook goes through JS first, and the joiner gets the stored history', async () => {
    const engine = new Engine({ global: false, logLevel: 'error' });
    const loads = [];
    engine.channel('/ws/doc', {
      roomQuery: 'doc',
      relay: true,
      history: { load: (room) => (loads.push(room), room === 'none' ? null : [`stored:${room}`]) },
    });
    const server = http.createServer((req, res) => res.end('page'));
    const upgrades = [];
    server.on('upgrade', (req) => upgrades.push(req.url)); // what reached Node
    const port = await engine.listen(server, { host: '127.0.0.1', port: 0 });
    try {
      const c = await join(`ws://127.0.0.1:${port}/ws/doc?doc=abc`);
      expect(await received(c, 1)).toEqual(['stored:abc']);
      // Loaded once; the next upgrade into the room is the engine's alone.
      const d = await join(`ws://127.0.0.1:${port}/ws/doc?doc=abc`);
      expect(await received(d, 1)).toEqual(['stored:abc']);
      await join(`ws://127.0.0.1:${port}/ws/doc?doc=none`);
      await join(`ws://127.0.0.1:${port}/ws/doc?doc=none`);
      expect(loads).toEqual(['abc', 'none']);
      expect(upgrades).toEqual(['/ws/doc?doc=abc', '/ws/doc?doc=none']);
    } finally {
      for (const ws of sockets.splice(0)) ws.terminate();
      await engine.close({ drainMs: 100 });
    }
  });
});

describe('history across two nodes', () => {
  let redis;
  let a;
  let b;
  beforeAll(async () => {
    redis = await startRedis();
    const node = () => startServer((engine) => {
      engine.channel('/ws/doc', { roomQuery: 'doc', relay: true, history: true, adapter: createAdapter(redis.url) });
    });
    a = await node();
    b = await node();
  });
  afterAll(async () => {
    await Promise.all([a && a.close(), b && b.close()]);
    if (redis) await redis.stop();
  });

  test("a joiner on one node gets what was typed on the other, with no peer left on its own", async () => {
    const writer = await join(a.url('/ws/doc?doc=shared'));
    const watcher = await join(b.url('/ws/doc?doc=shared'));
    // Until the subscription is in place, probes; they are part of the history as well.
    await waitFor(async () => {
      writer.send('probe');
      await sleep(100);
      return watcher.got.length > 0;
    }, 10000);
    writer.send('edit-1');
    writer.send('edit-2');
    await waitFor(() => watcher.got.includes('edit-2'));
    watcher.terminate();
    const late = await join(b.url('/ws/doc?doc=shared'));
    const got = await received(late, watcher.got.length);
    expect(got.slice(-2)).toEqual(['edit-1', 'edit-2']);
    expect(b.engine.getChannel('/ws/doc').history('shared').slice(-2)).toEqual(['edit-1', 'edit-2']);
  });

  test('a node that starts later gets a room’s history from the others before its first joiner', async () => {
    const writer = await join(a.url('/ws/doc?doc=before'));
    writer.send('typed-1');
    writer.send(Buffer.from([0, 2, 42]));
    await waitFor(() => a.engine.getChannel('/ws/doc').history('before').length === 2);
    const c = await startServer((engine) => {
      engine.channel('/ws/doc', { roomQuery: 'doc', relay: true, history: true, adapter: createAdapter(redis.url) });
    });
    try {
      // Once c's subscription is in place (the count of the fleet includes it).
      await waitFor(async () => (await c.engine.getChannel('/ws/doc').count(null, { cluster: true })) >= 1, 10000, 100);
      const late = await join(c.url('/ws/doc?doc=before'));
      expect(await received(late, 2)).toEqual(['typed-1', Buffer.from([0, 2, 42])]);
      // A room no node has starts empty, after the nodes said so.
      const fresh = await join(c.url('/ws/doc?doc=nobody-has-it'));
      expect(await silent(fresh, 200)).toBe(true);
    } finally {
      for (const ws of sockets.splice(0)) ws.terminate();
      await c.close();
    }
  });
});
