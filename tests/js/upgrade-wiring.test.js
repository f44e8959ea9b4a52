'use strict';
// One decision per upgrade, whatever the wiring: a channel's authorize runs once, a refusal is
// answered and logged once, an allowed client connects once, and an upgrade that is not the
// engine's reaches the app's handler once. The wirings are the ones apps use: engine.listen()
// or server.listen() with the app's own 'upgrade' listener (the README's older snippet),
// engine.attach() before or after it, a Socket.IO Server attached to the same server, and
// engine.attach(server, otherwise) (what sidewire/next's startServer does; it has its own test
// in next-server.test.js).
const http = require('node:http');
const { Engine, Server } = require('../../js/index.js');
const { listenOn } = require('./helpers/impls');
const { open, closed, rawExchange, upgradeRequest, sleep, waitFor } = require('./helpers/ws');

const REFUSAL_LOG = /upgrade refused by authorize/;
const CORS_LOG = /Socket\.IO upgrade refused: origin/;

// Each wiring: (engine, server, onOther) → { io?, listen: () => port }. `onOther(req, socket)`
// is how the app handles upgrades that are not the engine's.
const WIRINGS = {
  'engine.listen + own listener': (engine, server, onOther) => {
    server.on('upgrade', (req, socket, head) => {
      if (engine.handleUpgrade(req, socket, head)) return;
      onOther(req, socket);
    });
    return { listen: () => engine.listen(server, { host: '127.0.0.1', port: 0 }) };
  },
  'own listener + engine.attach + server.listen': (engine, server, onOther) => {
    server.on('upgrade', (req, socket, head) => {
      if (engine.handleUpgrade(req, socket, head)) return;
      onOther(req, socket);
    });
    engine.attach(server);
    return { listen: () => listenOn(server) };
  },
  'engine.attach + own listener + server.listen': (engine, server, onOther) => {
    engine.attach(server);
    server.on('upgrade', (req, socket, head) => {
      if (engine.handleUpgrade(req, socket, head)) return;
      onOther(req, socket);
    });
    return { listen: () => listenOn(server) };
  },
  'io.attach + engine.attach + own listener + server.listen': (engine, server, onOther) => {
    const io = new Server(server, { engine, cors: { origin: 'http://allowed.test' } });
    engine.attach(server);
    server.on('upgrade', (req, socket, head) => {
      if (engine.handleUpgrade(req, socket, head)) return;
      onOther(req, socket);
    });
    return { io, listen: () => listenOn(server) };
  },
  'io.attach + own listener + engine.listen': (engine, server, onOther) => {
    const io = new Server(server, { engine, cors: { origin: 'http://allowed.test' } });
    server.on('upgrade', (req, socket, head) => {
      if (engine.handleUpgrade(req, socket, head)) return;
      onOther(req, socket);
    });
    return { io, listen: () => engine.listen(server, { host: '127.0.0.1', port: 0 }) };
  },
  'engine.attach(server, otherwise) + engine.listen': (engine, server, onOther) => {
    engine.attach(server, (req, socket) => onOther(req, socket));
    const io = new Server({ engine, cors: { origin: 'http://allowed.test' } });
    server.on('request', (req, res) => io.handleRequest(req, res));
    return { io, listen: () => engine.listen(server, { host: '127.0.0.1', port: 0 }), oneListener: true };
  },
  'io.attach + engine.attach(server, otherwise) + server.listen': (engine, server, onOther) => {
    const io = new Server(server, { engine, cors: { origin: 'http://allowed.test' } });
    engine.attach(server, (req, socket) => onOther(req, socket));
    return { io, listen: () => listenOn(server), oneListener: true };
  },
};

