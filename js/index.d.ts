/// <reference types="node" />
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { ParsedUrlQuery } from 'node:querystring';
import type { Duplex } from 'node:stream';

export type Payload = string | Buffer | ArrayBuffer | ArrayBufferView;
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'critical' | 'off';

export interface EngineOptions {
  /** Engine I/O threads. Default 1 (env SIDEWIRE_IO_THREADS). */
  ioThreads?: number;
  /** Upgrades whose path starts with this are the engine's. Default '/ws/'. */
  wsPrefix?: string;
  /** How long close() lets queues and closing handshakes drain. Default 5000 (env SIDEWIRE_DRAIN_MS). */
  drainMs?: number;
  /** How long a WebSocket closing handshake may take. Default 3000. */
  closeTimeoutMs?: number;
  /** The I/O threads' niceness (Linux, 0–19, relative to the process); 0 turns it off. Default 5 (env SIDEWIRE_IO_NICE). */
  ioNice?: number;
  /**
   * Coalesced writes: how long (ms, fractions allowed, 0–1000) a connection's outgoing WebSocket
   * frames may wait so that one write carries many of them. Default 0 (env SIDEWIRE_WRITE_DELAY_MS).
   */
  writeDelayMs?: number;
  /**
   * After a burst of connections, once the I/O threads have been quiet for 2 s, run one full
   * collection of the JS heap (a few ms on Node's thread) so the process hands back what the burst
   * left. Default true (env SIDEWIRE_GC_AFTER_BURST=0 turns it off).
   */
  gcAfterBurst?: boolean;
  /** Default 'info' (env SIDEWIRE_LOG_LEVEL). */
  logLevel?: LogLevel;
  /** 'json': one JSON object a line (with conn, address and reason on a connection's lines). Default SIDEWIRE_LOG_FORMAT, 'text'. The engine's logger is the process's. */
  logFormat?: 'text' | 'json';
  /** Register as the process-wide engine returned by getEngine(). Default true. */
  global?: boolean;
}

export type AuthorizeVerdict = boolean | undefined | { status?: number; message?: string };

export type ChannelMessage = string | Buffer;

/** A channel's room history in the engine: what a room was relayed or broadcast, replayed in order to a client that joins later. */
export interface HistoryOptions {
  /** Per room; past it the oldest go. Default 1000. */
  maxMessages?: number;
  /** Per room, frames as sent; past it the oldest go. Default 1 MiB. */
  maxBytes?: number;
  /** Entries older than this are not replayed (0: kept until pushed out). Default 0. */
  ttlMs?: number;
  /** Rooms with a history; past it the least recently sent to goes. Default 10000. */
  maxRooms?: number;
  /** Only messages that start with one of these are kept (all when unset); every message is still relayed. */
  prefixes?: Array<string | Buffer | Uint8Array>;
  /** Messages since the last compaction (or half of maxBytes) after which `compact` runs. Default maxMessages / 2. */
  compactAfter?: number;
  /** Gets a room's entries, returns what replaces them (null: leave them). Runs on Node's main thread. */
  compact?: (room: string, messages: ChannelMessage[]) => Array<string | Buffer | Uint8Array> | null | undefined | Promise<Array<string | Buffer | Uint8Array> | null | undefined>;
  /** Before an upgrade into the room named by roomQuery whose history this process does not hold: the stored messages. */
  load?: (room: string) => Array<string | Buffer | Uint8Array> | null | undefined | Promise<Array<string | Buffer | Uint8Array> | null | undefined>;
}

export interface ChannelOptions {
  /** Keep each room's messages in the engine and replay them to late joiners (true: the defaults). */
  history?: boolean | HistoryOptions;
  /** JWT in the engine: an upgrade without a valid token (query, Bearer header or cookie) is refused 401. */
  auth?: { jwt?: Omit<JwtOptions, 'authField' | 'refreshEvent'> };
  /** Limits in the engine: messages per connection ('*' only), connection caps (429), the idle timeout (close 1000). Default policy 'drop'. */
  limits?: Omit<LimitsOptions, 'events' | 'errorEvent'> & { events?: { '*': RateLimit } };
  /** Proxies whose X-Forwarded-For / X-Real-IP name the client (limits, client.remoteAddress). */
  trustProxy?: TrustProxy;
  /** sidewire/redis-adapter's createAdapter(): broadcast() and the relay reach the room's members on every node. */
  adapter?: (nsp: any) => unknown;
  /** Query key whose value names the room a client joins on connect (e.g. 'documentId'). */
  roomQuery?: string;
  /** Native relay: every message goes to the other members of the sender's rooms, without JS. */
  relay?: boolean;
  /** Handle {"join":"room"} and {"leave":"room"} text messages natively. */
  joinMessages?: boolean;
  /** Largest message in bytes; a larger one closes the sender with 1009. Default 1 MiB. */
  maxPayload?: number;
  /** Ping every N ms; 0 disables. Default 25000. */
  pingInterval?: number;
  /** Close a peer whose pong does not come within N ms of a ping. Default 20000. */
  pingTimeout?: number;
  /** Outgoing queue limit per connection (64 bytes counted per queued frame beyond its own); a peer past it is dropped. Default 8 MiB. */
  maxQueuedBytes?: number;
  /** Rooms one connection may be in; a join message past it closes with 1008. Default 1000. */
  maxRooms?: number;
  /** ms a fragmented message may take to complete; then close 1008. Default 30000. */
  messageTimeout?: number;
  /** Runs before the upgrade is accepted. Throw or return false / {status, message} to refuse. */
  authorize?: (req: IncomingMessage) => AuthorizeVerdict | Promise<AuthorizeVerdict>;
  connection?: (client: Client, req: IncomingMessage | null) => void;
  message?: (client: Client, data: string | Buffer, isBinary: boolean) => void;
  close?: (client: Client, code: number, reason: string) => void;
}

