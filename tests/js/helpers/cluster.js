'use strict';
// A fleet of Socket.IO nodes sharing one Redis, each a child process (tests/fixtures/cluster-node.js)
// of either implementation, plus the @socket.io/redis-emitter process (tests/fixtures/emitter.js).
// Every process and client started here is tracked: stopAll() (afterEach/afterAll) ends them,
// and the children also end themselves when this process goes (IPC disconnect).
const { fork } = require('node:child_process');
const path = require('node:path');
const { io: ioClient } = require('socket.io-client');
const { connected } = require('./sio');

const fixtures = path.resolve(__dirname, '..', '..', 'fixtures');
const NODE_FIXTURE = path.join(fixtures, 'cluster-node.js');
const EMITTER_FIXTURE = path.join(fixtures, 'emitter.js');

const READY_TIMEOUT_MS = 15000;
const CALL_TIMEOUT_MS = 8000;

const live = new Set(); // every forked process not yet stopped

process.on('exit', () => {
  for (const p of live) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Forks `script` with `env` and waits for its { ready: true, ... } (resolved with it) or its
 * { ready: false, error } / early exit (rejected with the error and its output): a fixture that
 * cannot start fails the test at once instead of hanging.
 */
async function forkFixture(script, env, label, readyTimeoutMs = READY_TIMEOUT_MS) {
  const child = fork(script, [], {
    serialization: 'advanced', // Buffers cross IPC as Buffers
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  // A send to a child that is exiting fails with EPIPE: reported through send()'s callback
  // (below) or here, never as an unhandled 'error' that fails the whole suite.
  child.on('error', () => {});
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const pending = new Map(); // id → { resolve, reject, timer }
  const serverEvents = []; // { event: 'server-side', ... } pushed by the child
  const eventWaiters = new Set();
  let nextId = 1;

  child.on('message', (msg) => {
    if (msg && msg.id !== undefined && pending.has(msg.id)) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`${label}: ${msg.error}`));
    } else if (msg && msg.event) {
      serverEvents.push(msg);
      for (const w of eventWaiters) w();
    }
  });
  exited.then(({ code, signal }) => {
    live.delete(proc);
    for (const [, p] of pending) {
      clearTimeout(p.timer);
      p.reject(new Error(`${label} exited (${code ?? signal}) with a call pending:\n${output}`));
    }
    pending.clear();
  });

  const proc = {
    child,
    label,
    exited,
    serverEvents,
    eventWaiters,
    output: () => output,
    /** Runs `op` in the child; rejects with its error, or after `timeoutMs` without an answer. */
    call(op, args = {}, timeoutMs = CALL_TIMEOUT_MS) {
      if (child.exitCode !== null || child.signalCode !== null || !child.connected) {
        return Promise.reject(new Error(`${label} is not running (op ${op}):\n${output}`));
      }
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${label}: op ${op} not answered in ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve, reject, timer });
        child.send({ id, op, ...args }, (err) => {
          if (!err || !pending.has(id)) return;
          pending.delete(id);
          clearTimeout(timer);
          reject(new Error(`${label}: op ${op} could not be sent (${err.code || err.message}):\n${output}`));
        });
      });
    },
    /** Asks the child to close, then waits for its exit (SIGKILL if it takes too long). */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        if (child.connected) child.send({ id: 0, op: 'close' }, (err) => err && child.kill('SIGKILL'));
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      live.delete(proc);
    },
  };
  live.add(proc);

  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} not ready in ${readyTimeoutMs} ms:\n${output}`));
    }, readyTimeoutMs);
    const onMessage = (msg) => {
      if (!msg || msg.ready === undefined) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      if (msg.ready) resolve(msg);
      else {
        child.kill('SIGKILL');
        reject(new Error(`${label} failed to start:\n${msg.error}\n${output}`));
      }
    };
    child.on('message', onMessage);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited before it was ready (${code ?? signal}):\n${output}`));
    });
  }).catch(async (err) => {
    await exited; // gone before the test goes on: nothing left behind
    live.delete(proc);
    throw err;
  });
  return { proc, ready };
}

