// Benchmark server: node:http + socket.io 4.8 (default transports, path /socket.io/).
// Same app as sidewire-sio.mjs (installSioApp). Run: node --expose-gc bench/servers/socketio.mjs
import { Server } from 'socket.io';
import { closeHttp, createHttpServer, installSioApp, listen, onShutdown } from './common.mjs';

const server = createHttpServer();
const io = new Server(server);
installSioApp(io);

onShutdown(async () => {
  await Promise.race([new Promise((resolve) => io.close(() => resolve())), new Promise((r) => setTimeout(r, 3000))]);
  await closeHttp(server);
});

await listen(server);
