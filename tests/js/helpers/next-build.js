'use strict';
// A production build of the example app (examples/ticketing/.next), made when it is missing or
// older than the app's sources: what `NODE_ENV=production node server.mjs` serves. Production
// pages load without `next dev`'s on-demand compiles and HMR reloads, and a production server
// does not take `next dev`'s lock on the app directory.
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { root } = require('./server-process');

const appDir = path.join(root, 'examples', 'ticketing');
const SKIP = new Set(['.next', 'node_modules', 'data']);

function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.isFile()) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

function buildIsCurrent() {
  let built;
  try {
    built = fs.statSync(path.join(appDir, '.next', 'BUILD_ID')).mtimeMs;
  } catch {
    return false;
  }
  const sources = Math.max(newestMtime(appDir), fs.statSync(path.join(root, 'package-lock.json')).mtimeMs);
  return built > sources;
}

/** Runs `next build examples/ticketing` unless the build is newer than every source file. */
function ensureProductionBuild({ timeoutMs = 180000, env = {} } = {}) {
  if (buildIsCurrent()) return Promise.resolve({ built: false });
  const nextBin = path.join(root, 'node_modules', 'next', 'dist', 'bin', 'next');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [nextBin, 'build', appDir], {
      cwd: root,
      env: { ...process.env, NODE_ENV: 'production', NEXT_TELEMETRY_DISABLED: '1', ...env },
      timeout: timeoutMs,
      maxBuffer: 32 << 20,
    }, (err, stdout, stderr) => {
      if (err) reject(new Error(`next build failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ built: true, stdout });
    });
  });
}

module.exports = { ensureProductionBuild, buildIsCurrent };