export declare class Client {
  readonly id: number;
  readonly channel: Channel;
  readonly request: IncomingMessage | null;
  readonly headers: IncomingMessage['headers'];
  readonly url: string;
  readonly remoteAddress: string | undefined;
  /** The claims of its verified token (a channel with auth.jwt). */
  readonly user: Record<string, unknown> | undefined;
  readonly query: Record<string, string>;
  /** Rooms joined through JS, and the room from the query. */
  readonly rooms: Set<string>;
  connected: boolean;
  send(data: Payload): this;
  join(room: string | string[]): this;
  leave(room: string): this;
  close(code?: number, reason?: string): void;
}

export interface ChannelEvents {
  connection: [client: Client, req: IncomingMessage | null];
  message: [client: Client, data: string | Buffer, isBinary: boolean];
  close: [client: Client, code: number, reason: string];
}

export declare class Channel extends EventEmitter<ChannelEvents> {
  readonly engine: Engine;
  readonly path: string;
  readonly index: number;
  /** Live clients; kept only while the channel has connection, message or close listeners. */
  readonly clients: Map<number, Client>;
  broadcast(room: string | null, data: Payload, options?: { except?: Client | number }): this;
  send(client: Client | number, data: Payload): this;
  join(client: Client | number, room: string): this;
  leave(client: Client | number, room: string): this;
  close(client: Client | number, code?: number, reason?: string): this;
  /** Open connections on the channel, or in one room. */
  count(room?: string | null): number;
  /**
   * The same on every node of the channel's fleet (its adapter): rejects when a node does not
   * answer within requestsTimeout; this node's count without an adapter or while Redis is away.
   */
  count(room: string | null | undefined, options: { cluster: true }): Promise<number>;
  /** The connections in each room on this node. */
  rooms(): Map<string, number>;
  /** What the engine keeps for a room, oldest first (throws without the history option). */
  history(room: string): ChannelMessage[];
  /** Replaces everything a room keeps. */
  setHistory(room: string, messages: Array<string | Buffer | Uint8Array>): this;
  clearHistory(room: string): this;
  /** Runs history.compact on the room now; resolves whether its result went in. */
  compactHistory(room: string): Promise<boolean>;
}

export interface EngineStats {
  connections: number;
  connectionsTotal: number;
  messagesReceived: number;
  messagesDelivered: number;
  upgradesRefused: number;
  protocolErrors: number;
  backpressureDrops: number;
  heartbeatTimeouts: number;
  /** sendmsg calls; messagesDelivered / writes is how many messages one syscall carried. */
  writes: number;
  /** Exceptions caught on an I/O thread; each closed the connection it came from. */
  internalErrors: number;
  /** Times a connection was not read because JS was behind with its events. */
  jsBackpressurePauses: number;
  /** Refusals by limit (README, Security). */
  limits: Record<'namespaces' | 'rooms' | 'attachments' | 'headers' | 'query' | 'outgoingQueue' | 'unfinishedMessage' | 'eventsForJs' | 'payload' | 'tokenMissing' | 'tokenInvalid' | 'tokenExpired' | 'tokenNotYetValid' | 'rateLimited' | 'connectionsPerIp' | 'connectionsPerUser' | 'connectRatePerIp' | 'idleTimeout', number>;
  /** The process's malloc: bytes in use and held from the system. */
  mallocInUse: number;
  mallocHeld: number;
  /** Socket bytes in and out (WebSocket; polling bodies). */
  bytesReceived: number;
  bytesSent: number;
  /** Broadcasts (from JS, other nodes, channel relays) and the connections they reached. */
  broadcasts: number;
  broadcastRecipients: number;
  /** Socket.IO sockets that connected, channel clients that opened. */
  connects: { socketio: number; channel: number };
  /** Disconnects by reason (Socket.IO) and close code (channels). */
  disconnects: { socketio: Record<string, number>; channel: Record<string, number> };
  /** CPU seconds of each I/O thread: its busy time. */
  ioThreadCpuSeconds: number[];
  /** Engine.IO sessions by transport. */
  sessions: { polling: number; websocket: number };
  channels: Record<string, {
    connections: number;
    rooms: Record<string, number>;
    /** With the history option: rooms kept, their messages and bytes, and what went (bounds, ttl, evicted rooms), compactions landed. */
    history?: { rooms: number; messages: number; bytes: number; dropped: number; expired: number; compactions: number; roomsEvicted: number };
  }>;
  /** The cluster adapter (sidewire/redis-adapter), or null when the engine is in no fleet. */
  adapter: AdapterStats | null;
}

export interface AdapterStats {
  type: 'redis';
  /** 'pubsub' (createAdapter), 'sharded' (createShardedAdapter, SPUBLISH/SSUBSCRIBE) or 'streams' (createStreamsAdapter). */
  mode: 'pubsub' | 'sharded' | 'streams';
  /** createShardedAdapter's subscriptionMode. */
  subscriptionMode?: 'static' | 'dynamic' | 'dynamic-private';
  /** 'ready' when every Redis connection is, else 'connecting' or 'disconnected' ('closed' once closed). */
  state: 'ready' | 'connecting' | 'disconnected' | 'closed';
  publisher: string;
  subscriber: string;
  /** The streams adapter's third connection, which reads the stream (XREAD BLOCK). */
  reader?: string;
  /** Messages handed to Redis: broadcasts, requests, responses. */
  published: number;
  /** Broadcasts from other nodes delivered here. */
  received: number;
  /** Publishes lost while Redis was away and maxPendingBytes was reached. */
  dropped: number;
  reconnects: number;
  /** Messages from the fleet that did not decode. */
  invalid: number;
  pendingBytes: number;
}

