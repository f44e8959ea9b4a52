// PM2 process file for a sidewire app: copy it next to your server.mjs, then
// `pm2 start ecosystem.config.cjs`, `pm2 reload sidewire`, `pm2 logs sidewire`.
// One fork-mode process: the native engine owns its sockets and threads, so the app
// must not be clustered (cluster mode would also share the listening socket between
// workers, which breaks room membership across processes).
//
// PORT, HOST (the address to bind; not HOSTNAME, which shells and containers often set to the
// machine's name), NODE_ENV and SIDEWIRE_DRAIN_MS may be overridden from the environment of the
// `pm2 start` command: `PORT=3100 pm2 start ecosystem.config.cjs`. Other variables of that
// environment (SIDEWIRE_DATA_DIR, SIDEWIRE_LOG_LEVEL …) reach the app as they are.
const int = (value, fallback) => {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
};

const DRAIN_MS = int(process.env.SIDEWIRE_DRAIN_MS, 5000);

module.exports = {
  apps: [
    {
      name: 'sidewire',
      script: 'server.mjs',
      cwd: __dirname,
      interpreter: 'node',
      exec_mode: 'fork',
      instances: 1,
      autorestart: true,
      // SIGINT is sent first; PM2 SIGKILLs after kill_timeout, so leave room for the
      // engine's drain (SIDEWIRE_DRAIN_MS) plus closing the HTTP server and Next.
      kill_timeout: DRAIN_MS + 5000,
      // Next.js may take a few seconds to prepare before the port is listening.
      listen_timeout: 15000,
      shutdown_with_message: false,
      env: {
        PORT: int(process.env.PORT, 3000),
        // Loopback only: nginx (deploy/nginx.conf) is the public side.
        HOSTNAME: process.env.HOST || '127.0.0.1',
        // Production serves the output of `next build examples/ticketing` (run it first).
        NODE_ENV: process.env.NODE_ENV || 'production',
        SIDEWIRE_DRAIN_MS: DRAIN_MS,
      },
    },
  ],
};
