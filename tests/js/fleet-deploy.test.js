'use strict';
// Scaling out, for real, on loopback: a redis-server, the ticket desk's server.mjs started twice
// (REDIS_URL set, one shared data directory: the SQLite file in WAL mode and the uploads),
// deploy/nginx-fleet.conf in front of both (TLS at nginx, ip_hash), and a ticket page in
// headless Chromium connected through nginx. An API route called directly on the node the page
// is NOT connected to commits to the shared database and emits; the event crosses Redis and
// reaches the page without a reload. A polling-only client keeps one Engine.IO session across
// many polls through nginx; the same file without ip_hash breaks polling and not WebSocket. The
// raw /ws/fabric relay crosses nodes too.
// Then ecosystem.fleet.config.cjs under a private PM2 daemon: two fork-mode apps on two ports,
// both in the fleet, one reloaded while the other serves.
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { waitForText, waitForAttr, LIVE_TIMEOUT } = require('./helpers/page');
const { io: ioClient } = require('socket.io-client');
const { startServerProcess, freePort, root, deskAuth, DESK_SECRET } = require('./helpers/server-process');
const { stopPm2, pm2Cli } = require('./helpers/pm2');
const { startNginx, replaceExactly, which, FLEET_SITE } = require('./helpers/nginx');
const { startRedis } = require('./helpers/redis-server');
const { ensureProductionBuild } = require('./helpers/next-build');
const { open, messages, waitFor } = require('./helpers/ws');
const { request, createTicket, addComment, joinTickets } = require('./helpers/tickets');

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync',
];
const NAV_TIMEOUT = 30000;

const tmp = (prefix) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));
const tid = (id) => `[data-testid="${id}"]`;
const ticketOf = (payload) => payload?.ticket ?? payload;

/** Every step of a cleanup runs, whatever an earlier one threw; the first error is rethrown. */
async function allOf(steps) {
  let first = null;
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      first ??= err;
    }
  }
  if (first) throw first;
}

async function health(url, timeoutMs = 5000) {
  const r = await request(url, { timeoutMs });
  if (r.status !== 200 || !r.json) throw new Error(`GET ${url}: ${r.status} ${r.text.slice(0, 200)}`);
  return r.json;
}

/** Resolves once `socket` is connected; rejects on connect_error (reconnection is off). */
function connected(socket, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    const timer = setTimeout(() => reject(new Error('socket.io client did not connect in time')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    return undefined;
  });
}

/** Resolves with the payload of the first `event` for which `match(payload)` holds. */
function nextEvent(socket, event, match, timeoutMs = LIVE_TIMEOUT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`no matching '${event}' in ${timeoutMs} ms`));
    }, timeoutMs);
    function handler(payload) {
      if (!match(payload)) return;
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(payload);
    }
    socket.on(event, handler);
  });
}


let redis; // one redis-server for the whole file

beforeAll(async () => {
  // Production, as deployed (`next build` first when the build is missing or stale).
  await ensureProductionBuild();
  redis = await startRedis();
}, 240000);

afterAll(async () => {
  if (redis) await redis.stop();
}, 15000);

