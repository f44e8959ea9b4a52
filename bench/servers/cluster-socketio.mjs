// Benchmark server, one node of a two-node fleet: node:http + socket.io 4.8 with
// @socket.io/redis-adapter over two node-redis clients (pub, sub) on REDIS_URL. The same app
// as socketio.mjs (installSioApp) and as cluster-sidewire.mjs.
// Run: REDIS_URL=redis://127.0.0.1:6379 node --expose-gc bench/servers/cluster-socketio.mjs
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { closeHttp, createHttpServer, installSioApp, listen, onShutdown } from './common.mjs';

const REDIS_URL = process.env.REDIS_URL;
if (!REDIS_URL) throw new Error('REDIS_URL is not set');

const pub = createClient({ url: REDIS_URL });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on('error', (err) => process.stderr.write(`[cluster-socketio] redis: ${err?.message || err}\n`));
await Promise.all([pub.connect(), sub.connect()]);

const server = createHttpServer();
const io = new Server(server, { adapter: createAdapter(pub, sub) });
installSioApp(io);

onShutdown(async () => {
  await Promise.race([new Promise((resolve) => io.close(() => resolve())), new Promise((r) => setTimeout(r, 3000))]);
  await closeHttp(server);
  await Promise.allSettled([pub.quit(), sub.quit()]);
});

await listen(server);
