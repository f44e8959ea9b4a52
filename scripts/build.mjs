#!/usr/bin/env node
// Builds the engine with CMake.
//   node scripts/build.mjs            the addon, build/sidewire.node (Release), in the repository
//   node scripts/build.mjs --tests    also the GoogleTest suite (build/native_tests)
//   node scripts/build.mjs --install  `npx sidewire build`: a source build in an installed
//                                     package, for a platform without a prebuilt binary. It
//                                     builds in a temporary directory, links the system's shared
//                                     libraries, keeps only build/sidewire.node and removes the rest.
// Uses the headers of the Node running this script; nothing is downloaded.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { root, distroPackages, sourceBuildPath } = require('../js/platform.js');
const tests = process.argv.includes('--tests');
const install = process.argv.includes('--install');
const jobs = String(Math.max(1, cpus().length));
const build = install ? mkdtempSync(path.join(tmpdir(), 'sidewire-build-')) : path.join(root, 'build');

function say(msg) {
  console.log(`[sidewire build] ${msg}`);
}

function fail(msg) {
  console.error(`[sidewire build] ${msg}`);
  if (install) {
    console.error(`[sidewire build] a source build needs a C++20 compiler, CMake 3.20+, Boost 1.81+ headers, nlohmann-json, spdlog, fmt, OpenSSL 3 and zlib:\n  ${distroPackages.join('\n  ')}`);
    rmSync(build, { recursive: true, force: true });
  }
  process.exit(1);
}

function run(step, cmd, args) {
  if (install) say(step);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) fail(`cannot run ${cmd}: ${r.error.message}${r.error.code === 'ENOENT' ? ` (${cmd} is not installed)` : ''}`);
  if (r.status !== 0) fail(`${step} failed (${cmd} exited with ${r.status ?? r.signal})`);
}

const type = process.env.SIDEWIRE_BUILD_TYPE || 'Release';
run(`1/3 configuring in ${build}`, 'cmake', ['-S', root, '-B', build, `-DCMAKE_BUILD_TYPE=${type}`,
  `-DSIDEWIRE_BUILD_TESTS=${tests ? 'ON' : 'OFF'}`, ...(install ? ['-DSIDEWIRE_STATIC_DEPS=OFF'] : [])]);
run(`2/3 compiling with ${jobs} jobs (about a minute a core)`, 'cmake',
  ['--build', build, '--parallel', jobs, ...(tests ? [] : ['--target', 'sidewire_addon'])]);
const built = path.join(build, 'sidewire.node');
if (!existsSync(built)) fail(`${built} was not produced`);
if (install) {
  mkdirSync(path.dirname(sourceBuildPath), { recursive: true });
  copyFileSync(built, sourceBuildPath);
  rmSync(build, { recursive: true, force: true });
  say(`3/3 installed ${sourceBuildPath}; build files removed`);
}
