/// <reference types="node" />
// sidewire/next: startServer(), a custom Next.js server with sidewire in one call (js/next.js).
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DefaultEventsMap, Engine, EngineOptions, EventsMap, LogLevel, Server, ServerOptions } from './index.js';

/** What startServer() uses of the Next.js app (`next({ ... })`); the rest of it is there too. */
export interface NextApp {
  prepare(): Promise<void>;
  getRequestHandler(): (req: IncomingMessage, res: ServerResponse, parsedUrl?: any) => Promise<void>;
  getUpgradeHandler(): (req: IncomingMessage, socket: Duplex, head: Buffer) => Promise<void>;
  close(): Promise<void>;
  [key: string]: any;
}

export interface SetupContext<IO> {
  /** The Socket.IO server (getServer() in route handlers); null with `socketio: false`. */
  io: IO;
  /** The engine: declare raw channels here (engine.channel('/ws/...', ...)). */
  engine: Engine;
  /** The Next.js app, not prepared yet. */
  app: NextApp;
  /** The http.Server that gets every request and upgrade the engine does not answer alone. */
  server: HttpServer;
}

interface StartServerBaseOptions {
  /** The Next.js app's directory. Default process.cwd(). */
  dir?: string;
  /** Next in development (HMR). Default NODE_ENV !== 'production'. */
  dev?: boolean;
  /** Default PORT, else 3000. 0: any free port (the handle's `port`). */
  port?: number;
  /** Where to listen. Default HOSTNAME, else 'localhost'. */
  hostname?: string;
  /** The listen backlog. Default SIDEWIRE_BACKLOG, else 4096. */
  backlog?: number;
  /** How long the engine drains on shutdown, in ms. Default SIDEWIRE_DRAIN_MS, else 5000. */
  drainMs?: number;
  /** A request head (an upgrade's too) must arrive within this, else 408. Default SIDEWIRE_HEADERS_TIMEOUT_MS, else 10000. */
  headersTimeout?: number;
  /** The engine's log level. Default SIDEWIRE_LOG_LEVEL, else 'info'. */
  logLevel?: LogLevel;
  /** Engine options, or an Engine to run on. */
  engine?: EngineOptions | Engine;
  /** Cleanup once the engine has drained and Next has closed (close a database, say). */
  /** Runs first on shutdown, while every connection is still open (save what clients hold). May be async. */
  beforeShutdown?: () => void | Promise<void>;
  onShutdown?: () => void | Promise<void>;
  /** The health endpoint's path, or false for none. Default '/health'. */
  health?: string | false;
  /** The readiness endpoint's path (503 until ready and while shutting down), or false. Default '/ready'. */
  ready?: string | false;
  /** The Prometheus endpoint's path (engine.metrics()), or false. Default '/metrics'. */
  metrics?: string | false;
  /** Who may read /metrics (addresses, networks, 'loopback' …); others get 403. Default ['loopback']. */
  metricsAllow?: string | string[];
  /** 'json': one JSON object a line, the engine's lines and startServer's. Default SIDEWIRE_LOG_FORMAT, 'text'. */
  logFormat?: 'text' | 'json';
  /** Native TLS: https and wss on the port, ended by the engine (PEM text or file paths; files reload on SIGHUP). */
  tls?: import('./index').TlsOptions;
  /** SIGINT and SIGTERM shut down gracefully and exit (a second one exits at once). Default true. */
  signals?: boolean;
  /** More options for next() (turbopack, quiet, conf …); dev, dir, hostname, port and httpServer are startServer's. */
  nextOptions?: Record<string, unknown>;
}

export interface StartServerOptions<IO = Server> extends StartServerBaseOptions {
  /** Socket.IO Server options (its `engine` is startServer's), or false for no Socket.IO server. */
  socketio?: Partial<ServerOptions> | false;
  /** Runs before the port opens (after the engine, the Socket.IO server and the http.Server exist). */
  setup?: (context: SetupContext<IO>) => void | Promise<void>;
}

export interface SidewireNextServer<IO = Server> {
  app: NextApp;
  server: HttpServer;
  engine: Engine;
  /** null with `socketio: false`. */
  io: IO;
  /** The port the engine listens on. */
  port: number;
  /** http://host:port */
  url: string;
  /** The graceful shutdown signals run, without exiting: resolves once done, rejects with what failed. */
  close(): Promise<void>;
}

/** Starts Next.js with sidewire on one port; resolves once the engine listens. */
export declare function startServer(
  options: StartServerBaseOptions & { socketio: false; setup?: (context: SetupContext<null>) => void | Promise<void> },
): Promise<SidewireNextServer<null>>;
export declare function startServer<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
>(
  options?: StartServerOptions<Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>,
): Promise<SidewireNextServer<Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>>;
