'use strict';
// sidewire/next end to end: startServer() serving a tiny Next.js app (tests/fixtures/next-mini,
// in development) in a child process: Next's HMR upgrade before any page request, a page,
// /health, a Socket.IO round trip, a channel declared in setup() whose authorize runs once per
// upgrade, and SIGTERM (drain, onShutdown, exit 0). Then `sidewire init` on copies of a
// create-next-app skeleton: the files it writes, that a second run changes nothing, that it
// never overwrites a server.mjs of the app's own without --force, and the rest of the command.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { io: ioClient } = require('socket.io-client');
const { freePort, root, startServerProcess } = require('./helpers/server-process');
const { open, messages, closed, rawExchange, upgradeRequest, sleep, waitFor, WebSocket } = require('./helpers/ws');

const fixtureDir = path.join(root, 'tests', 'fixtures', 'next-mini');
const cli = path.join(root, 'bin', 'sidewire.js');

function startMini(env = {}, { readyTimeoutMs = 90000 } = {}) {
  return startServerProcess(
    { NODE_ENV: 'development', SIDEWIRE_DRAIN_MS: '500', SIDEWIRE_LOG_LEVEL: 'warn', ...env },
    { readyTimeoutMs, cwd: fixtureDir, ready: 'handle port=' },
  );
}

