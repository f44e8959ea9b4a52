'use strict';
// Cross-tenant isolation.
//
// 1. Rooms: a socket never receives a broadcast for a room it is not in, on any namespace (the
//    main one, a custom one, children of a dynamic namespace) or on a raw channel, while sockets
//    join, leave and get disconnected all the time. Every membership change and every emit is
//    made by the server, in order, from one thread (a client that wants to join asks the server,
//    whose handler joins and then emits in the same tick): sidewire keeps a connection's room
//    changes and the broadcasts after them in order, so the expected recipients of each message
//    are known exactly, and the check is exact (no message to a non-member, none missing, none
//    twice), not a fuzzy "mostly right".
// 2. A raw channel's `authorize` hook cannot be skipped: through engine.listen's fast path, a
//    keep-alive connection, a pipelined request, odd request targets (`#`, percent-encoding,
//    dot and double-slash paths, case), repeated query keys. Every upgrade either goes through
//    authorize (and ends up in exactly the room authorize approved) or is refused.
// 3. A Socket.IO server with `cors: { origin }` refuses WebSocket upgrades from other origins,
//    through engine.listen's fast path and through the plain 'upgrade' event, with and
//    without a sid.
const http = require('node:http');
const WebSocket = require('ws');
const { Manager } = require('socket.io-client');
const { Engine, Server } = require('../../js/index.js');
const { sleep, waitFor, prng } = require('./helpers/ws');
const { wsHead, getHead, converse, rawConnection } = require('./helpers/raw-http');


