// Benchmark server (scenario d): the essentials of the repository's server.mjs. A production
// Next.js app (examples/ticketing) and sidewire's Socket.IO server share one port: the request
// handler gives /socket.io/ to io.handleRequest() before Next, the engine listens (engine.listen)
// and takes WebSocket upgrades itself, and the one 'upgrade' listener gives the upgrades that
// still reach Node to engine.handleUpgrade() first (Next only gets what the engine declines).
// The Socket.IO app is the one of every sio benchmark server (installSioApp).
// Run: node --expose-gc bench/servers/next-sidewire.mjs (after `npx next build examples/ticketing`)
import { createRequire } from 'node:module';
import { closeHttp, installSioApp, onShutdown } from './common.mjs';
import { startNext } from './next-common.mjs';

const require = createRequire(import.meta.url);
const { Engine, Server } = require('../../js/index.js');

const engine = new Engine({ logLevel: process.env.SIDEWIRE_LOG_LEVEL || 'warn' });
engine.channel('/ws/fabric', { roomQuery: 'documentId', relay: true }); // as server.mjs
const io = new Server({ engine });
installSioApp(io);

const { server, app, port, nextUpgradeBus } = await startNext({
  route: (req, res) => io.handleRequest(req, res),
  listen: (srv, options) => engine.listen(srv, options), // as server.mjs: the engine accepts
});

let nextPublicUpgrade;
server.on('upgrade', (req, socket, head) => {
  let taken = false;
  try {
    taken = engine.handleUpgrade(req, socket, head);
  } catch (err) {
    console.error('[bench-next] engine.handleUpgrade failed:', err);
    socket.destroy();
    return;
  }
  if (taken) return;
  if (nextUpgradeBus.listenerCount('upgrade') > 0) {
    nextUpgradeBus.emit('upgrade', req, socket, head);
    return;
  }
  let handler;
  try {
    handler = app.upgradeHandler;
  } catch {
    handler = undefined;
  }
  if (typeof handler !== 'function') handler = nextPublicUpgrade ??= app.getUpgradeHandler();
  Promise.resolve(handler(req, socket, head)).catch(() => socket.destroy());
});

onShutdown(async () => {
  server.close();
  await Promise.all([engine.close({ drainMs: 500 }), io.close()]);
  await closeHttp(server);
  await app.close?.();
});

// A newline first: Next leaves its "✓ Running next.config.mjs" line unterminated.
process.stdout.write(`\nREADY ${port}\n`);
