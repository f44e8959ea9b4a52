'use strict';
// Starts the real server.mjs (Next.js + engine) as a child process on a free loopback port.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..', '..');

// The ticket desk's session secret in tests (server.mjs: TICKETING_JWT_SECRET), so that a test
// signs its clients' tokens itself, as an identity provider would, instead of asking
// POST /api/session for each of thousands of connections.
const DESK_SECRET = 'the ticket desk secret of the tests';

/**
 * `auth` for a socket.io client of server.mjs's desk: a session token for `name` (none given:
 * 'test-agent'; undefined: a token without a name claim), and the name.
 */
function deskAuth(...args) {
  const name = args.length ? args[0] : 'test-agent';
  const { expiresIn = 900 } = args[1] || {};
  // Required here: only tests that talk to the desk need jsonwebtoken.
  const jwt = require('jsonwebtoken');
  const claims = name === undefined ? { sub: 'anonymous' } : { sub: name, name };
  return { token: jwt.sign(claims, DESK_SECRET, { algorithm: 'HS256', issuer: 'ticket-desk', expiresIn }), name };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startServerProcess(env = {}, { readyTimeoutMs = 90000, port: fixedPort, cwd = root, script = path.join(cwd, 'server.mjs'), ready = 'sidewire ready' } = {}) {
  // `port`: listen on this port (e.g. a restart on the port a browser page is connected to).
  // `cwd`/`script`/`ready`: another server (a fixture's), and the line that says it listens.
  const port = fixedPort ?? (await freePort());
  const child = spawn(process.execPath, [script], {
    cwd,
    env: { ...process.env, PORT: String(port), HOSTNAME: '127.0.0.1', NEXT_TELEMETRY_DISABLED: '1', TICKETING_JWT_SECRET: DESK_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server.mjs not ready in time:\n${stdout}\n${stderr}`)), readyTimeoutMs);
      const check = () => {
        if (stdout.includes(ready)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', check);
      exited.then(({ code }) => {
        clearTimeout(timer);
        reject(new Error(`server.mjs exited early (${code}):\n${stdout}\n${stderr}`));
      });
      check();
    });
  } catch (err) {
    child.kill('SIGKILL'); // never left running when it did not come up
    throw err;
  }
  return {
    port,
    child,
    exited,
    output: () => ({ stdout, stderr }),
    url: (p) => `http://127.0.0.1:${port}${p}`,
    wsUrl: (p) => `ws://127.0.0.1:${port}${p}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

/** Where the executable `cmd` is on `PATH` (a colon list), or null. */
function lookup(cmd, PATH = process.env.PATH || '') {
  for (const dir of PATH.split(':').filter(Boolean)) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

module.exports = { startServerProcess, freePort, root, lookup, deskAuth, DESK_SECRET };
