#!/usr/bin/env node
// Configures and builds the engine with CMake into ./build (Release).
//   node scripts/build.mjs           the addon (build/sidewire.node); run by `npm install`
//   node scripts/build.mjs --tests   also the GoogleTest suite (build/native_tests)
// Uses the headers of the Node running this script; nothing is downloaded.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const build = path.join(root, 'build');
const tests = process.argv.includes('--tests');
const jobs = String(Math.max(1, cpus().length));

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`sidewire build: cannot run ${cmd}: ${r.error.message}` +
      (r.error.code === 'ENOENT' ? ' (run `bash scripts/setup.sh` to install the build tools)' : ''));
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const type = process.env.SIDEWIRE_BUILD_TYPE || 'Release';
run('cmake', ['-S', root, '-B', build, `-DCMAKE_BUILD_TYPE=${type}`,
  `-DSIDEWIRE_BUILD_TESTS=${tests ? 'ON' : 'OFF'}`]);
run('cmake', ['--build', build, '--parallel', jobs, ...(tests ? [] : ['--target', 'sidewire_addon'])]);
if (!existsSync(path.join(build, 'sidewire.node'))) {
  console.error('sidewire build: build/sidewire.node was not produced');
  process.exit(1);
}
