'use strict';
// @socket.io/admin-ui (the official package) on a Server: instrument(io) on the server, the
// package's own built UI (ui/dist, served here from disk) in headless Chromium, connected to a
// live app with a few clients. The same test runs against the `socket.io` package, so a
// difference is sidewire's. The UI lists the servers, the sockets, the rooms and the events.
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const bcrypt = require('bcryptjs');
const { instrument } = require('@socket.io/admin-ui');
const { IMPLS_ALL, startImpl, listenOn } = require('./helpers/impls');
const { which } = require('./helpers/nginx');

jest.setTimeout(90000);

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync',
];
const UI_DIST = path.join(path.dirname(require.resolve('@socket.io/admin-ui/package.json')), 'ui', 'dist');
const TYPES = { '.html': 'text/html', '.js': 'application/javascript', '.css': 'text/css', '.png': 'image/png',
  '.svg': 'image/svg+xml', '.map': 'application/json', '.json': 'application/json' };

// The UI's files, from disk; nothing else.
function staticServer() {
  return http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.join(UI_DIST, rel);
    if (!file.startsWith(UI_DIST + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
}

// The texts of a column of the UI's current data table (Vuetify's v-data-table); column 0:
// whole rows.
function columnTexts(page, column) {
  // v-data-table's, not the dashboard's simple tables (no header row of that kind).
  const table = '.v-main .v-data-table:has(.v-data-table-header) tbody tr';
  const cells = column ? `${table} td:nth-child(${column})` : table;
  return page.$$eval(cells, (tds) => tds.map((td) => td.textContent.replace(/\s+/g, ' ').trim()));
}

async function waitForColumn(page, column, predicate, timeout = 15000) {
  const until = Date.now() + timeout;
  let texts = [];
  while (Date.now() < until) {
    texts = await columnTexts(page, column);
    if (predicate(texts)) return texts;
    await page.waitForTimeout(200);
  }
  throw new Error(`column ${column} never matched: ${JSON.stringify(texts)}`);
}

describe.each(IMPLS_ALL)('@socket.io/admin-ui (%s)', (kind) => {
  let browser;
  let ui;
  let uiOrigin;
  let t;
  let clients;
  let shotDir;

  beforeAll(async () => {
    ui = staticServer();
    uiOrigin = `http://127.0.0.1:${await listenOn(ui)}`;
    const executablePath = which('chromium') || '/usr/bin/chromium';
    browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
    shotDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-admin-ui-'));
  }, 60000);

  afterAll(async () => {
    if (browser) await browser.close().catch(() => {});
    if (ui) await new Promise((resolve) => ui.close(resolve));
    if (shotDir) fs.rmSync(shotDir, { recursive: true, force: true });
  });

  afterEach(async () => {
    for (const c of clients || []) c.disconnect();
    clients = [];
    if (t) await t.close();
    t = null;
  });

  // The app: an instrumented Server, three clients on '/', two of them in rooms.
  async function startApp(auth) {
    t = await startImpl(kind, { cors: { origin: uiOrigin, credentials: true } }, (io) => {
      io.on('connection', (socket) => {
        socket.on('join', (room, ack) => {
          socket.join(room);
          ack();
        });
        socket.on('chat', (text) => socket.broadcast.emit('chat', text));
      });
      instrument(io, { auth, mode: 'development', serverId: `test-${kind}` });
    });
    clients = [];
    for (const [n, room] of [[0, 'room-a'], [1, 'room-b'], [2, null]]) {
      const c = t.client({ transports: n === 0 ? ['polling'] : ['websocket'] });
      clients.push(c);
      await connected(c);
      if (room) await c.emitWithAck('join', room);
    }
  }

  async function openUi({ storage }) {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1400, height: 900 } });
    // Only the UI's own files and the app: the CDN fonts and icons are left out.
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      return u.hostname === '127.0.0.1' ? route.continue() : route.abort();
    });
    if (storage) {
      await context.addInitScript((s) => {
        for (const [k, v] of Object.entries(s)) localStorage.setItem(k, v);
      }, storage);
    }
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    await page.goto(`${uiOrigin}/index.html`);
    return { context, page };
  }

  async function checkViews(page) {
    const ids = clients.map((c) => c.id);
    // Sockets of '/': every client, with its transport.
    await page.goto(`${uiOrigin}/index.html#/sockets/`);
    const listed = await waitForColumn(page, 1, (texts) => texts.length === ids.length && ids.every((id) => texts.includes(id)));
    expect([...listed].sort()).toEqual([...ids].sort());
    const transports = await columnTexts(page, 3);
    expect(transports.join(' ')).toMatch(/polling/i);
    expect(transports.join(' ')).toMatch(/websocket/i);

    // Rooms of '/': the two public rooms, one socket each.
    await page.goto(`${uiOrigin}/index.html#/rooms/`);
    const rooms = await waitForColumn(page, 1, (texts) => texts.join() === 'room-a,room-b');
    expect(rooms).toEqual(['room-a', 'room-b']);
    expect(await columnTexts(page, 3)).toEqual(['1', '1']);

    // A socket that connects now and an event sent now show up live.
    const late = t.client({ transports: ['websocket'] });
    clients.push(late);
    await connected(late);
    clients[2].emit('chat', 'hello from the test');
    await page.goto(`${uiOrigin}/index.html#/sockets/`);
    await waitForColumn(page, 1, (texts) => texts.includes(late.id));

    await page.goto(`${uiOrigin}/index.html#/events/`);
    const events = await waitForColumn(page, 0, (texts) => texts.some((x) => x.includes('chat')));
    expect(events.join('\n')).toMatch(/chat/);

    // Servers: this one, healthy, with its Engine.IO client count (the clients and the UI).
    await page.goto(`${uiOrigin}/index.html#/servers/`);
    const servers = await waitForColumn(page, 1, (texts) => texts.join() === `test-${kind}`);
    expect(servers).toEqual([`test-${kind}`]);
    const counts = await waitForColumn(page, 5, (texts) => texts.length === 1 && texts[0] === String(t.io.engine.clientsCount));
    expect(Number(counts[0])).toBe(clients.length + 1);

    // A room joined while the UI watches (admin-ui hears it from nsp.adapter's 'join-room').
    await clients[2].emitWithAck('join', 'room-c');
    await page.goto(`${uiOrigin}/index.html#/rooms/`);
    await waitForColumn(page, 1, (texts) => texts.join() === 'room-a,room-b,room-c');
  }

  test('auth: false — servers, sockets, rooms and events are listed', async () => {
    await startApp(false);
    const { context, page } = await openUi({
      storage: { server_url: t.url(''), ws_only: 'false', path: '/socket.io', namespace: '/admin' },
    });
    try {
      await checkViews(page);
      await page.screenshot({ path: path.join(shotDir, `${kind}-rooms.png`), fullPage: true });
    } finally {
      await context.close();
    }
  });

  test('basic auth: wrong password refused, the right one connects', async () => {
    const hash = bcrypt.hashSync('s3cret', 4);
    await startApp({ type: 'basic', username: 'admin', password: hash });
    const { context, page } = await openUi({ storage: null });
    try {
      const form = page.locator('.v-dialog form');
      await form.waitFor();
      await form.getByLabel('Server URL').fill(t.url(''));
      await form.getByLabel('Username').fill('admin');
      await form.getByLabel('Password').fill('wrong');
      await form.locator('button[type=submit]').click();
      await page.getByText('Invalid credentials').waitFor();
      await form.getByLabel('Password').fill('s3cret');
      await form.locator('button[type=submit]').click();
      await page.locator('.v-dialog form').waitFor({ state: 'hidden' });
      await checkViews(page);
    } finally {
      await context.close();
    }
  });
});
