// The Next.js half of next-sidewire.mjs / next-socketio.mjs: a production Next app
// (next({ dev: false, dir: examples/ticketing })) on one port, with the port picked before
// Next is created so that PORT=0 works (Next wants its port up front).
//
//   SIDEWIRE_BENCH_NEXT_DIR  (default examples/ticketing) the app; it must have been built
//                            (`npx next build examples/ticketing`, bench/run.mjs does it)
import { existsSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import next from 'next';
import { createHttpServer, envInt, HOST } from './common.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const appDir = process.env.SIDEWIRE_BENCH_NEXT_DIR || path.join(repoRoot, 'examples', 'ticketing');

/**
 * Creates the http server (with /gc), binds it to 127.0.0.1:PORT (server.listen, or
 * `listen(server, { host, port, backlog })` when given: sidewire's engine.listen), then creates and prepares
 * the Next app on that port. `route(req, res)` runs before Next and returns true when it
 * answered. Next gets a private EventEmitter as `httpServer` (as in server.mjs), so its lazily
 * attached 'upgrade' listener never lands on the real server.
 * Returns { server, app, port, nextUpgradeBus }; print READY yourself once the rest is wired.
 */
export async function startNext({ route, listen } = {}) {
  if (!existsSync(path.join(appDir, '.next', 'BUILD_ID'))) {
    throw new Error(`no production build in ${appDir}/.next (run: npx next build ${path.relative(process.cwd(), appDir) || '.'})`);
  }
  let handle = null;
  let ready;
  const readyP = new Promise((resolve) => { ready = resolve; });
  const server = createHttpServer((req, res) => {
    if (route && route(req, res)) return;
    const go = () => handle(req, res).catch((err) => {
      console.error('[bench-next] request failed:', err);
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
    if (handle) go();
    else readyP.then(go);
  });
  const backlog = envInt('BENCH_BACKLOG', 4096);
  let port;
  if (listen) {
    port = await listen(server, { host: HOST, port: envInt('PORT', 0), backlog });
  } else {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(envInt('PORT', 0), HOST, backlog, () => {
        server.off('error', reject);
        resolve();
      });
    });
    port = server.address().port;
  }
  const nextUpgradeBus = new EventEmitter();
  const app = next({ dev: false, dir: appDir, hostname: HOST, port, httpServer: nextUpgradeBus });
  await app.prepare();
  handle = app.getRequestHandler();
  ready();
  return { server, app, port, nextUpgradeBus };
}
