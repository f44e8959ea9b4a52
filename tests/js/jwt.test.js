'use strict';
// JWT authentication: sidewire verifies the token in the engine (Server option auth.jwt). Each
// test body also runs against the `socket.io` package with the middleware such apps write by
// hand (jsonwebtoken in io.use), so sidewire's behaviour is checked against what it replaces:
// where the token is read, the CONNECT_ERROR and its data.reason, socket.data.user and the
// user's room. Expiry while connected and the refresh event are sidewire's own.
const crypto = require('node:crypto');
const jsonwebtoken = require('jsonwebtoken');
const { IMPLS, startImpl } = require('./helpers/impls');
const { connected, connectError, once, sleep, waitFor } = require('./helpers/sio');

const SECRET = 'a secret only the desk knows';
const now = () => Math.floor(Date.now() / 1000);
// An hour unless the claims carry their own exp.
const sign = (claims, opts = {}) =>
  jsonwebtoken.sign({ sub: 'ada', name: 'Ada', ...claims }, SECRET, 'exp' in claims ? opts : { expiresIn: 3600, ...opts });

// What socket.io apps write: the token from auth, query, Bearer header or cookie, verified
// with jsonwebtoken, claims into socket.data.user, the user's room joined.
function handWritten(jwt) {
  return (io) => {
    io.use((socket, next) => {
      const h = socket.handshake;
      const cookie = /(?:^|;\s*)token=([^;]*)/.exec(h.headers.cookie || '');
      const bearer = /^Bearer\s+(.+)$/i.exec(h.headers.authorization || '');
      const token = (h.auth && h.auth.token) || h.query.token || (bearer && bearer[1]) || (cookie && cookie[1]);
      const refuse = (reason) => {
        const err = new Error('unauthorized');
        err.data = { reason };
        next(err);
      };
      if (!token) return refuse('missing');
      try {
        socket.data.user = jsonwebtoken.verify(token, jwt.secret, {
          algorithms: jwt.algorithms || ['HS256', 'HS384', 'HS512'],
          issuer: jwt.issuer,
          audience: jwt.audience,
        });
      } catch (err) {
        if (err.name === 'TokenExpiredError') return refuse('expired');
        if (err.name === 'NotBeforeError') return refuse('not_yet_valid');
        return refuse('invalid');
      }
      socket.join(`user:${socket.data.user.sub}`);
      return next();
    });
  };
}

async function start(kind, jwt, setup = () => {}, opts = {}) {
  if (kind === 'socket.io') {
    return startImpl(kind, opts, (io) => {
      handWritten(jwt)(io);
      setup(io);
    });
  }
  return startImpl(kind, { auth: { jwt }, ...opts }, setup);
}