function closeHttp(server) {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

// ------------------------------------------------------------------------------------------
// 1. Room isolation under churn
// ------------------------------------------------------------------------------------------

describe('room isolation under concurrent join/leave/disconnect', () => {
  const SEED = Number(process.env.ISOLATION_SEED || 20240601);
  const rand = prng(SEED);
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  // The same room names everywhere: a leak between namespaces or into the raw channel shows.
  const ROOMS = ['a', 'b', 'c', 'd'];
  const NSPS = ['/', '/custom', '/dyn-1', '/dyn-2'];
  const MANAGERS = 12; // each multiplexes a socket on every namespace over one Engine.IO session
  const RAW_CLIENTS = 16;
  const CHURN_MS = 3500;

  let engine;
  let httpServer;
  let io;
  let dyn;
  let iso; // the raw channel
  let port;
  const managers = [];
  const rawClients = [];
  // Server-side truth. One entry per socket (per namespace) / per raw client.
  const sioModel = new Map(); // `${nsp}|${id}` → { socket, nsp, rooms:Set, expected:[], open }
  const rawModel = new Map(); // client id → { client, rooms:Set, expected:[], open, queryRoom }
  const problems = []; // things that are wrong but not about one message (unexpected disconnects …)
  let seq = 0;
  let emits = 0;
  const sent = new Map(); // seq → what it was sent to (for the failure messages)

  const keyOf = (nsp, id) => `${nsp}|${id}`;

  function onSioConnection(socket) {
    const key = keyOf(socket.nsp.name, socket.id);
    const entry = { socket, nsp: socket.nsp.name, rooms: new Set([socket.id]), expected: [], open: true, serverClosed: false };
    sioModel.set(key, entry);
    // A client asks; the server joins or leaves and emits to that room at once (same tick).
    socket.on('toggle', (room, ack) => {
      if (!entry.open) return;
      if (entry.rooms.has(room)) {
        socket.leave(room);
        entry.rooms.delete(room);
      } else {
        socket.join(room);
        entry.rooms.add(room);
      }
      sioEmit(socket.nsp, [room], []);
      if (typeof ack === 'function') ack();
    });
    socket.on('disconnect', (reason) => {
      if (entry.open && !entry.serverClosed && !stopping) problems.push(`sio ${key} disconnected by itself: ${reason}`);
      entry.open = false;
    });
  }

  let stopping = false;

  // Emits on `nsp` to `rooms` (none: everyone) except `except`; `via`: socket.to(), which leaves
  // the sender out. The expected recipients are computed from the model right now.
  function sioEmit(nsp, rooms, except, via = null) {
    const s = ++seq;
    emits++;
    const tag = { s, nsp: nsp.name, rooms, except };
    sent.set(s, via ? `${nsp.name} to [${rooms}] from ${via.id}` : `${nsp.name} to [${rooms}] except [${except}]`);
    for (const entry of sioModel.values()) {
      if (!entry.open || entry.nsp !== nsp.name) continue;
      if (via && entry.socket === via) continue;
      const hit = rooms.length === 0 || rooms.some((r) => entry.rooms.has(r));
      const out = except.some((r) => entry.rooms.has(r));
      if (hit && !out) entry.expected.push(s);
    }
    let op = via ? via.broadcast : nsp;
    if (rooms.length) op = op.to(rooms);
    if (except.length) op = op.except(except);
    op.emit('m', tag);
  }

  // The dynamic parent: its broadcast goes to every child namespace.
  function parentEmit(rooms) {
    const s = ++seq;
    emits++;
    const tag = { s, nsp: '*dyn', rooms, except: [] };
    sent.set(s, `dynamic parent to [${rooms}]`);
    const children = new Set([...dyn.children].map((c) => c.name));
    for (const entry of sioModel.values()) {
      if (!entry.open || !children.has(entry.nsp)) continue;
      if (rooms.length === 0 || rooms.some((r) => entry.rooms.has(r))) entry.expected.push(s);
    }
    (rooms.length ? dyn.to(rooms) : dyn).emit('m', tag);
  }

  function rawEmit(room, exceptClient = null) {
    const s = ++seq;
    emits++;
    sent.set(s, `raw channel to ${room === null ? 'everyone' : `[${room}]`}${exceptClient ? ` except ${exceptClient.id}` : ''}`);
    for (const entry of rawModel.values()) {
      if (!entry.open) continue;
      if (exceptClient && entry.client === exceptClient) continue;
      if (room === null || entry.rooms.has(room)) entry.expected.push(s);
    }
    iso.broadcast(room, JSON.stringify({ s, room }), exceptClient ? { except: exceptClient } : {});
  }

  beforeAll(async () => {
    // Two I/O threads: sockets and sessions spread over both, broadcasts cross threads.
    engine = new Engine({ global: false, logLevel: 'error', ioThreads: 2, drainMs: 200 });
    httpServer = http.createServer((req, res) => {
      if (io.handleRequest(req, res)) return;
      res.writeHead(404);
      res.end();
    });
    io = new Server({ engine });
    io.on('connection', onSioConnection);
    io.of('/custom').on('connection', onSioConnection);
    dyn = io.of(/^\/dyn-\d+$/);
    dyn.on('connection', onSioConnection);

    iso = engine.channel('/ws/iso', { roomQuery: 'room' });
    iso.on('connection', (client) => {
      const queryRoom = client.query.room || null;
      const entry = { client, rooms: new Set(queryRoom ? [queryRoom] : []), expected: [], open: true, queryRoom, serverClosed: false };
      rawModel.set(client.id, entry);
      client.send(JSON.stringify({ hello: client.id }));
    });
    iso.on('message', (client, data) => {
      const entry = rawModel.get(client.id);
      if (!entry || !entry.open) return;
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        return;
      }
      if (typeof msg.toggle === 'string') {
        if (entry.rooms.has(msg.toggle)) {
          client.leave(msg.toggle);
          entry.rooms.delete(msg.toggle);
        } else {
          client.join(msg.toggle);
          entry.rooms.add(msg.toggle);
        }
        rawEmit(msg.toggle);
      }
    });
    iso.on('close', (client, code) => {
      const entry = rawModel.get(client.id);
      if (entry && entry.open && !entry.serverClosed && !stopping) problems.push(`raw ${client.id} closed by itself: ${code}`);
      if (entry) entry.open = false;
    });
    port = await engine.listen(httpServer, { port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    stopping = true;
    for (const m of managers) m.sockets.forEach((s) => s.disconnect());
    for (const c of rawClients) c.ws.terminate();
    await Promise.all([io.close(), engine.close({ drainMs: 200 })]);
    await closeHttp(httpServer);
  });

  // A client-side manager with a socket on each namespace; records every 'm' it gets.
  function newManager(i) {
    const polling = i % 3 === 0; // some sessions start on polling and upgrade during the churn
    const manager = new Manager(`http://127.0.0.1:${port}`, {
      transports: polling ? ['polling', 'websocket'] : ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    const rec = { manager, sockets: [], clients: [] };
    for (const nsp of NSPS) {
      const socket = manager.socket(nsp);
      const c = { socket, nsp, id: null, got: [], wrongNsp: [], done: false, disconnected: false, connectError: null };
      socket.on('connect', () => { c.id = socket.id; });
      socket.on('connect_error', (err) => { c.connectError = err.message; });
      socket.on('m', (tag) => {
        if (tag.nsp !== nsp && !(tag.nsp === '*dyn' && nsp.startsWith('/dyn-'))) c.wrongNsp.push(tag);
        c.got.push(tag.s);
      });
      socket.on('done', () => { c.done = true; });
      socket.on('disconnect', () => { c.disconnected = true; });
      rec.sockets.push(socket);
      rec.clients.push(c);
    }
    managers.push(rec);
    return rec;
  }

  function newRawClient(i) {
    const queryRoom = i % 4 === 0 ? pick(ROOMS) : null;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/iso${queryRoom ? `?room=${queryRoom}` : ''}`);
    const c = { ws, id: null, queryRoom, got: [], early: [], done: false, closed: false };
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.hello !== undefined) {
        c.id = msg.hello;
        return;
      }
      if (msg.done) {
        c.done = true;
        return;
      }
      // Before the hello the server's model does not know the client yet: only a broadcast to
      // everyone or to the room the URL asked for can legitimately arrive then.
      if (c.id === null) c.early.push(msg);
      else c.got.push(msg.s);
    });
    ws.on('close', () => { c.closed = true; });
    ws.on('error', () => {});
    rawClients.push(c);
    return c;
  }

  test('every broadcast reaches exactly the members of its room at the time it was sent', async () => {
    for (let i = 0; i < MANAGERS; i++) newManager(i);
    for (let i = 0; i < RAW_CLIENTS; i++) newRawClient(i);
    await waitFor(() => managers.every((m) => m.clients.every((c) => c.id || c.connectError)) && rawClients.every((c) => c.id), 8000);
    expect(managers.flatMap((m) => m.clients).filter((c) => c.connectError).map((c) => `${c.nsp}: ${c.connectError}`)).toEqual([]);

    // Clients ask for joins and leaves on their own timers (through the server).
    const clientTimers = [];
    const clientChurn = () => {
      for (const m of managers) {
        for (const c of m.clients) if (c.socket.connected && !c.quiet && rand() < 0.3) c.socket.emit('toggle', pick(ROOMS));
      }
      for (const c of rawClients) if (c.ws.readyState === WebSocket.OPEN && rand() < 0.3) c.ws.send(JSON.stringify({ toggle: pick(ROOMS) }));
    };
    clientTimers.push(setInterval(clientChurn, 15));

    // The server churns: joins, leaves, emits of every shape, disconnects; new clients arrive.
    const until = Date.now() + CHURN_MS;
    let newcomers = 0;
    let ops = 0;
    while (Date.now() < until) {
      for (let k = 0; k < 20; k++) {
        ops++;
        const open = [...sioModel.values()].filter((e) => e.open);
        const rawOpen = [...rawModel.values()].filter((e) => e.open);
        const r = rand();
        if (open.length && r < 0.55) {
          const e = pick(open);
          const nsp = e.socket.nsp;
          const x = rand();
          if (x < 0.22) {
            const room = pick(ROOMS);
            e.socket.join(room);
            e.rooms.add(room);
          } else if (x < 0.4) {
            const room = pick(ROOMS);
            e.socket.leave(room);
            e.rooms.delete(room);
          } else if (x < 0.58) {
            sioEmit(nsp, [pick(ROOMS)], []);
          } else if (x < 0.66) {
            sioEmit(nsp, [pick(ROOMS), pick(ROOMS)], []);
          } else if (x < 0.72) {
            sioEmit(nsp, [pick(ROOMS)], [pick(ROOMS)]);
          } else if (x < 0.75) {
            sioEmit(nsp, [], []);
          } else if (x < 0.78) {
            sioEmit(nsp, [], [pick(ROOMS)]);
          } else if (x < 0.83) {
            // A private message to one socket's own room (its id), sometimes on a wrong namespace.
            const target = pick(open);
            sioEmit(rand() < 0.3 ? io.of(pick(['/', '/custom'])) : target.socket.nsp, [target.socket.id], []);
          } else if (x < 0.88) {
            sioEmit(nsp, [pick(ROOMS)], [], e.socket); // socket.broadcast.to(room): not the sender
          } else if (x < 0.9) {
            parentEmit(rand() < 0.8 ? [pick(ROOMS)] : []);
          } else if (x < 0.93) {
            // socketsJoin / socketsLeave: in(roomA).socketsJoin(roomB)
            const from = pick(ROOMS);
            const to = pick(ROOMS);
            const join = rand() < 0.5;
            for (const entry of sioModel.values()) {
              if (entry.open && entry.nsp === nsp.name && entry.rooms.has(from)) {
                if (join) entry.rooms.add(to);
                else entry.rooms.delete(to);
              }
            }
            if (join) nsp.in(from).socketsJoin(to);
            else nsp.in(from).socketsLeave(to);
          } else if (x < 0.935) {
            // An event for a namespace the server has left closes the whole connection, as in
            // socket.io ("invalid state"): the client stops asking first, and the server
            // disconnects once what the client already sent has arrived.
            if (!e.closing) {
              e.closing = true;
              const c = managers.flatMap((m) => m.clients).find((k) => k.nsp === e.nsp && k.id === e.socket.id);
              if (c) c.quiet = true;
              setTimeout(() => {
                if (!e.open) return;
                e.serverClosed = true;
                e.open = false;
                e.socket.disconnect();
              }, 150);
            }
          } else {
            sioEmit(nsp, [pick(ROOMS)], []);
          }
        } else if (rawOpen.length) {
          const e = pick(rawOpen);
          const x = rand();
          if (x < 0.25) {
            const room = pick(ROOMS);
            e.client.join(room);
            e.rooms.add(room);
          } else if (x < 0.45) {
            const room = pick(ROOMS);
            e.client.leave(room);
            e.rooms.delete(room);
          } else if (x < 0.8) {
            rawEmit(pick(ROOMS));
          } else if (x < 0.9) {
            rawEmit(pick(ROOMS), e.client);
          } else if (x < 0.93) {
            rawEmit(null);
          } else if (x < 0.935) {
            e.serverClosed = true;
            e.open = false;
            e.client.close(4000, 'churned out');
          } else {
            rawEmit(pick(ROOMS));
          }
        }
      }
      if (rand() < 0.02 && newcomers < 8) {
        newcomers++;
        if (rand() < 0.5) newManager(MANAGERS + newcomers);
        else newRawClient(RAW_CLIENTS + newcomers);
      }
      await sleep(2);
    }
    clientTimers.forEach(clearInterval);
    // Let the toggles in flight land, then put a barrier behind everything on every live socket.
    await sleep(300);
    for (const e of sioModel.values()) if (e.open) e.socket.emit('done');
    for (const e of rawModel.values()) if (e.open) e.client.send(JSON.stringify({ done: true }));
    const allClients = managers.flatMap((m) => m.clients);
    await waitFor(() => allClients.every((c) => c.done || c.disconnected || !c.id)
      && rawClients.every((c) => c.done || c.closed || c.id === null), 10000).catch(() => {});

    // Compare.
    const leaks = []; // a message for a room the socket was not in
    const missing = [];
    const dupes = [];
    const notDone = [];
    for (const c of allClients) {
      if (!c.id) continue;
      const entry = sioModel.get(keyOf(c.nsp, c.id));
      if (!entry) {
        if (c.got.length) leaks.push(`${c.nsp} ${c.id}: unknown to the server, got ${c.got.length}`);
        continue;
      }
      if (entry.open && !c.done) notDone.push(`${c.nsp} ${c.id}`);
      const expected = new Set(entry.expected);
      const seen = new Set();
      for (const s of c.got) {
        if (seen.has(s)) dupes.push(`${c.nsp} ${c.id}: #${s} twice`);
        seen.add(s);
        if (!expected.has(s)) leaks.push(`${c.nsp} ${c.id} (now in [${[...entry.rooms]}]): got #${s}, ${sent.get(s)}`);
      }
      for (const s of expected) if (!seen.has(s)) missing.push(`${c.nsp} ${c.id}: #${s}, ${sent.get(s)}`);
      for (const t of c.wrongNsp) leaks.push(`${c.nsp} ${c.id}: message of namespace ${t.nsp} (#${t.s})`);
    }
    for (const c of rawClients) {
      if (c.id === null) continue;
      const entry = rawModel.get(c.id);
      if (entry.open && !c.done) notDone.push(`raw ${c.id}`);
      for (const msg of c.early) {
        if (msg.room !== null && msg.room !== c.queryRoom) leaks.push(`raw ${c.id}: before its hello, #${msg.s} for room ${msg.room}`);
      }
      const expected = new Set(entry.expected);
      const seen = new Set();
      for (const s of c.got) {
        if (seen.has(s)) dupes.push(`raw ${c.id}: #${s} twice`);
        seen.add(s);
        if (!expected.has(s)) leaks.push(`raw ${c.id} (now in [${[...entry.rooms]}]): got #${s}, ${sent.get(s)}`);
      }
      for (const s of expected) if (!seen.has(s)) missing.push(`raw ${c.id}: #${s}, ${sent.get(s)}`);
    }
    const delivered = allClients.reduce((n, c) => n + c.got.length, 0) + rawClients.reduce((n, c) => n + c.got.length, 0);
    // Enough happened for the test to mean something.
    expect(emits).toBeGreaterThan(1000);
    expect(delivered).toBeGreaterThan(2000);
    expect({ leaks: leaks.slice(0, 20), leakCount: leaks.length }).toEqual({ leaks: [], leakCount: 0 });
    expect({ dupes: dupes.slice(0, 20), count: dupes.length }).toEqual({ dupes: [], count: 0 });
    expect({ missing: missing.slice(0, 20), count: missing.length }).toEqual({ missing: [], count: 0 });
    expect(notDone).toEqual([]);
    expect(problems).toEqual([]);
    if (process.env.SIDEWIRE_TEST_VERBOSE) console.log({ emits, delivered, ops, newcomers, sio: sioModel.size, raw: rawModel.size });
  }, 40000);
});

// ------------------------------------------------------------------------------------------
// 2. authorize cannot be skipped
// ------------------------------------------------------------------------------------------

describe('a raw channel\'s authorize hook cannot be skipped', () => {
  // Two servers with the same channels: one where the engine listens (engine.listen: the fast
  // path peeks at each head), one where Node listens and the engine only sees 'upgrade' events.
  const servers = {};
  // Every decision authorize made, by the X-Case header of the request.
  const decisions = new Map();
  let caseNo = 0;

  // Rooms are approved by name: `mine-*` yes, anything else no. Two ways of reading the room
  // from the URL, as apps do: the first value (URLSearchParams.get, what `new URL()` gives) and
  // the last value (what client.query shows, Object.fromEntries over the same parameters).
  function roomFirst(url) {
    return new URL(url, 'http://x').searchParams.get('documentId');
  }
  function roomLast(url) {
    const q = url.indexOf('?');
    return Object.fromEntries(new URLSearchParams(q >= 0 ? url.slice(q + 1) : '')).documentId ?? null;
  }
  const authorizeWith = (read, channelName) => (req) => {
    const room = read(req.url);
    const approved = typeof room === 'string' && room.startsWith('mine-');
    decisions.set(req.headers['x-case'], { channel: channelName, url: req.url, room, approved });
    return approved ? true : { status: 403, message: 'not your document' };
  };

  function setupChannels(engine, name) {
    const connections = [];
    // As server.mjs's /ws/fabric, with an authorize hook: native relay, no JS events.
    const fabric = engine.channel('/ws/fabric', { roomQuery: 'documentId', relay: true, authorize: authorizeWith(roomFirst, 'fabric') });
    // A channel whose authorize reads the last value, with JS listeners (client.query, client.rooms).
    const hooked = engine.channel('/ws/hooked', { roomQuery: 'documentId', authorize: authorizeWith(roomLast, 'hooked') });
    hooked.on('connection', (client) => connections.push({ server: name, url: client.url, query: { ...client.query }, rooms: [...client.rooms], id: client.id }));
    return { fabric, hooked, connections };
  }

  beforeAll(async () => {
    for (const mode of ['listen', 'attach']) {
      const engine = new Engine({ global: false, logLevel: 'off', drainMs: 100 });
      const channels = setupChannels(engine, mode);
      const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => res.end(`page ${req.url}`));
      let p;
      if (mode === 'listen') {
        p = await engine.listen(server, { port: 0, host: '127.0.0.1' });
      } else {
        engine.attach(server);
        await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
        p = server.address().port;
      }
      servers[mode] = { engine, server, port: p, ...channels };
    }
  });

  afterAll(async () => {
    for (const s of Object.values(servers)) {
      await s.engine.close({ drainMs: 100 });
      await closeHttp(s.server);
    }
  });

  // Each case: the bytes to send, built from a request target with {secret} and {mine} rooms.
  // `channel`: which channel's rooms to inspect. `first`: a request before the upgrade on the
  // same connection (keep-alive: sent and answered first; pipelined: in the same write).
  const cases = [
    { name: 'plain target, a secret room (sanity: refused)', target: '/ws/fabric?documentId={secret}' },
    { name: 'plain target, an approved room (sanity: connects)', target: '/ws/fabric?documentId={mine}', mayConnect: true },
    { name: "'#' before the query", target: '/ws/fabric#?documentId={secret}' },
    { name: "'#' right after the path, then a query", target: '/ws/fabric#x?documentId={secret}' },
    { name: "'#' inside the query", target: '/ws/fabric?x=1#&documentId={secret}' },
    { name: 'percent-encoded path', target: '/ws/%66abric?documentId={secret}' },
    { name: 'percent-encoded slash', target: '/ws%2Ffabric?documentId={secret}' },
    { name: 'double slash in front', target: '//ws/fabric?documentId={secret}' },
    { name: 'double slash inside', target: '/ws//fabric?documentId={secret}' },
    { name: 'trailing slash', target: '/ws/fabric/?documentId={secret}' },
    { name: 'trailing dot', target: '/ws/fabric.?documentId={secret}' },
    { name: 'dot segment', target: '/ws/./fabric?documentId={secret}' },
    { name: 'dot-dot segment', target: '/ws/x/../fabric?documentId={secret}' },
    { name: 'upper-case path', target: '/WS/FABRIC?documentId={secret}' },
    { name: 'mixed-case channel name', target: '/ws/Fabric?documentId={secret}' },
    { name: 'upper-case query key', target: '/ws/fabric?DocumentId={secret}' },
    { name: 'percent-encoded query key', target: '/ws/fabric?document%49d={secret}' },
    { name: 'percent-encoded room value', target: '/ws/fabric?documentId={secret%}' },
    { name: 'absolute-form target', target: 'http://127.0.0.1/ws/fabric?documentId={secret}' },
    { name: 'semicolon path parameter', target: '/ws/fabric;x?documentId={secret}' },
    { name: 'repeated key, secret first (fabric: authorize reads the first)', target: '/ws/fabric?documentId={secret}&documentId={mine}' },
    { name: 'repeated key, secret last (fabric: authorize reads the first)', target: '/ws/fabric?documentId={mine}&documentId={secret}', mayConnect: true },
    { name: 'repeated key, secret first (hooked: authorize reads the last, as client.query)', target: '/ws/hooked?documentId={secret}&documentId={mine}', channel: 'hooked', mayConnect: true },
    { name: 'repeated key, secret last (hooked: authorize reads the last, as client.query)', target: '/ws/hooked?documentId={mine}&documentId={secret}', channel: 'hooked' },
    { name: 'repeated key, the second percent-encoded, secret first (hooked)', target: '/ws/hooked?documentId={secret}&document%49d={mine}', channel: 'hooked', mayConnect: true },
    { name: 'repeated key, the first percent-encoded, secret first (hooked)', target: '/ws/hooked?document%49d={secret}&documentId={mine}', channel: 'hooked', mayConnect: true },
    { name: 'repeated key, the second without a value (fabric)', target: '/ws/fabric?documentId={mine}&documentId', mayConnect: true },
    { name: 'repeated key, the first without a value (hooked)', target: '/ws/hooked?documentId&documentId={mine}', channel: 'hooked', mayConnect: true },
    { name: 'a room value that is not UTF-8 (hooked: the room JS approves is the room joined)', target: '/ws/hooked?documentId={mine}%FF', channel: 'hooked', mayConnect: true },
    { name: "hooked channel, '#' before the query", target: '/ws/hooked#?documentId={secret}', channel: 'hooked' },
    { name: 'keep-alive: a page first, then the upgrade', target: '/ws/fabric?documentId={secret}', first: 'keepalive' },
    { name: "keep-alive: a page first, then the upgrade with '#'", target: '/ws/fabric#?documentId={secret}', first: 'keepalive' },
    { name: 'pipelined behind a page request in one write', target: '/ws/fabric?documentId={secret}', first: 'pipelined' },
    { name: "pipelined behind a page request, with '#'", target: '/ws/fabric#?documentId={secret}', first: 'pipelined' },
    { name: 'pipelined behind an approved upgrade', target: '/ws/fabric?documentId={secret}', first: 'pipelined-upgrade' },
    { name: 'lower-case header names and values', target: '/ws/fabric?documentId={secret}', lowerHeaders: true },
  ];

  async function attempt(mode, c) {
    const srv = servers[mode];
    const n = ++caseNo;
    const secret = `secret-${n}`;
    const mine = `mine-${n}`;
    const target = c.target.replace('{secret%}', encodeURIComponent(secret).replace('s', '%73')).replace('{secret}', secret).replace('{mine}', mine);
    const channel = srv[c.channel || 'fabric'];
    let head = wsHead(target, [['X-Case', String(n)]]);
    if (c.lowerHeaders) head = head.replace(/\r\n([A-Za-z-]+):/g, (m, k) => `\r\n${k.toLowerCase()}:`).replace('upgrade: websocket', 'upgrade: WebSocket');
    let steps;
    let before = 0;
    if (c.first === 'keepalive') {
      steps = [{ write: getHead('/page'), responses: 1 }, { write: head, responses: 2 }];
      before = 1;
    } else if (c.first === 'pipelined') {
      steps = [{ write: getHead('/page') + head, responses: 2 }];
      before = 1;
    } else if (c.first === 'pipelined-upgrade') {
      steps = [{ write: wsHead(`/ws/fabric?documentId=${mine}`, [['X-Case', `${n}-first`]]) + head, responses: 1 }];
    } else {
      steps = [{ write: head, responses: 1 }];
    }
    const r = await converse(srv.port, steps, { timeoutMs: 2000 });
    const upgrade = r.responses[before] || (c.first === 'pipelined-upgrade' ? r.responses[0] : undefined);
    const status = upgrade ? upgrade.status : null;
    let gotProbe = false;
    let secretCount = 0;
    let mineCount = 0;
    let approvedCount = 0;
    if (status === 101) {
      // Which room did the connection land in? Count both, and send the secret room a probe.
      await sleep(100);
      secretCount = channel.count(secret);
      mineCount = channel.count(mine);
      const d = decisions.get(String(n));
      if (d && typeof d.room === 'string') approvedCount = channel.count(d.room);
      const probe = `probe-for-${secret}`;
      channel.broadcast(secret, probe);
      await sleep(150);
      gotProbe = r.conn.data.includes(Buffer.from(probe));
    }
    r.sock.destroy();
    const decision = decisions.get(String(n)) || null;
    const connections = srv.connections.filter((x) => x.url.includes(secret) || x.url.includes(mine));
    return { target, status, decision, secretCount, mineCount, approvedCount, gotProbe, connections, secret, mine };
  }

  for (const mode of ['listen', 'attach']) {
    describe(mode === 'listen' ? 'engine.listen (fast path)' : "server.listen + the 'upgrade' event", () => {
      test.each(cases.map((c) => [c.name, c]))('%s', async (_name, c) => {
        const r = await attempt(mode, c);
        // Never in the secret room, by any measure.
        expect({ target: r.target, status: r.status, inSecretRoom: r.secretCount, probeReached: r.gotProbe })
          .toEqual({ target: r.target, status: r.status, inSecretRoom: 0, probeReached: false });
        if (r.status === 101 && c.first !== 'pipelined-upgrade') {
          // Connected: authorize saw this very request and approved exactly the room joined.
          expect(r.decision).not.toBeNull();
          expect(r.decision.approved).toBe(true);
          expect({ approved: r.decision.room, membersOfTheApprovedRoom: r.approvedCount }).toEqual({ approved: r.decision.room, membersOfTheApprovedRoom: 1 });
          // What JS is told about the connection matches what the engine did.
          for (const conn of r.connections) {
            expect({ query: conn.query.documentId, rooms: conn.rooms }).toEqual({ query: r.decision.room, rooms: [r.decision.room] });
          }
        }
        if (!c.mayConnect && c.first !== 'pipelined-upgrade') expect(r.status).not.toBe(101);
      });
    });
  }
});

