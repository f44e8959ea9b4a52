// PM2 process file: `pm2 start ecosystem.config.cjs`.
// One fork-mode process: the native engine owns its sockets and threads, so the app
// must not be clustered (cluster mode would also share the listening socket between
// workers, which breaks room membership across processes).
const DRAIN_MS = 5000;

module.exports = {
  apps: [
    {
      name: 'sidewire',
      script: 'server.mjs',
      cwd: __dirname,
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
        PORT: 3000,
        NODE_ENV: 'production',
        SIDEWIRE_DRAIN_MS: DRAIN_MS,
      },
    },
  ],
};
