// sidewire custom Next.js server: Next.js pages, sidewire WebSocket channels and the
// Socket.IO server share one HTTP port. startServer() (js/next.js, `sidewire/next` to an app)
// does the wiring: Next in dev or production, the one 'upgrade' listener that keeps Next's HMR
// working, engine.listen, /health, the graceful shutdown on SIGINT/SIGTERM. Its comment says
// how and why.
//
//   PORT                (default 3000)
//   HOSTNAME            (default localhost)
//   NODE_ENV=production → Next runs the prebuilt app (`next build examples/ticketing`)
//   SIDEWIRE_BACKLOG    (default 4096) the listen backlog
//   SIDEWIRE_DRAIN_MS   (default 5000) how long engine.close() drains on shutdown
//   SIDEWIRE_HEADERS_TIMEOUT_MS (default 10000) a request head (an upgrade too) must arrive within this
//   SIDEWIRE_LOG_LEVEL  (default info)
//   SIDEWIRE_DATA_DIR   (default examples/ticketing/data) the ticket desk's SQLite file and uploads
//   SIDEWIRE_MAX_UPLOAD_BYTES (default 5 MiB) the ticket desk's attachment limit
//
// The app is the ticket desk in examples/ticketing: its Socket.IO handlers (rooms, presence)
// are in examples/ticketing/realtime.mjs, its database in examples/ticketing/lib/db.js (opened
// at startup, so a broken data directory fails the start, and closed on shutdown). API routes
// reach the Socket.IO server with getServer() (e.g. getServer().to(room).emit(...)).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from 'sidewire/next'; // this repository's own js/next.js, through package.json "exports"
import { attachTicketing } from './examples/ticketing/realtime.mjs';

const require = createRequire(import.meta.url);

const repoRoot = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.join(repoRoot, 'examples', 'ticketing');

// The ticket desk's data directory; route handlers read the same variable.
process.env.SIDEWIRE_DATA_DIR = path.resolve(process.env.SIDEWIRE_DATA_DIR || path.join(appDir, 'data'));
const ticketingDb = require('./examples/ticketing/lib/db.js');

const { url } = await startServer({
  dir: appDir,
  // The process's Socket.IO server (getServer() in API routes). A namespace nobody listens to
  // runs entirely in the engine; the ticket desk listens on the main namespace. Connection
  // state recovery: a page whose connection drops for a moment (a network blip, a laptop lid)
  // comes back with its rooms and gets every event it missed, without refetching.
  socketio: { connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000 } },
  setup({ io, engine }) {
    engine.channel('/ws/fabric', { roomQuery: 'documentId', relay: true });
    attachTicketing(io);
    ticketingDb.openDb(); // creates the data directory and the schema
  },
  onShutdown() {
    ticketingDb.closeDb();
  },
});

console.log(`>   ${url}/fabric  (the channel demo; the ticket desk is at /)`);
console.log(`>   data: ${ticketingDb.dataDir()}`);
