'use strict';
// `scripts/sanitize.sh --only=jest-asan` loads this into every node process (NODE_OPTIONS=--require)
// to run the Jest suite against the ASan build of the addon with an unsanitized node.
//
// The ASan runtime must be the first library of a process that loads the addon, so node starts
// with LD_PRELOAD=libasan.so. But a program that is not node must not get it: ps (which pm2 runs
// to stop an app), curl and chromium hang at startup with libasan preloaded, and nginx or openssl
// have no business with it. So LD_PRELOAD is taken out of this process's environment (it has
// done its job: the runtime is loaded) and put back only into the environment of node children
// (spawned as process.execPath, or as `node`), whatever env the caller passed.
//
// Each process also notes in SIDEWIRE_ASAN_PROCS whether it had the runtime and, at exit, which
// addon it had loaded; sanitize.sh fails the run when a sanitized process loaded build/ instead of
// SIDEWIRE_ADDON (js/native.js falls back to it when the override does not load).
const runtime = process.env.SIDEWIRE_ASAN_RUNTIME;
if (runtime) {
  const fs = require('node:fs');
  const path = require('node:path');
  const childProcess = require('node:child_process');

  delete process.env.LD_PRELOAD;

  const nodeBinary = (() => {
    try {
      return fs.realpathSync(process.execPath);
    } catch {
      return process.execPath;
    }
  })();
  const isNode = (file) => {
    if (typeof file !== 'string') return false;
    if (/^node(js)?$/.test(path.basename(file))) return true;
    try {
      return fs.realpathSync(file) === nodeBinary;
    } catch {
      return false;
    }
  };
  const withPreload = (options) => {
    if (!options || !Array.isArray(options.envPairs)) return;
    const pairs = options.envPairs.filter((p) => !String(p).startsWith('LD_PRELOAD='));
    if (isNode(options.file)) pairs.push(`LD_PRELOAD=${runtime}`);
    options.envPairs = pairs;
  };
  // Every way of spawning ends in one of these two: ChildProcess#spawn (spawn, exec, execFile,
  // fork) and the spawn_sync binding (spawnSync, execSync, execFileSync).
  const asyncSpawn = childProcess.ChildProcess.prototype.spawn;
  childProcess.ChildProcess.prototype.spawn = function spawn(options) {
    withPreload(options);
    return asyncSpawn.call(this, options);
  };
  const spawnSync = process.binding('spawn_sync');
  const syncSpawn = spawnSync.spawn;
  spawnSync.spawn = function spawn(options) {
    withPreload(options);
    return syncSpawn.call(this, options);
  };

  const log = process.env.SIDEWIRE_ASAN_PROCS;
  if (log) {
    const maps = () => {
      try {
        return fs.readFileSync('/proc/self/maps', 'utf8');
      } catch {
        return '';
      }
    };
    const sanitized = /\/libasan\.so/.test(maps());
    const argv = process.argv.slice(1, 3).map((a) => path.relative(process.cwd(), a) || a);
    const note = (record) => {
      try {
        fs.appendFileSync(log, `${JSON.stringify({ pid: process.pid, sanitized, argv, ...record })}\n`);
      } catch {
        // the run is over (its directory removed): nothing to note
      }
    };
    note({ event: 'start' });
    process.on('exit', () => {
      const m = maps();
      const addon = process.env.SIDEWIRE_ADDON;
      note({
        event: 'exit',
        addon: Boolean(addon && m.includes(path.resolve(addon))),
        release: m.includes(path.join(__dirname, '..', 'build', 'sidewire.node')),
      });
    });
  }
}