/**
 * Starts one fleet node of `impl` ('socket.io' | 'sidewire'). `client`: 'url' | 'node-redis' |
 * 'ioredis' (the fixture's default: url for sidewire, node-redis for socket.io). Returns
 * { impl, name, port, url(nsp), call(op, args), client(nsp, opts), connect(nsp, opts),
 *   serverEvents, waitServerEvents(n), stop() }.
 */
async function startNode(
  impl,
  { redisUrl, client, key, name, requestsTimeout, specificResponse, attach, sharded, streams, streamMaxLen, streamCount, shardedPubSub, recovery, recoverySkip, readyTimeoutMs } = {},
) {
  const env = { IMPL: impl, REDIS_URL: redisUrl, NAME: name || impl };
  if (client) env.CLIENT = client;
  if (key) env.KEY = key;
  if (requestsTimeout) env.REQUESTS_TIMEOUT = String(requestsTimeout);
  if (specificResponse) env.SPECIFIC_RESPONSE = '1';
  if (attach) env.ATTACH = attach;
  if (sharded) env.SHARDED = sharded;
  if (streams) env.STREAMS = '1';
  if (streamMaxLen) env.STREAM_MAXLEN = String(streamMaxLen);
  if (streamCount) env.STREAM_COUNT = String(streamCount);
  if (shardedPubSub) env.SHARDED_PUBSUB = '1';
  if (recovery) env.RECOVERY = String(recovery);
  if (recoverySkip) env.RECOVERY_SKIP = '1';
  const label = `node ${env.NAME} (${impl}${client ? `, ${client}` : ''}${sharded ? `, sharded ${sharded}` : ''}${streams ? ', streams' : ''})`;
  const { proc, ready } = await forkFixture(NODE_FIXTURE, env, label, readyTimeoutMs);
  const clients = new Set();
  const node = {
    impl,
    name: env.NAME,
    port: ready.port,
    label,
    proc,
    serverEvents: proc.serverEvents,
    url: (nsp = '/') => `http://127.0.0.1:${ready.port}${nsp === '/' ? '' : nsp}`,
    call: (op, args, timeoutMs) => proc.call(op, args, timeoutMs),
    /** A socket.io-client socket, not yet connected: WebSocket only, no reconnection, own Manager. */
    client(nsp = '/', opts = {}) {
      const c = ioClient(node.url(nsp), { transports: ['websocket'], reconnection: false, forceNew: true, ...opts });
      clients.add(c);
      return c;
    },
    /** A connected client; `name` goes in the handshake auth (and becomes socket.data.name). */
    async connect(nsp = '/', { name: clientName, rooms, ...opts } = {}) {
      const c = node.client(nsp, { auth: { name: clientName }, ...opts });
      await connected(c, 5000);
      c.clientName = clientName;
      if (rooms && rooms.length) await ackOf(c, 'join', rooms);
      return c;
    },
    /** Resolves with the server-side events once `n` arrived since `from` (bounded). */
    async waitServerEvents(n, { from = 0, timeoutMs = 3000 } = {}) {
      return waitEvents(proc, n, from, timeoutMs);
    },
    disconnectClients() {
      for (const c of clients) c.disconnect();
      clients.clear();
    },
    async stop() {
      node.disconnectClients();
      await proc.stop();
    },
  };
  proc.node = node;
  return node;
}

function waitEvents(proc, n, from, timeoutMs) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      proc.eventWaiters.delete(check);
      resolve(proc.serverEvents.slice(from));
    };
    const check = () => {
      if (proc.serverEvents.length - from >= n) done();
    };
    // Resolves with what arrived even when short: the test's assertion says what is missing.
    const timer = setTimeout(done, timeoutMs);
    proc.eventWaiters.add(check);
    check();
  });
}