describe.each(IMPLS)('JWT authentication (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test('a token in auth, the query, a Bearer header or a cookie connects; claims in socket.data.user', async () => {
    const users = [];
    t = await start(kind, { secret: SECRET, from: ['auth', 'query', 'header', 'cookie'] }, (io) => {
      io.on('connection', (socket) => users.push({ user: socket.data.user, rooms: [...socket.rooms] }));
    });
    const token = sign({});
    const ways = [
      { auth: { token } },
      { query: { token } },
      { transports: ['websocket'], extraHeaders: { authorization: `Bearer ${token}` } },
      { transports: ['polling'], extraHeaders: { authorization: `Bearer ${token}` } },
      { transports: ['websocket'], extraHeaders: { cookie: `theme=dark; token=${token}` } },
    ];
    for (const way of ways) await connected(t.client(way));
    await waitFor(() => users.length === ways.length, 3000);
    for (const u of users) {
      expect(u.user).toMatchObject({ sub: 'ada', name: 'Ada' });
      expect(u.user.exp).toBeGreaterThan(now());
      expect(u.rooms).toContain('user:ada');
    }
  });

  test('every device of a user is reached through its room', async () => {
    t = await start(kind, { secret: SECRET });
    const phone = t.client({ auth: { token: sign({}) } });
    const laptop = t.client({ auth: { token: sign({}) } });
    const other = t.client({ auth: { token: sign({ sub: 'grace' }) } });
    await Promise.all([phone, laptop, other].map((c) => connected(c)));
    const got = [once(phone, 'ticket'), once(laptop, 'ticket')];
    let otherGot = false;
    other.on('ticket', () => {
      otherGot = true;
    });
    t.io.to('user:ada').emit('ticket', { id: 7 });
    expect(await Promise.all(got)).toEqual([[{ id: 7 }], [{ id: 7 }]]);
    await sleep(100);
    expect(otherGot).toBe(false);
  });

  test.each([
    ['no token', {}, 'missing'],
    ['an expired token', { auth: { token: sign({ exp: now() - 10 }) } }, 'expired'],
    ['a token not valid yet', { auth: { token: sign({}, { notBefore: 60 }) } }, 'not_yet_valid'],
    ['another secret', { auth: { token: jsonwebtoken.sign({ sub: 'ada' }, 'not the secret') } }, 'invalid'],
    ['alg none', { auth: { token: jsonwebtoken.sign({ sub: 'ada' }, null, { algorithm: 'none' }) } }, 'invalid'],
    ['garbage', { auth: { token: 'not.a.jwt' } }, 'invalid'],
  ])('%s: CONNECT_ERROR unauthorized with data.reason, and no connection', async (_name, clientOpts, reason) => {
    let connections = 0;
    t = await start(kind, { secret: SECRET }, (io) => {
      io.on('connection', () => {
        connections += 1;
      });
    });
    const c = t.client(clientOpts);
    const err = await connectError(c);
    expect(err.message).toBe('unauthorized');
    expect(err.data.reason).toBe(reason);
    // The connection stays usable: a good token on the same Manager connects.
    c.auth = { token: sign({}) };
    c.connect();
    await connected(c);
    expect(connections).toBe(1);
  });

  test('issuer, audience and the algorithms are enforced; RS256 with a public key', async () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    const jwt = { secret: pem, algorithms: ['RS256'], issuer: 'desk', audience: 'agents' };
    if (kind !== 'socket.io') {
      delete jwt.secret;
      jwt.publicKey = pem;
    }
    t = await start(kind, jwt);
    const rs = (claims, opts = {}) =>
      jsonwebtoken.sign({ sub: 'ada', ...claims }, privateKey, { algorithm: 'RS256', expiresIn: 60, ...opts });
    await connected(t.client({ auth: { token: rs({}, { issuer: 'desk', audience: 'agents' }) } }));
    for (const token of [
      rs({}, { issuer: 'elsewhere', audience: 'agents' }),
      rs({}, { issuer: 'desk', audience: 'others' }),
      // HS256 "signed" with the public key: the classic confusion.
      jsonwebtoken.sign({ sub: 'ada', iss: 'desk', aud: 'agents' }, pem, { algorithm: 'HS256' }),
    ]) {
      const err = await connectError(t.client({ auth: { token } }));
      expect(err.data.reason).toBe('invalid');
    }
  });
});

