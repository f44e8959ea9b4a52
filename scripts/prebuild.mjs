#!/usr/bin/env node
// The prebuilt addon the package ships (run by `npm pack` / `npm publish` as prepack):
// builds build/sidewire.node (node scripts/build.mjs: the self-contained link, see
// CMakeLists.txt), checks that it needs nothing but glibc from the system and only Node-API
// from the process, and writes it stripped to prebuilds/<platform>-<arch>/.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { prebuiltPath, sourceBuildPath } = require('../js/platform.js');
const { checkAddon } = require('./addon-check.cjs');
const here = path.dirname(fileURLToPath(import.meta.url));

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`sidewire prebuild: ${cmd} ${args.join(' ')} failed`);
    process.exit(1);
  }
}

if (process.platform !== 'linux') {
  console.error('sidewire prebuild: prebuilt binaries are made on Linux only');
  process.exit(1);
}
run(process.execPath, [path.join(here, 'build.mjs')]);
const out = prebuiltPath();
rmSync(path.dirname(path.dirname(out)), { recursive: true, force: true });
mkdirSync(path.dirname(out), { recursive: true });
copyFileSync(sourceBuildPath, out);
run('strip', ['--strip-unneeded', out]);
const problems = checkAddon(out);
if (problems.length) {
  console.error(`sidewire prebuild: ${out} is not self-contained:\n  ${problems.join('\n  ')}`);
  rmSync(out);
  process.exit(1);
}
console.log(`sidewire prebuild: ${path.relative(process.cwd(), out)} (${(statSync(out).size / 1048576).toFixed(1)} MB)`);
