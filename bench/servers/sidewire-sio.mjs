// Benchmark server: node:http + sidewire's socket.io-compatible Server (path /socket.io/).
// Same app as socketio.mjs (installSioApp). Run: node --expose-gc bench/servers/sidewire-sio.mjs
import { createRequire } from 'node:module';
import { closeHttp, createHttpServer, probeEngine, installSioApp, listenEngine, onShutdown, setMemoryProbe } from './common.mjs';

const require = createRequire(import.meta.url);
const { Server } = require('../../js/index.js');

const server = createHttpServer();
// attach() as socket.io does: /socket.io/ requests to the Server, upgrades to the engine, the
// rest (/gc) to the handler above. The engine listens (engine.listen, as server.mjs does): it
// takes WebSocket upgrades itself and hands Node the rest.
const io = new Server(server);
installSioApp(io);
setMemoryProbe(() => {
  const st = io.sidewire.stats();
  return { mallocInUse_kb: Math.round(st.mallocInUse / 1024), mallocHeld_kb: Math.round(st.mallocHeld / 1024) };
});

probeEngine(io.sidewire); // GET /stats

onShutdown(async () => {
  // io.close() closes the engine it created and the attached http server.
  await Promise.race([new Promise((resolve) => io.close(() => resolve())), new Promise((r) => setTimeout(r, 3000))]);
  await closeHttp(server);
});

await listenEngine(io.sidewire, server);
