'use strict';
// Every option name sidewire knows, in one place: what it honours, what it ignores (and why, or
// what to use instead), and what it refuses because ignoring it would be unsafe. The Engine,
// each Channel, the Socket.IO Server (constructor and attach()) and startServer()
// (sidewire/next) check the options they are given against these lists:
//
//   honoured                        nothing is said
//   ignored, at its default/off     nothing is said ({ wsEngine: undefined }, { cookie: false })
//   ignored, set to anything else   a warning naming it, why, and what to use instead
//   refused                         a TypeError (ignoring it would open or break something)
//   unknown (a typo?)               a warning naming it, with the closest known name
//
// Warnings go out with process.emitWarning (type 'SidewireWarning', so `node --no-warnings`
// silences them and process.on('warning') sees them), once per option per object that was
// given it, whatever the engine's log level.
//
// The Socket.IO lists are socket.io 4.8's ServerOptions, which extend engine.io 6.6's
// ServerOptions and AttachOptions (node_modules/socket.io/dist/index.d.ts,
// node_modules/engine.io/build/server.d.ts), plus sidewire's own (`engine`, `maxRoomsPerSocket`).

const WARNING_TYPE = 'SidewireWarning';

// ---------------------------------------------------------------------------- the lists
// Each entry: {} honoured; { ignored: why, off: [values that mean "not asked for"] };
// { refused: why, off: [...] } (a TypeError unless off); `nested`: the group its object value
// is checked against; `check(value, report)`: a value-level check of its own.

const isOff = (entry, value) => value === undefined || (entry.off || []).some((v) => Object.is(v, value));

const CONNECTION_STATE_RECOVERY = {
  label: 'Socket.IO option',
  options: {
    maxDisconnectionDuration: {},
    skipMiddlewares: {},
    maxBytes: {}, // sidewire: what the engine's packet log may hold (default 32 MiB)
  },
};

const ZLIB_DEFLATE_OPTIONS = {
  label: 'Socket.IO option',
  options: {
    level: {},
    memLevel: {},
    strategy: {},
    windowBits: { ignored: 'the window comes from serverMaxWindowBits and the client\'s offer; use serverMaxWindowBits' },
    chunkSize: { ignored: 'the engine compresses into its own buffers' },
    dictionary: { ignored: 'permessage-deflate (RFC 7692) has no preset dictionary' },
    info: { ignored: 'not used by the engine\'s zlib' },
    maxOutputLength: { ignored: 'not used by the engine\'s zlib; maxHttpBufferSize bounds inflated messages' },
    flush: { ignored: 'the engine flushes as RFC 7692 requires' },
    finishFlush: { ignored: 'the engine flushes as RFC 7692 requires' },
  },
};

const PER_MESSAGE_DEFLATE = {
  label: 'Socket.IO option',
  options: {
    threshold: {},
    serverNoContextTakeover: {},
    clientNoContextTakeover: {},
    serverMaxWindowBits: {},
    clientMaxWindowBits: {},
    zlibDeflateOptions: { nested: ZLIB_DEFLATE_OPTIONS },
    zlibInflateOptions: {
      ignored: 'the engine inflates with zlib\'s defaults (a message is bounded by maxHttpBufferSize once inflated)',
    },
    concurrencyLimit: { ignored: 'the engine compresses on its own I/O threads, not on libuv\'s thread pool' },
  },
};

const CORS = {
  label: 'Socket.IO option',
  options: {
    origin: {},
    methods: {},
    allowedHeaders: {},
    headers: {}, // the cors package's alias of allowedHeaders
    exposedHeaders: {},
    credentials: {},
    maxAge: {},
    preflightContinue: { ignored: 'sidewire answers preflights itself (204)', off: [false] },
    optionsSuccessStatus: { ignored: 'preflights are answered 204', off: [204] },
  },
};

const JWT = {
  label: 'Socket.IO option',
  options: {
    secret: {},
    publicKey: {},
    keys: {},
    jwks: {},
    algorithms: {},
    issuer: {},
    audience: {},
    clockToleranceSec: {},
    maxTokenBytes: {},
    requireExp: {},
    from: {},
    authField: {},
    queryParam: {},
    cookie: {},
    userRoom: {},
    refreshEvent: {},
  },
};

const AUTH = {
  label: 'Socket.IO option',
  options: {
    jwt: { nested: JWT }, // sidewire: tokens verified in the engine (js/auth.js)
    namespaces: {}, // sidewire: { '/name': { jwt } | false }, a namespace's own (js/auth.js)
  },
};