export declare class Engine extends EventEmitter {
  constructor(options?: EngineOptions);
  readonly options: Required<Omit<EngineOptions, 'global' | 'logLevel'>> & { logLevel?: LogLevel };
  channel(path: string, options?: ChannelOptions): Channel;
  getChannel(path: string): Channel | undefined;
  /** Takes the upgrade if its path is the engine's and returns true; returns false otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * Adds the engine's 'upgrade' listener to the server (once per server, whoever asks): the
   * engine takes its paths, and `otherwise`, when given, gets every other upgrade (Next's HMR,
   * say), so the server needs no 'upgrade' listener of its own.
   */
  attach(server: HttpServer, otherwise?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): this;
  /**
   * Listens on the port in the engine (use instead of server.listen()): the engine takes the
   * WebSocket upgrades it answers alone and hands every other connection to `server` untouched.
   * Resolves with the port.
   */
  listen(
    server: HttpServer,
    options?: { port?: number; host?: string; backlog?: number; acceptQueues?: number; tls?: TlsOptions; reloadOnSighup?: boolean },
  ): Promise<number>;
  /** New TLS handshakes use the key and certificate read again (or these); open connections keep theirs. */
  reloadTls(tls?: TlsOptions): void;
  /** Where engine.listen() listens, or null. */
  address(): { address: string; family: string; port: number } | null;
  stats(): EngineStats;
  /** The engine's metrics and Node's (event-loop lag, CPU, memory) in Prometheus's text format. */
  metrics(): Promise<string>;
  readonly metricsContentType: string;
  /** 1001 to every connection, drain for up to drainMs, stop the engine's threads. */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** The engine the custom server created in this process; throws when there is none. */
export declare function getEngine(): Engine;

// ==================================================================================== Socket.IO
// socket.io 4.x's server API (js/socketio): the same generics as socket.io's typings, so that
// `import { Server } from 'sidewire'` ports typed code unchanged.

export interface EventsMap {
  [event: string]: any;
}

export interface DefaultEventsMap {
  [event: string]: (...args: any[]) => void;
}

export type EventNames<Map extends EventsMap> = keyof Map & (string | symbol);
export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>;

type IsAny<T> = 0 extends 1 & T ? true : false;
type IfAny<T, Yes = true, No = false> = IsAny<T> extends true ? Yes : No;

export type Last<T extends readonly unknown[]> = T extends readonly [infer E]
  ? E
  : T extends readonly [unknown, ...infer Tail]
    ? Last<Tail>
    : T extends ReadonlyArray<infer E>
      ? E
      : never;
export type AllButLast<T extends any[]> = T extends [...infer H, infer _L] ? H : any[];
export type FirstNonErrorTuple<T extends unknown[]> = T[0] extends Error ? T[1] : T[0];
export type FirstNonErrorArg<T> = T extends (...args: infer P) => any ? FirstNonErrorTuple<P> : any;
type LooseParameters<T> = T extends (...args: infer P) => any ? P : never;

/** Events whose last parameter is an acknowledgement callback. */
export type EventNamesWithAck<Map extends EventsMap, K extends EventNames<Map> = EventNames<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (Parameters<Map[K]> extends never[] ? never : Last<Parameters<Map[K]>> extends (...args: any[]) => any ? K : never)
    ? K
    : never
>;
/** Events without an acknowledgement callback. */
export type EventNamesWithoutAck<Map extends EventsMap, K extends EventNames<Map> = EventNames<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (Parameters<Map[K]> extends never[] ? K : never)
    ? K
    : K extends (Last<Parameters<Map[K]>> extends (...args: any[]) => any ? never : K)
      ? K
      : never
>;
/** Acknowledged events whose callback takes an Error first (after timeout()). */
export type EventNamesWithError<Map extends EventsMap, K extends EventNamesWithAck<Map> = EventNamesWithAck<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (LooseParameters<Last<Parameters<Map[K]>>>[0] extends Error ? K : never) ? K : never
>;
export type RemoveAcknowledgements<E extends EventsMap> = { [K in EventNamesWithoutAck<E>]: E[K] };

type PrependTimeoutError<T extends any[]> = {
  [K in keyof T]: T[K] extends (...args: infer P) => infer R ? (P[0] extends Error ? T[K] : (err: Error, ...args: P) => R) : T[K];
};
type MultiplyArray<T extends unknown[]> = { [K in keyof T]: T[K][] };
type InferFirstAndPreserveLabel<T extends any[]> = T extends [any, ...infer R] ? (T extends [...infer H, ...R] ? H : never) : never;
type ExpectMultipleResponses<T extends any[]> = {
  [K in keyof T]: T[K] extends (...args: infer P) => infer R
    ? P extends [Error]
      ? (err: Error) => R
      : P extends [Error, ...infer Rest]
        ? (err: Error, ...args: InferFirstAndPreserveLabel<MultiplyArray<Rest>>) => R
        : P extends []
          ? () => R
          : (...args: InferFirstAndPreserveLabel<MultiplyArray<P>>) => R
    : T[K];
};
/** After timeout(): each acknowledgement callback takes an Error first. */
export type DecorateAcknowledgements<E> = {
  [K in keyof E]: E[K] extends (...args: infer P) => infer R ? (...args: PrependTimeoutError<P>) => R : E[K];
};
/** Broadcasts: each acknowledgement callback receives one response per client. */
export type DecorateAcknowledgementsWithMultipleResponses<E> = {
  [K in keyof E]: E[K] extends (...args: infer P) => infer R ? (...args: ExpectMultipleResponses<P>) => R : E[K];
};
export type DecorateAcknowledgementsWithTimeoutAndMultipleResponses<E> = {
  [K in keyof E]: E[K] extends (...args: infer P) => infer R ? (...args: ExpectMultipleResponses<PrependTimeoutError<P>>) => R : E[K];
};

type ReservedOrUserEventNames<Reserved extends EventsMap, User extends EventsMap> = EventNames<Reserved> | EventNames<User>;
type FallbackToUntypedListener<T> = [T] extends [never] ? (...args: any[]) => void | Promise<void> : T;
type ReservedOrUserListener<Reserved extends EventsMap, User extends EventsMap, Ev extends ReservedOrUserEventNames<Reserved, User>> =
  FallbackToUntypedListener<Ev extends EventNames<Reserved> ? Reserved[Ev] : Ev extends EventNames<User> ? User[Ev] : never>;

export interface TypedEventBroadcaster<EmitEvents extends EventsMap> {
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
}

/** EventEmitter whose listeners and emits are typed (socket.io's StrictEventEmitter). */
export declare abstract class StrictEventEmitter<
  ListenEvents extends EventsMap,
  EmitEvents extends EventsMap,
  ReservedEvents extends EventsMap = {},
> extends EventEmitter implements TypedEventBroadcaster<EmitEvents> {
  on<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(ev: Ev, listener: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>): this;
  once<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(ev: Ev, listener: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>): this;
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
  listeners<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(event: Ev): ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>[];
}

export type Room = string;
export type SocketId = string;

export type DisconnectReason =
  | 'transport error'
  | 'transport close'
  | 'forced close'
  | 'ping timeout'
  | 'parse error'
  | 'server shutting down'
  | 'forced server close'
  | 'client namespace disconnect'
  | 'server namespace disconnect';

export interface Handshake {
  headers: IncomingHttpHeaders;
  time: string;
  address: string;
  xdomain: boolean;
  secure: boolean;
  issued: number;
  url: string;
  query: ParsedUrlQuery;
  auth: { [key: string]: any };
}

export interface ExtendedError extends Error {
  data?: any;
}

export type Event = [string, ...any[]];

export interface CorsOptions {
  origin?: boolean | string | RegExp | Array<string | RegExp> | ((origin: string | undefined, callback: (err: Error | null, origin?: boolean | string | RegExp | Array<string | RegExp>) => void) => void);
  methods?: string | string[];
  allowedHeaders?: string | string[];
  exposedHeaders?: string | string[];
  credentials?: boolean;
  maxAge?: number;
  /** Ignored unless false (its default), with a warning: sidewire answers preflights itself. */
  preflightContinue?: boolean;
  /** Ignored unless 204 (its default), with a warning. */
  optionsSuccessStatus?: number;
}

/** A verification key: a shared secret (HS*) or a PEM public key, certificate or KeyObject (RS*, ES*, EdDSA). */
export type JwtKeyMaterial = string | Buffer | import('crypto').KeyObject;

/** sidewire: JWT authentication, verified in the engine at every CONNECT (README, JWT authentication). */
export interface JwtOptions {
  secret?: JwtKeyMaterial | JwtKeyMaterial[];
  publicKey?: JwtKeyMaterial | JwtKeyMaterial[];
  /** Keys rotated by kid: a key with a kid checks only tokens that name it. */
  keys?: Array<{ kid?: string; secret?: JwtKeyMaterial; publicKey?: JwtKeyMaterial }>;
  /** A JWK set, read with Node's crypto when the Server is made. */
  jwks?: { keys: object[] };
  /** Default: every algorithm the keys can check. */
  algorithms?: Array<'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA'>;
  issuer?: string;
  audience?: string | string[];
  /** Leeway for exp and nbf. Default 0. */
  clockToleranceSec?: number;
  /** Default 8192. */
  maxTokenBytes?: number;
  /** A token without exp is refused. Default false. */
  requireExp?: boolean;
  /** Where the token is looked for, in order. Default ['auth', 'query', 'header', 'cookie']. */
  from?: Array<'auth' | 'query' | 'header' | 'cookie'>;
  /** auth[authField]. Default 'token'. */
  authField?: string;
  /** ?queryParam=. Default 'token'. */
  queryParam?: string;
  /** The cookie's name. Default 'token'. */
  cookie?: string;
  /** The room each socket joins: prefix + sub. Default 'user:'; false for none. */
  userRoom?: string | false;
  /** The event a client sends a fresh token with. Default 'auth:refresh'; false for none. */
  refreshEvent?: string | false;
}

/** Native TLS on engine.listen's port: each a PEM string or Buffer, or a file path (read again by reloadTls() and on SIGHUP). */
export interface TlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** CAs whose client certificates are required (mutual TLS). */
  ca?: string | Buffer;
}

