'use strict';
// The ticket-desk pages in headless Chromium (Debian's, driven by playwright-core) against the
// real server.mjs in production mode (`next build` first when the build is missing or stale):
// live comments in two pages, the viewers count, the list page, a screenshot, and the pages
// riding out a server restart. (Under `next dev` the HMR client reloads the page after a
// first compile and after a server restart, which would hide what the app itself does.)
//
// Page contract (data-testid): connection-status ("connected" | "disconnected"); on `/`:
// ticket-list > ticket-row[data-ticket-id] > ticket-status; on `/tickets/[id]`: ticket-title,
// ticket-status, comment-list > comment[data-comment-id] > comment-body, comment-author,
// comment-body-input, comment-submit, attachment-list > attachment, viewers[data-count].
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { waitForText, waitForAttr, LIVE_TIMEOUT } = require('./helpers/page');
const { startServerProcess } = require('./helpers/server-process');
const { ensureProductionBuild } = require('./helpers/next-build');
const { which } = require('./helpers/nginx');
const { createTicket, addComment } = require('./helpers/tickets');

const { CHROMIUM_ARGS } = require('./helpers/chromium');
const NAV_TIMEOUT = 30000;

const tid = (id) => `[data-testid="${id}"]`;


/** Waits until the comment with `id` shows `body`; resolves with its rendered body text. */
async function waitForComment(page, id, body, timeout = LIVE_TIMEOUT) {
  const sel = `${tid('comment-list')} ${tid('comment')}[data-comment-id="${id}"] ${tid('comment-body')}`;
  await waitForText(page, sel, body, timeout);
  return page.textContent(sel);
}

