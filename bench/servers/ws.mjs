// Benchmark server: node:http + ws 8 at /ws/bench. A client joins the room named by the `room`
// query; every message it sends goes to every other client of that room, the same bytes with
// the same text/binary flag (what sidewire-ws.mjs's native relay does).
// Run: node --expose-gc bench/servers/ws.mjs
import { WebSocketServer } from 'ws';
import { closeHttp, createHttpServer, listen, onShutdown } from './common.mjs';

const server = createHttpServer();
const wss = new WebSocketServer({ server, path: '/ws/bench' });

/** room → Set of clients */
const rooms = new Map();

wss.on('connection', (ws, req) => {
  const q = (req.url || '').indexOf('?');
  const room = new URLSearchParams(q >= 0 ? req.url.slice(q + 1) : '').get('room') ?? '';
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(ws);

  ws.on('message', (data, isBinary) => {
    for (const peer of members) {
      if (peer !== ws && peer.readyState === 1 /* OPEN */) peer.send(data, { binary: isBinary });
    }
  });
  ws.on('close', () => {
    members.delete(ws);
    if (members.size === 0 && rooms.get(room) === members) rooms.delete(room);
  });
  ws.on('error', () => {});
});

onShutdown(async () => {
  for (const ws of wss.clients) ws.terminate();
  await new Promise((resolve) => wss.close(() => resolve()));
  await closeHttp(server);
});

await listen(server);
