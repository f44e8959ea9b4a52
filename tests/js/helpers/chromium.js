'use strict';
// Debian's Chromium, headless, driven by playwright-core, against the real server.mjs in
// production mode (`next build` first when the build is missing or stale) with a data
// directory of its own: what the browser suites share.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startServerProcess } = require('./server-process');
const { ensureProductionBuild } = require('./next-build');
const { which } = require('./nginx');

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync',
];

/** Playwright gives the browser a fresh temporary profile and removes it on close(). */
function launchChromium(extraArgs = []) {
  const executablePath = which('chromium') || '/usr/bin/chromium';
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: 30000 });
}

/**
 * server.mjs (production, SIDEWIRE_DRAIN_MS 500) on a fresh data directory, and a browser:
 * { srv, browser, dataDir, env, restart(), close() }. `srv` changes on restart() (same port).
 */
async function startAppWithBrowser(label, { chromiumArgs = [] } = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `sidewire-${label}-`));
  const env = { NODE_ENV: 'production', SIDEWIRE_DATA_DIR: dataDir, SIDEWIRE_DRAIN_MS: '500' };
  await ensureProductionBuild({ env: { SIDEWIRE_DATA_DIR: dataDir } });
  const t = { dataDir, env, srv: await startServerProcess(env), browser: null, contexts: [] };
  t.browser = await launchChromium(chromiumArgs);
  t.newContext = async (options) => {
    const context = await t.browser.newContext(options);
    t.contexts.push(context);
    return context;
  };
  t.restart = async () => {
    const { port } = t.srv;
    const stopped = await t.srv.stop();
    t.srv = await startServerProcess(env, { port });
    return stopped;
  };
  t.close = async () => {
    for (const c of t.contexts) await c.close().catch(() => {});
    if (t.browser) await t.browser.close().catch(() => {});
    if (t.srv) await t.srv.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  return t;
}

module.exports = { CHROMIUM_ARGS, launchChromium, startAppWithBrowser };
