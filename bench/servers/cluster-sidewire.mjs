// Benchmark server, one node of a two-node fleet: node:http + sidewire's Server with
// sidewire/redis-adapter (js/redis-adapter.js) on REDIS_URL. The same app as sidewire-sio.mjs
// (installSioApp) and as cluster-socketio.mjs. The engine publishes and receives the
// broadcasts itself: on the receiving node, Node's main thread has no part in them.
// Run: REDIS_URL=redis://127.0.0.1:6379 node --expose-gc bench/servers/cluster-sidewire.mjs
import { createRequire } from 'node:module';
import { closeHttp, createHttpServer, installSioApp, listenEngine, onShutdown } from './common.mjs';

const require = createRequire(import.meta.url);
const { Server } = require('../../js/index.js');
const { createAdapter } = require('../../js/redis-adapter.js');

const REDIS_URL = process.env.REDIS_URL;
if (!REDIS_URL) throw new Error('REDIS_URL is not set');

const server = createHttpServer();
const io = new Server(server, { adapter: createAdapter(REDIS_URL) });
installSioApp(io);

onShutdown(async () => {
  // io.close() leaves the fleet (the Redis connections close) and closes the engine it created.
  await Promise.race([new Promise((resolve) => io.close(() => resolve())), new Promise((r) => setTimeout(r, 3000))]);
  await closeHttp(server);
});

// READY only once both Redis connections are up (the subscriptions follow on the same one).
const engine = io.sidewire;
if (engine.stats().adapter?.state !== 'ready') {
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis adapter not ready in 10 s: ${JSON.stringify(engine.stats().adapter)}`)), 10000);
    const onState = ({ state }) => {
      if (state !== 'ready') return;
      clearTimeout(timer);
      engine.off('adapter', onState);
      resolve();
    };
    engine.on('adapter', onState);
  });
}
await listenEngine(engine, server);