describe('JWT authentication: what only the engine does (sidewire)', () => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test('JS never hears of a refused CONNECT, middleware included; the refusals are counted', async () => {
    let middleware = 0;
    t = await startImpl('sidewire', { auth: { jwt: { secret: SECRET } } }, (io) => {
      io.use((socket, next) => {
        middleware += 1;
        next();
      });
    });
    await connectError(t.client({ auth: { token: 'x.y.z' } }));
    await connectError(t.client({}));
    await connected(t.client({ auth: { token: sign({}) } }));
    expect(middleware).toBe(1);
    const limits = t.engine.stats().limits;
    expect(limits.tokenInvalid).toBe(1);
    expect(limits.tokenMissing).toBe(1);
  });

  test('keys rotate by kid; a JWKS is read', async () => {
    const a = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const b = crypto.generateKeyPairSync('ed25519');
    const jwks = {
      keys: [
        { ...a.publicKey.export({ format: 'jwk' }), kid: 'a', use: 'sig' },
        { ...b.publicKey.export({ format: 'jwk' }), kid: 'b' },
      ],
    };
    t = await startImpl('sidewire', { auth: { jwt: { jwks } } });
    const es = jsonwebtoken.sign({ sub: 'ada' }, a.privateKey, { algorithm: 'ES256', keyid: 'a', expiresIn: 60 });
    await connected(t.client({ auth: { token: es } }));
    // EdDSA, which jsonwebtoken does not sign: made with Node's crypto.
    const b64 = (v) => Buffer.from(v).toString('base64url');
    const input = `${b64(JSON.stringify({ alg: 'EdDSA', kid: 'b' }))}.${b64(JSON.stringify({ sub: 'grace', exp: now() + 60 }))}`;
    const ed = `${input}.${b64(crypto.sign(null, Buffer.from(input), b.privateKey))}`;
    await connected(t.client({ auth: { token: ed } }));
    // kid a with b's signature, and a kid nobody has.
    const wrong = jsonwebtoken.sign({ sub: 'ada' }, a.privateKey, { algorithm: 'ES256', keyid: 'c', expiresIn: 60 });
    expect((await connectError(t.client({ auth: { token: wrong } }))).data).toMatchObject({ reason: 'invalid', detail: 'no key with kid c' });
  });

  test('a token that expires while connected disconnects the socket with "token expired"; a refresh keeps it', async () => {
    const reasons = [];
    t = await startImpl('sidewire', { auth: { jwt: { secret: SECRET } } }, (io) => {
      io.on('connection', (socket) => socket.on('disconnect', (reason) => reasons.push([socket.data.user.sub, reason])));
    });
    const short = (sub) => sign({ sub, exp: now() + 2 });
    const leaving = t.client({ auth: { token: short('ada') } });
    const staying = t.client({ auth: { token: short('grace') } });
    await Promise.all([connected(leaving), connected(staying)]);
    const answer = await staying.timeout(2000).emitWithAck('auth:refresh', sign({ sub: 'grace' }));
    expect(answer).toMatchObject({ ok: true });
    expect(answer.exp).toBeGreaterThan(now() + 3000);
    // Another user's token is no refresh.
    const refused = await staying.timeout(2000).emitWithAck('auth:refresh', sign({ sub: 'ada' }));
    expect(refused).toMatchObject({ ok: false, reason: 'invalid', detail: 'another subject' });
    const gone = once(leaving, 'disconnect');
    expect(await gone).toEqual(['io server disconnect']);
    await waitFor(() => reasons.length === 1, 3000);
    expect(reasons).toEqual([['ada', 'token expired']]);
    await sleep(1200);
    expect(staying.connected).toBe(true);
    expect(t.engine.stats().limits.tokenExpired).toBe(1);
  }, 15000);

  test('a cookie is read only when from names it', async () => {
    t = await startImpl('sidewire', { auth: { jwt: { secret: SECRET } } });
    const err = await connectError(t.client({ transports: ['websocket'], extraHeaders: { cookie: `token=${sign({})}` } }));
    expect(err.data.reason).toBe('missing');
  });

  test('ten refused tokens on one connection close it', async () => {
    t = await startImpl('sidewire', { auth: { jwt: { secret: SECRET } } });
    const c = t.client({ transports: ['websocket'], auth: { token: 'x.y.z' } });
    const closed = new Promise((resolve) => c.io.on('close', resolve));
    for (let i = 0; i < 10; i += 1) {
      await connectError(c);
      if (i < 9) c.connect();
    }
    expect(await closed).toBe('forced close');
  });

  test('a refresh needs a sub and the same issuer', async () => {
    t = await startImpl('sidewire', { auth: { jwt: { secret: SECRET } } });
    const anonymous = t.client({ auth: { token: jsonwebtoken.sign({ role: 'guest' }, SECRET, { expiresIn: 60 }) } });
    await connected(anonymous);
    expect(await anonymous.timeout(2000).emitWithAck('auth:refresh', jsonwebtoken.sign({ role: 'admin' }, SECRET, { expiresIn: 3600 })))
      .toMatchObject({ ok: false, detail: "the connection's token has no sub" });
    const ada = t.client({ auth: { token: sign({ iss: 'desk' }) } });
    await connected(ada);
    expect(await ada.timeout(2000).emitWithAck('auth:refresh', sign({ iss: 'elsewhere' }))).toMatchObject({ ok: false, detail: 'another subject' });
    expect(await ada.timeout(2000).emitWithAck('auth:refresh', sign({ iss: 'desk' }))).toMatchObject({ ok: true });
  });

  test("a session recovered with another user's token connects as new", async () => {
    const connections = [];
    t = await startImpl('sidewire', { auth: { jwt: { secret: SECRET } }, connectionStateRecovery: {} }, (io) => {
      io.on('connection', (socket) => {
        connections.push({ sub: socket.data.user.sub, recovered: socket.recovered, rooms: [...socket.rooms] });
        if (!socket.recovered) socket.join(`${socket.data.user.sub}-only`);
        socket.emit('hello'); // an offset for the client to come back with
      });
    });
    const c = t.client({ transports: ['websocket'], auth: { token: sign({}) } });
    let hellos = 0;
    c.on('hello', () => {
      hellos += 1;
    });
    await connected(c);
    await waitFor(() => connections.length === 1 && hellos === 1, 2000);
    // Same device, another login: the client comes back with the old pid and offset.
    c.auth = { token: sign({ sub: 'grace' }) };
    c.io.engine.close();
    await sleep(100);
    c.connect();
    await connected(c);
    await waitFor(() => connections.length === 2, 3000);
    expect(connections[1]).toMatchObject({ sub: 'grace', recovered: false });
    expect(connections[1].rooms).not.toContain('ada-only');
    expect(connections[1].rooms).not.toContain('user:ada');
    await waitFor(() => hellos === 2, 2000);
    // The same user comes back recovered, with its rooms.
    c.io.engine.close();
    await sleep(100);
    c.connect();
    await connected(c);
    await waitFor(() => connections.length === 3, 3000);
    expect(connections[2]).toMatchObject({ sub: 'grace', recovered: true });
    expect(connections[2].rooms).toEqual(expect.arrayContaining(['grace-only', 'user:grace']));
  });

  test('options that cannot work throw when the Server is made, before it takes the engine', async () => {
    const { Engine, Server } = require('../../js/index.js');
    const engine = new Engine({ global: false, logLevel: 'off' });
    try {
      const make = (jwt) => () => new Server({ engine, auth: { jwt } });
      expect(make({})).toThrow(/needs a secret, a publicKey, keys or a jwks/);
      expect(make({ secret: SECRET, algorithms: ['none'] })).toThrow(/algorithms/);
      expect(make({ secret: SECRET, from: ['body'] })).toThrow(/from must list/);
      expect(make({ publicKey: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n' })).toThrow(/PEM but no key/);
      expect(make({ secret: SECRET, algorithms: ['RS256'] })).toThrow(/RS256 has no key to check it/);
    } finally {
      await engine.close();
    }
  });
});

describe('JWT per namespace (sidewire: auth.namespaces)', () => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });
  const ADMIN = 'the admin secret';

  test("a namespace's own jwt, or none, instead of the Server's", async () => {
    const seen = {};
    t = await startImpl('sidewire', {
      auth: {
        jwt: { secret: SECRET },
        namespaces: { '/public': false, '/admin': { jwt: { secret: ADMIN, issuer: 'admin', userRoom: 'admin:' } } },
      },
    }, (io) => {
      for (const name of ['/', '/public', '/admin']) {
        io.of(name).on('connection', (socket) => {
          seen[name] = { user: socket.data.user, rooms: [...socket.rooms] };
        });
      }
    });
    const adminToken = jsonwebtoken.sign({ sub: 'root', iss: 'admin' }, ADMIN, { expiresIn: 600 });
    // The Server's jwt for '/': its token connects, no token does not.
    await connected(t.client({ auth: { token: sign({}) } }));
    expect((await connectError(t.client())).data.reason).toBe('missing');
    // '/public': none.
    await connected(t.client('/public'));
    expect(seen['/public'].user).toBeUndefined();
    // '/admin': only its own key and issuer.
    expect((await connectError(t.client('/admin', { auth: { token: sign({}) } }))).data.reason).toBe('invalid');
    await connected(t.client('/admin', { auth: { token: adminToken } }));
    expect(seen['/admin'].user).toMatchObject({ sub: 'root', iss: 'admin' });
    expect(seen['/admin'].rooms).toContain('admin:root');
    expect(seen['/'].rooms).toContain('user:ada');
  });

  test('a namespace reads the token where the Server does; names start with /', async () => {
    const engine = new (require('../../js/index.js').Engine)({ global: false, logLevel: 'off' });
    const { Server: SidewireServer } = require('../../js/index.js');
    try {
      const make = (auth) => () => new SidewireServer({ engine, auth });
      expect(make({ jwt: { secret: SECRET }, namespaces: { '/admin': { jwt: { secret: ADMIN, from: ['query'] } } } })).toThrow(
        /namespaces\['\/admin'\]\.jwt\.from: a namespace reads the token where the Server does/,
      );
      expect(make({ namespaces: { admin: { jwt: { secret: ADMIN } } } })).toThrow(/'admin' is no namespace name/);
      expect(make({ namespaces: { '/admin': true } })).toThrow(/is \{ jwt \} or false/);
    } finally {
      await engine.close();
    }
  });
});

