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
//   TICKETING_JWT_SECRET (unset: a random one per process) the secret the ticket desk signs its
//                       Socket.IO session tokens with (POST /api/session) and the engine verifies
//                       them with (auth.jwt); a fleet's processes must share one.
//   REDIS_URL           (unset: one process) redis://[user:password@]host:port[/db]: this process
//                       joins a fleet through that Redis (sidewire/redis-adapter): Socket.IO rooms,
//                       broadcasts, fetchSockets and the /ws/fabric relay reach every node. README,
//                       "Scaling out".
//
// The app is the ticket desk in examples/ticketing: its Socket.IO handlers (rooms, presence)
// are in examples/ticketing/realtime.mjs, its database in examples/ticketing/lib/db.js (opened
// at startup, so a broken data directory fails the start, and closed on shutdown). API routes
// reach the Socket.IO server with getServer() (e.g. getServer().to(room).emit(...)).
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from 'sidewire/next'; // this repository's own js/next.js, through package.json "exports"
import { createAdapter } from 'sidewire/redis-adapter';
import { attachTicketing } from './examples/ticketing/realtime.mjs';
import { attachFabric, fabricChannelOptions } from './examples/ticketing/fabric.mjs';
import { attachChat, CHAT_LIMITS, CHAT_NAMESPACE } from './examples/ticketing/chat.mjs';

const require = createRequire(import.meta.url);

const repoRoot = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.join(repoRoot, 'examples', 'ticketing');

// The ticket desk's data directory; route handlers read the same variable.
process.env.SIDEWIRE_DATA_DIR = path.resolve(process.env.SIDEWIRE_DATA_DIR || path.join(appDir, 'data'));
const ticketingDb = require('./examples/ticketing/lib/db.js');

// The desk's session tokens: POST /api/session signs one (HS256) for the agent's name, the
// engine verifies it at every Socket.IO CONNECT (auth.jwt) before any handler runs, and the page
// sends a fresh one before it expires ('auth:refresh'). The route handler reads the same variable.
process.env.TICKETING_JWT_SECRET ||= randomBytes(32).toString('base64url');

// Several server processes (deploy/ecosystem.fleet.config.cjs, behind deploy/nginx-fleet.conf)
// share rooms through Redis. Without REDIS_URL, one process and no adapter.
const redisUrl = process.env.REDIS_URL || '';
const adapter = redisUrl ? createAdapter(redisUrl) : null;

let fabric = null; // the collaborative editor's channel (examples/ticketing/fabric.mjs)
const { url } = await startServer({
  dir: appDir,
  // The process's Socket.IO server (getServer() in API routes). A namespace nobody listens to
  // runs entirely in the engine; the ticket desk listens on the main namespace. Connection
  // state recovery: a page whose connection drops for a moment (a network blip, a laptop lid)
  // comes back with its rooms and gets every event it missed, without refetching.
  // (In a fleet the recovery is per node: the client must come back to the node that kept its
  // session, which nginx-fleet.conf's ip_hash gives it while that node runs.)
  socketio: {
    connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000 },
    ...(adapter ? { adapter } : {}),
    auth: {
      jwt: { secret: process.env.TICKETING_JWT_SECRET, algorithms: ['HS256'], issuer: 'ticket-desk', requireExp: true },
      // The staff chat (/chat) signs its own tokens (POST /api/chat/session): sub is the user
      // id, and the engine joins each socket to user:<id>.
      namespaces: {
        [CHAT_NAMESPACE]: { jwt: { secret: process.env.TICKETING_JWT_SECRET, algorithms: ['HS256'], issuer: 'staff-chat', requireExp: true } },
      },
    },
    // The desk's client events, limited in the engine: a page joins and leaves rooms as its
    // agent navigates, a few a second at most; a socket past these is told ('error' event) and
    // its events dropped before any handler runs.
    limits: {
      events: {
        'ticket:join': { points: 20, perSeconds: 10 },
        'ticket:leave': { points: 20, perSeconds: 10 },
        ...CHAT_LIMITS, // typing, messages, receipts, reactions, ICE candidates
        '*': { points: 30, perSeconds: 10 },
      },
    },
    // nginx in front (deploy/nginx.conf) names the client in X-Forwarded-For.
    trustProxy: 'loopback',
  },
  setup({ io, engine }) {
    // The collaborative editor (/fabric): Y.js relayed natively, documents kept in the engine's
    // room history, compacted and saved in SQLite (examples/ticketing/fabric.mjs).
    fabric = attachFabric(engine.channel('/ws/fabric', fabricChannelOptions({ adapter })));
    attachTicketing(io);
    attachChat(io); // the staff chat: messages, receipts, typing, presence, reactions, calls
    ticketingDb.openDb(); // creates the data directory and the schema
  },
  // The documents still open are saved while their editors are connected.
  beforeShutdown: () => fabric && fabric.saveOpen(),
  onShutdown() {
    ticketingDb.closeDb();
  },
});

console.log(`>   ${url}/fabric  (the collaborative editor; the ticket desk is at /)`);
console.log(`>   data: ${ticketingDb.dataDir()}`);
if (adapter) {
  // The address without its credentials: logs are read by more people than the environment.
  const u = new URL(redisUrl);
  console.log(`>   adapter: redis ${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ''} (REDIS_URL; Socket.IO and /ws/fabric reach every node)`);
}
