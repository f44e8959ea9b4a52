'use strict';
// The ticket desk (examples/ticketing) end to end: server.mjs in a child process with its own
// data directory, the API routes over fetch, and socket.io-client sockets in the app's rooms.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { io: ioClient } = require('socket.io-client');
const { startServerProcess, root, deskAuth, DESK_SECRET } = require('./helpers/server-process');

const MAX_UPLOAD = 4096;
const QUIET_MS = 300;
const DATA_EVENTS = ['ticket:created', 'ticket:updated', 'comment:added', 'attachment:added'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(fn, timeoutMs = 5000, what = 'condition') {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('getServer() outside the custom server throws a clear error', () => {
  const script = `
    const { getServer } = require(${JSON.stringify(path.join(root, 'js', 'index.js'))});
    try { getServer(); console.log('NO THROW'); } catch (err) { console.log(err.message); }`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/no Socket\.IO server is running in this process/);
  expect(r.stdout).toMatch(/not plain `next dev`/);
});

describe('ticket desk: API routes, events, presence, persistence', () => {
  let srv;
  let dataDir;
  const sockets = new Set();

  const env = () => ({
    SIDEWIRE_DATA_DIR: dataDir,
    SIDEWIRE_MAX_UPLOAD_BYTES: String(MAX_UPLOAD),
    SIDEWIRE_DRAIN_MS: '300',
    SIDEWIRE_LOG_LEVEL: 'warn',
  });

  async function api(method, p, body, headers = {}) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      if (typeof body === 'string' || body instanceof FormData) init.body = body;
      else {
        init.body = JSON.stringify(body);
        init.headers['content-type'] = 'application/json';
      }
    }
    const res = await fetch(srv.url(p), init);
    const buf = Buffer.from(await res.arrayBuffer());
    let json;
    try {
      json = JSON.parse(buf.toString('utf8'));
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json, buf };
  }

  /** A connected client that records every event it gets ({ name, log }). */
  async function client(name) {
    const socket = ioClient(srv.url('/'), {
      transports: ['websocket'], reconnection: false, forceNew: true, auth: deskAuth(name),
    });
    sockets.add(socket);
    socket.log = [];
    socket.onAny((event, payload) => socket.log.push({ event, payload }));
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return socket;
  }

  const join = (socket, event, arg) => (arg === undefined
    ? socket.timeout(3000).emitWithAck(event)
    : socket.timeout(3000).emitWithAck(event, arg));
  const got = (socket, event) => socket.log.filter((e) => e.event === event);
  const clear = (...list) => list.forEach((s) => { s.log.length = 0; });
  const dataEvents = (socket) => socket.log.filter((e) => DATA_EVENTS.includes(e.event));

  async function newTicket(title = 'A ticket') {
    const r = await api('POST', '/api/tickets', { title });
    expect(r.status).toBe(201);
    return r.json;
  }

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-ticketing-'));
    srv = await startServerProcess(env());
    // First requests compile the routes in dev mode: do it up front, in parallel.
    await Promise.all([
      api('GET', '/api/tickets'),
      api('GET', '/api/tickets/1'),
      api('POST', '/api/tickets/1/comments', {}),
      api('POST', '/api/tickets/1/attachments', 'x'),
      api('GET', '/api/tickets/1/attachments/1'),
      api('POST', '/api/session', {}),
    ]);
  }, 120000);

  test("sessions: POST /api/session signs the agent's token; the engine refuses a socket without one", async () => {
    const r = await api('POST', '/api/session', { name: '  Ada\u0007 ' });
    expect(r.status).toBe(200);
    const claims = require('jsonwebtoken').verify(r.json.token, DESK_SECRET, { algorithms: ['HS256'], issuer: 'ticket-desk' });
    expect(claims).toMatchObject({ sub: 'Ada', name: 'Ada' });
    expect(r.json.expiresAt).toBe(claims.exp);
    expect(claims.exp - claims.iat).toBe(15 * 60);
    // The token the page would get, used as the page uses it.
    const page = ioClient(srv.url('/'), { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: r.json.token } });
    sockets.add(page);
    await new Promise((resolve, reject) => {
      page.once('connect', resolve);
      page.once('connect_error', reject);
    });
    const t = await newTicket('Signed in');
    const viewers = new Promise((resolve) => page.on('ticket:viewers', resolve));
    expect(await join(page, 'ticket:join', t.id)).toEqual({ ok: true });
    expect((await viewers).viewers.map((v) => v.name)).toEqual(['Ada']);
    // No token, or one signed with another secret: refused before any handler runs.
    for (const auth of [{ name: 'mallory' }, { token: require('jsonwebtoken').sign({ sub: 'x' }, 'guess', { issuer: 'ticket-desk', expiresIn: 60 }) }]) {
      const c = ioClient(srv.url('/'), { transports: ['websocket'], reconnection: false, forceNew: true, auth });
      sockets.add(c);
      const err = await new Promise((resolve, reject) => {
        c.once('connect_error', resolve);
        c.once('connect', () => reject(new Error('connected without a valid token')));
      });
      expect(err.message).toBe('unauthorized');
      expect(['missing', 'invalid']).toContain(err.data.reason);
    }
  });

  test('limits: joins past their rate are dropped in the engine and the page is told', async () => {
    const c = await client('hasty');
    const t = await newTicket('Busy');
    const acks = [];
    for (let i = 0; i < 25; i += 1) acks.push(join(c, 'ticket:join', t.id).then((a) => a, () => 'no answer'));
    const answered = await Promise.all(acks);
    expect(answered.filter((a) => a && a.ok === true)).toHaveLength(20);
    expect(answered.filter((a) => a === 'no answer')).toHaveLength(5);
    const told = got(c, 'error');
    expect(told).toHaveLength(1);
    expect(told[0].payload).toMatchObject({ message: 'rate limited', data: { event: 'ticket:join' } });
    expect(c.connected).toBe(true);
  });

  afterEach(() => {
    for (const s of sockets) s.disconnect();
    sockets.clear();
  });

  afterAll(async () => {
    if (srv) await srv.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('POST /api/tickets: 201 with the ticket, ticket:created to room tickets only', async () => {
    const lister = await client('lister');
    const other = await client('other');
    expect(await join(lister, 'tickets:join')).toEqual({ ok: true });
    expect(await join(other, 'ticket:join', 1)).toEqual({ ok: true });
    clear(lister, other);

    const r = await api('POST', '/api/tickets', { title: '  Printer on fire  ', description: 'Third floor' });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-sidewire-emit')).toBe('sent');
    expect(r.json).toMatchObject({
      title: 'Printer on fire', description: 'Third floor', status: 'open', priority: 'normal', assignee: null,
    });
    expect(Number.isInteger(r.json.id)).toBe(true);
    expect(new Date(r.json.created_at).toISOString()).toBe(r.json.created_at);
    expect(r.json.updated_at).toBe(r.json.created_at);

    await waitFor(() => got(lister, 'ticket:created').length === 1, 3000, 'ticket:created');
    expect(got(lister, 'ticket:created')[0].payload).toEqual(r.json);
    await sleep(QUIET_MS);
    expect(got(lister, 'ticket:created')).toHaveLength(1);
    expect(dataEvents(other)).toEqual([]);

    const urgent = await api('POST', '/api/tickets', { title: 'Urgent', priority: 'urgent' });
    expect(urgent.status).toBe(201);
    expect(urgent.json.priority).toBe('urgent');
    await waitFor(() => got(lister, 'ticket:created').length === 2, 3000, 'second ticket:created');
  });

  test('POST /api/tickets: invalid input is a 400 JSON answer and emits nothing', async () => {
    const watcher = await client('watcher');
    await join(watcher, 'tickets:join');
    clear(watcher);
    const bad = [
      {},
      { title: '' },
      { title: '   ' },
      { title: 'x'.repeat(201) },
      { title: 42 },
      { title: 'ok', description: 'd'.repeat(10001) },
      { title: 'ok', description: 7 },
      { title: 'ok', priority: 'critical' },
      { title: 'ok', status: 'closed' }, // unknown field
      [],
      'not json at all',
    ];
    for (const body of bad) {
      const r = await api('POST', '/api/tickets', body, typeof body === 'string' ? { 'content-type': 'application/json' } : {});
      expect([r.status, JSON.stringify(body).slice(0, 40)]).toEqual([400, JSON.stringify(body).slice(0, 40)]);
      expect(typeof r.json.error).toBe('string');
    }
    const detailed = await api('POST', '/api/tickets', { title: '', priority: 'x' });
    expect(detailed.json).toEqual({
      error: 'validation failed',
      details: { title: expect.any(String), priority: expect.any(String) },
    });
    const max = await api('POST', '/api/tickets', { title: 't'.repeat(200), description: 'd'.repeat(10000) });
    expect(max.status).toBe(201);
    await waitFor(() => got(watcher, 'ticket:created').length === 1, 3000, 'the valid ticket');
    await sleep(QUIET_MS);
    expect(dataEvents(watcher)).toHaveLength(1); // only the valid one
  });

  test('GET /api/tickets and /api/tickets/:id; 404 and 400 answers', async () => {
    const t = await newTicket('Listed');
    const list = await api('GET', '/api/tickets');
    expect(list.status).toBe(200);
    expect(Array.isArray(list.json)).toBe(true);
    expect(list.json.find((x) => x.id === t.id)).toEqual(t);
    expect(list.json[0].id).toBeGreaterThanOrEqual(t.id); // newest first

    const one = await api('GET', `/api/tickets/${t.id}`);
    expect(one.status).toBe(200);
    expect(one.json).toEqual({ ...t, comments: [], attachments: [] });

    const missing = await api('GET', '/api/tickets/999999');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ error: 'ticket not found' });
    for (const id of ['abc', '0', '-1', '1.5']) {
      const r = await api('GET', `/api/tickets/${id}`);
      expect([id, r.status]).toEqual([id, 400]);
      expect(r.json.error).toBe('invalid id');
    }
  });

  test('PATCH: 200, ticket:updated once to tickets and ticket:<id> (once for a client in both)', async () => {
    const t = await newTicket('To update');
    const listOnly = await client('list-only');
    const pageOnly = await client('page-only');
    const both = await client('both');
    const elsewhere = await client('elsewhere');
    await join(listOnly, 'tickets:join');
    await join(pageOnly, 'ticket:join', t.id);
    await join(both, 'tickets:join');
    await join(both, 'ticket:join', String(t.id)); // a string of digits is accepted too
    await join(elsewhere, 'ticket:join', t.id + 1000);
    await sleep(100);
    clear(listOnly, pageOnly, both, elsewhere);

    const r = await api('PATCH', `/api/tickets/${t.id}`, { status: 'in_progress', assignee: 'amy' });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-sidewire-emit')).toBe('sent');
    expect(r.json).toMatchObject({ id: t.id, status: 'in_progress', assignee: 'amy', priority: 'normal' });
    expect(r.json.updated_at >= t.updated_at).toBe(true);

    await waitFor(() => [listOnly, pageOnly, both].every((s) => got(s, 'ticket:updated').length >= 1), 3000, 'ticket:updated');
    await sleep(QUIET_MS);
    for (const s of [listOnly, pageOnly, both]) {
      expect(got(s, 'ticket:updated')).toHaveLength(1);
      expect(got(s, 'ticket:updated')[0].payload).toEqual(r.json);
    }
    expect(dataEvents(elsewhere)).toEqual([]);

    const unassign = await api('PATCH', `/api/tickets/${t.id}`, { assignee: null, priority: 'high' });
    expect(unassign.status).toBe(200);
    expect(unassign.json).toMatchObject({ assignee: null, priority: 'high', status: 'in_progress' });
    await waitFor(() => got(both, 'ticket:updated').length === 2, 3000, 'second ticket:updated');
    clear(listOnly, pageOnly, both, elsewhere);

    // Invalid patches and unknown tickets: 400 / 404, no event.
    for (const body of [{}, { status: 'done' }, { priority: 'meh' }, { assignee: 'a'.repeat(101) }, { assignee: 5 }, { title: 'no' }, []]) {
      const bad = await api('PATCH', `/api/tickets/${t.id}`, body);
      expect([JSON.stringify(body), bad.status]).toEqual([JSON.stringify(body), 400]);
      expect(typeof bad.json.error).toBe('string');
    }
    const invalidJson = await api('PATCH', `/api/tickets/${t.id}`, '{"status":', { 'content-type': 'application/json' });
    expect(invalidJson.status).toBe(400);
    expect(invalidJson.json).toEqual({ error: 'invalid JSON body' });
    const missing = await api('PATCH', '/api/tickets/999999', { status: 'closed' });
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ error: 'ticket not found' });
    await sleep(QUIET_MS);
    for (const s of [listOnly, pageOnly, both, elsewhere]) expect(dataEvents(s)).toEqual([]);
    expect((await api('GET', `/api/tickets/${t.id}`)).json).toMatchObject({ status: 'in_progress', priority: 'high' });
  });

  test('comments: 201, comment:added to ticket:<id> only; 400 and 404 emit nothing', async () => {
    const t = await newTicket('With comments');
    const page = await client('page');
    const list = await client('list');
    await join(page, 'ticket:join', t.id);
    await join(list, 'tickets:join');
    await sleep(100);
    clear(page, list);

    const r = await api('POST', `/api/tickets/${t.id}/comments`, { author: 'amy', body: 'Looking into it.\nSecond line.' });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-sidewire-emit')).toBe('sent');
    expect(r.json).toMatchObject({ ticket_id: t.id, author: 'amy', body: 'Looking into it.\nSecond line.' });
    expect(Number.isInteger(r.json.id)).toBe(true);
    await waitFor(() => got(page, 'comment:added').length === 1, 3000, 'comment:added');
    expect(got(page, 'comment:added')[0].payload).toEqual(r.json);
    await sleep(QUIET_MS);
    expect(got(page, 'comment:added')).toHaveLength(1);
    expect(dataEvents(list)).toEqual([]);
    clear(page, list);

    for (const body of [{}, { author: 'amy' }, { body: 'x' }, { author: '', body: 'x' }, { author: 'a'.repeat(101), body: 'x' },
      { author: 'amy', body: '' }, { author: 'amy', body: 'b'.repeat(10001) }, { author: 'amy', body: 'x', extra: 1 }]) {
      const bad = await api('POST', `/api/tickets/${t.id}/comments`, body);
      expect([JSON.stringify(body).slice(0, 50), bad.status]).toEqual([JSON.stringify(body).slice(0, 50), 400]);
    }
    const missing = await api('POST', '/api/tickets/999999/comments', { author: 'amy', body: 'hello?' });
    expect(missing.status).toBe(404);
    expect((await api('POST', '/api/tickets/x/comments', { author: 'amy', body: 'x' })).status).toBe(400);
    await sleep(QUIET_MS);
    expect(dataEvents(page)).toEqual([]);

    const detail = await api('GET', `/api/tickets/${t.id}`);
    expect(detail.json.comments).toEqual([r.json]);
  });

  test('attachments: multipart upload, attachment:added to ticket:<id> only, download round trip, 413', async () => {
    const t = await newTicket('With a file');
    const page = await client('page');
    const list = await client('list');
    await join(page, 'ticket:join', t.id);
    await join(list, 'tickets:join');
    await sleep(100);
    clear(page, list);

    const bytes = crypto.randomBytes(MAX_UPLOAD); // exactly at the limit
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'application/x-test' }), '../../evil/na"me.bin');
    const r = await api('POST', `/api/tickets/${t.id}/attachments`, form);
    expect(r.status).toBe(201);
    expect(r.headers.get('x-sidewire-emit')).toBe('sent');
    expect(r.json).toEqual({
      id: expect.any(Number),
      ticket_id: t.id,
      filename: 'na_me.bin',
      size: bytes.length,
      mime: 'application/x-test',
      created_at: expect.any(String),
      url: `/api/tickets/${t.id}/attachments/${r.json.id}`,
    });
    expect(r.json.stored_name).toBeUndefined();
    await waitFor(() => got(page, 'attachment:added').length === 1, 3000, 'attachment:added');
    expect(got(page, 'attachment:added')[0].payload).toEqual(r.json);
    await sleep(QUIET_MS);
    expect(dataEvents(list)).toEqual([]);

    const dl = await api('GET', r.json.url);
    expect(dl.status).toBe(200);
    expect(dl.buf.equals(bytes)).toBe(true);
    expect(dl.headers.get('content-type')).toBe('application/x-test');
    expect(dl.headers.get('content-disposition')).toMatch(/^attachment; filename="na_me\.bin"/);
    expect(dl.headers.get('x-content-type-options')).toBe('nosniff');
    const stored = fs.readdirSync(path.join(dataDir, 'uploads'));
    expect(stored.length).toBeGreaterThanOrEqual(1);
    clear(page, list);

    // Over the limit: 413, nothing stored, nothing emitted.
    const big = new FormData();
    big.append('file', new Blob([crypto.randomBytes(MAX_UPLOAD + 1)]), 'big.bin');
    const tooBig = await api('POST', `/api/tickets/${t.id}/attachments`, big);
    expect(tooBig.status).toBe(413);
    expect(tooBig.json).toEqual({ error: 'file too large', details: { maxBytes: MAX_UPLOAD } });
    const huge = new FormData();
    huge.append('file', new Blob([crypto.randomBytes(200 * 1024)]), 'huge.bin');
    expect((await api('POST', `/api/tickets/${t.id}/attachments`, huge)).status).toBe(413);

    // No file field, a text field, not multipart, empty file, unknown ticket, unknown attachment.
    const noFile = new FormData();
    noFile.append('other', new Blob(['x']), 'x.txt');
    expect((await api('POST', `/api/tickets/${t.id}/attachments`, noFile)).status).toBe(400);
    const textField = new FormData();
    textField.append('file', 'just text');
    expect((await api('POST', `/api/tickets/${t.id}/attachments`, textField)).status).toBe(400);
    const notMultipart = await api('POST', `/api/tickets/${t.id}/attachments`, { file: 'x' });
    expect(notMultipart.status).toBe(400);
    expect(typeof notMultipart.json.error).toBe('string');
    const empty = new FormData();
    empty.append('file', new Blob([]), 'empty.txt');
    expect((await api('POST', `/api/tickets/${t.id}/attachments`, empty)).status).toBe(400);
    const okForm = new FormData();
    okForm.append('file', new Blob(['hi']), 'hi.txt');
    expect((await api('POST', '/api/tickets/999999/attachments', okForm)).status).toBe(404);
    expect((await api('GET', `/api/tickets/${t.id}/attachments/999999`)).status).toBe(404);
    expect((await api('GET', `/api/tickets/999999/attachments/${r.json.id}`)).status).toBe(404);
    await sleep(QUIET_MS);
    expect(dataEvents(page)).toEqual([]);
    expect(fs.readdirSync(path.join(dataDir, 'uploads'))).toEqual(stored);

    const detail = await api('GET', `/api/tickets/${t.id}`);
    expect(detail.json.attachments).toEqual([r.json]);
  });

  test('presence: ticket:viewers lists who is in ticket:<id>, on join, leave and disconnect', async () => {
    const t = await newTicket('Watched');
    const alice = await client('alice');
    const bob = await client('bob');
    const anon = await client(undefined);
    const last = (s) => {
      const all = got(s, 'ticket:viewers').filter((e) => e.payload.ticketId === t.id);
      return all.length ? all[all.length - 1].payload : null;
    };
    const names = (s) => (last(s)?.viewers ?? []).map((v) => v.name).sort();

    expect(await join(alice, 'ticket:join', t.id)).toEqual({ ok: true });
    await waitFor(() => names(alice).join() === 'alice', 3000, 'alice alone');
    expect(last(alice).viewers).toEqual([{ id: alice.id, name: 'alice' }]);

    await join(bob, 'ticket:join', t.id);
    await waitFor(() => names(alice).join() === 'alice,bob' && names(bob).join() === 'alice,bob', 3000, 'alice and bob');

    await join(anon, 'ticket:join', t.id);
    await waitFor(() => names(alice).join() === 'alice,anonymous,bob', 3000, 'three viewers');

    expect(await join(bob, 'ticket:leave', t.id)).toEqual({ ok: true });
    await waitFor(() => names(alice).join() === 'alice,anonymous', 3000, 'bob left');

    anon.disconnect();
    await waitFor(() => names(alice).join() === 'alice', 3000, 'anonymous disconnected');

    // Acks: bad ids are refused, with or without an ack callback; nothing else is affected.
    expect(await join(alice, 'ticket:join', 'abc')).toEqual({ ok: false, error: expect.any(String) });
    expect(await join(alice, 'ticket:join', -3)).toMatchObject({ ok: false });
    expect(await join(alice, 'ticket:leave', { id: 1 })).toMatchObject({ ok: false });
    alice.emit('ticket:join', t.id); // no ack: fine too
    expect(await join(alice, 'tickets:leave')).toEqual({ ok: true });
    await sleep(100);
    expect(names(alice)).toEqual(['alice']);
  });

  test('a page whose connection drops gets what it missed on reconnection, without rejoining', async () => {
    const t = await newTicket('Recovered');
    const page = ioClient(srv.url('/'), {
      transports: ['websocket'], forceNew: true, auth: deskAuth('blip'), reconnection: false,
    });
    sockets.add(page);
    page.log = [];
    page.onAny((event, payload) => page.log.push({ event, payload }));
    await new Promise((resolve, reject) => {
      page.once('connect', resolve);
      page.once('connect_error', reject);
    });
    const watcher = await client('watcher');
    await join(page, 'ticket:join', t.id);
    await join(watcher, 'ticket:join', t.id);
    await waitFor(() => got(watcher, 'ticket:viewers').some((e) => e.payload.viewers.length === 2), 3000, 'two viewers');
    const firstId = page.id;
    clear(page, watcher);

    page.io.engine.close(); // the network drops; the server sees "transport close"
    await waitFor(() => got(watcher, 'ticket:viewers').some((e) => e.payload.viewers.length === 1), 3000, 'page gone');
    const r = await api('POST', `/api/tickets/${t.id}/comments`, { author: 'amy', body: 'While you were away' });
    expect(r.status).toBe(201);
    page.connect(); // as its reconnection would: with its private id and last offset
    await waitFor(() => page.connected, 5000, 'reconnected');
    expect(page.recovered).toBe(true);
    expect(page.id).toBe(firstId);
    await waitFor(() => got(page, 'comment:added').length === 1, 3000, 'the missed comment');
    expect(got(page, 'comment:added')[0].payload).toEqual(r.json);
    // Back among the viewers without a join, and still in the room for what comes next.
    await waitFor(() => got(watcher, 'ticket:viewers').some((e) => e.payload.viewers.length === 2), 3000, 'page back');
    const next = await api('PATCH', `/api/tickets/${t.id}`, { status: 'closed' });
    expect(next.status).toBe(200);
    await waitFor(() => got(page, 'ticket:updated').length === 1, 3000, 'ticket:updated after recovery');
    await sleep(QUIET_MS);
    expect(got(page, 'comment:added')).toHaveLength(1);
  });

  test('data persists in the database across a server restart; /health reports connections', async () => {
    const t = await newTicket('Survives a restart');
    await api('PATCH', `/api/tickets/${t.id}`, { status: 'resolved' });
    const c = await api('POST', `/api/tickets/${t.id}/comments`, { author: 'amy', body: 'still here' });
    const form = new FormData();
    form.append('file', new Blob(['persisted bytes'], { type: 'text/plain' }), 'p.txt');
    const a = await api('POST', `/api/tickets/${t.id}/attachments`, form);
    expect(a.status).toBe(201);

    const s = await client('health-check');
    await join(s, 'tickets:join');
    const health = await api('GET', '/health');
    expect(health.json.connections).toMatchObject({ websocket: 0, socketio: { sessions: expect.any(Number), sockets: expect.any(Number) } });
    expect(health.json.connections.socketio.sockets).toBeGreaterThanOrEqual(1);
    s.disconnect();

    const before = (await api('GET', `/api/tickets/${t.id}`)).json;
    expect(before.status).toBe('resolved');
    expect(fs.existsSync(path.join(dataDir, 'ticketing.db'))).toBe(true);

    const stopped = await srv.stop();
    expect(stopped).toEqual({ code: 0, signal: null });
    srv = await startServerProcess(env());
    const after = await api('GET', `/api/tickets/${t.id}`);
    expect(after.status).toBe(200);
    expect(after.json).toEqual(before);
    expect(after.json.comments).toEqual([c.json]);
    const dl = await api('GET', a.json.url);
    expect(dl.buf.toString()).toBe('persisted bytes');
    const next = await newTicket('After the restart');
    expect(next.id).toBeGreaterThan(t.id);
  }, 90000);
});
