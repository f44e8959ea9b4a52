// sidewire/redis-adapter: @socket.io/redis-adapter's createAdapter on sidewire's engine.
import type { Namespace } from './index';

export interface RedisAdapterOptions {
  /** redis://[user:password@]host:port[/db] (sidewire's own form). Default: $REDIS_URL or redis://127.0.0.1:6379. */
  url?: string;
  /** The prefix of every Redis channel, as the official adapter's. Default "socket.io". */
  key?: string;
  /** How long fetchSockets(), serverSideEmitWithAck() and allRooms() wait for the other nodes (ms). Default 5000. */
  requestsTimeout?: number;
  /** Answers go to the asking node's own response channel. Default false. */
  publishOnSpecificResponseChannel?: boolean;
  /** The prefix of raw channels' Redis channels. Default "sidewire-channel". */
  channelKey?: string;
  /** Bytes of publishes kept while Redis is away; past it they are dropped and counted. Default 8 MiB. */
  maxPendingBytes?: number;
  /** How long one connection attempt may take (ms). Default 5000. */
  connectTimeoutMs?: number;
}

/** An adapter for `new Server(httpServer, { adapter })`, `io.adapter(...)` and `engine.channel(path, { adapter })`. */
export type SidewireAdapterFactory = ((nsp: Namespace) => unknown) & { readonly __sidewireCluster?: never };

export function createAdapter(url?: string | URL, opts?: Omit<RedisAdapterOptions, 'url'>): SidewireAdapterFactory;
export function createAdapter(opts: RedisAdapterOptions): SidewireAdapterFactory;
/** node-redis (4, 5) or ioredis (5) clients: their connection settings are used; the engine opens its own connections. */
export function createAdapter(pubClient: object, subClient: object, opts?: Omit<RedisAdapterOptions, 'url'>): SidewireAdapterFactory;
export default createAdapter;

export interface ShardedRedisAdapterOptions {
  /** redis://[user:password@]host:port[/db]. Default: $REDIS_URL or redis://127.0.0.1:6379. */
  url?: string;
  /** The prefix of every Redis channel, as the official sharded adapter's. Default "socket.io". */
  channelPrefix?: string;
  /**
   * "dynamic" (default): a channel of its own for each public room, subscribed by the nodes where
   * the room has members; "dynamic-private": for socket ids too; "static": one channel per namespace.
   */
  subscriptionMode?: 'static' | 'dynamic' | 'dynamic-private';
  /** How long fetchSockets() and serverSideEmitWithAck() wait for the other nodes (ms). Default 5000. */
  requestsTimeout?: number;
  channelKey?: string;
  maxPendingBytes?: number;
  connectTimeoutMs?: number;
}

/** @socket.io/redis-adapter's createShardedAdapter: Redis 7's SPUBLISH/SSUBSCRIBE. */
export function createShardedAdapter(url?: string | URL, opts?: Omit<ShardedRedisAdapterOptions, 'url'>): SidewireAdapterFactory;
export function createShardedAdapter(opts: ShardedRedisAdapterOptions): SidewireAdapterFactory;
export function createShardedAdapter(
  pubClient: object,
  subClient: object,
  opts?: Omit<ShardedRedisAdapterOptions, 'url'>,
): SidewireAdapterFactory;

export interface RedisStreamsAdapterOptions {
  /** redis://[user:password@]host:port[/db]. Default: $REDIS_URL or redis://127.0.0.1:6379. */
  url?: string;
  /** The stream's name (or the streams' prefix with streamCount). Default "socket.io". */
  streamName?: string;
  /** Namespaces spread over this many streams (streamName-0 ...), by the hash of their name. Default 1. */
  streamCount?: number;
  /** The prefix of the pub/sub channels of requests and answers. Default "socket.io". */
  channelPrefix?: string;
  /** Requests and answers on Redis 7's SPUBLISH/SSUBSCRIBE. Default false. */
  useShardedPubSub?: boolean;
  /** XADD MAXLEN ~ (the entries a stream keeps, and so how far back a client can recover). Default 10000. */
  maxLen?: number;
  /** XREAD COUNT. Default 100. */
  readCount?: number;
  /** XREAD BLOCK (ms). Default 5000. */
  blockTimeInMs?: number;
  /** The prefix of the keys of disconnected sockets' sessions. Default "sio:session:". */
  sessionKeyPrefix?: string;
  /** Accepted for the official adapter's sake; its 0.3 adapter sends no heartbeats either. */
  heartbeatInterval?: number;
  heartbeatTimeout?: number;
  /** How long fetchSockets() and serverSideEmitWithAck() wait for the other nodes (ms). Default 5000. */
  requestsTimeout?: number;
  channelKey?: string;
  maxPendingBytes?: number;
  connectTimeoutMs?: number;
}

/**
 * @socket.io/redis-streams-adapter's createAdapter: broadcasts through a Redis stream, and
 * connection state recovery across the fleet. A node-redis or ioredis client's settings are
 * used; the engine opens its own connections.
 */
export function createStreamsAdapter(redisClient: object, opts?: Omit<RedisStreamsAdapterOptions, 'url'>): SidewireAdapterFactory;
export function createStreamsAdapter(url?: string | URL, opts?: Omit<RedisStreamsAdapterOptions, 'url'>): SidewireAdapterFactory;
export function createStreamsAdapter(opts: RedisStreamsAdapterOptions): SidewireAdapterFactory;
