// sidewire/redis-streams-adapter: @socket.io/redis-streams-adapter's createAdapter on sidewire's engine.
import type { RedisStreamsAdapterOptions, SidewireAdapterFactory } from './redis-adapter';

export type { RedisStreamsAdapterOptions };
export function createAdapter(redisClient: object, opts?: Omit<RedisStreamsAdapterOptions, 'url'>): SidewireAdapterFactory;
export function createAdapter(url?: string | URL, opts?: Omit<RedisStreamsAdapterOptions, 'url'>): SidewireAdapterFactory;
export function createAdapter(opts: RedisStreamsAdapterOptions): SidewireAdapterFactory;
