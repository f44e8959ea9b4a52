'use strict';
// Options sidewire does not honour are never silently dropped (js/options.js): an ignored one
// warns once, naming it and why; one that would be unsafe to ignore throws a TypeError; a typo
// warns with the closest name. Honoured options, and ignored ones at their default-off value,
// say nothing. The lists are checked against socket.io's and engine.io's own typings, so an
// option they add shows up here.
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Engine, Server } = require('../../js/index.js');
const { checkOptions, groups, WARNING_TYPE } = require('../../js/options.js');

const root = path.resolve(__dirname, '..', '..');

let warnings;
let spy;
beforeEach(() => {
  warnings = [];
  spy = jest.spyOn(process, 'emitWarning').mockImplementation((message, options) => {
    warnings.push({ message: String(message), type: options && options.type, code: options && options.code });
  });
});
afterEach(() => spy.mockRestore());

const ours = () => warnings.filter((w) => w.type === WARNING_TYPE);

const engines = [];
function engine() {
  const e = new Engine({ global: false, logLevel: 'off', drainMs: 50 });
  engines.push(e);
  return e;
}
afterAll(async () => {
  for (const e of engines) await e.close({ drainMs: 50 });
});

async function withServer(opts, fn = () => {}) {
  const io = new Server({ engine: engine(), ...opts });
  try {
    await fn(io);
  } finally {
    await io.close();
  }
}

// Names of an interface's properties in a .d.ts (its own members, four-space indented).
function interfaceKeys(file, name) {
  const text = fs.readFileSync(file, 'utf8');
  const start = text.indexOf(`interface ${name} `);
  if (start < 0) throw new Error(`${name} not found in ${file}`);
  let depth = 0;
  let i = text.indexOf('{', start);
  const open = i;
  for (; i < text.length; i += 1) {
    if (text[i] === '{') depth += 1;
    else if (text[i] === '}' && --depth === 0) break;
  }
  const body = text.slice(open + 1, i);
  return [...body.matchAll(/^ {4}([A-Za-z_$][\w$]*)\??:/gm)].map((m) => m[1]);
}

describe('the lists cover socket.io 4.8 and engine.io 6.6', () => {
  const known = Object.keys(groups.SOCKETIO.options);
  test.each([
    ['socket.io', 'ServerOptions', 'socket.io/dist/index.d.ts'],
    ['engine.io', 'ServerOptions', 'engine.io/build/server.d.ts'],
    ['engine.io', 'AttachOptions', 'engine.io/build/server.d.ts'],
  ])("%s's %s: every option is listed", (pkg, name, file) => {
    const keys = interfaceKeys(path.join(root, 'node_modules', file), name);
    expect(keys.length).toBeGreaterThan(3);
    expect(keys.filter((k) => !known.includes(k))).toEqual([]);
  });

  test("sidewire's own Engine and channel options are all listed", () => {
    const e = engine();
    expect(Object.keys(e.options).filter((k) => !(k in groups.ENGINE.options))).toEqual([]);
    const ch = e.channel('/ws/listed', {});
    expect(Object.keys(ch.options).filter((k) => !(k in groups.CHANNEL.options))).toEqual([]);
  });
});