describe('JWT authentication of a raw channel (sidewire)', () => {
  const ws = require('./helpers/ws');
  let t;
  beforeAll(async () => {
    t = await ws.startServer((engine) => {
      const ch = engine.channel('/ws/desk', {
        roomQuery: 'doc',
        joinMessages: true,
        auth: { jwt: { secret: SECRET, issuer: 'desk', from: ['query', 'header', 'cookie'] } },
      });
      ch.on('connection', (client) => client.send(JSON.stringify({ user: client.user, rooms: [...client.rooms] })));
    });
  });
  afterAll(() => t.close());

  const deskToken = (claims = {}) => sign({ iss: 'desk', ...claims });

  test('a token in the query, a Bearer header or a cookie opens; the claims reach JS, the user room is joined', async () => {
    // Listening before the open: the hello may come in the same read as the 101.
    const opened = async (url, o) => {
      const c = new ws.WebSocket(url, o);
      const hello = ws.messages(c, 1);
      await new Promise((resolve, reject) => {
        c.once('open', resolve);
        c.once('error', reject);
      });
      return { c, hello };
    };
    const made = [
      await opened(t.url(`/ws/desk?token=${deskToken()}`)),
      await opened(t.url('/ws/desk'), { headers: { authorization: `Bearer ${deskToken()}` } }),
      await opened(t.url('/ws/desk'), { headers: { cookie: `a=b; token=${deskToken({ sub: 'grace' })}` } }),
    ];
    const clients = made.map((m) => m.c);
    const hello = await Promise.all(made.map((m) => m.hello));
    const said = hello.map(([[text]]) => JSON.parse(text));
    expect(said.map((s) => s.user.sub)).toEqual(['ada', 'ada', 'grace']);
    expect(said[0].rooms).toEqual(['user:ada']);
    const ch = t.engine.getChannel('/ws/desk');
    expect(ch.count('user:ada')).toBe(2);
    // Every device of ada, not grace's.
    const both = [ws.messages(clients[0], 1), ws.messages(clients[1], 1)];
    const graceQuiet = ws.silent(clients[2], 300);
    ch.broadcast('user:ada', 'for ada');
    expect((await Promise.all(both)).map(([[m]]) => m)).toEqual(['for ada', 'for ada']);
    expect(await graceQuiet).toBe(true);
    for (const c of clients) c.close();
  });

  test("the users' rooms are the engine's: a client cannot name one", async () => {
    const { data } = await ws.rawExchange(t.port, ws.upgradeRequest(`/ws/desk?doc=user:grace&token=${deskToken()}`));
    expect(data.toString('latin1')).toMatch(/^HTTP\/1\.1 403[^]*reserved/);
    const ada = new ws.WebSocket(t.url(`/ws/desk?token=${deskToken()}`));
    const hello = ws.messages(ada, 1);
    await new Promise((resolve) => ada.once('open', resolve));
    await hello;
    ada.send(JSON.stringify({ join: 'user:grace' }));
    const ch = t.engine.getChannel('/ws/desk');
    await sleep(200);
    expect(ch.count('user:grace')).toBe(0);
    const quiet = ws.silent(ada, 300);
    ch.broadcast('user:grace', 'for grace');
    expect(await quiet).toBe(true);
    ada.close();
  });

  test.each([
    ['no token', '/ws/desk', {}, 'missing'],
    ['an expired token', `/ws/desk?token=${sign({ iss: 'desk', exp: now() - 5 })}`, {}, 'expired'],
    ['another issuer', `/ws/desk?token=${sign({ iss: 'elsewhere' })}`, {}, 'invalid'],
    ['a bad Bearer', '/ws/desk', { Authorization: 'Bearer abc.def.ghi' }, 'invalid'],
  ])('%s: HTTP 401 with the reason, nothing reaches JS', async (_name, path, headers, reason) => {
    const before = t.engine.stats().limits;
    const { data } = await ws.rawExchange(t.port, ws.upgradeRequest(path, headers));
    const text = data.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 401/);
    expect(text).toContain(`unauthorized: token ${reason}`);
    const key = { missing: 'tokenMissing', expired: 'tokenExpired', invalid: 'tokenInvalid' }[reason];
    await waitFor(() => t.engine.stats().limits[key] === before[key] + 1, 2000);
  });

  test('a token that expires while connected closes it with 1008 "token expired"; {"refresh"} keeps it open', async () => {
    const soon = () => deskToken({ exp: now() + 2 });
    const open = async (token) => {
      const c = new ws.WebSocket(t.url(`/ws/desk?token=${token}`));
      const hello = ws.messages(c, 1);
      await new Promise((resolve, reject) => {
        c.once('open', resolve);
        c.once('error', reject);
      });
      await hello;
      return c;
    };
    const expiring = await open(soon());
    const refreshed = await open(soon());
    const answer = ws.messages(refreshed, 1);
    refreshed.send(JSON.stringify({ refresh: deskToken({ exp: now() + 60 }) }));
    const [[reply]] = await answer;
    expect(JSON.parse(reply)).toMatchObject({ refreshed: true, exp: expect.any(Number) });
    // Another user's token does not extend this connection.
    const refused = ws.messages(refreshed, 1);
    refreshed.send(JSON.stringify({ refresh: deskToken({ sub: 'grace', exp: now() + 60 }) }));
    expect(JSON.parse((await refused)[0][0])).toMatchObject({ refreshed: false, reason: 'invalid', detail: 'another subject' });
    const { code, reason } = await ws.closed(expiring, 6000);
    expect(code).toBe(1008);
    expect(String(reason)).toBe('token expired');
    await sleep(1500);
    expect(refreshed.readyState).toBe(ws.WebSocket.OPEN);
    refreshed.close();
  });
});