/** A token bucket: `points` that refill continuously, `points` per `perSeconds`. */
export interface RateLimit {
  points: number;
  perSeconds: number;
}

/** Addresses, networks ('10.0.0.0/8', 'fd00::/8') or 'loopback' | 'linklocal' | 'uniquelocal'; a list or comma-separated. */
export type TrustProxy = string | string[];

/** sidewire: abuse limits enforced in the engine before JS (README, Limits). */
export interface LimitsOptions {
  /** Per socket and event name; '*': one bucket for every event not named. */
  events?: Record<string, RateLimit>;
  /** Over a rate: 'error' (dropped, the client told once per burst; Socket.IO's default), 'drop' (a channel's default), 'disconnect'. */
  policy?: 'error' | 'drop' | 'disconnect';
  /** The event a throttled socket is told with. Default 'error'. */
  errorEvent?: string;
  /** Open connections per client address (IPv6 by /64); past it HTTP 429. */
  connectionsPerIp?: number;
  /** Connections per token sub (needs auth.jwt); past it CONNECT_ERROR 'too many connections' (a channel: 429). */
  connectionsPerUser?: number;
  /** New connections per client address; past it HTTP 429 with Retry-After. */
  connectRatePerIp?: RateLimit;
  /** No message from the client (heartbeats do not count) for this long: disconnected ('idle timeout'). */
  idleTimeoutMs?: number;
}

