'use strict';
// Test helpers for the Socket.IO server: an http.Server plus a sidewire Server on
// 127.0.0.1:0, real socket.io-client sockets, bounded waits.
const http = require('node:http');
const { io: ioClient } = require('socket.io-client');
const { Engine, Server } = require('../../../js/index.js');
const { sleep, waitFor } = require('./ws');

function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

/**
 * Starts an http.Server with a Server attached. `opts.ownEngine`: let the Server create (and
 * close) its engine; otherwise the helper makes one (global: false) and closes it.
 */
async function startIo(setup, opts = {}, { port = 0, ownEngine = false, engineOptions = {} } = {}) {
  const engine = ownEngine ? null : new Engine({ global: false, logLevel: 'error', drainMs: 200, ...engineOptions });
  const httpServer = http.createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not socket.io');
  });
  const io = new Server(httpServer, ownEngine ? opts : { engine, ...opts });
  if (setup) setup(io);
  const actualPort = await listen(httpServer, port);
  const clients = new Set();
  const t = {
    io,
    engine: io.sidewire,
    httpServer,
    port: actualPort,
    url: (nsp = '') => `http://127.0.0.1:${actualPort}${nsp}`,
    /** A socket.io-client socket (not yet connected). Defaults: WebSocket only, no reconnection, own Manager. */
    client(nsp = '/', clientOpts = {}) {
      const socket = ioClient(t.url(nsp), { transports: ['websocket'], reconnection: false, forceNew: true, ...clientOpts });
      clients.add(socket);
      return socket;
    },
    /** A connected client. */
    async connect(nsp = '/', clientOpts = {}) {
      const socket = t.client(nsp, clientOpts);
      await connected(socket);
      return socket;
    },
    async close() {
      for (const s of clients) s.disconnect();
      clients.clear();
      await io.close();
      if (!ownEngine) await engine.close({ drainMs: 200 });
      else if (!io.sidewire._closing) await io.sidewire.close({ drainMs: 200 });
    },
    forget(socket) {
      clients.delete(socket);
    },
  };
  return t;
}

function connected(socket, timeoutMs = 4000) {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve(socket);
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error('client did not connect in time'));
    }, timeoutMs);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      cleanup();
      reject(err);
    };
    function cleanup() {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    }
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
    return undefined;
  });
}

/** Resolves with the error of the next connect_error (rejects on connect or timeout). */
function connectError(socket, timeoutMs = 4000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connect_error in time')), timeoutMs);
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      resolve(err);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      reject(new Error('connected, expected connect_error'));
    });
  });
}

/** Resolves with the args of the next `event` on an emitter (client or server socket). */
function once(emitter, event, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`no '${event}' in ${timeoutMs} ms`));
    }, timeoutMs);
    function handler(...args) {
      clearTimeout(timer);
      resolve(args);
    }
    emitter.once(event, handler);
  });
}

/** Resolves true if `event` does not arrive within `ms`. */
function never(emitter, event, ms = 300) {
  return new Promise((resolve) => {
    const handler = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      resolve(true);
    }, ms);
    emitter.once(event, handler);
  });
}

/** The server-side Socket for a connected client socket. */
function serverSocket(nsp, clientSocket) {
  return waitFor(() => nsp.sockets.get(clientSocket.id), 2000);
}

module.exports = { startIo, listen, connected, connectError, once, never, serverSocket, sleep, waitFor, ioClient };