describe('ticket desk in headless Chromium', () => {
  let srv;
  let browser;
  let dataDir;
  let shotDir;
  const base = () => srv.url('');
  const serverEnv = () => ({ NODE_ENV: 'production', SIDEWIRE_DATA_DIR: dataDir, SIDEWIRE_DRAIN_MS: '500' });

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-browser-data-'));
    shotDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-browser-shots-'));
    await ensureProductionBuild({ env: { SIDEWIRE_DATA_DIR: dataDir } });
    srv = await startServerProcess(serverEnv());
    const executablePath = which('chromium') || '/usr/bin/chromium';
    // Playwright gives the browser a fresh temporary profile and removes it on close().
    browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
  }, 90000);

  afterAll(async () => {
    if (browser) await browser.close().catch(() => {});
    if (srv) await srv.stop();
    for (const dir of [dataDir, shotDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 30000);

  async function openPage(url) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(LIVE_TIMEOUT);
    await page.goto(url, { waitUntil: 'load', timeout: NAV_TIMEOUT });
    await waitForText(page, tid('connection-status'), 'connected', NAV_TIMEOUT);
    await page.evaluate(() => {
      // Marks this document: still there later means the page was never reloaded.
      window.__sidewireNoReload = true;
      // Every value connection-status takes from now on, however briefly.
      const read = () => document.querySelector('[data-testid="connection-status"]')?.textContent.trim();
      window.__statusLog = [read()];
      new MutationObserver(() => {
        const now = read();
        if (now !== window.__statusLog[window.__statusLog.length - 1]) window.__statusLog.push(now);
      }).observe(document.body, { childList: true, characterData: true, subtree: true });
    });
    return { context, page };
  }

  /** Waits until connection-status has shown `values` in this order (since openPage). */
  async function waitForStatusSequence(page, values, timeout) {
    try {
      await page.waitForFunction((want) => {
        let i = 0;
        for (const v of window.__statusLog) if (v === want[i]) i++;
        return i === want.length;
      }, values, { timeout, polling: 50 });
    } catch (err) {
      const log = await page.evaluate(() => window.__statusLog).catch(() => '(page gone)');
      throw new Error(`connection-status went ${JSON.stringify(log)}, expected ${JSON.stringify(values)}: ${err.message}`);
    }
  }

  const notReloaded = (page) => page.evaluate(() => window.__sidewireNoReload === true);

  test('two pages on one ticket: an API comment appears in both, viewers shows 2, screenshot', async () => {
    const ticket = await createTicket(base(), { title: 'Printer on fire', description: 'third floor' });
    const url = srv.url(`/tickets/${ticket.id}`);
    const a = await openPage(url);
    const b = await openPage(url);
    try {
      for (const { page } of [a, b]) {
        expect((await page.textContent(tid('ticket-title'))).trim()).toBe('Printer on fire');
        expect(await page.isVisible(tid('ticket-status'))).toBe(true);
        expect(await page.isVisible(tid('comment-list'))).toBe(true);
        expect(await page.isVisible(tid('comment-author'))).toBe(true);
        expect(await page.isVisible(tid('comment-body-input'))).toBe(true);
        expect(await page.isVisible(tid('comment-submit'))).toBe(true);
        expect(await page.$(tid('attachment-list'))).not.toBeNull();
        await waitForAttr(page, tid('viewers'), 'data-count', '2');
      }

      const comment = await addComment(base(), ticket.id, { author: 'api', body: 'Extinguisher on its way' });
      for (const { page } of [a, b]) {
        expect((await waitForComment(page, comment.id, 'Extinguisher on its way')).trim()).toBe('Extinguisher on its way');
        expect(await notReloaded(page)).toBe(true);
      }

      const shot = path.join(shotDir, 'ticket.png');
      await a.page.screenshot({ path: shot, fullPage: true });
      const png = fs.readFileSync(shot);
      expect(png.length).toBeGreaterThan(1000);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

      // one viewer leaves: the other page sees the count drop
      await b.context.close();
      await waitForAttr(a.page, tid('viewers'), 'data-count', '1');
    } finally {
      await a.context.close().catch(() => {});
      await b.context.close().catch(() => {});
    }
  }, 90000);

  test('the list page shows a ticket created through the API, live', async () => {
    const { context, page } = await openPage(srv.url('/'));
    try {
      expect(await page.$(tid('ticket-list'))).not.toBeNull();
      const ticket = await createTicket(base(), { title: 'VPN drops every hour', description: 'since Monday' });
      const row = `${tid('ticket-list')} ${tid('ticket-row')}[data-ticket-id="${ticket.id}"]`;
      await page.waitForSelector(row, { timeout: LIVE_TIMEOUT });
      expect(await page.textContent(row)).toMatch(/VPN drops every hour/);
      expect(await page.$(`${row} ${tid('ticket-status')}`)).not.toBeNull();
      expect(await notReloaded(page)).toBe(true);
    } finally {
      await context.close();
    }
  }, 90000);

  test('after a server restart the page shows disconnected, reconnects, and gets new comments', async () => {
    const ticket = await createTicket(base(), { title: 'Restart me', description: 'survives restarts' });
    const { context, page } = await openPage(srv.url(`/tickets/${ticket.id}`));
    try {
      const { port } = srv;
      const stopped = await srv.stop(); // SIGTERM: drain, exit 0
      srv = null;
      expect(stopped).toEqual({ code: 0, signal: null });
      await waitForStatusSequence(page, ['connected', 'disconnected'], LIVE_TIMEOUT);

      srv = await startServerProcess(serverEnv(), { port });
      // socket.io-client's reconnection backoff is at most 5 s by default
      await waitForStatusSequence(page, ['connected', 'disconnected', 'connected'], 20000);
      expect((await page.textContent(tid('connection-status'))).trim()).toBe('connected');
      expect(await notReloaded(page)).toBe(true);

      const comment = await addComment(base(), ticket.id, { author: 'api', body: 'Posted after the restart' });
      await waitForComment(page, comment.id, 'Posted after the restart');
      expect(await notReloaded(page)).toBe(true);
    } finally {
      await context.close();
    }
  }, 90000);
});
