'use strict';
// Differential testing: the same Socket.IO setup on the `socket.io` package or on sidewire, so one
// test body runs against both and any difference shows as a failing pair.
//   describe.each(IMPLS)('thing (%s)', (kind) => { ... startImpl(kind, opts, setup) ... })
// Kinds: 'socket.io'; 'sidewire' (Node's http.Server hands over upgrades); 'sidewire+listen'
// (the engine owns the listening socket, engine.listen()).
const http = require('node:http');
const { io: ioClient } = require('socket.io-client');
const { Server: SocketIoServer } = require('socket.io');
const { Engine, Server } = require('../../../js/index.js');
const { listen: listenOn } = require('./sio');

const IMPLS = ['socket.io', 'sidewire'];
const IMPLS_ALL = ['socket.io', 'sidewire', 'sidewire+listen'];

/**
 * Starts an http.Server (404 for everything not Socket.IO's) with a Server of `kind` on
 * 127.0.0.1:`port` (0: any). `setup(io)` runs before the port opens. Returns
 * { io, port, httpServer, url(nsp), client(nsp?, opts?), close() }; clients made by `client()`
 * are disconnected by `close()`, and default to no reconnection and a Manager of their own.
 */
async function startImpl(kind, opts = {}, setup = null, { port = 0, engineOptions = {} } = {}) {
  const httpServer = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
  });
  let io;
  let engine = null;
  let actualPort;
  if (kind === 'socket.io') {
    io = new SocketIoServer(httpServer, opts);
    if (setup) setup(io);
    actualPort = await listenOn(httpServer, port);
  } else if (kind === 'sidewire' || kind === 'sidewire+listen') {
    engine = new Engine({ global: false, logLevel: 'off', drainMs: 200, ...engineOptions });
    io = new Server(httpServer, { engine, ...opts });
    if (setup) setup(io);
    actualPort =
      kind === 'sidewire+listen' ? await engine.listen(httpServer, { host: '127.0.0.1', port }) : await listenOn(httpServer, port);
  } else {
    throw new Error(`unknown implementation ${kind}`);
  }
  const clients = new Set();
  const t = {
    kind,
    io,
    engine,
    port: actualPort,
    httpServer,
    url: (nsp = '') => `http://127.0.0.1:${actualPort}${nsp}`,
    client(nsp = '/', o = {}) {
      if (typeof nsp === 'object') {
        o = nsp;
        nsp = '/';
      }
      const c = ioClient(t.url(nsp === '/' ? '' : nsp), { reconnection: false, forceNew: true, ...o });
      clients.add(c);
      return c;
    },
    async close() {
      for (const c of clients) c.disconnect();
      clients.clear();
      await new Promise((resolve) => io.close(() => resolve()));
      if (engine) await engine.close({ drainMs: 200 });
      else if (httpServer.listening) await new Promise((resolve) => httpServer.close(() => resolve()));
    },
  };
  return t;
}

module.exports = { IMPLS, IMPLS_ALL, startImpl, listenOn };