// ------------------------------------------------------------------------------------------
// 3. CORS for Socket.IO WebSocket upgrades
// ------------------------------------------------------------------------------------------

describe('a CORS-refused origin cannot open a Socket.IO WebSocket', () => {
  const ALLOWED = 'https://allowed.example';
  const EVIL = 'https://evil.example';
  const servers = {};

  beforeAll(async () => {
    for (const mode of ['listen', 'attach']) {
      const engine = new Engine({ global: false, logLevel: 'off', drainMs: 100 });
      const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
        if (mode === 'listen' && servers[mode].io.handleRequest(req, res)) return;
        res.end('page');
      });
      let io;
      let p;
      if (mode === 'listen') {
        io = new Server({ engine, cors: { origin: ALLOWED } });
        servers[mode] = { engine, server, io };
        p = await engine.listen(server, { port: 0, host: '127.0.0.1' });
      } else {
        io = new Server(server, { engine, cors: { origin: ALLOWED } });
        servers[mode] = { engine, server, io };
        await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
        p = server.address().port;
      }
      io.on('connection', (socket) => socket.emit('welcome', socket.handshake.headers.origin || null));
      servers[mode].port = p;
    }
  });

  afterAll(async () => {
    for (const s of Object.values(servers)) {
      await Promise.all([s.io.close(), s.engine.close({ drainMs: 100 })]);
      await closeHttp(s.server);
    }
  });

  // A polling handshake (no Origin: a non-browser client is not subject to CORS); its sid.
  async function pollingSid(port, origin) {
    const headers = origin ? { Origin: origin } : {};
    const res = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`, { headers });
    const text = await res.text();
    if (res.status !== 200) return { status: res.status };
    return { status: 200, sid: JSON.parse(text.slice(1)).sid };
  }

  // Upgrade attempts: [name, query, header lines]. `sid`: take a polling session first.
  const variants = [
    ['Origin header', '', [['Origin', EVIL]]],
    ['lower-case origin header', '', [['origin', EVIL]]],
    ['upper-case ORIGIN header', '', [['ORIGIN', EVIL]]],
    ['an origin that only starts like the allowed one', '', [['Origin', `${ALLOWED}.evil.example`]]],
    ['Origin: null (sandboxed page)', '', [['Origin', 'null']]],
    ['two Origin headers, the evil one first', '', [['Origin', EVIL], ['Origin', ALLOWED]]],
    ['two Origin headers, the allowed one first', '', [['Origin', ALLOWED], ['Origin', EVIL]]],
    ['repeated transport key', '&transport=polling', [['Origin', EVIL]]],
    ["'#' in the target", '#', [['Origin', EVIL]]],
  ];
  const paths = [
    ['/socket.io/', 'the Socket.IO path'],
    ['/socket.io', 'the path without its trailing slash'],
  ];

  for (const mode of ['listen', 'attach']) {
    describe(mode === 'listen' ? 'engine.listen (fast path)' : "server.listen + the 'upgrade' event", () => {
      test('sanity: the allowed origin connects, and so does a client without an Origin', async () => {
        const { port } = servers[mode];
        for (const headers of [[['Origin', ALLOWED]], []]) {
          const r = await converse(port, [{ write: wsHead('/socket.io/?EIO=4&transport=websocket', headers), responses: 1 }]);
          expect(r.responses[0] && r.responses[0].status).toBe(101);
          r.sock.destroy();
        }
      });

      for (const [path, pathName] of paths) {
        for (const withSid of [false, true]) {
          test.each(variants.map((v) => [v[0], v]))(`${pathName}, ${withSid ? 'with' : 'without'} a sid: %s is refused`, async (_n, [, extraQuery, headers]) => {
            const { port } = servers[mode];
            let query = 'EIO=4&transport=websocket';
            if (withSid) {
              const s = await pollingSid(port);
              expect(s.status).toBe(200);
              query += `&sid=${s.sid}`;
            }
            const target = extraQuery === '#' ? `${path}#?${query}` : `${path}?${query}${extraQuery}`;
            const r = await converse(port, [{ write: wsHead(target, headers), responses: 1 }]);
            const status = r.responses[0] ? r.responses[0].status : null;
            r.sock.destroy();
            expect({ target, headers, status: status === 101 ? 'opened (101)' : 'refused' }).toEqual({ target, headers, status: 'refused' });
          });
        }
      }

      test('keep-alive: a polling handshake first, then the upgrade with the evil origin on the same connection', async () => {
        const { port } = servers[mode];
        for (const withSid of [false, true]) {
          const conn = await rawConnection(port, { timeoutMs: 1500 });
          const first = await conn.send(getHead('/socket.io/?EIO=4&transport=polling'), 1);
          expect(first.responses[0] && first.responses[0].status).toBe(200);
          const { sid } = JSON.parse(first.responses[0].body.toString().slice(1));
          const query = withSid ? `EIO=4&transport=websocket&sid=${sid}` : 'EIO=4&transport=websocket';
          const after = await conn.send(wsHead(`/socket.io/?${query}`, [['Origin', EVIL]]), 2);
          const statuses = after.responses.map((x) => x.status);
          conn.sock.destroy();
          expect({ query, statuses }).toEqual({ query, statuses: [200, 403] });
        }
      });

      test('pipelined: the upgrade with the evil origin right behind a page request', async () => {
        const { port } = servers[mode];
        const r = await converse(port, [{ write: getHead('/page') + wsHead('/socket.io/?EIO=4&transport=websocket', [['Origin', EVIL]]), responses: 2 }]);
        const statuses = r.responses.map((x) => x.status);
        r.sock.destroy();
        expect(statuses).not.toContain(101);
      });

      test('a polling handshake from the evil origin is refused too (so it has no sid to upgrade)', async () => {
        const { port } = servers[mode];
        expect((await pollingSid(port, EVIL)).status).toBe(403);
      });
    });
  }
});
