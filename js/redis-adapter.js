'use strict';
// sidewire/redis-adapter: @socket.io/redis-adapter's API on sidewire's engine. The engine
// speaks to Redis itself, from its own thread (hiredis's reader and formatter over Asio),
// with the official adapter's channels and messages, so sidewire nodes, socket.io nodes with
// @socket.io/redis-adapter and @socket.io/redis-emitter share one fleet.
//
//   createAdapter('redis://127.0.0.1:6379', { key, requestsTimeout })   sidewire's own form
//   createAdapter({ url, key, ... })
//   createAdapter(pubClient, subClient, opts)   node-redis or ioredis clients, as the official
//     package takes them: sidewire reads their connection settings and opens its own
//     connections (the clients themselves stay unused).
//   createShardedAdapter(...)   the same three forms, for Redis 7's sharded pub/sub, as the
//     official createShardedAdapter (channelPrefix, subscriptionMode).
//   createStreamsAdapter(redisClient, opts)   @socket.io/redis-streams-adapter's createAdapter
//     (one client), or (url, opts) / ({ url, ...opts }): Redis streams, with connection state
//     recovery across the fleet. Also sidewire/redis-streams-adapter's createAdapter.
const { ClusterAdapter, CLUSTER } = require('./socketio/cluster-adapter.js');
const { ShardedAdapter } = require('./socketio/sharded-adapter.js');
const { StreamsAdapter } = require('./socketio/streams-adapter.js');

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const KNOWN = new Set([
  'url',
  'key',
  'requestsTimeout',
  'publishOnSpecificResponseChannel',
  'channelKey',
  'maxPendingBytes',
  'connectTimeoutMs',
  'parser',
]);
const KNOWN_SHARDED = new Set([
  'url',
  'channelPrefix',
  'subscriptionMode',
  'requestsTimeout',
  'channelKey',
  'maxPendingBytes',
  'connectTimeoutMs',
]);
const KNOWN_STREAMS = new Set([
  'url',
  'streamName',
  'streamCount',
  'channelPrefix',
  'useShardedPubSub',
  'maxLen',
  'readCount',
  'blockTimeInMs',
  'sessionKeyPrefix',
  'heartbeatInterval',
  'heartbeatTimeout',
  'onlyPlaintext',
  'requestsTimeout',
  'channelKey',
  'maxPendingBytes',
  'connectTimeoutMs',
]);
const SUBSCRIPTION_MODES = new Set(['static', 'dynamic', 'dynamic-private']);

function isClient(v) {
  return (
    v !== null &&
    typeof v === 'object' &&
    (typeof v.pSubscribe === 'function' || typeof v.psubscribe === 'function' || typeof v.publish === 'function')
  );
}

