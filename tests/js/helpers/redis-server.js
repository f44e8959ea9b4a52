'use strict';
// A throwaway redis-server (Debian's, from PATH) on 127.0.0.1 for the cluster tests: no
// persistence, its own temporary directory, and SIGKILL/restart on the same port for the fault
// tests. Every server started here is killed when the process exits, even if a test forgot.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { freePort, lookup } = require('./server-process');

const READY_TIMEOUT_MS = 10000;
const live = new Set(); // { child, dir } of every server still running or not yet cleaned up

// Safety net: 'exit' handlers must be synchronous, so SIGKILL (no waiting) and rmSync.
process.on('exit', () => {
  for (const s of live) {
    if (s.child && s.child.exitCode === null && s.child.signalCode === null) {
      try {
        s.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      fs.rmSync(s.dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});

/** Resolves true if a redis-server answers PING with +PONG on 127.0.0.1:`port` within `ms`. */
function ping(port, ms = 500) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d;
      // A server still loading answers -LOADING: not ready yet.
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.once('error', () => done(false));
  });
}

function exitedPromise(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts redis-server on 127.0.0.1:`port` (a free one when not given). Resolves when it answers
 * PING, with { port, url, pid, running, stop(), kill(), restart() }: stop() is a clean SIGTERM
 * (the directory is removed), kill() a SIGKILL for fault tests (the directory stays, for
 * restart()), restart() starts it again on the same port.
 */
async function startRedis({ port } = {}) {
  const bin = lookup('redis-server') || '/usr/bin/redis-server';
  const actualPort = port ?? (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-redis-'));
  const entry = { child: null, dir };
  live.add(entry);
  let output = '';

  async function launch() {
    output = '';
    fs.mkdirSync(dir, { recursive: true }); // again after a stop()
    // --save "" and --appendonly no: nothing ever written; --dir: even so, not the cwd.
    const child = spawn(
      bin,
      ['--port', String(actualPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    entry.child = child;
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    let spawnError = null;
    child.once('error', (err) => { spawnError = err; });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`redis-server on port ${actualPort} exited early (${child.exitCode ?? child.signalCode}):\n${output}`);
      }
      if (spawnError) throw new Error(`cannot run ${bin}: ${spawnError.message}`);
      if (await ping(actualPort)) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL'); // never left running when it did not come up
        throw new Error(`redis-server on port ${actualPort} not ready in ${READY_TIMEOUT_MS} ms:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function signal(sig, timeoutMs) {
    const child = entry.child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exitedPromise(child);
    clearTimeout(timer);
  }

  try {
    await launch();
  } catch (err) {
    live.delete(entry);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    port: actualPort,
    url: `redis://127.0.0.1:${actualPort}`,
    get pid() {
      return entry.child && entry.child.pid;
    },
    get running() {
      return Boolean(entry.child && entry.child.exitCode === null && entry.child.signalCode === null);
    },
    output: () => output,
    async stop() {
      await signal('SIGTERM', 5000);
      live.delete(entry);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    /** SIGKILL: connections drop without a goodbye, as when the Redis host dies. */
    async kill() {
      await signal('SIGKILL', 5000);
    },
    /** Starts it again on the same port (stops it first if it still runs). */
    async restart() {
      await signal('SIGTERM', 5000);
      live.add(entry);
      await launch();
    },
  };
}

module.exports = { startRedis, ping };
