// Benchmark server (scenario d): next-sidewire.mjs with socket.io 4.8 instead of sidewire, the
// usual way: new Server(httpServer) on the Next custom server (socket.io wraps the request
// listener for /socket.io/ and adds its 'upgrade' listener). Next gets a private emitter as
// `httpServer`, as in next-sidewire.mjs, so that it never sees the WebSocket upgrades.
// Run: node --expose-gc bench/servers/next-socketio.mjs (after `npx next build examples/ticketing`)
import { Server } from 'socket.io';
import { closeHttp, installSioApp, onShutdown } from './common.mjs';
import { startNext } from './next-common.mjs';

const { server, app, port } = await startNext();
const io = new Server(server);
installSioApp(io);

onShutdown(async () => {
  await Promise.race([new Promise((resolve) => io.close(() => resolve())), new Promise((r) => setTimeout(r, 3000))]);
  await closeHttp(server);
  await app.close?.();
});

// A newline first: Next leaves its "✓ Running next.config.mjs" line unterminated.
process.stdout.write(`\nREADY ${port}\n`);
