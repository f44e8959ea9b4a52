'use strict';
// A fleet on Redis 7's sharded pub/sub: @socket.io/redis-adapter's createShardedAdapter on the
// socket.io nodes and sidewire/redis-adapter's createShardedAdapter on the sidewire nodes, in
// one fleet. The same two-node suite as the classic adapter's (tests/js/helpers/two-node-fleet.js)
// runs in each subscription mode:
//   dynamic          (the default) a broadcast to one public room goes on the room's channel,
//                    which only the nodes where the room lives subscribe to
//   dynamic-private  private rooms (socket ids) get their channel too
//   static           everything on the namespace's channel
// socket.io ↔ socket.io checks the suite; the mixed pairs check the wire; sidewire ↔ sidewire
// the engine's own path.
const { startNode, stopAll, record, counts, once, poll, fleetFormed } = require('./helpers/cluster');
const { describeTwoNodeFleet, ALL_PAIRS, suiteRedis } = require('./helpers/two-node-fleet');

jest.setTimeout(30000);

const MIXED = [
  ['socket.io', 'sidewire'],
  ['sidewire', 'sidewire'],
];

const redis = suiteRedis(); // with a node-redis client of the test's own, for PUBSUB

describeTwoNodeFleet('sharded dynamic: %s', { pairs: ALL_PAIRS, redisUrl: () => redis.url, nodeOptions: { sharded: 'dynamic' } });
describeTwoNodeFleet('sharded dynamic-private: %s', { pairs: MIXED, redisUrl: () => redis.url, nodeOptions: { sharded: 'dynamic-private' } });
describeTwoNodeFleet('sharded static: %s', { pairs: MIXED, redisUrl: () => redis.url, nodeOptions: { sharded: 'static' } });

// What Redis sees: which shard channels each node subscribes to (PUBSUB SHARDCHANNELS), as a
// room appears on a node and goes, in each mode, a socket.io node next to a sidewire node.
describe.each(['dynamic', 'dynamic-private', 'static'])('shard channels, %s mode', (mode) => {
  let S;
  let W;
  const prefix = `sh-${mode}`;

  beforeAll(async () => {
    [S, W] = await Promise.all([
      startNode('socket.io', { redisUrl: redis.url, name: 'S', key: prefix, sharded: mode }),
      startNode('sidewire', { redisUrl: redis.url, name: 'W', key: prefix, sharded: mode }),
    ]);
    await fleetFormed([S, W]);
  });

  afterAll(() => stopAll());

  afterEach(() => {
    for (const node of [S, W]) if (node) node.disconnectClients();
  });

  /** The shard channels with `prefix#/#` and their subscriber counts. */
  async function channels() {
    const names = await redis.query.sendCommand(['PUBSUB', 'SHARDCHANNELS', `${prefix}#/#*`]);
    const out = {};
    for (const name of names) {
      const reply = await redis.query.sendCommand(['PUBSUB', 'SHARDNUMSUB', name]);
      out[name.slice(`${prefix}#/#`.length)] = Number(reply[1]);
    }
    return out;
  }

  async function channelsAre(want, what) {
    let last;
    await poll(
      async () => {
        last = await channels();
        return Object.entries(want).every(([k, n]) => (last[k] || 0) === n);
      },
      { timeoutMs: 3000, intervalMs: 50, what },
    ).catch((err) => {
      throw new Error(`${err.message}; channels: ${JSON.stringify(last)}`);
    });
  }

  test('a room gets its channel on the nodes where it lives (dynamic modes), and loses it when it empties', async () => {
    const s1 = await S.connect('/', { name: 's1', rooms: ['lobby'] });
    const w1 = await W.connect('/', { name: 'w1', rooms: ['lobby', 'only-w'] });
    const dynamic = mode !== 'static';
    await channelsAre({ 'lobby#': dynamic ? 2 : 0, 'only-w#': dynamic ? 1 : 0 }, 'rooms subscribed');
    // Private rooms: their own channel in dynamic-private mode only.
    const ids = await channels();
    // In dynamic mode a sidewire id (22 characters) has one too: publishers take only a
    // 20-character room for a socket id, and send a message to any other on its channel.
    expect(ids[`${w1.id}#`] || 0).toBe(dynamic ? 1 : 0);
    expect(ids[`${s1.id}#`] || 0).toBe(mode === 'dynamic-private' ? 1 : 0);

    // A broadcast to the room reaches both nodes' members (on its channel in dynamic modes).
    const rec = record({ s1, w1 }, 'news');
    await S.call('emit', { to: ['only-w'], event: 'news', args: ['x'] });
    expect(counts(await rec.settle(1))).toEqual(once('w1'));

    // The last member leaves: the node unsubscribes.
    await new Promise((resolve) => w1.emit('leave', ['only-w'], resolve));
    await channelsAre({ 'only-w#': 0, 'lobby#': dynamic ? 2 : 0 }, 'after the last member left');
    w1.disconnect();
    await channelsAre({ 'lobby#': dynamic ? 1 : 0, [`${w1.id}#`]: 0 }, 'after the client left');
  });

  test('serverCount() is the subscribers of the namespace channel on both', async () => {
    expect(await S.call('serverCount', {})).toBe(2);
    expect(await W.call('serverCount', {})).toBe(2);
    const n = await redis.query.sendCommand(['PUBSUB', 'SHARDNUMSUB', `${prefix}#/#`]);
    expect(Number(n[1])).toBe(2);
  });

  test('the engine reports the mode in its stats', async () => {
    const stats = await W.call('stats', {});
    expect(stats.mode).toBe('sharded');
    expect(stats.subscriptionMode).toBe(mode);
  });
});
