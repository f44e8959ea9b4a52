'use strict';
// A private PM2 daemon's end (PM2_HOME of a test's own): every app deleted, the daemon killed,
// and waited for, since `pm2 kill` returns while it is still exiting (SIGKILL should it linger),
// then its home removed. `pm2(args)` runs the pm2 CLI with that PM2_HOME.
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { waitFor } = require('./ws');
const { root } = require('./server-process');

const PM2_BIN = path.join(root, 'node_modules', 'pm2', 'bin', 'pm2');

// The pm2 CLI in the repository with the environment `envOf()` gives at each call (the test sets
// PM2_HOME and the app's variables in beforeAll), and its `jlist` parsed.
function pm2Cli(envOf) {
  function pm2(args, timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [PM2_BIN, ...args], { cwd: root, env: envOf(), timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`pm2 ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolve(stdout);
      });
    });
  }
  async function jlist() {
    const out = await pm2(['jlist']);
    return JSON.parse(out.slice(out.indexOf('[')));
  }
  return { pm2, jlist };
}

async function stopPm2(pm2Home, pm2) {
  if (!pm2Home) return;
  let daemonPid = 0;
  try {
    daemonPid = Number(fs.readFileSync(path.join(pm2Home, 'pm2.pid'), 'utf8'));
  } catch {
    // never started
  }
  await pm2(['delete', 'all']).catch(() => {});
  await pm2(['kill']).catch(() => {});
  const alive = () => {
    try {
      process.kill(daemonPid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (daemonPid) {
    await waitFor(() => !alive(), 5000, 50).catch(() => process.kill(daemonPid, 'SIGKILL'));
  }
  fs.rmSync(pm2Home, { recursive: true, force: true });
}

module.exports = { stopPm2, pm2Cli };