export interface ServerOptions {
  /** sidewire: authentication in the engine; `namespaces`: a namespace's own jwt (it reads the token where the Server's does), or false for none. */
  auth: {
    jwt?: JwtOptions;
    namespaces?: Record<string, { jwt: Omit<JwtOptions, 'from' | 'authField' | 'queryParam' | 'cookie'> } | false>;
  };
  /** sidewire: rates, connection caps and the idle timeout in the engine. */
  limits: LimitsOptions;
  /** sidewire: proxies whose X-Forwarded-For / X-Real-IP name the client (limits, handshake.address). */
  trustProxy: TrustProxy;
  /** Default '/socket.io'. */
  path: string;
  /** Serve the socket.io-client bundle at <path>/socket.io.js etc. Default true. */
  serveClient: boolean;
  /** Default 25000. */
  pingInterval: number;
  /** Default 20000. */
  pingTimeout: number;
  /** Largest polling body / message in bytes. Default 1e6. */
  maxHttpBufferSize: number;
  /** A session that joins no namespace within this is closed. Default 45000. */
  connectTimeout: number;
  /** Default 10000. */
  upgradeTimeout: number;
  /** Default ['polling', 'websocket']. 'webtransport' is left out, with a warning. */
  transports: Array<'polling' | 'websocket' | 'webtransport'>;
  /** Default true. */
  allowUpgrades: boolean;
  cors: CorsOptions;
  /** The sidewire Engine to run on. Default: the process engine (getEngine()) if free, else a new one. */
  engine: Engine;
  /** Remove a child of a dynamic namespace once its last socket left. Default false. */
  cleanupEmptyChildNamespaces: boolean;
  /** engine.io's: asked about each new session (a handshake GET or a WebSocket upgrade without a sid). */
  allowRequest: (req: IncomingMessage, fn: (err: string | null | undefined, success: boolean) => void) => void;
  /** sidewire: rooms one socket may be in; a join past it is refused with a warning. Default 10000. */
  maxRoomsPerSocket: number;
  /** permessage-deflate (RFC 7692) on the WebSocket transport. Default false. */
  perMessageDeflate: boolean | PerMessageDeflateOptions;
  /** gzip / deflate of polling responses by Accept-Encoding. Default { threshold: 1024 }; false turns it off. */
  httpCompression: boolean | HttpCompressionOptions;
  /** A client back within the window gets its id, rooms, data and every packet it missed. Default off. */
  connectionStateRecovery: {
    /** Default 120000 (2 minutes). */
    maxDisconnectionDuration?: number;
    /** Default true. */
    skipMiddlewares?: boolean;
    /** sidewire: what the engine's packet log may hold, in bytes. Default 32 MiB. */
    maxBytes?: number;
  };
  /** The default parser or socket.io-msgpack-parser (anything else throws). */
  parser: any;
  /** The default, or sidewire/redis-adapter's createAdapter() for a fleet (anything else throws). */
  adapter: typeof Adapter | ((nsp: Namespace) => unknown);
  /** Ignored, with a warning: the WebSocket transport is the engine's own. */
  wsEngine: any;
  /** Ignored, with a warning: Engine.IO v3 clients (socket.io-client 2) are refused. */
  allowEIO3: boolean;
  /** Ignored, with a warning (the handshake carries no extra packet). */
  initialPacket: any;
  /** Ignored, with a warning: no sticky-session cookie is set (one process holds every session). */
  cookie: boolean | ({ name: string } & Record<string, unknown>);
  /** Ignored unless true (its default), with a warning. */
  destroyUpgrade: boolean;
  /** Ignored unless 1000 (its default), with a warning. */
  destroyUpgradeTimeout: number;
  /** Ignored unless true (its default), with a warning. */
  addTrailingSlash: boolean;
}

/** ws's names; see docs/socketio.md for sidewire's defaults. */
export interface PerMessageDeflateOptions {
  /** Messages whose payload is smaller go out uncompressed. Default 1024. */
  threshold?: number;
  /** Default true (ws: false): a broadcast is compressed once for all its recipients. */
  serverNoContextTakeover?: boolean;
  /** Default true (ws: false): asked of every client. */
  clientNoContextTakeover?: boolean;
  /** 8..15 (8 is answered as 9). Default 15. */
  serverMaxWindowBits?: number | boolean;
  /** 8..15, asked of clients that allow it. Default: not limited. */
  clientMaxWindowBits?: number | boolean;
  zlibDeflateOptions?: { level?: number; memLevel?: number; strategy?: number };
  /** Accepted for compatibility with ws; not used. */
  zlibInflateOptions?: object;
  /** Accepted for compatibility with ws; not used. */
  concurrencyLimit?: number;
}