describe('deploy/nginx-fleet.conf in front of two server.mjs processes sharing one Redis', () => {
  const nodes = [];
  let ngx;
  let browser;
  let dataDir;
  const clients = [];
  const contexts = [];

  const nodeHealth = (node) => health(node.url('/health'));

  beforeAll(async () => {
    // ONE data directory for both: the API routes of either node read and write the same
    // tickets (SQLite in WAL mode, the write transactions BEGIN IMMEDIATE: lib/db.js).
    dataDir = tmp('sidewire-fleet-data-');
    const env = { NODE_ENV: 'production', SIDEWIRE_DATA_DIR: dataDir, SIDEWIRE_DRAIN_MS: '500', REDIS_URL: redis.url };
    // One after the other: on a 2-CPU machine two Next.js servers preparing at once are slow.
    nodes.push(await startServerProcess(env));
    nodes.push(await startServerProcess(env));
    // Both in the fleet: each subscribed to the other's traffic.
    await waitFor(async () => {
      const states = await Promise.all(nodes.map((n) => nodeHealth(n).then((h) => h.adapter?.state, () => null)));
      return states.every((s) => s === 'ready');
    }, 15000, 100);
    ngx = await startNginx({ site: FLEET_SITE, upstreamPorts: nodes.map((n) => n.port) });
    const executablePath = which('chromium') || '/usr/bin/chromium';
    browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
  }, 150000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await allOf([
      async () => {
        for (const c of contexts) await c.close().catch(() => {});
      },
      async () => browser && (await browser.close()),
      async () => ngx && (await ngx.stop()),
      ...nodes.map((n) => async () => n.stop()),
      async () => dataDir && fs.rmSync(dataDir, { recursive: true, force: true }),
    ]);
  }, 60000);

  async function openPage(url) {
    // nginx's certificate is a throwaway self-signed one.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(LIVE_TIMEOUT);
    await page.goto(url, { waitUntil: 'load', timeout: NAV_TIMEOUT });
    await waitForText(page, tid('connection-status'), 'connected', NAV_TIMEOUT);
    // Marks this document: still there later means the page was never reloaded.
    await page.evaluate(() => {
      window.__sidewireNoReload = true;
    });
    return { context, page };
  }
  const notReloaded = (page) => page.evaluate(() => window.__sidewireNoReload === true);

  /** The node whose Socket.IO server has a socket in `room`, and the other one. */
  async function whereIs(room) {
    let found = null;
    await waitFor(async () => {
      const inRoom = await Promise.all(nodes.map(async (n) => (await nodeHealth(n)).socketio.namespaces['/']?.rooms?.[room] ?? 0));
      const holders = nodes.filter((_, i) => inRoom[i] > 0);
      if (holders.length !== 1 || inRoom.reduce((a, b) => a + b, 0) !== 1) return false;
      found = holders[0];
      return true;
    }, LIVE_TIMEOUT, 50);
    return { home: found, other: nodes.find((n) => n !== found) };
  }

  test('each node logs that it joined through REDIS_URL, and /health shows the adapter ready', async () => {
    for (const node of nodes) {
      expect(node.output().stdout).toContain(`>   adapter: redis redis://127.0.0.1:${redis.port} (REDIS_URL`);
      const h = await nodeHealth(node);
      expect(h.status).toBe('ok');
      expect(h.adapter).toEqual(expect.objectContaining({ type: 'redis', state: 'ready', dropped: 0, invalid: 0, pendingBytes: 0 }));
      expect(h.connections.channels['/ws/fabric']).toBeDefined();
    }
  });

  test('a ticket page through nginx gets a comment and a status change made by API calls to the other node, without a reload', async () => {
    const ticket = await createTicket(nodes[0].url(''), { title: 'Fleet printer', description: 'two nodes, one desk' });
    const { context, page } = await openPage(ngx.https(`/tickets/${ticket.id}`));
    try {
      expect((await page.textContent(tid('ticket-title'))).trim()).toBe('Fleet printer');

      // The page's socket joined ticket:<id> on exactly one node: the one nginx sent it to.
      const { home, other } = await whereIs(`ticket:${ticket.id}`);
      expect(other.port).not.toBe(home.port);
      const before = { home: (await nodeHealth(home)).adapter, other: (await nodeHealth(other)).adapter };

      // Straight to the other node's port, not through nginx: its route handler commits and
      // emits on its own Socket.IO server, which has no client in that room.
      const comment = await addComment(other.url(''), ticket.id, { author: 'node-b', body: 'Posted on the other node' });
      const sel = `${tid('comment-list')} ${tid('comment')}[data-comment-id="${comment.id}"] ${tid('comment-body')}`;
      await waitForText(page, sel, 'Posted on the other node');

      const patched = await request(other.url(`/api/tickets/${ticket.id}`), { method: 'PATCH', json: { status: 'resolved' } });
      expect(patched.status).toBe(200);
      expect(patched.headers['x-sidewire-emit']).toBe('sent');
      await waitForText(page, tid('ticket-status'), 'resolved');
      expect(await notReloaded(page)).toBe(true);

      // Through Redis: the other node published, the page's node received and delivered.
      const after = { home: (await nodeHealth(home)).adapter, other: (await nodeHealth(other)).adapter };
      expect(after.other.published).toBeGreaterThanOrEqual(before.other.published + 2);
      expect(after.home.received).toBeGreaterThanOrEqual(before.home.received + 2);
      // And the other node's database is the page node's: the ticket as the page's node reads it.
      const detail = await request(home.url(`/api/tickets/${ticket.id}`));
      expect(detail.json.status).toBe('resolved');
      expect(detail.json.comments.map((c) => c.id)).toContain(comment.id);
    } finally {
      await context.close();
    }
  }, 90000);

  test("presence across nodes: a second page on the other node's port, both pages show 2 viewers, then 1", async () => {
    const ticket = await createTicket(nodes[1].url(''), { title: 'Who is here', description: 'viewers from two nodes' });
    const a = await openPage(ngx.https(`/tickets/${ticket.id}`));
    try {
      const { other } = await whereIs(`ticket:${ticket.id}`);
      await waitForAttr(a.page, tid('viewers'), 'data-count', '1');
      // Directly on the other node (plain HTTP): the two viewers are on different processes.
      const b = await openPage(other.url(`/tickets/${ticket.id}`));
      for (const { page } of [a, b]) await waitForAttr(page, tid('viewers'), 'data-count', '2');
      await b.context.close();
      await waitForAttr(a.page, tid('viewers'), 'data-count', '1');
      expect(await notReloaded(a.page)).toBe(true);
    } finally {
      await a.context.close();
    }
  }, 90000);

  test('the list page through nginx shows a ticket created on the other node, live', async () => {
    const { context, page } = await openPage(ngx.https('/'));
    try {
      const { other } = await whereIs('tickets');
      const ticket = await createTicket(other.url(''), { title: 'Made on the other node', description: 'list page' });
      const row = `${tid('ticket-list')} ${tid('ticket-row')}[data-ticket-id="${ticket.id}"]`;
      await page.waitForSelector(row, { timeout: LIVE_TIMEOUT });
      expect(await page.textContent(row)).toMatch(/Made on the other node/);
      expect(await notReloaded(page)).toBe(true);
    } finally {
      await context.close();
    }
  }, 60000);

  test('/ws/fabric relays between a client on each node (the channel has the adapter too)', async () => {
    const a = await open(nodes[0].wsUrl('/ws/fabric?documentId=across-nodes&clientID=a'));
    const b = await open(nodes[1].wsUrl('/ws/fabric?documentId=across-nodes&clientID=b'));
    clients.push(a, b);
    const toB = messages(b, 2, 5000);
    const toA = messages(a, 1, 5000);
    a.send('from node A');
    a.send(Buffer.from([1, 2, 3]));
    b.send('from node B');
    const gotB = await toB;
    expect(gotB[0]).toEqual(['from node A', false]);
    expect([...gotB[1][0]]).toEqual([1, 2, 3]);
    expect((await toA)[0]).toEqual(['from node B', false]);
    // one member on each node: the relay crossed Redis, not one process
    const members = await Promise.all(nodes.map(async (n) => (await nodeHealth(n)).connections.channels['/ws/fabric'].rooms['across-nodes']));
    expect(members).toEqual([1, 1]);
    a.close();
    b.close();
  });

  test('a polling-only socket.io-client through nginx keeps one session across many polls (ip_hash)', async () => {
    const socket = ioClient(ngx.https('/'), { ca: ngx.ca, transports: ['polling'], reconnection: false, forceNew: true, auth: deskAuth('polling') });
    clients.push(socket);
    const disconnects = [];
    socket.on('disconnect', (reason) => disconnects.push(reason));
    await connected(socket);
    const sid = socket.io.engine.id;
    expect(await joinTickets(socket)).toEqual({ ok: true });
    const { home, other } = await whereIs('tickets');

    // Each round: an emit with ack (a POST, the ack in a held GET) and an event from an API
    // call on alternating nodes (in a held GET): dozens of polling requests in all.
    const ROUNDS = 25;
    for (let i = 0; i < ROUNDS; i++) {
      expect(await socket.timeout(5000).emitWithAck('tickets:join')).toEqual({ ok: true });
      const title = `poll round ${i}`;
      const got = nextEvent(socket, 'ticket:created', (p) => ticketOf(p)?.title === title);
      await createTicket((i % 2 ? home : other).url(''), { title, description: 'x' });
      expect(ticketOf(await got).title).toBe(title);
    }
    expect(socket.connected).toBe(true);
    expect(socket.io.engine.id).toBe(sid);
    expect(socket.io.engine.transport.name).toBe('polling');
    expect(disconnects).toEqual([]);
    // Every request of the session went through nginx to the node that holds it (a request that
    // reached the other node would have been refused and closed the session).
    const polls = (fs.readFileSync(path.join(ngx.dir, 'access.log'), 'utf8').match(new RegExp(`sid=${sid}`, 'g')) || []).length;
    expect(polls).toBeGreaterThanOrEqual(2 * ROUNDS);
    expect((await nodeHealth(home)).socketio.sessions).toBeGreaterThanOrEqual(1);
    expect((await nodeHealth(other)).socketio.namespaces['/']?.rooms?.tickets ?? 0).toBe(0);
    expect(ngx.errorLog()).not.toMatch(/\[(error|crit|alert|emerg)\]/);
    socket.close();
  }, 60000);

  test('the same file without ip_hash: round robin breaks a polling session, not a WebSocket one', async () => {
    const rr = await startNginx({
      site: FLEET_SITE,
      upstreamPorts: nodes.map((n) => n.port),
      edit: (s) => replaceExactly(s, /^\s*ip_hash;\n/m, '', 1, 'deploy/nginx-fleet.conf'),
    });
    try {
        // The handshake lands on one node, the next request on the other: "Session ID unknown".
        const polling = ioClient(rr.https('/'), { ca: rr.ca, transports: ['polling'], reconnection: false, forceNew: true, auth: deskAuth('rr-polling') });
        clients.push(polling);
        const broke = await new Promise((resolve) => {
          const timer = setTimeout(() => resolve('still connected'), 8000);
          const done = (what) => {
            clearTimeout(timer);
            resolve(what);
          };
          polling.on('connect_error', (err) => done(`connect_error: ${err.message}`));
          polling.on('disconnect', (reason) => done(`disconnect: ${reason}`));
        });
        polling.close();
        expect(broke).not.toBe('still connected');
        const log = fs.readFileSync(path.join(rr.dir, 'access.log'), 'utf8');
        expect(log).toMatch(/"(GET|POST) \/socket\.io\/\?EIO=4&transport=polling[^"]*sid=[^"]*" 400 /);

        // One WebSocket connection per session: nothing to keep together.
        const ws = ioClient(rr.https('/'), { ca: rr.ca, transports: ['websocket'], reconnection: false, forceNew: true, auth: deskAuth('rr-ws') });
        clients.push(ws);
        await connected(ws);
        expect(await joinTickets(ws)).toEqual({ ok: true });
        for (const node of nodes) {
          const title = `websocket behind round robin via ${node.port}`;
          const got = nextEvent(ws, 'ticket:created', (p) => ticketOf(p)?.title === title);
          await createTicket(node.url(''), { title, description: 'x' });
          expect(ticketOf(await got).title).toBe(title);
        }
        ws.close();
    } finally {
      await rr.stop();
    }
  }, 60000);
});