describe('startServer (sidewire/next) with a tiny Next.js app', () => {
  let srv;
  beforeAll(async () => {
    srv = await startMini();
  }, 120000);
  afterAll(async () => {
    if (srv) await srv.stop();
  });

  // First: Next has served no request yet, so its own upgrade listener is not attached.
  test("Next's HMR WebSocket works before the first page request", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/_next/hmr`);
    const first = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no HMR message')), 20000);
      ws.once('message', (data) => {
        clearTimeout(timer);
        resolve(JSON.parse(String(data)));
      });
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => reject(new Error(`HMR upgrade answered ${res.statusCode}`)));
    });
    expect(typeof first.type).toBe('string');
    ws.close();
    await closed(ws);
  }, 30000);

  test('prints the ready lines, with the channel setup() declared', () => {
    const { stdout } = srv.output();
    expect(stdout).toMatch(/setup ran/);
    expect(stdout).toContain('> sidewire ready (development)');
    expect(stdout).toContain(`>   http://127.0.0.1:${srv.port}\n`);
    expect(stdout).toContain(`>   http://127.0.0.1:${srv.port}/socket.io/  (Socket.IO)`);
    expect(stdout).toContain(`>   ws://127.0.0.1:${srv.port}/ws/echo  (raw WebSocket channel)`);
    expect(stdout).toContain(`>   http://127.0.0.1:${srv.port}/health`);
    expect(stdout).toContain(`handle port=${srv.port} url=http://127.0.0.1:${srv.port} io=yes`);
  });

  test('/health answers as server.mjs always did', async () => {
    const res = await fetch(srv.url('/health'));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json();
    expect(body.status).toBe('ok');
    expect(body.uptime).toBeGreaterThan(0);
    expect(body.connections).toMatchObject({ websocket: expect.any(Number), socketio: { sessions: expect.any(Number), sockets: expect.any(Number) } });
    expect(body.connections.channels['/ws/echo']).toBeDefined();
    expect(body.socketio).toMatchObject({ sessions: expect.any(Number) });
    const head = await fetch(srv.url('/health'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  test('/ready is 200 once Next is prepared; /metrics is Prometheus text that promtool accepts', async () => {
    const ready = await fetch(srv.url('/ready'));
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', adapter: null });
    expect(srv.output().stdout).toContain(`>   http://127.0.0.1:${srv.port}/metrics`);
    // Some traffic first: a Socket.IO socket and a channel connection.
    const c = ioClient(srv.url(''), { transports: ['websocket'], reconnection: false, forceNew: true });
    await new Promise((resolve, reject) => {
      c.once('connect', resolve);
      c.once('connect_error', reject);
    });
    const ws = await open(`ws://127.0.0.1:${srv.port}/ws/echo?token=ok`);
    const res = await fetch(srv.url('/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^sidewire_socketio_sessions\{transport="websocket"\} 1$/m);
    expect(text).toMatch(/^sidewire_socketio_sockets\{namespace="\/"\} 1$/m);
    expect(text).toMatch(/^sidewire_channel_connections\{channel="\/ws\/echo"\} 1$/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
    c.disconnect();
    ws.close();
    await closed(ws);
  }, 30000);

  test('serves the Next.js page', async () => {
    const page = await fetch(srv.url('/'));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('next-mini: a page served through startServer');
  }, 60000);

  test('a Socket.IO round trip with socket.io-client (polling, then the upgrade)', async () => {
    const c = ioClient(srv.url('/'), { reconnection: false, forceNew: true });
    try {
      await new Promise((resolve, reject) => {
        c.once('connect', resolve);
        c.once('connect_error', reject);
      });
      const answer = await c.timeout(5000).emitWithAck('echo', { n: 42 });
      expect(answer).toEqual({ echo: { n: 42 }, id: c.id });
      await waitFor(() => c.io.engine.transport.name === 'websocket', 5000);
      expect(await c.timeout(5000).emitWithAck('echo', 'again')).toEqual({ echo: 'again', id: c.id });
    } finally {
      c.disconnect();
    }
  });

  test("the setup() channel: authorize runs once per upgrade, a refusal is answered and logged once", async () => {
    const before = (srv.output().stdout.match(/authorize #/g) || []).length;
    const refusedLogsBefore = (srv.output().stderr.match(/upgrade refused by authorize/g) || []).length;
    const reply = (await rawExchange(srv.port, upgradeRequest('/ws/echo'))).data.toString();
    expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 401 Unauthorized');
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    const ws = await open(`ws://127.0.0.1:${srv.port}/ws/echo?token=ok`);
    const got = messages(ws, 1);
    ws.send('hi');
    expect((await got)[0][0]).toBe('echo:hi');
    ws.close();
    await closed(ws);
    await sleep(200);
    const { stdout, stderr } = srv.output();
    expect((stdout.match(/authorize #/g) || []).length - before).toBe(2);
    expect((stderr.match(/upgrade refused by authorize/g) || []).length - refusedLogsBefore).toBe(1);
  });

  test('SIGTERM: clients get 1001, onShutdown runs, the process exits 0', async () => {
    const ws = await open(`ws://127.0.0.1:${srv.port}/ws/echo?token=ok`);
    const code = new Promise((resolve) => ws.once('close', (c) => resolve(c)));
    srv.child.kill('SIGTERM');
    expect(await code).toBe(1001);
    const exit = await srv.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    const { stdout } = srv.output();
    expect(stdout).toMatch(/SIGTERM received, shutting down \(drain 500 ms\)/);
    expect(stdout).toMatch(/onShutdown ran[\s\S]*bye/);
    srv = null;
  }, 30000);
});

describe('startServer without Socket.IO and with another health path', () => {
  test('socketio: false, health: /livez', async () => {
    const srv = await startMini({ MINI_NO_SOCKETIO: '1', MINI_HEALTH: '/livez' });
    try {
      expect(srv.output().stdout).toContain('io=no');
      expect(srv.output().stdout).not.toContain('(Socket.IO)');
      const live = await fetch(srv.url('/livez'));
      expect(live.status).toBe(200);
      const body = await live.json();
      expect(body.socketio).toBeNull();
      expect(body.connections.socketio).toEqual({ sessions: 0, sockets: 0 });
      // /socket.io/ is Next's now (its 404 page), not a Socket.IO handshake.
      const sio = await fetch(srv.url('/socket.io/?EIO=4&transport=polling'));
      expect(sio.status).toBe(404);
      await sio.text();
    } finally {
      const exit = await srv.stop();
      expect(exit.code).toBe(0);
    }
  }, 120000);
});

describe('startServer with JSON logs and an adapter whose Redis is away', () => {
  test("/ready is 503 while the adapter is not connected; the engine's lines are JSON with conn, address and reason", async () => {
    const redisPort = await freePort(); // nothing listens there
    const srv = await startMini({
      MINI_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      SIDEWIRE_LOG_FORMAT: 'json',
      SIDEWIRE_LOG_LEVEL: 'warn',
    });
    try {
      const ready = await fetch(srv.url('/ready'));
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'adapter_not_ready' });
      expect((await fetch(srv.url('/health'))).status).toBe(200); // alive all the same
      // A Socket.IO session that breaks the protocol: the engine's warning about it.
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`);
      await messages(ws, 1); // the open packet
      ws.send('x-not-a-packet');
      await closed(ws);
      await waitFor(() => /"kind":"session"/.test(srv.output().stderr), 5000);
      const lines = srv.output().stderr.split('\n').filter((l) => l.includes('"logger":"sidewire"'));
      const parsed = lines.map((l) => JSON.parse(l));
      const broken = parsed.find((l) => l.kind === 'session' && l.reason === 'parse error');
      expect(broken).toMatchObject({ level: 'warning', logger: 'sidewire', address: '127.0.0.1', conn: expect.any(Number) });
      expect(broken.msg).toMatch(/malformed packet over websocket/);
      expect(broken.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // startServer's own lines are JSON too.
      const own = srv.output().stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      expect(own.find((l) => /sidewire ready/.test(l.msg))).toMatchObject({ logger: 'sidewire/next', metrics: srv.url('/metrics') });
    } finally {
      const exit = await srv.stop();
      expect(exit.code).toBe(0);
    }
  }, 120000);
});

describe('startServer and the next package', () => {
  // A stand-in `next` in the app's own node_modules: startServer must load the app's next, pass
  // it the options, and give it the upgrades the engine leaves, before any request too.
  test("loads next from the app's directory first; hands Next the upgrades the engine leaves", () => {
    const app = skeleton({
      'node_modules/next/package.json': '{ "name": "next", "version": "0.0.0-fake", "main": "index.js" }\n',
      'node_modules/next/index.js': `
        module.exports = function next(options) {
          console.log('fake next got ' + JSON.stringify({ ...options, httpServer: typeof options.httpServer.on }));
          const upgrades = [];
          return {
            upgrades,
            prepare: async () => {},
            getRequestHandler: () => async (req, res) => res.end('fake next page ' + req.url),
            get upgradeHandler() {
              return async (req, socket) => {
                console.log('fake next upgrade ' + req.url);
                socket.end('HTTP/1.1 426 Upgrade Required\\r\\nContent-Length: 0\\r\\n\\r\\n');
              };
            },
            getUpgradeHandler: () => async () => {},
            close: async () => console.log('fake next closed'),
          };
        };`,
    });
    const script = `
      const net = require('node:net');
      const { startServer } = require(${JSON.stringify(path.join(root, 'js', 'next.js'))});
      (async () => {
        const h = await startServer({ dir: ${JSON.stringify(app)}, port: 0, hostname: '127.0.0.1', signals: false, logLevel: 'warn', nextOptions: { quiet: true } });
        const page = await (await fetch(h.url + '/x')).text();
        console.log('page: ' + page);
        const reply = await new Promise((resolve) => {
          const s = net.connect(h.port, '127.0.0.1', () => s.write('GET /_next/hmr HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'));
          let data = '';
          s.on('data', (d) => { data += d; });
          s.on('close', () => resolve(data));
        });
        console.log('reply: ' + reply.split('\\r\\n')[0]);
        console.log('upgrade listeners: ' + h.server.listenerCount('upgrade'));
        await h.close();
        console.log('closed');
      })().catch((err) => { console.log('failed: ' + err.stack); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: app, encoding: 'utf8', timeout: 30000, env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
    });
    expect(r.stdout).toContain('fake next got {"quiet":true,"dev":true,"dir":' + JSON.stringify(path.resolve(app)).slice(0, -1));
    expect(r.stdout).toContain('"hostname":"127.0.0.1","port":0,"httpServer":"function"}');
    expect(r.stdout).toContain('page: fake next page /x');
    expect(r.stdout).toContain('fake next upgrade /_next/hmr');
    expect(r.stdout).toContain('reply: HTTP/1.1 426 Upgrade Required');
    expect(r.stdout).toContain('upgrade listeners: 1');
    expect(r.stdout).toMatch(/fake next closed[\s\S]*closed/);
    expect(r.status).toBe(0);
  });

  test('without next anywhere it says how to install it', () => {
    // A copy of js/ outside the repository: no node_modules above it has next.
    const pkg = skeleton({});
    fs.cpSync(path.join(root, 'js'), path.join(pkg, 'js'), { recursive: true });
    const empty = skeleton({});
    const script = `require(${JSON.stringify(path.join(pkg, 'js', 'next.js'))}).startServer({ dir: ${JSON.stringify(empty)}, signals: false })
      .then(() => console.log('started?'), (err) => console.log(err.message));`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: empty, encoding: 'utf8', timeout: 20000, // The copy has no addon of its own: it loads the one of this build.
      env: { ...process.env, NODE_PATH: '', SIDEWIRE_ADDON: process.env.SIDEWIRE_ADDON || path.join(root, 'build', 'sidewire.node') } });
    expect(r.stdout).toMatch(/cannot find the 'next' package/);
    expect(r.stdout).toMatch(/npm install next react react-dom/);
  });
});

// ------------------------------------------------------------------------------- the CLI

const SKELETON = {
  'package.json': `${JSON.stringify({
    name: 'my-app',
    version: '0.1.0',
    private: true,
    scripts: { dev: 'next dev', build: 'next build', start: 'next start', lint: 'eslint' },
    dependencies: { next: '16.0.0', react: '19.2.0', 'react-dom': '19.2.0' },
    devDependencies: { typescript: '^5' },
  }, null, 2)}\n`,
  // create-next-app 16's default
  'next.config.ts': `import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  /* config options here */
};

export default nextConfig;
`,
  'app/page.tsx': 'export default function Home() {\n  return <main>hello</main>;\n}\n',
};

const tmpDirs = [];
function skeleton(files = SKELETON) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-init-'));
  tmpDirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}
function snapshot(dir) {
  const out = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = fs.readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}
function run(args, cwd) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 20000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
afterAll(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('npx sidewire init', () => {
  test('in a create-next-app skeleton: server.mjs, next.config.ts, the scripts, the next steps', () => {
    const dir = skeleton();
    const r = run(['init'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    const server = fs.readFileSync(path.join(dir, 'server.mjs'), 'utf8');
    expect(server).toBe(fs.readFileSync(path.join(root, 'bin', 'templates', 'server.mjs'), 'utf8'));
    expect(server.split('\n')[0]).toBe('// @ts-check');
    expect(server).toContain("import { startServer } from 'sidewire/next';");
    expect(server).toContain("io.on('connection'");
    expect(server.trim().split('\n').length).toBeLessThanOrEqual(14);
    expect(spawnSync(process.execPath, ['--check', path.join(dir, 'server.mjs')]).status).toBe(0);

    expect(fs.readFileSync(path.join(dir, 'next.config.ts'), 'utf8')).toBe(`import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  serverExternalPackages: ["sidewire"],
};

export default nextConfig;
`);

    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    expect(pkg.scripts).toEqual({
      dev: 'exec node server.mjs',
      build: 'next build',
      start: 'NODE_ENV=production exec node server.mjs',
      lint: 'eslint',
    });
    expect(Object.keys(pkg.scripts)).toEqual(['dev', 'build', 'start', 'lint']); // order kept
    expect(pkg.dependencies).toEqual({ next: '16.0.0', react: '19.2.0', 'react-dom': '19.2.0' });

    expect(r.stdout).toContain('server.mjs: written');
    expect(r.stdout).toContain("next.config.ts: added 'sidewire' to serverExternalPackages");
    expect(r.stdout).toContain('replaced scripts.dev "next dev" -> "exec node server.mjs"');
    expect(r.stdout).toContain('replaced scripts.start "next start" -> "NODE_ENV=production exec node server.mjs"');
    expect(r.stdout).toContain('npm install sidewire');
    expect(r.stdout).toContain('npm run dev');
    expect(r.stdout).toContain('getServer()');
    expect(r.stdout).toContain('serverExternalPackages');
    expect(r.stdout).toContain('https://github.com/sidewire/sidewire#readme');
  });

  test('is idempotent: a second run changes nothing', () => {
    const dir = skeleton();
    expect(run(['init'], dir).code).toBe(0);
    const after = snapshot(dir);
    const again = run(['init'], dir);
    expect(again.code).toBe(0);
    expect(snapshot(dir)).toEqual(after);
    expect(again.stdout).toContain('server.mjs: up to date');
    expect(again.stdout).toContain("serverExternalPackages already has 'sidewire'");
    expect(again.stdout).toContain('package.json: scripts already set');
    expect(again.stdout).toContain('Nothing to change');
  });

  test("never overwrites the app's own server.mjs without --force, and changes nothing else then", () => {
    const dir = skeleton({ ...SKELETON, 'server.mjs': "console.log('mine');\n" });
    const before = snapshot(dir);
    const r = run(['init'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/server\.mjs already exists/);
    expect(r.stderr).toContain('npx sidewire init --force');
    expect(snapshot(dir)).toEqual(before);

    const forced = run(['init', '--force'], dir);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain('server.mjs: replaced');
    expect(fs.readFileSync(path.join(dir, 'server.mjs'), 'utf8')).toContain("from 'sidewire/next'");
  });

  test('without a next.config it writes next.config.mjs; an existing serverExternalPackages array gets sidewire added', () => {
    const bare = { ...SKELETON };
    delete bare['next.config.ts'];
    const dir = skeleton(bare);
    expect(run(['init'], dir).code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'next.config.mjs'), 'utf8')).toContain("serverExternalPackages: ['sidewire'],");

    const withArray = skeleton({
      ...bare,
      'next.config.mjs': "/** @type {import('next').NextConfig} */\nconst nextConfig = {\n  serverExternalPackages: ['better-sqlite3'],\n  reactStrictMode: true,\n};\n\nexport default nextConfig;\n",
    });
    expect(run(['init'], withArray).code).toBe(0);
    expect(fs.readFileSync(path.join(withArray, 'next.config.mjs'), 'utf8')).toContain("serverExternalPackages: ['sidewire', 'better-sqlite3'],\n  reactStrictMode: true,");

    const cjs = skeleton({ ...bare, 'next.config.cjs': 'module.exports = {\n  reactStrictMode: true,\n};\n' });
    expect(run(['init'], cjs).code).toBe(0);
    expect(fs.readFileSync(path.join(cjs, 'next.config.cjs'), 'utf8')).toBe("module.exports = {\n  serverExternalPackages: ['sidewire'],\n  reactStrictMode: true,\n};\n");
  });

  test('a next.config it cannot edit safely: the exact line to add, exit 1', () => {
    const bare = { ...SKELETON };
    delete bare['next.config.ts'];
    const config = 'module.exports = (phase) => ({ reactStrictMode: phase !== "x" });\n';
    const dir = skeleton({ ...bare, 'next.config.js': config });
    const r = run(['init'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("serverExternalPackages: ['sidewire'],");
    expect(r.stderr).toMatch(/cannot edit next\.config\.js safely/);
    expect(fs.readFileSync(path.join(dir, 'next.config.js'), 'utf8')).toBe(config);
  });

  test('outside an app (no package.json) it says where to run it', () => {
    const dir = skeleton({ 'README.md': 'x\n' });
    const r = run(['init'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no package\.json/);
    expect(fs.existsSync(path.join(dir, 'server.mjs'))).toBe(false);
  });
});

describe('the sidewire command', () => {
  test('--help, --version, an unknown command or argument', () => {
    const help = run(['--help'], os.tmpdir());
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: sidewire <command>/);
    expect(help.stdout).toMatch(/init \[--force\]/);
    expect(help.stdout).toMatch(/build/);
    const version = run(['--version'], os.tmpdir());
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(require('../../package.json').version);
    const unknown = run(['deploy'], os.tmpdir());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command deploy[\s\S]*Usage:/);
    expect(run([], os.tmpdir()).code).toBe(2);
    expect(run(['init', '--forse'], os.tmpdir()).code).toBe(2);
  });

  test('is executable, with a node shebang', () => {
    expect(fs.readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(fs.statSync(cli).mode & 0o111).not.toBe(0);
  });

  test('build runs scripts/build.mjs --install in the package and passes its exit code through', () => {
    // A stand-in package: the real build compiles the addon, which this test must not do.
    const pkgRoot = skeleton({
      'package.json': '{ "name": "sidewire", "version": "9.9.9" }\n',
      'scripts/build.mjs': "console.log('build args:', JSON.stringify(process.argv.slice(2)), 'cwd:', process.cwd());\nprocess.exit(3);\n",
    });
    fs.mkdirSync(path.join(pkgRoot, 'bin', 'templates'), { recursive: true });
    fs.copyFileSync(cli, path.join(pkgRoot, 'bin', 'sidewire.js'));
    const r = spawnSync(process.execPath, [path.join(pkgRoot, 'bin', 'sidewire.js'), 'build', '--verbose'], { cwd: os.tmpdir(), encoding: 'utf8', timeout: 20000 });
    expect(r.status).toBe(3);
    expect(r.stdout).toContain('build args: ["--install","--verbose"]');
    expect(r.stdout).toContain(`cwd: ${fs.realpathSync(pkgRoot)}`);
  });
});
