// PM2 process file for a fleet of sidewire processes on one machine: copy it next to your
// server.mjs, then `pm2 start ecosystem.fleet.config.cjs`, `pm2 logs sidewire-0`. Several
// fork-mode apps of the same server.mjs, sidewire-0, sidewire-1 …, each on its own port (PORT,
// PORT + 1 …), all joined through Redis (REDIS_URL: server.mjs gives its Socket.IO server and
// channels sidewire/redis-adapter's adapter), behind deploy/nginx-fleet.conf, which lists the
// ports and keeps each client on one process. Still no cluster mode: the native engine owns its
// sockets and threads, and workers sharing one listening socket would split a Socket.IO
// session's requests between processes.
//
// SIDEWIRE_INSTANCES (default 2) is the number of processes. PORT (the first port, default
// 3000), HOST (the address to bind; not HOSTNAME, which shells and containers often set to the
// machine's name), REDIS_URL (default redis://127.0.0.1:6379), NODE_ENV and SIDEWIRE_DRAIN_MS
// may be overridden from the environment of the `pm2 start` command:
// `SIDEWIRE_INSTANCES=4 REDIS_URL=redis://10.0.0.5:6379 pm2 start ecosystem.fleet.config.cjs`.
// Other variables of that environment (SIDEWIRE_DATA_DIR, SIDEWIRE_LOG_LEVEL …) reach every app
// as they are: the ticket desk's processes share one data directory (SQLite in WAL mode, on
// this machine's disk).
//
// `pm2 reload ecosystem.fleet.config.cjs` restarts two apps at a time (PM2's default
// parallelism): with two processes that is the whole fleet. Reload one at a time instead, each
// once the one before answers /health again (README, "Scaling out").
const int = (value, fallback) => {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
};

const DRAIN_MS = int(process.env.SIDEWIRE_DRAIN_MS, 5000);
const INSTANCES = Math.max(1, int(process.env.SIDEWIRE_INSTANCES, 2));
const FIRST_PORT = int(process.env.PORT, 3000);
// The ticket desk's session tokens must verify on every process (a page's token comes from one
// and its reconnect may land on another): one secret for the fleet. Set TICKETING_JWT_SECRET
// to keep it across `pm2 start`s (tokens outlive a reload then); otherwise this file makes one
// each time it is read.
const JWT_SECRET = process.env.TICKETING_JWT_SECRET || require('crypto').randomBytes(32).toString('base64url');

module.exports = {
  apps: Array.from({ length: INSTANCES }, (_, i) => ({
    name: `sidewire-${i}`,
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
      PORT: FIRST_PORT + i,
      // Loopback only: nginx (deploy/nginx-fleet.conf) is the public side.
      HOSTNAME: process.env.HOST || '127.0.0.1',
      // Production serves the output of `next build examples/ticketing` (run it first).
      NODE_ENV: process.env.NODE_ENV || 'production',
      SIDEWIRE_DRAIN_MS: DRAIN_MS,
      // The one Redis every process of the fleet shares (no persistence needed: pub/sub only).
      REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
      TICKETING_JWT_SECRET: JWT_SECRET,
    },
  })),
};