export interface HttpCompressionOptions {
  /** Responses whose body is smaller go out uncompressed. Default 1024 (unset in an object: 0). */
  threshold?: number;
  level?: number;
  memLevel?: number;
  chunkSize?: number;
  [zlibOption: string]: unknown;
}

type ParentNspNameMatchFn = (name: string, auth: { [key: string]: any }, fn: (err: Error | null, success: boolean) => void) => void;

export interface NamespaceReservedEventsMap<ListenEvents extends EventsMap, EmitEvents extends EventsMap, ServerSideEvents extends EventsMap, SocketData> {
  connect: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void;
  connection: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void;
}

export interface ServerReservedEventsMap<ListenEvents extends EventsMap, EmitEvents extends EventsMap, ServerSideEvents extends EventsMap, SocketData>
  extends NamespaceReservedEventsMap<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {
  new_namespace: (namespace: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void;
}

export interface SocketReservedEventsMap {
  disconnect: (reason: DisconnectReason, description?: any) => void;
  disconnecting: (reason: DisconnectReason, description?: any) => void;
  error: (err: Error) => void;
}

export interface SocketIoStats {
  sessions: number;
  sockets: number;
  namespaces: Record<string, { sockets: number; rooms: Record<string, number> }>;
}

export declare class Server<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> extends StrictEventEmitter<ServerSideEvents, RemoveAcknowledgements<EmitEvents>, ServerReservedEventsMap<ListenEvents, EmitEvents, ServerSideEvents, SocketData>> {
  /** The main namespace ('/'). */
  readonly sockets: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  /** sidewire: the main namespace's presence (namespace.presence). */
  readonly presence: Presence;
  /** engine.io's Server, as socket.io's `io.engine` (clientsCount, opts, use(), its events). */
  readonly engine: EngineIoServer;
  /** The sidewire Engine this server runs on. */
  readonly sidewire: Engine;
  httpServer: HttpServer | null;
  constructor(opts?: Partial<ServerOptions>);
  constructor(srv?: HttpServer | number, opts?: Partial<ServerOptions>);
  constructor(srv: undefined | Partial<ServerOptions> | HttpServer | number, opts?: Partial<ServerOptions>);
  serveClient(v: boolean): this;
  serveClient(): boolean;
  path(v: string): this;
  path(): string;
  connectTimeout(v: number): this;
  connectTimeout(): number;
  /** The adapter of every namespace: the default, or sidewire/redis-adapter's createAdapter() (other adapters throw). */
  adapter(): typeof Adapter | ((nsp: Namespace) => unknown);
  adapter(v: typeof Adapter | ((nsp: Namespace) => unknown)): this;
  listen(srv: HttpServer | number, opts?: Partial<ServerOptions>): this;
  attach(srv: HttpServer | number, opts?: Partial<ServerOptions>): this;
  /** For servers that route requests themselves: true when the request was under `path` and is answered. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  of(
    name: string | RegExp | ParentNspNameMatchFn,
    fn?: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void,
  ): Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  close(fn?: (err?: Error) => void): Promise<void>;
  use(fn: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>, next: (err?: ExtendedError) => void) => void): this;
  to(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  in(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  except(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  send(...args: EventParams<EmitEvents, 'message'>): this;
  write(...args: EventParams<EmitEvents, 'message'>): this;
  /** Single process: no other servers receive it, and local listeners are not called (as socket.io's default adapter). */
  serverSideEmit<Ev extends EventNames<ServerSideEvents>>(ev: Ev, ...args: EventParams<DecorateAcknowledgementsWithTimeoutAndMultipleResponses<ServerSideEvents>, Ev>): boolean;
  serverSideEmitWithAck<Ev extends EventNamesWithAck<ServerSideEvents>>(ev: Ev, ...args: AllButLast<EventParams<ServerSideEvents, Ev>>): Promise<FirstNonErrorArg<Last<EventParams<ServerSideEvents, Ev>>>[]>;
  /** @deprecated use fetchSockets() */
  allSockets(): Promise<Set<SocketId>>;
  compress(compress: boolean): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  get volatile(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  get local(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  timeout(timeout: number): BroadcastOperator<DecorateAcknowledgements<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>>, SocketData>;
  fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]>;
  socketsJoin(room: Room | Room[]): void;
  socketsLeave(room: Room | Room[]): void;
  disconnectSockets(close?: boolean): void;
  /** sidewire extension: the engine's Socket.IO counters. */
  stats(): SocketIoStats;
}

/** sidewire's presence: a room's members as distinct users (socket.data.user: a string or number, or an object's id, else its sub; with auth.jwt the token's claims). */
export interface PresenceUser {
  user: string;
  /** The user's sockets in the room (this node's for local(), the fleet's for users()). */
  sockets: number;
}
export declare class Presence extends EventEmitter<{ join: [room: string, user: string]; leave: [room: string, user: string] }> {
  /** The distinct users in a room on this node. */
  local(room: Room): PresenceUser[];
  has(room: Room, user: string): boolean;
  /** The distinct users in a room on every node (fetchSockets through the adapter). */
  users(room: Room): Promise<PresenceUser[]>;
}

export declare class Namespace<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> extends StrictEventEmitter<ServerSideEvents, RemoveAcknowledgements<EmitEvents>, NamespaceReservedEventsMap<ListenEvents, EmitEvents, ServerSideEvents, SocketData>> {
  readonly name: string;
  /** Live sockets of this namespace (kept while it has 'connection' listeners or middleware). */
  readonly sockets: Map<SocketId, Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>;
  readonly server: Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  /** socket.io's in-memory adapter, as views of the rooms JS mirrors (docs/socketio.md). */
  readonly adapter: Adapter;
  /** sidewire's presence: distinct users per room, 'join' when a user's first socket joins a room and 'leave' when its last leaves, once for the fleet. */
  readonly presence: Presence;
  _ids: number;
  use(fn: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>, next: (err?: ExtendedError) => void) => void): this;
  to(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  in(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  except(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  emit<Ev extends EventNamesWithoutAck<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
  send(...args: EventParams<EmitEvents, 'message'>): this;
  write(...args: EventParams<EmitEvents, 'message'>): this;
  serverSideEmit<Ev extends EventNames<ServerSideEvents>>(ev: Ev, ...args: EventParams<DecorateAcknowledgementsWithTimeoutAndMultipleResponses<ServerSideEvents>, Ev>): boolean;
  serverSideEmitWithAck<Ev extends EventNamesWithAck<ServerSideEvents>>(ev: Ev, ...args: AllButLast<EventParams<ServerSideEvents, Ev>>): Promise<FirstNonErrorArg<Last<EventParams<ServerSideEvents, Ev>>>[]>;
  /** @deprecated use fetchSockets() */
  allSockets(): Promise<Set<SocketId>>;
  compress(compress: boolean): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  get volatile(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  get local(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  timeout(timeout: number): BroadcastOperator<DecorateAcknowledgements<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>>, SocketData>;
  fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]>;
  socketsJoin(room: Room | Room[]): void;
  socketsLeave(room: Room | Room[]): void;
  disconnectSockets(close?: boolean): void;
}

export type EngineIoTransport = { readonly name: 'polling' | 'websocket' };
export type EngineIoPacketType = 'open' | 'close' | 'ping' | 'pong' | 'message' | 'upgrade' | 'noop';
export interface EngineIoPacket {
  type: EngineIoPacketType;
  /** A string, or a Buffer for a binary message; absent when the packet has none. */
  data?: string | Buffer;
  options?: { compress?: boolean };
}

/**
 * socket.conn: engine.io's Socket, the Engine.IO session under one or more sockets. `packet`,
 * `packetCreate`, `heartbeat`, `drain` and `upgrading` are reported by the engine only while
 * this conn has a listener for them.
 */
export interface SocketConn extends EventEmitter {
  /** The Engine.IO sid, as the client knows it. */
  readonly id: string;
  readonly protocol: 4;
  readonly readyState: 'opening' | 'open' | 'closing' | 'closed';
  readonly transport: EngineIoTransport;
  readonly upgrading: boolean;
  readonly upgraded: boolean;
  readonly remoteAddress: string;
  /** The handshake's IncomingMessage (with what io.engine.use() middleware added to it). */
  readonly request: SocketRequest;
  on(event: 'upgrading' | 'upgrade', listener: (transport: EngineIoTransport) => void): this;
  on(event: 'packet' | 'packetCreate', listener: (packet: EngineIoPacket) => void): this;
  on(event: 'heartbeat' | 'drain', listener: () => void): this;
  on(event: 'close', listener: (reason: string, description?: any) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  /** As engine.io's: what is queued goes out, then the session ends ("forced close"). */
  close(): this;
}

/** The request that created the session: an http.IncomingMessage, plus engine.io's `_query`. */
export type SocketRequest = IncomingMessage & { _query?: Record<string, string>; [key: string]: any };

/** engine.io's connection_error. */
export interface EngineIoConnectionError {
  req: IncomingMessage;
  /** engine.io's Server.errors: 0 unknown transport, 1 unknown sid, 2 bad handshake method, 3 bad request, 4 forbidden, 5 unsupported protocol version. */
  code: number;
  message: string;
  context?: Record<string, any>;
}

export interface EngineIoServerOptions {
  pingTimeout: number;
  pingInterval: number;
  upgradeTimeout: number;
  maxHttpBufferSize: number;
  transports: Array<'polling' | 'websocket'>;
  allowUpgrades: boolean;
  httpCompression: { threshold?: number } | false;
  perMessageDeflate?: { threshold?: number } | false;
  cors: CorsOptions | false;
  allowEIO3: false;
  path: string;
  [key: string]: any;
}

/** io.engine: engine.io's Server over the engine's sessions. */
export interface EngineIoServer extends EventEmitter {
  /** The sidewire Engine underneath (the same as io.sidewire). */
  readonly sidewire: Engine;
  /** Open Engine.IO sessions. */
  readonly clientsCount: number;
  /** engine.io's options in effect (its defaults under the Server's options). */
  opts: EngineIoServerOptions;
  readonly middlewares: Array<(req: IncomingMessage, res: ServerResponse, next: (err?: any) => void) => void>;
  /** Express-style middleware on every Engine.IO request and upgrade (a stand-in response for upgrades). */
  use(fn: (req: any, res: any, next: (err?: any) => void) => void): this;
  /** Closes every session. */
  close(): this;
  on(event: 'connection', listener: (socket: SocketConn) => void): this;
  on(event: 'connection_error', listener: (err: EngineIoConnectionError) => void): this;
  on(event: 'initial_headers' | 'headers', listener: (headers: Record<string, string | string[]>, req: IncomingMessage) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export declare class Socket<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> extends StrictEventEmitter<ListenEvents, EmitEvents, SocketReservedEventsMap> {
  readonly nsp: Namespace<ListenEvents, EmitEvents, ServerSideEvents>;
  readonly server: Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  readonly id: SocketId;
  readonly recovered: boolean;
  readonly handshake: Handshake;
  data: SocketData;
  connected: boolean;
  get disconnected(): boolean;
  get request(): SocketRequest;
  get conn(): SocketConn;
  /** The rooms of this socket (its own id included). */
  get rooms(): Set<Room>;
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
  emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(ev: Ev, ...args: AllButLast<EventParams<EmitEvents, Ev>>): Promise<FirstNonErrorArg<Last<EventParams<EmitEvents, Ev>>>>;
  to(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  in(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  except(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  send(...args: EventParams<EmitEvents, 'message'>): this;
  write(...args: EventParams<EmitEvents, 'message'>): this;
  join(rooms: Room | Array<Room>): Promise<void> | void;
  leave(room: string): Promise<void> | void;
  disconnect(close?: boolean): this;
  compress(compress: boolean): this;
  get volatile(): this;
  get broadcast(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  get local(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
  timeout(timeout: number): Socket<ListenEvents, DecorateAcknowledgements<EmitEvents>, ServerSideEvents, SocketData>;
  use(fn: (event: Event, next: (err?: Error) => void) => void): this;
  onAny(listener: (...args: any[]) => void): this;
  prependAny(listener: (...args: any[]) => void): this;
  offAny(listener?: (...args: any[]) => void): this;
  listenersAny(): ((...args: any[]) => void)[];
  onAnyOutgoing(listener: (...args: any[]) => void): this;
  prependAnyOutgoing(listener: (...args: any[]) => void): this;
  offAnyOutgoing(listener?: (...args: any[]) => void): this;
  listenersAnyOutgoing(): ((...args: any[]) => void)[];
}

export declare class BroadcastOperator<EmitEvents extends EventsMap, SocketData> implements TypedEventBroadcaster<EmitEvents> {
  to(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  in(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  except(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  compress(compress: boolean): BroadcastOperator<EmitEvents, SocketData>;
  get volatile(): BroadcastOperator<EmitEvents, SocketData>;
  get local(): BroadcastOperator<EmitEvents, SocketData>;
  timeout(timeout: number): BroadcastOperator<DecorateAcknowledgements<EmitEvents>, SocketData>;
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
  emitWithAck<Ev extends EventNamesWithError<EmitEvents>>(ev: Ev, ...args: AllButLast<EventParams<EmitEvents, Ev>>): Promise<FirstNonErrorArg<Last<EventParams<EmitEvents, Ev>>>>;
  /** @deprecated use fetchSockets() */
  allSockets(): Promise<Set<SocketId>>;
  fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]>;
  socketsJoin(room: Room | Room[]): void;
  socketsLeave(room: Room | Room[]): void;
  disconnectSockets(close?: boolean): void;
}

export declare class RemoteSocket<EmitEvents extends EventsMap, SocketData> implements TypedEventBroadcaster<EmitEvents> {
  readonly id: SocketId;
  readonly handshake: Handshake;
  readonly rooms: Set<Room>;
  readonly data: SocketData;
  timeout(timeout: number): BroadcastOperator<DecorateAcknowledgements<EmitEvents>, SocketData>;
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
  join(room: Room | Room[]): void;
  leave(room: Room): void;
  disconnect(close?: boolean): this;
}

export interface AdapterEvents {
  'create-room': [room: Room];
  'delete-room': [room: Room];
  'join-room': [room: Room, id: SocketId];
  'leave-room': [room: Room, id: SocketId];
}

export interface BroadcastOptions {
  rooms: Set<Room>;
  except?: Set<Room>;
  flags?: { volatile?: boolean; compress?: boolean; local?: boolean; timeout?: number };
}

/**
 * nsp.adapter: socket.io's in-memory Adapter over the engine's rooms. `rooms` and `sids` are
 * live and read-only (their set/add/delete/clear throw); they are built on first use and list
 * the sockets JS tracks (docs/socketio.md).
 */
export declare class Adapter extends EventEmitter<AdapterEvents> {
  constructor(nsp: Namespace<any, any, any, any>);
  readonly nsp: Namespace<any, any, any, any>;
  /** Room → socket ids (a socket's own id is a room). Read-only. */
  readonly rooms: Map<Room, Set<SocketId>>;
  /** Socket id → its rooms (its own id included). Read-only. */
  readonly sids: Map<SocketId, Set<Room>>;
  init(): void;
  close(): void;
  /** One process: resolves 1. */
  serverCount(): Promise<number>;
  addAll(id: SocketId, rooms: Set<Room>): void;
  del(id: SocketId, room: Room): void;
  delAll(id: SocketId): void;
  socketRooms(id: SocketId): Set<Room> | undefined;
  sockets(rooms: Set<Room>): Promise<Set<SocketId>>;
  fetchSockets(opts: BroadcastOptions): Promise<RemoteSocket<DefaultEventsMap, any>[]>;
  addSockets(opts: BroadcastOptions, rooms: Room[]): void;
  delSockets(opts: BroadcastOptions, rooms: Room[]): void;
  disconnectSockets(opts: BroadcastOptions, close: boolean): void;
  broadcast(packet: { type?: number; data: any[]; nsp?: string }, opts: BroadcastOptions): void;
  serverSideEmit(packet: any[]): void;
  persistSession(session: unknown): void;
  restoreSession(pid: string, offset: string): null;
}

/** As socket.io's CommonJS export: `require('sidewire')(httpServer, opts)` is `new Server(httpServer, opts)`. */
declare function sidewire<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
>(srv?: HttpServer | number | Partial<ServerOptions>, opts?: Partial<ServerOptions>): Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
export default sidewire;

/** The Socket.IO server of this process (for API routes); throws when there is none. */
export declare function getServer<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
>(): Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