describe('Socket.IO Server options', () => {
  const IGNORED = [
    ['wsEngine', require('ws').Server],
    ['allowEIO3', true],
    ['initialPacket', 'hello'],
    ['cookie', { name: 'io' }],
    ['cookie', true],
    ['destroyUpgrade', false],
    ['destroyUpgradeTimeout', 5000],
    ['addTrailingSlash', false],
  ];

  test.each(IGNORED)('%s (%p) warns once, naming it and why', async (name, value) => {
    await withServer({ [name]: value });
    const w = ours();
    expect(w).toHaveLength(1);
    expect(w[0].message).toContain(`'${name}' is ignored: `);
    expect(w[0].code).toBe('SIDEWIRE_IGNORED_OPTION');
  });

  test.each([
    ['perMessageDeflate', { concurrencyLimit: 4 }, 'perMessageDeflate.concurrencyLimit'],
    ['perMessageDeflate', { zlibInflateOptions: { chunkSize: 1024 } }, 'perMessageDeflate.zlibInflateOptions'],
    ['perMessageDeflate', { zlibDeflateOptions: { level: 1, chunkSize: 1024 } }, 'perMessageDeflate.zlibDeflateOptions.chunkSize'],
    ['cors', { origin: 'http://a.test', preflightContinue: true }, 'cors.preflightContinue'],
    ['cors', { origin: 'http://a.test', optionsSuccessStatus: 200 }, 'cors.optionsSuccessStatus'],
    ['transports', ['polling', 'websocket', 'webtransport'], 'transports'],
  ])('%s: %p warns once about %s', async (name, value, shown) => {
    await withServer({ [name]: value });
    const w = ours();
    expect(w).toHaveLength(1);
    expect(w[0].message).toContain(`'${shown}'`);
  });

  test('an ignored option given to the constructor and to attach() warns once', async () => {
    await withServer({ allowEIO3: true }, (io) => {
      const srv = http.createServer();
      io.attach(srv, { allowEIO3: true, wsEngine: class {} });
    });
    expect(ours().map((w) => w.message.match(/'(\w+)'/)[1]).sort()).toEqual(['allowEIO3', 'wsEngine']);
  });

  test('a typo warns, with the closest name', async () => {
    await withServer({ pingIntervall: 1000, maxHttpBuferSize: 10, cors: { orign: '*' }, connectionStateRecovery: { maxDisconectionDuration: 1 } });
    const messages = ours().map((w) => w.message);
    expect(messages).toHaveLength(4);
    expect(messages).toEqual(expect.arrayContaining([
      expect.stringMatching(/unknown Socket\.IO option 'pingIntervall'.*did you mean 'pingInterval'/),
      expect.stringMatching(/'maxHttpBuferSize'.*did you mean 'maxHttpBufferSize'/),
      expect.stringMatching(/'cors\.orign'.*did you mean 'cors\.origin'/),
      expect.stringMatching(/'connectionStateRecovery\.maxDisconectionDuration'.*did you mean 'connectionStateRecovery\.maxDisconnectionDuration'/),
    ]));
    expect(ours().every((w) => w.code === 'SIDEWIRE_UNKNOWN_OPTION')).toBe(true);
  });

  test('every honoured option, and every ignored one at its default, says nothing', async () => {
    await withServer({
      path: '/rt',
      serveClient: false,
      connectTimeout: 10000,
      connectionStateRecovery: { maxDisconnectionDuration: 1000, skipMiddlewares: false, maxBytes: 1 << 20 },
      cleanupEmptyChildNamespaces: true,
      pingTimeout: 1000,
      pingInterval: 2000,
      upgradeTimeout: 3000,
      maxHttpBufferSize: 1e5,
      allowRequest: (req, cb) => cb(null, true),
      transports: ['websocket', 'polling'],
      allowUpgrades: false,
      perMessageDeflate: {
        threshold: 0, serverNoContextTakeover: false, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 10,
        zlibDeflateOptions: { level: 3, memLevel: 7, strategy: 0 },
      },
      httpCompression: { threshold: 10, level: 1 },
      cors: { origin: ['http://a.test'], methods: ['GET'], allowedHeaders: ['x'], exposedHeaders: 'y', credentials: true, maxAge: 60, preflightContinue: false, optionsSuccessStatus: 204 },
      maxRoomsPerSocket: 100,
      adapter: require('../../js/index.js').Adapter,
      parser: require('socket.io-msgpack-parser'),
      // ignored, at their defaults / off
      wsEngine: undefined,
      allowEIO3: false,
      cookie: false,
      initialPacket: undefined,
      destroyUpgrade: true,
      destroyUpgradeTimeout: 1000,
      addTrailingSlash: true,
    });
    await withServer({ perMessageDeflate: true, httpCompression: false, cors: { origin: '*' } });
    expect(ours()).toEqual([]);
  });

  test('cors as a function (an options delegate) is refused: read as options it would allow every origin', () => {
    const e = engine();
    expect(() => new Server({ engine: e, cors: (req, cb) => cb(null, { origin: false }) })).toThrow(TypeError);
    expect(() => new Server({ engine: e, cors: (req, cb) => cb(null, { origin: false }) })).toThrow(/cors: \{ origin: \(origin, callback\)/);
    // The engine was not taken by the refused Server.
    const io = new Server({ engine: e });
    return io.close();
  });
});

describe('Engine and channel options', () => {
  test('Engine: an ignored option warns once, a typo with the closest name, honoured ones say nothing', () => {
    const a = new Engine({ global: false, logLevel: 'off', drainMs: 50, ioThreads: 1, wsPrefix: '/ws/', closeTimeoutMs: 100, ioNice: 0 });
    engines.push(a);
    expect(ours()).toEqual([]);
    engines.push(new Engine({ global: false, logLevel: 'off', perMessageDeflate: true, ioThread: 2, port: 3000 }));
    const messages = ours().map((w) => w.message);
    expect(messages).toHaveLength(3);
    expect(messages).toEqual(expect.arrayContaining([
      expect.stringMatching(/Engine option 'perMessageDeflate' is ignored: raw channels do not compress/),
      expect.stringMatching(/unknown Engine option 'ioThread'.*did you mean 'ioThreads'/),
      expect.stringMatching(/Engine option 'port' is ignored: .*engine\.listen/),
    ]));
  });

  test('channel: ignored options warn once each, honoured ones say nothing', () => {
    const e = engine();
    e.channel('/ws/ok', {
      roomQuery: 'doc', relay: true, joinMessages: true, maxPayload: 1000, pingInterval: 0, pingTimeout: 100, maxQueuedBytes: 1 << 20,
      maxRooms: 5, messageTimeout: 1000, authorize: () => true, connection() {}, message() {}, close() {}, perMessageDeflate: false,
    });
    expect(ours()).toEqual([]);
    e.channel('/ws/ignored', { perMessageDeflate: true, handleProtocols: () => 'x', clientTracking: true, relayy: true });
    const messages = ours().map((w) => w.message);
    expect(messages).toHaveLength(4);
    expect(messages).toEqual(expect.arrayContaining([
      expect.stringMatching(/channel option 'perMessageDeflate' is ignored: raw channels do not support permessage-deflate/),
      expect.stringMatching(/'handleProtocols' is ignored: subprotocols are not negotiated/),
      expect.stringMatching(/'clientTracking' is ignored/),
      expect.stringMatching(/unknown channel option 'relayy'.*did you mean 'relay'/),
    ]));
  });

  test("channel: verifyClient is refused (ignoring it would let everyone in); the channel is not made", () => {
    const e = engine();
    expect(() => e.channel('/ws/v', { verifyClient: () => false })).toThrow(TypeError);
    expect(() => e.channel('/ws/v', { verifyClient: () => false })).toThrow(/use authorize\(req\)/);
    expect(e.getChannel('/ws/v')).toBeUndefined();
    expect(() => e.channel('/ws/v', {})).not.toThrow();
  });
});

describe('startServer options (sidewire/next)', () => {
  test('a typo warns, host points at hostname, httpServer is refused, honoured ones say nothing', () => {
    checkOptions(groups.START_SERVER, {
      dir: '.', dev: true, port: 0, hostname: '127.0.0.1', backlog: 10, drainMs: 10, headersTimeout: 10, logLevel: 'off',
      engine: {}, socketio: false, setup() {}, onShutdown() {}, health: false, signals: false, nextOptions: {},
    });
    expect(ours()).toEqual([]);
    checkOptions(groups.START_SERVER, { prot: 3000, host: '0.0.0.0' });
    const messages = ours().map((w) => w.message);
    expect(messages).toEqual([
      expect.stringMatching(/unknown startServer option 'prot'.*did you mean 'port'/),
      expect.stringMatching(/startServer option 'host' is ignored: .*`hostname`/),
    ]);
    expect(() => checkOptions(groups.START_SERVER, { httpServer: http.createServer() })).toThrow(TypeError);
  });
});
