// Compile-only check of sidewire/next's typings (npx tsc -p tests/types): a typed server.ts
// needs no casts, for the handle, setup()'s context, and the http.Server it exposes.
import http from 'node:http';
import { startServer, type SidewireNextServer, type StartServerOptions } from '../../js/next.js';
import { Engine, Server } from '../../js/index.js';

interface ClientToServer {
  hello: (name: string, ack: (greeting: string) => void) => void;
}
interface ServerToClient {
  greeting: (text: string) => void;
}

async function main(): Promise<void> {
  const handle = await startServer<ClientToServer, ServerToClient>({
    dir: '.',
    port: 0,
    hostname: '127.0.0.1',
    drainMs: 500,
    logLevel: 'warn',
    engine: { ioThreads: 1, ioNice: 0 },
    socketio: { connectionStateRecovery: { maxDisconnectionDuration: 60000 }, cors: { origin: 'http://a.test' } },
    health: '/healthz',
    nextOptions: { quiet: true },
    async setup({ io, engine, app, server }) {
      io.on('connection', (socket) => {
        socket.on('hello', (name, ack) => ack(`hi ${name}`));
        socket.emit('greeting', 'welcome');
        // @ts-expect-error unknown event
        socket.emit('nope');
      });
      engine.channel('/ws/doc', { roomQuery: 'doc', relay: true, authorize: (req) => Boolean(req.headers.cookie) });
      const s: http.Server = server;
      s.on('request', (req: http.IncomingMessage) => void req.url);
      await app.prepare;
    },
    onShutdown: async () => {},
  });
  const io: Server<ClientToServer, ServerToClient> = handle.io;
  io.emit('greeting', 'all');
  const port: number = handle.port;
  const url: string = handle.url;
  void port;
  void url;
  await handle.close();

  const bare = await startServer({ socketio: false, setup: ({ io: none }) => void none });
  const nothing: null = bare.io;
  void nothing;

  const engine = new Engine({ global: true });
  const withEngine: SidewireNextServer = await startServer({ engine });
  void withEngine;

  const options: StartServerOptions = { signals: false, health: false };
  await startServer(options);

  // The engine's own API takes a node:http server as it is.
  const server = http.createServer();
  engine.attach(server, (req, socket, head) => {
    void req.url;
    socket.destroy();
    void head.length;
  });
  await engine.listen(server, { port: 0, host: '127.0.0.1' });
  server.on('upgrade', (req, socket, head) => engine.handleUpgrade(req, socket, head));
  const io2 = new Server(server, { engine });
  io2.attach(server);

  // @ts-expect-error a typo is a compile error too
  await startServer({ pot: 3000 });
}

void main;