function hostPart(host) {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function buildUrl({ host = '127.0.0.1', port = 6379, username, password, db }) {
  let auth = '';
  if (password !== undefined && password !== null && password !== '') {
    auth = `${username ? encodeURIComponent(username) : ''}:${encodeURIComponent(password)}@`;
  } else if (username) {
    auth = `${encodeURIComponent(username)}@`;
  }
  return `redis://${auth}${hostPart(host)}:${port}${db ? `/${db}` : ''}`;
}

/** The URL of the Redis a node-redis (4, 5) or ioredis (5) client is set to reach. */
function urlOfClient(client) {
  if (client.isCluster || client.constructor?.name === 'Cluster' || Array.isArray(client.startupNodes)) {
    throw new TypeError('sidewire/redis-adapter: Redis Cluster clients are not supported; give it one Redis server');
  }
  const o = client.options || {};
  // ioredis: options.host / port / password / username / db; a unix path is not supported.
  if (typeof client.psubscribe === 'function' && typeof client.pSubscribe !== 'function') {
    if (o.path) throw new TypeError('sidewire/redis-adapter: Redis over a unix socket is not supported');
    if (o.tls) throw new TypeError('sidewire/redis-adapter: Redis over TLS is not supported yet');
    return buildUrl({ host: o.host, port: o.port, username: o.username, password: o.password, db: o.db });
  }
  // node-redis: options.url, or options.socket.{ host, port } with username/password/database.
  if (o.url) {
    const u = new URL(o.url);
    if (o.password !== undefined || o.username !== undefined || o.database !== undefined) {
      return buildUrl({
        host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
        port: Number(u.port) || 6379,
        username: o.username ?? decodeURIComponent(u.username),
        password: o.password ?? decodeURIComponent(u.password),
        db: o.database ?? Number(u.pathname.slice(1) || 0),
      });
    }
    if (u.protocol === 'rediss:') throw new TypeError('sidewire/redis-adapter: Redis over TLS is not supported yet');
    return o.url;
  }
  const socket = o.socket || {};
  if (socket.path) throw new TypeError('sidewire/redis-adapter: Redis over a unix socket is not supported');
  if (socket.tls) throw new TypeError('sidewire/redis-adapter: Redis over TLS is not supported yet');
  return buildUrl({ host: socket.host, port: socket.port, username: o.username, password: o.password, db: o.database });
}

function settingsOf(opts, url, sharded = false) {
  for (const k of Object.keys(opts)) {
    if (!(sharded ? KNOWN_SHARDED : KNOWN).has(k)) {
      process.emitWarning(`sidewire/redis-adapter: unknown option "${k}" is ignored`, 'SidewireWarning');
    }
  }
  if (sharded) {
    const subscriptionMode = opts.subscriptionMode === undefined ? 'dynamic' : String(opts.subscriptionMode);
    if (!SUBSCRIPTION_MODES.has(subscriptionMode)) {
      throw new RangeError(`sidewire/redis-adapter: subscriptionMode must be "static", "dynamic" or "dynamic-private", not "${subscriptionMode}"`);
    }
    const { channelPrefix, subscriptionMode: _mode, ...rest } = opts;
    return {
      ...settingsOf({ ...rest, ...(channelPrefix === undefined ? {} : { key: channelPrefix }) }, url),
      mode: 'sharded',
      subscriptionMode,
    };
  }
  if (opts.parser !== undefined) {
    throw new TypeError(
      'sidewire/redis-adapter: a custom parser is not supported; the engine speaks the official default (notepack.io MessagePack)',
    );
  }
  const requestsTimeout = opts.requestsTimeout === undefined ? 5000 : Number(opts.requestsTimeout);
  if (!(requestsTimeout > 0)) throw new RangeError('sidewire/redis-adapter: requestsTimeout must be a positive number of ms');
  if (/^rediss:/i.test(url)) throw new TypeError('sidewire/redis-adapter: Redis over TLS (rediss://) is not supported yet');
  return {
    url,
    key: opts.key === undefined ? 'socket.io' : String(opts.key),
    requestsTimeout,
    publishOnSpecificResponseChannel: Boolean(opts.publishOnSpecificResponseChannel),
    channelKey: opts.channelKey === undefined ? 'sidewire-channel' : String(opts.channelKey),
    maxPendingBytes: opts.maxPendingBytes,
    connectTimeoutMs: opts.connectTimeoutMs,
  };
}

function positiveInteger(opts, name, fallback, max = 0x7fffffff) {
  if (opts[name] === undefined) return fallback;
  const n = Number(opts[name]);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new RangeError(`sidewire/redis-adapter: ${name} must be an integer from 1 to ${max}, not ${opts[name]}`);
  }
  return n;
}

