// Benchmark server for bench/history.mjs: a raw WebSocket relay on /ws/bench (room from the
// `room` query: a client's message goes to the other members of its room), with or without a
// room history replayed to late joiners. KIND (env):
//   sidewire          engine.channel, relay: true
//   sidewire-history  the same with history (kept and replayed in the engine)
//   ws                ws 8: the relay written in JS
//   ws-history        ws 8 with the history such apps write: an array per room, replayed on connection
// GET /cpu answers this process's CPU time so far in µs (user + system, every thread).
import { createRequire } from 'node:module';
import { closeHttp, createHttpServer, listen, listenEngine, onShutdown } from './common.mjs';

const require = createRequire(import.meta.url);
const kind = process.env.KIND || 'sidewire';
const MAX_MESSAGES = Number(process.env.MAX_MESSAGES || 10000);

const server = createHttpServer((req, res) => {
  if ((req.url || '').split('?', 1)[0] === '/cpu') {
    const u = process.cpuUsage();
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end(String(u.user + u.system));
    return;
  }
  res.writeHead(404);
  res.end();
});

if (kind.startsWith('sidewire')) {
  const { Engine } = require('../../js/index.js');
  const engine = new Engine({ logLevel: process.env.SIDEWIRE_LOG_LEVEL || 'warn' });
  engine.channel('/ws/bench', {
    roomQuery: 'room',
    relay: true,
    ...(kind === 'sidewire-history' ? { history: { maxMessages: MAX_MESSAGES, maxBytes: 1 << 20 } } : {}),
  });
  onShutdown(async () => {
    await engine.close({ drainMs: 200 });
    await closeHttp(server);
  });
  await listenEngine(engine, server);
} else {
  const { WebSocketServer } = require('ws');
  const wss = new WebSocketServer({ server, path: '/ws/bench', perMessageDeflate: false });
  const rooms = new Map(); // room → Set of sockets
  const history = new Map(); // room → [[data, isBinary]]
  wss.on('connection', (ws, req) => {
    const room = new URL(req.url, 'http://x').searchParams.get('room') || '';
    let members = rooms.get(room);
    if (!members) rooms.set(room, (members = new Set()));
    if (kind === 'ws-history') for (const [data, isBinary] of history.get(room) || []) ws.send(data, { binary: isBinary });
    members.add(ws);
    ws.on('message', (data, isBinary) => {
      if (kind === 'ws-history') {
        let kept = history.get(room);
        if (!kept) history.set(room, (kept = []));
        kept.push([data, isBinary]);
        if (kept.length > MAX_MESSAGES) kept.shift();
      }
      for (const peer of members) if (peer !== ws && peer.readyState === 1) peer.send(data, { binary: isBinary });
    });
    ws.on('close', () => members.delete(ws));
  });
  onShutdown(async () => {
    for (const c of wss.clients) c.terminate();
    await closeHttp(server);
  });
  await listen(server);
}