describe('ecosystem.fleet.config.cjs under PM2', () => {
  let pm2Home;
  let dataDir;
  let firstPort;
  let env;
  let socket;

  const { pm2, jlist } = pm2Cli(() => env);

  const portOf = (i) => firstPort + i;
  const url = (i, p) => `http://127.0.0.1:${portOf(i)}${p}`;

  /** A free port whose next port is free too (the fleet's apps take PORT, PORT + 1). */
  async function twoFreePorts() {
    for (let attempt = 0; attempt < 50; attempt++) {
      const p = await freePort();
      if (p >= 65535) continue;
      const free = await new Promise((resolve) => {
        const srv = net.createServer();
        srv.once('error', () => resolve(false));
        srv.listen(p + 1, '127.0.0.1', () => srv.close(() => resolve(true)));
      });
      if (free) return p;
    }
    throw new Error('no two consecutive free ports');
  }

  function listening(port) {
    return new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  }

  beforeAll(async () => {
    pm2Home = tmp('sidewire-pm2-fleet-');
    // An existing `touch` file tells the pm2 CLI it is not a first run: no banner, and no
    // "install" version check over the network.
    fs.writeFileSync(path.join(pm2Home, 'touch'), String(Date.now()));
    dataDir = tmp('sidewire-pm2-fleet-data-');
    firstPort = await twoFreePorts();
    env = {
      ...process.env,
      PM2_HOME: pm2Home,
      PM2_DISABLE_VERSION_CHECK: 'true',
      PORT: String(firstPort),
      SIDEWIRE_INSTANCES: '2',
      HOST: '127.0.0.1',
      REDIS_URL: redis.url,
      TICKETING_JWT_SECRET: DESK_SECRET,
      // the file's default, spelled out: Jest sets NODE_ENV=test, which would reach the apps
      NODE_ENV: 'production',
      SIDEWIRE_DRAIN_MS: '1000',
      SIDEWIRE_DATA_DIR: dataDir,
      NEXT_TELEMETRY_DISABLED: '1',
    };
    await pm2(['start', 'ecosystem.fleet.config.cjs']);
  }, 60000);

  afterAll(async () => {
    socket?.close();
    await stopPm2(pm2Home, pm2);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 60000);

  test('two fork-mode apps on PORT and PORT + 1, both in the fleet; a rolling reload; then deleted', async () => {
    const list = await jlist();
    expect(list.map((a) => a.name).sort()).toEqual(['sidewire-0', 'sidewire-1']);
    for (const app of list) {
      const i = Number(app.name.slice(-1));
      expect(app.pm2_env.exec_mode).toBe('fork_mode');
      expect(app.pm2_env.instances).toBe(1);
      expect(app.pm2_env.status).toBe('online');
      expect(String(app.pm2_env.PORT)).toBe(String(portOf(i)));
      expect(app.pm2_env.REDIS_URL).toBe(redis.url);
      expect(app.pm2_env.kill_timeout).toBeGreaterThan(Number(app.pm2_env.SIDEWIRE_DRAIN_MS));
    }
    expect(new Set(list.map((a) => a.pid)).size).toBe(2);

    // Both answer /health with the adapter ready (Next may take a few seconds to prepare).
    const healths = await Promise.all([0, 1].map((i) => waitFor(async () => {
      try {
        const h = await health(url(i, '/health'), 2000);
        return h.status === 'ok' && h.adapter?.state === 'ready' ? h : false;
      } catch {
        return false;
      }
    }, 45000, 200)));
    for (const h of healths) expect(h.adapter).toEqual(expect.objectContaining({ type: 'redis', state: 'ready' }));

    // The two processes are one fleet: a client of sidewire-0 hears a ticket made on sidewire-1.
    socket = ioClient(url(0, ''), { reconnection: false, forceNew: true, transports: ['websocket'], auth: deskAuth('node-0') });
    await connected(socket);
    expect(await joinTickets(socket)).toEqual({ ok: true });
    const got = nextEvent(socket, 'ticket:created', (p) => ticketOf(p)?.title === 'made on sidewire-1');
    await createTicket(url(1, ''), { title: 'made on sidewire-1', description: 'pm2 fleet' });
    expect(ticketOf(await got).title).toBe('made on sidewire-1');
    socket.close();

    // A rolling reload, one app at a time (README, Scaling out): while sidewire-0 restarts,
    // sidewire-1 answers every /health; then sidewire-0 is back in the fleet.
    const before = await jlist();
    const pidOf = (list, name) => list.find((a) => a.name === name).pid;
    let watching = true;
    const answers = [];
    const watcher = (async () => {
      while (watching) {
        answers.push(await request(url(1, '/health'), { timeoutMs: 2000 }).then((r) => r.status, (err) => err.message));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await pm2(['reload', 'sidewire-0'], 45000);
      await waitFor(async () => {
        try {
          return (await health(url(0, '/health'), 2000)).adapter?.state === 'ready';
        } catch {
          return false;
        }
      }, 45000, 200);
    } finally {
      watching = false;
      await watcher;
    }
    const after = await jlist();
    expect(pidOf(after, 'sidewire-0')).not.toBe(pidOf(before, 'sidewire-0'));
    expect(pidOf(after, 'sidewire-1')).toBe(pidOf(before, 'sidewire-1'));
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a !== 200)).toEqual([]);
    socket = ioClient(url(1, ''), { reconnection: false, forceNew: true, transports: ['websocket'], auth: deskAuth('node-1') });
    await connected(socket);
    expect(await joinTickets(socket)).toEqual({ ok: true });
    const again = nextEvent(socket, 'ticket:created', (p) => ticketOf(p)?.title === 'made on the reloaded sidewire-0');
    await createTicket(url(0, ''), { title: 'made on the reloaded sidewire-0', description: 'pm2 fleet' });
    expect(ticketOf(await again).title).toBe('made on the reloaded sidewire-0');
    socket.close();

    await pm2(['delete', 'ecosystem.fleet.config.cjs']);
    expect(await jlist()).toEqual([]);
    await waitFor(async () => !(await listening(portOf(0))) && !(await listening(portOf(1))), 15000, 100);
  }, 90000);
});
