'use strict';
// A private PM2 daemon's end (PM2_HOME of a test's own): every app deleted, the daemon killed,
// and waited for, since `pm2 kill` returns while it is still exiting (SIGKILL should it linger),
// then its home removed. `pm2(args)` runs the pm2 CLI with that PM2_HOME.
const fs = require('node:fs');
const path = require('node:path');
const { waitFor } = require('./ws');

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

module.exports = { stopPm2 };