// limits (js/limits.js): enforced in the engine, before anything crosses into JS.
const LIMITS = {
  label: 'limits option',
  options: {
    events: {},
    connectionsPerIp: {},
    connectionsPerUser: {},
    connectRatePerIp: {},
    idleTimeoutMs: {},
    policy: {},
    errorEvent: {},
  },
};

// history (js/history.js): a channel's rooms kept and replayed in the engine.
const HISTORY = {
  label: 'history option',
  options: {
    maxMessages: {},
    maxBytes: {},
    ttlMs: {},
    maxRooms: {},
    prefixes: {},
    compactAfter: {},
    compact: {},
    load: {},
  },
};

const TRANSPORTS = new Set(['polling', 'websocket']);

const SOCKETIO = {
  label: 'Socket.IO option',
  options: {
    // socket.io's own
    path: {},
    serveClient: {},
    adapter: {}, // the default, or sidewire/redis-adapter's createAdapter(); anything else throws
    parser: {}, // the default parser or socket.io-msgpack-parser; anything else throws
    connectTimeout: {},
    connectionStateRecovery: { nested: CONNECTION_STATE_RECOVERY },
    cleanupEmptyChildNamespaces: {},
    // engine.io's ServerOptions
    pingTimeout: {},
    pingInterval: {},
    upgradeTimeout: {},
    maxHttpBufferSize: {},
    allowRequest: {},
    transports: {
      check(value, report) {
        if (!Array.isArray(value)) return;
        for (const t of value) {
          if (TRANSPORTS.has(t)) continue;
          if (t === 'webtransport') {
            report('transports', `'webtransport' is not supported and is left out: clients use polling and WebSocket`);
          } else {
            report('transports', `${JSON.stringify(t)} is not a transport and is left out (known: 'polling', 'websocket')`);
          }
        }
      },
    },
    allowUpgrades: {},
    perMessageDeflate: { nested: PER_MESSAGE_DEFLATE },
    httpCompression: {}, // zlib's options and threshold, all honoured
    cors: {
      nested: CORS,
      check(value) {
        if (typeof value === 'function') {
          // Read as an options object it would allow every origin: refused, not ignored.
          throw new TypeError(
            'sidewire: the Socket.IO option cors as a function (the cors package\'s options delegate) is not supported; ' +
              'decide per origin with cors: { origin: (origin, callback) => callback(null, allowed) }',
          );
        }
      },
    },
    wsEngine: {
      ignored: 'the WebSocket transport is the engine\'s own (C++); no JS WebSocket server runs',
      off: [null, false],
    },
    initialPacket: { ignored: 'the handshake packet carries no extra packet', off: [null] },
    cookie: {
      ignored: 'no session cookie is set: one process holds every session, so no sticky-session cookie is needed',
      off: [false, null],
    },
    allowEIO3: {
      ignored: 'Engine.IO v3 clients (socket.io-client 2.x) are refused with code 5; upgrade them to socket.io-client 4',
      off: [false],
    },
    // engine.io's AttachOptions
    destroyUpgrade: {
      ignored: 'an upgrade nobody takes is answered 404 at once when sidewire\'s is the only upgrade listener, else left to the others',
      off: [true],
    },
    destroyUpgradeTimeout: { ignored: 'unclaimed upgrades are answered at once (see destroyUpgrade)', off: [1000] },
    addTrailingSlash: {
      ignored: 'requests match the path followed by a slash (/socket.io/), as with engine.io\'s default',
      off: [true],
    },
    // sidewire's
    engine: {},
    maxRoomsPerSocket: {},
    auth: { nested: AUTH },
    limits: { nested: LIMITS },
    trustProxy: {},
  },
};

const ENGINE = {
  label: 'Engine option',
  options: {
    ioThreads: {},
    wsPrefix: {},
    drainMs: {},
    closeTimeoutMs: {},
    ioNice: {},
    writeDelayMs: {},
    gcAfterBurst: {},
    logLevel: {},
    logFormat: {},
    global: {},
    perMessageDeflate: {
      ignored: 'raw channels do not compress; Socket.IO\'s perMessageDeflate is an option of the Server',
      off: [false],
    },
    port: { ignored: 'the Engine does not listen by itself: await engine.listen(httpServer, { port, host })' },
    host: { ignored: 'the Engine does not listen by itself: await engine.listen(httpServer, { port, host })' },
    server: { ignored: 'attach the engine with engine.attach(httpServer) or engine.listen(httpServer, { port })' },
  },
};

