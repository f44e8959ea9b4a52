'use strict';
// Deployment, for real: deploy/nginx.conf in front of server.mjs (TLS terminated by nginx,
// Socket.IO over polling, WebSocket and the upgrade, a raw /ws/fabric relay, pages, /health),
// and ecosystem.config.cjs under a private PM2 daemon through a `pm2 reload` that a
// reconnecting socket.io client rides out.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { io: ioClient } = require('socket.io-client');
const { startServerProcess, freePort, root, deskAuth, DESK_SECRET } = require('./helpers/server-process');
const { stopPm2, pm2Cli } = require('./helpers/pm2');
const { startNginx } = require('./helpers/nginx');
const { ensureProductionBuild } = require('./helpers/next-build');
const { open, messages, waitFor } = require('./helpers/ws');
const { request, createTicket, joinTickets } = require('./helpers/tickets');

const tmp = (prefix) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** Resolves once `socket` is connected (rejects on connect_error when reconnection is off). */
function connected(socket, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    const timer = setTimeout(() => reject(new Error('socket.io client did not connect in time')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    if (!socket.io.opts.reconnection) {
      socket.once('connect_error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    }
    return undefined;
  });
}

/** Resolves with the payload of the first `event` for which `match(payload)` holds. */
function nextEvent(socket, event, match, timeoutMs = 15000) {
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

const ticketOf = (payload) => payload?.ticket ?? payload;

describe('deploy/nginx.conf in front of server.mjs', () => {
  let srv;
  let ngx;
  let dataDir;
  const clients = [];

  beforeAll(async () => {
    dataDir = tmp('sidewire-deploy-data-');
    // Production, as deployed (`next build` first when the build is missing or stale).
    await ensureProductionBuild({ env: { SIDEWIRE_DATA_DIR: dataDir } });
    srv = await startServerProcess({ NODE_ENV: 'production', SIDEWIRE_DATA_DIR: dataDir, SIDEWIRE_DRAIN_MS: '1000' });
    ngx = await startNginx({ upstreamPort: srv.port });
  }, 90000);

  afterAll(async () => {
    for (const c of clients) c.disconnect?.() ?? c.close?.();
    if (ngx) await ngx.stop();
    if (srv) await srv.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 30000);

  test('pages and /health through nginx over TLS; plain HTTP redirects to HTTPS', async () => {
    const health = await request(ngx.https('/health'), { ca: ngx.ca });
    expect(health.status).toBe(200);
    expect(health.json.status).toBe('ok');
    expect(health.json.connections.channels['/ws/fabric']).toBeDefined();

    const ready = await request(ngx.https('/ready'), { ca: ngx.ca });
    expect(ready.status).toBe(200);
    expect(ready.json.status).toBe('ready');
    // /metrics reaches the app only from the monitoring host (this machine, in the test).
    const metrics = await request(ngx.https('/metrics'), { ca: ngx.ca });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^sidewire_channel_connections\{channel="\/ws\/fabric"\} \d+$/m);

    const page = await request(ngx.https('/'), { ca: ngx.ca });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.text).toMatch(/<html/i);

    const plain = await request(ngx.http('/tickets?x=1'));
    expect(plain.status).toBe(301);
    expect(plain.headers.location).toMatch(/^https:\/\/[^/]+\/tickets\?x=1$/);
  }, 60000);

  test.each([
    ['polling only', ['polling'], 'polling'],
    ['websocket only', ['websocket'], 'websocket'],
    ['default: polling upgraded to websocket', undefined, 'websocket'],
  ])('socket.io-client through nginx, %s: connect, emit with ack, receive an event', async (_name, transports, finalTransport) => {
    const socket = ioClient(ngx.https('/'), {
      ca: ngx.ca,
      reconnection: false,
      forceNew: true,
      auth: deskAuth('through-nginx'),
      ...(transports ? { transports } : {}),
    });
    clients.push(socket);
    await connected(socket);
    await waitFor(() => socket.io.engine.transport.name === finalTransport, 10000);

    // emit with ack: join the room every new ticket is announced in
    expect(await joinTickets(socket)).toEqual({ ok: true });

    // an API route (through nginx as well) emits to that room
    const title = `via nginx ${finalTransport} ${Date.now()}`;
    const created = nextEvent(socket, 'ticket:created', (p) => ticketOf(p)?.title === title);
    const ticket = await createTicket(ngx.https(''), { title, description: 'created behind nginx' }, { ca: ngx.ca });
    const got = ticketOf(await created);
    expect(got.id).toBe(ticket.id);
    expect(socket.io.engine.transport.name).toBe(finalTransport);
    socket.disconnect();
  }, 60000);

  test('/ws/fabric through nginx (wss): two clients in one room relay text and binary', async () => {
    const a = await open(ngx.wss('/ws/fabric?documentId=behind-nginx&clientID=a'), { ca: ngx.ca });
    const b = await open(ngx.wss('/ws/fabric?documentId=behind-nginx&clientID=b'), { ca: ngx.ca });
    clients.push(a, b);
    const toB = messages(b, 2, 5000);
    const toA = messages(a, 1, 5000);
    a.send('hello through nginx');
    a.send(Buffer.from([9, 8, 7]));
    b.send('and back');
    const gotB = await toB;
    expect(gotB[0]).toEqual(['hello through nginx', false]);
    expect([...gotB[1][0]]).toEqual([9, 8, 7]);
    expect((await toA)[0]).toEqual(['and back', false]);
    // the engine saw both connections (nginx kept them as WebSockets, not as HTTP requests)
    const health = await request(ngx.https('/health'), { ca: ngx.ca });
    expect(health.json.connections.channels['/ws/fabric'].rooms['behind-nginx']).toBe(2);
    a.close();
    b.close();
    // nginx logged no upstream error for any of the above
    expect(ngx.errorLog()).not.toMatch(/\[(error|crit|alert|emerg)\]/);
  }, 30000);
});

describe('ecosystem.config.cjs under PM2', () => {
  let pm2Home;
  let dataDir;
  let port;
  let env;
  let socket;

  const { pm2, jlist } = pm2Cli(() => env);

  async function health(timeoutMs) {
    return waitFor(async () => {
      try {
        const r = await request(`http://127.0.0.1:${port}/health`, { timeoutMs: 2000 });
        return r.status === 200 && r.json?.status === 'ok' ? r.json : false;
      } catch {
        return false;
      }
    }, timeoutMs, 200);
  }

  beforeAll(async () => {
    await ensureProductionBuild(); // normally done by the first describe already
    pm2Home = tmp('sidewire-pm2-');
    // An existing `touch` file tells the pm2 CLI it is not a first run: no banner, and no
    // "install" version check over the network.
    fs.writeFileSync(path.join(pm2Home, 'touch'), String(Date.now()));
    dataDir = tmp('sidewire-pm2-data-');
    port = await freePort();
    env = {
      ...process.env,
      PM2_HOME: pm2Home,
      PM2_DISABLE_VERSION_CHECK: 'true',
      PORT: String(port),
      HOST: '127.0.0.1',
      // the file's default, spelled out: Jest sets NODE_ENV=test, which would reach the app
      NODE_ENV: 'production',
      SIDEWIRE_DRAIN_MS: '1000',
      SIDEWIRE_DATA_DIR: dataDir,
      NEXT_TELEMETRY_DISABLED: '1',
      TICKETING_JWT_SECRET: DESK_SECRET,
    };
    await pm2(['start', 'ecosystem.config.cjs']);
    await health(45000);
  }, 90000);

  afterAll(async () => {
    socket?.close();
    await stopPm2(pm2Home, pm2);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 60000);

  test('one fork-mode process with a kill_timeout longer than the drain', async () => {
    const list = await jlist();
    expect(list).toHaveLength(1);
    const [app] = list;
    expect(app.name).toBe('sidewire');
    expect(app.pm2_env.exec_mode).toBe('fork_mode');
    expect(app.pm2_env.instances).toBe(1);
    expect(app.pm2_env.status).toBe('online');
    expect(String(app.pm2_env.PORT)).toBe(String(port));
    expect(app.pm2_env.kill_timeout).toBeGreaterThan(Number(app.pm2_env.SIDEWIRE_DRAIN_MS));
  });

  test('pm2 reload: a socket.io client reconnects by itself, re-joins and gets the next event', async () => {
    const base = `http://127.0.0.1:${port}`;
    socket = ioClient(base, { reconnectionDelay: 200, reconnectionDelayMax: 1000, forceNew: true, auth: deskAuth('reloaded') });
    const joins = [];
    const reasons = [];
    const titles = [];
    socket.on('connect', () => {
      joins.push(joinTickets(socket).then((ack) => ack?.ok === true, () => false));
    });
    socket.on('disconnect', (reason) => reasons.push(reason));
    socket.on('ticket:created', (p) => titles.push(ticketOf(p)?.title));
    await connected(socket, 30000);
    await waitFor(() => joins.length === 1, 5000);
    expect(await joins[0]).toBe(true);

    await createTicket(base, { title: 'before reload', description: 'x' });
    await waitFor(() => titles.includes('before reload'), 15000);

    const [before] = await jlist();
    await pm2(['reload', 'sidewire'], 45000);
    const [after] = await jlist();
    expect(after.pid).not.toBe(before.pid);
    expect(after.pm2_env.restart_time).toBe(before.pm2_env.restart_time + 1);
    // the old process drained and exited 0 on PM2's SIGINT, it was not SIGKILLed
    const daemonLog = fs.readFileSync(path.join(pm2Home, 'pm2.log'), 'utf8');
    expect(daemonLog).toMatch(/exited with code \[0\] via signal \[SIGINT\]/);

    // dropped without a DISCONNECT packet: a transport reason, so the client reconnects
    await waitFor(() => reasons.length >= 1, 15000);
    expect(['transport close', 'transport error']).toContain(reasons[0]);
    await health(45000);
    await waitFor(() => socket.connected && joins.length >= 2, 30000, 100);
    expect(await joins[joins.length - 1]).toBe(true);

    await createTicket(base, { title: 'after reload', description: 'y' });
    await waitFor(() => titles.includes('after reload'), 15000);
    expect(titles.filter((t) => t === 'before reload')).toHaveLength(1);
    socket.close();
  }, 90000);
});
