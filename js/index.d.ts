/// <reference types="node" />
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
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
  /** Default 'info' (env SIDEWIRE_LOG_LEVEL). */
  logLevel?: LogLevel;
  /** Register as the process-wide engine returned by getEngine(). Default true. */
  global?: boolean;
}

export type AuthorizeVerdict = boolean | undefined | { status?: number; message?: string };

export interface ChannelOptions {
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
  /** Outgoing queue limit per connection; a peer past it is dropped. Default 8 MiB. */
  maxQueuedBytes?: number;
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
  count(room?: string): number;
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
  channels: Record<string, { connections: number; rooms: Record<string, number> }>;
}

export declare class Engine extends EventEmitter {
  constructor(options?: EngineOptions);
  readonly options: Required<Omit<EngineOptions, 'global' | 'logLevel'>> & { logLevel?: LogLevel };
  channel(path: string, options?: ChannelOptions): Channel;
  getChannel(path: string): Channel | undefined;
  /** Takes the upgrade if its path is the engine's and returns true; returns false otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Adds an 'upgrade' listener that takes the engine's paths only. */
  attach(server: HttpServer): this;
  stats(): EngineStats;
  /** 1001 to every connection, drain for up to drainMs, stop the engine's threads. */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** The engine the custom server created in this process; throws when there is none. */
export declare function getEngine(): Engine;