describe.each(Object.keys(WIRINGS))('one decision per upgrade: %s', (name) => {
  let engine;
  let server;
  let io;
  let port;
  let asked;
  let connections;
  let others;
  let logged;
  let wiring;
  let errorSpy;

  beforeEach(async () => {
    asked = 0;
    connections = 0;
    others = [];
    logged = [];
    errorSpy = jest.spyOn(console, 'error').mockImplementation((...args) => logged.push(args.join(' ')));
    engine = new Engine({ global: false, logLevel: 'warn', drainMs: 200 });
    const channel = engine.channel('/ws/gated', {
      authorize: async (req) => {
        asked += 1;
        await sleep(20); // async: the socket is held meanwhile, and a second listener must not touch it
        return req.url.includes('token=ok') ? true : { status: 401, message: 'no token' };
      },
    });
    channel.on('connection', () => {
      connections += 1;
    });
    server = http.createServer((req, res) => {
      if (!res.headersSent && !res.writableEnded && !(req.url || '').startsWith('/socket.io/')) res.end('page');
    });
    wiring = WIRINGS[name](engine, server, (req, socket) => {
      others.push(req.url);
      socket.end('HTTP/1.1 418 I am a teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    io = wiring.io || null;
    port = await wiring.listen();
  });

  afterEach(async () => {
    errorSpy.mockRestore();
    if (io) await io.close();
    await engine.close({ drainMs: 200 });
    server.closeAllConnections();
    if (server.listening) await new Promise((resolve) => server.close(() => resolve()));
  });

  test('a refusal: authorize runs once, one answer, one log line', async () => {
    const reply = (await rawExchange(port, upgradeRequest('/ws/gated'))).data.toString();
    expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 401 Unauthorized');
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    await sleep(100);
    expect(asked).toBe(1);
    expect(logged.filter((l) => REFUSAL_LOG.test(l))).toHaveLength(1);
    expect(others).toEqual([]);
  });

  test('an allowed client: authorize runs once and it connects once', async () => {
    const ws = await open(`ws://127.0.0.1:${port}/ws/gated?token=ok`);
    await waitFor(() => connections === 1);
    await sleep(100);
    expect(asked).toBe(1);
    expect(connections).toBe(1);
    ws.close();
    await closed(ws);
  });

  test("an upgrade that is not the engine's reaches the app's handler once", async () => {
    const reply = (await rawExchange(port, upgradeRequest('/_next/webpack-hmr'))).data.toString();
    expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 418 I am a teapot');
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    await sleep(50);
    expect(others).toEqual(['/_next/webpack-hmr']);
    expect(asked).toBe(0);
    if (wiring.oneListener) expect(server.listenerCount('upgrade')).toBe(1);
  });

  test('a Socket.IO upgrade refused by CORS is answered and logged once', async () => {
    if (!io) return;
    const reply = (await rawExchange(port, upgradeRequest('/socket.io/?EIO=4&transport=websocket', { Origin: 'http://evil.test' }))).data.toString();
    expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    await sleep(50);
    expect(logged.filter((l) => CORS_LOG.test(l))).toHaveLength(1);
    expect(others).toEqual([]);
  });
});

describe('engine.attach(server, otherwise)', () => {
  test('the engine keeps one listener per server, and a later otherwise replaces the first', async () => {
    const engine = new Engine({ global: false, logLevel: 'off', drainMs: 100 });
    const server = http.createServer();
    const seen = [];
    engine.attach(server, () => seen.push('first'));
    engine.attach(server);
    engine.attach(server, (req, socket) => {
      seen.push('second');
      socket.destroy();
    });
    expect(server.listenerCount('upgrade')).toBe(1);
    const port = await engine.listen(server, { host: '127.0.0.1', port: 0 });
    expect(server.listenerCount('upgrade')).toBe(1);
    try {
      await rawExchange(port, upgradeRequest('/elsewhere'), { waitMs: 1000 });
      expect(seen).toEqual(['second']);
      expect(() => engine.attach(server, 'nope')).toThrow(TypeError);
    } finally {
      await engine.close({ drainMs: 100 });
    }
  });

  test('a throwing otherwise destroys that socket only; the process and the server go on', async () => {
    const engine = new Engine({ global: false, logLevel: 'off', drainMs: 100 });
    const server = http.createServer((req, res) => res.end('ok'));
    engine.attach(server, () => {
      throw new Error('boom');
    });
    const port = await engine.listen(server, { host: '127.0.0.1', port: 0 });
    try {
      const r = await rawExchange(port, upgradeRequest('/elsewhere'), { waitMs: 2000 });
      expect(r.ended).toBe(true);
      const page = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
      expect(await page.text()).toBe('ok');
    } finally {
      await engine.close({ drainMs: 100 });
      server.closeAllConnections();
    }
  });
});