/**
 * Starts the @socket.io/redis-emitter process. Returns { call(op, args), stop() }; ops: emit,
 * socketsJoin, socketsLeave, disconnectSockets, serverSideEmit (see tests/fixtures/emitter.js).
 */
async function startEmitter({ redisUrl, key } = {}) {
  const env = { REDIS_URL: redisUrl };
  if (key) env.KEY = key;
  const { proc } = await forkFixture(EMITTER_FIXTURE, env, 'emitter');
  return {
    label: 'emitter',
    call: (op, args, timeoutMs) => proc.call(op, args, timeoutMs),
    stop: () => proc.stop(),
  };
}

/** Ends every node and emitter still running, with its clients. */
async function stopAll() {
  await Promise.all([...live].map((p) => (p.node ? p.node.stop() : p.stop())));
}

/** Emits `event` with an ack from a client and resolves with the answer (bounded). */
function ackOf(socket, event, ...args) {
  return socket.timeout(4000).emitWithAck(event, ...args);
}

/**
 * Records `event` on each client of `clients` ({ name: socket } or an array of sockets with a
 * clientName). Make it before the operation; then `settle(count)` waits until `count` events
 * arrived in all (at most `timeoutMs`), then `strayMs` more for events that should not come, and
 * resolves with { name: [args, ...] } for every client that got it. Listeners are removed then.
 */
function record(clients, event) {
  const entries = Array.isArray(clients) ? clients.map((c) => [c.clientName, c]) : Object.entries(clients);
  const got = {};
  let total = 0;
  let wake = null; // set while settle() waits
  const handlers = entries.map(([name, socket]) => {
    const h = (...args) => {
      (got[name] = got[name] || []).push(args);
      total++;
      if (wake) wake();
    };
    socket.on(event, h);
    return [socket, h];
  });
  return {
    got,
    async settle(count, { timeoutMs = 3000, strayMs = 300 } = {}) {
      await new Promise((resolve) => {
        if (total >= count) return resolve();
        const timer = setTimeout(finish, timeoutMs);
        function finish() {
          clearTimeout(timer);
          wake = null;
          resolve();
        }
        wake = () => {
          if (total >= count) finish();
        };
        return undefined;
      });
      await sleep(strayMs);
      for (const [socket, h] of handlers) socket.off(event, h);
      return got;
    },
  };
}

/** { name: [args, ...] } → { name: count }, for an exact-set-and-once assertion. */
function counts(got) {
  const out = {};
  for (const [name, list] of Object.entries(got)) out[name] = list.length;
  return out;
}

/** { a: 1, b: 1 } for each name: what "each of these exactly once, nobody else" looks like. */
function once(...names) {
  const out = {};
  for (const n of names.flat()) out[n] = 1;
  return out;
}

/**
 * Polls `fn` (async) every `intervalMs` until it returns a truthy value, at most `timeoutMs`;
 * resolves with that value or rejects with the last error / a timeout naming `what`.
 */
async function poll(fn, { timeoutMs = 10000, intervalMs = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      lastErr = null;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not reached in ${timeoutMs} ms${lastErr ? `: ${lastErr.message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Waits until every node counts the whole fleet on '/' and '/admin' (serverCount() is the
 * number of subscribers of the namespace's request channel), so a test never races a node's
 * subscriptions.
 */
async function fleetFormed(nodes, size = nodes.length, timeoutMs = 10000) {
  for (const nsp of ['/', '/admin']) {
    for (const node of nodes) {
      await poll(async () => (await node.call('serverCount', { nsp }, 2000)) === size, {
        timeoutMs,
        intervalMs: 100,
        what: `${node.label}: serverCount() of ${nsp} = ${size}`,
      });
    }
  }
}

module.exports = { startNode, startEmitter, stopAll, record, counts, once, ackOf, poll, fleetFormed, sleep };