// @socket.io/redis-streams-adapter's options, with its defaults.
function streamsSettingsOf(opts, url) {
  for (const k of Object.keys(opts)) {
    if (!KNOWN_STREAMS.has(k)) process.emitWarning(`sidewire/redis-adapter: unknown option "${k}" is ignored`, 'SidewireWarning');
  }
  if (opts.onlyPlaintext) {
    // The official option writes binary values as JSON ({ type: 'Buffer', data: [...] }), which
    // no receiver turns back into binary: sidewire keeps them binary (base64 MessagePack).
    throw new TypeError('sidewire/redis-adapter: onlyPlaintext is not supported; binary values travel as MessagePack');
  }
  const { channelPrefix, streamName, sessionKeyPrefix, useShardedPubSub, ...rest } = opts;
  for (const k of ['streamCount', 'maxLen', 'readCount', 'blockTimeInMs', 'heartbeatInterval', 'heartbeatTimeout', 'onlyPlaintext']) delete rest[k];
  const base = settingsOf({ ...rest, ...(channelPrefix === undefined ? {} : { key: channelPrefix }) }, url);
  return {
    ...base,
    mode: 'streams',
    streamName: streamName === undefined ? 'socket.io' : String(streamName),
    streamCount: positiveInteger(opts, 'streamCount', 1, 1024),
    maxLen: positiveInteger(opts, 'maxLen', 10000),
    readCount: positiveInteger(opts, 'readCount', 100),
    blockTimeInMs: positiveInteger(opts, 'blockTimeInMs', 5000),
    sessionKeyPrefix: sessionKeyPrefix === undefined ? 'sio:session:' : String(sessionKeyPrefix),
    useShardedPubSub: Boolean(useShardedPubSub),
  };
}

function settingsFrom(args, sharded) {
  const [first, second, third] = args;
  const name = sharded ? 'createShardedAdapter' : 'createAdapter';
  if (typeof first === 'string' || first instanceof URL) return settingsOf(second || {}, String(first), sharded);
  if (isClient(first)) {
    if (!isClient(second)) throw new TypeError(`sidewire/redis-adapter: ${name}(pubClient, subClient, opts) needs both clients`);
    return settingsOf(third || {}, urlOfClient(first), sharded);
  }
  if (first === undefined || (first !== null && typeof first === 'object')) {
    const opts = first || {};
    return settingsOf(opts, opts.url === undefined ? process.env.REDIS_URL || DEFAULT_URL : String(opts.url), sharded);
  }
  throw new TypeError(`sidewire/redis-adapter: ${name}(url | options | pubClient, subClient, opts)`);
}

/**
 * @socket.io/redis-streams-adapter's createAdapter on the engine: (redisClient, opts) with a
 * node-redis or ioredis client (its settings are used, the engine opens its own connections),
 * (url, opts), or ({ url, ...opts }).
 */
function createStreamsAdapter(first, second) {
  let settings;
  if (typeof first === 'string' || first instanceof URL) settings = streamsSettingsOf(second || {}, String(first));
  else if (isClient(first)) settings = streamsSettingsOf(second || {}, urlOfClient(first));
  else if (first === undefined || (first !== null && typeof first === 'object')) {
    const opts = first || {};
    settings = streamsSettingsOf(opts, opts.url === undefined ? process.env.REDIS_URL || DEFAULT_URL : String(opts.url));
  } else {
    throw new TypeError('sidewire/redis-adapter: createStreamsAdapter(redisClient | url | options, opts)');
  }
  const factory = function SidewireRedisStreamsAdapter(nsp) {
    return new StreamsAdapter(nsp, settings);
  };
  factory[CLUSTER] = settings;
  return factory;
}

/**
 * The adapter for `new Server(httpServer, { adapter })`, `io.adapter(...)` and
 * `engine.channel(path, { adapter })`.
 */
function createAdapter(...args) {
  const settings = settingsFrom(args, false);
  const factory = function SidewireRedisAdapter(nsp) {
    return new ClusterAdapter(nsp, settings);
  };
  factory[CLUSTER] = settings;
  return factory;
}

/** The same on Redis 7's sharded pub/sub (SPUBLISH/SSUBSCRIBE), as @socket.io/redis-adapter's. */
function createShardedAdapter(...args) {
  const settings = settingsFrom(args, true);
  const factory = function SidewireShardedRedisAdapter(nsp) {
    return new ShardedAdapter(nsp, settings);
  };
  factory[CLUSTER] = settings;
  return factory;
}

module.exports = {
  createAdapter,
  createShardedAdapter,
  createStreamsAdapter,
  RedisAdapter: ClusterAdapter,
  ShardedRedisAdapter: ShardedAdapter,
  RedisStreamsAdapter: StreamsAdapter,
};
module.exports.default = createAdapter;