const CHANNEL = {
  label: 'channel option',
  options: {
    roomQuery: {},
    relay: {},
    joinMessages: {},
    maxPayload: {},
    pingInterval: {},
    pingTimeout: {},
    maxQueuedBytes: {},
    maxRooms: {},
    messageTimeout: {},
    adapter: {}, // sidewire/redis-adapter's createAdapter(): broadcasts and the relay reach every node
    auth: { nested: AUTH }, // JWT in the engine (js/auth.js)
    limits: { nested: LIMITS }, // rates, connection caps, idle timeout in the engine (js/limits.js)
    trustProxy: {},
    history: { nested: HISTORY }, // rooms kept and replayed to late joiners (js/history.js)
    authorize: {},
    connection: {},
    message: {},
    close: {},
    perMessageDeflate: {
      ignored: 'raw channels do not support permessage-deflate: the engine declines the extension and clients send uncompressed',
      off: [false],
    },
    handleProtocols: {
      ignored: 'subprotocols are not negotiated: the 101 carries no Sec-WebSocket-Protocol (a browser that asked for one fails the connection)',
    },
    clientTracking: { ignored: 'channel.clients tracks clients while the channel has connection, message or close listeners' },
    verifyClient: {
      refused: 'use authorize(req), which runs before the upgrade is accepted (return false or { status, message } to refuse)',
    },
  },
};

const START_SERVER = {
  label: 'startServer option',
  options: {
    dir: {},
    dev: {},
    port: {},
    hostname: {},
    backlog: {},
    drainMs: {},
    headersTimeout: {},
    logLevel: {},
    logFormat: {},
    engine: {},
    socketio: {},
    metrics: {},
    metricsAllow: {},
    ready: {},
    tls: {},
    setup: {},
    beforeShutdown: {},
    onShutdown: {},
    health: {},
    signals: {},
    nextOptions: {},
    host: { ignored: 'the address to listen on is `hostname` (as in next())' },
    httpServer: { refused: 'startServer creates the http.Server itself; reach it in setup({ server }) or as the handle\'s server' },
    server: { refused: 'startServer creates the http.Server itself; reach it in setup({ server }) or as the handle\'s server' },
  },
};

// ----------------------------------------------------------------------------- checking

function editDistance(a, b) {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function closest(name, names) {
  let best = null;
  let bestDistance = Infinity;
  for (const candidate of names) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : null;
}

function warn(message, code) {
  process.emitWarning(message, { type: WARNING_TYPE, code });
}

/**
 * Checks `opts` against `group`: warns about what is ignored or unknown, throws a TypeError for
 * what is refused. `warned` (a Set kept by the object that was given the options) makes each
 * option warn once however often it is checked (a Server's constructor, then attach()).
 */
function checkOptions(group, opts, warned = new Set(), prefix = '') {
  if (!opts || typeof opts !== 'object' || Array.isArray(opts)) return;
  const known = group.options;
  const once = (key, message, code) => {
    if (warned.has(key)) return;
    warned.add(key);
    warn(message, code);
  };
  for (const name of Object.keys(opts)) {
    const value = opts[name];
    const key = `${prefix}${name}`;
    const entry = Object.prototype.hasOwnProperty.call(known, name) ? known[name] : null;
    if (!entry) {
      if (value === undefined) continue;
      const guess = closest(name, Object.keys(known).filter((n) => !known[n].ignored && !known[n].refused));
      once(
        key,
        `sidewire: unknown ${group.label} '${key}' is ignored${guess ? ` (did you mean '${prefix}${guess}'?)` : ''}`,
        'SIDEWIRE_UNKNOWN_OPTION',
      );
      continue;
    }
    if (entry.refused) {
      if (isOff(entry, value)) continue;
      throw new TypeError(`sidewire: the ${group.label} '${key}' is not supported: ${entry.refused}`);
    }
    if (entry.ignored) {
      if (isOff(entry, value)) continue;
      once(key, `sidewire: the ${group.label} '${key}' is ignored: ${entry.ignored}`, 'SIDEWIRE_IGNORED_OPTION');
      continue;
    }
    if (entry.check) {
      entry.check(value, (sub, why) =>
        once(`${key}:${why}`, `sidewire: the ${group.label} '${key}': ${why}`, 'SIDEWIRE_IGNORED_OPTION'));
    }
    if (entry.nested && value && typeof value === 'object' && !Array.isArray(value)) {
      checkOptions(entry.nested, value, warned, `${key}.`);
    }
  }
}

module.exports = {
  WARNING_TYPE,
  checkOptions,
  groups: { SOCKETIO, ENGINE, CHANNEL, START_SERVER, CORS, PER_MESSAGE_DEFLATE, ZLIB_DEFLATE_OPTIONS, CONNECTION_STATE_RECOVERY },
};
