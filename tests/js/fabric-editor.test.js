'use strict';
// The collaborative editor (/fabric: Y.js, y-websocket's client, CodeMirror) in headless
// Chromium against the real server.mjs in production mode: two pages type into one document
// and converge, a cursor moves in the other page (awareness), a page opened later with no one
// else online gets the whole text from the channel's history, and the document is still there
// after a server restart (saved in SQLite by the compact hook, loaded by the load hook).
//
// Page contract (data-testid): status ("connected" | "connecting" | "disconnected"), editors
// (how many editors awareness shows), editor (CodeMirror's host: .cm-content, and
// .cm-ySelectionCaret for another editor's cursor); window.__fabric.text() is the Y.Text.
const { waitForText, LIVE_TIMEOUT } = require('./helpers/page');
const { startAppWithBrowser } = require('./helpers/chromium');

const NAV_TIMEOUT = 30000;
const tid = (id) => `[data-testid="${id}"]`;

describe('fabric editor in headless Chromium', () => {
  let app;
  beforeAll(async () => {
    app = await startAppWithBrowser('fabric');
  }, 120000);
  afterAll(() => app && app.close(), 30000);

  // Each page in its own context: no shared storage, as two machines.
  async function openEditor(doc) {
    const context = await app.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(LIVE_TIMEOUT);
    await page.goto(app.srv.url(`/fabric?doc=${doc}`), { waitUntil: 'load', timeout: NAV_TIMEOUT });
    await waitForText(page, tid('status'), 'connected', NAV_TIMEOUT);
    return { context, page };
  }

  const text = (page) => page.evaluate(() => window.__fabric.text());
  // What CodeMirror shows, without the other editors' carets and name tags drawn among the text.
  const shown = (page) => page.$eval(`${tid('editor')} .cm-content`, (el) => {
    const copy = el.cloneNode(true);
    for (const caret of copy.querySelectorAll('.cm-ySelectionCaret')) caret.remove();
    return [...copy.querySelectorAll('.cm-line')].map((line) => line.textContent).join('\n');
  });

  async function typeAt(page, key, s) {
    await page.click(`${tid('editor')} .cm-content`);
    await page.keyboard.press(key);
    await page.keyboard.type(s, { delay: 5 });
  }
  const typeAtEnd = (page, s) => typeAt(page, 'Control+End', s);

  async function until(fn, what, timeout = LIVE_TIMEOUT) {
    const end = Date.now() + timeout;
    let last;
    for (;;) {
      last = await fn();
      if (last) return last;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  let lastSeen = null;
  test('two pages type into one document and converge; a cursor moves in the other page', async () => {
    const a = await openEditor('converge');
    const b = await openEditor('converge');
    await waitForText(a.page, tid('editors'), '2');
    await typeAtEnd(a.page, 'Hello from A. ');
    await until(async () => (await text(b.page)) === 'Hello from A. ', 'B to see A');
    // Both at once, A at the end and B at the start: each keystroke an update relayed by the
    // engine. (At one position the two words would interleave letter by letter, as Y.js merges.)
    await Promise.all([typeAtEnd(a.page, 'alpha '), typeAt(b.page, 'Control+Home', 'beta ')]);
    const converged = await until(async () => {
      const [ta, tb] = await Promise.all([text(a.page), text(b.page)]);
      lastSeen = [ta, tb];
      return ta === tb && ta.includes('alpha ') && ta.includes('beta ') ? ta : null;
    }, 'the two documents to converge').catch((err) => {
      throw new Error(`${err.message}: ${JSON.stringify(lastSeen)}`);
    });
    expect(converged).toBe('beta Hello from A. alpha ');
    expect(await shown(a.page)).toBe(converged);
    expect(await shown(b.page)).toBe(converged);

    // A's cursor, as B draws it: moves when A moves its caret.
    const caret = `${tid('editor')} .cm-ySelectionCaret`;
    await b.page.waitForSelector(caret);
    await a.page.keyboard.press('Control+End');
    await until(async () => (await b.page.$(caret)) !== null, "A's caret in B");
    const before = await b.page.$eval(caret, (el) => el.getBoundingClientRect().left);
    await a.page.keyboard.press('Control+Home');
    await until(async () => {
      const left = await b.page.$eval(caret, (el) => el.getBoundingClientRect().left).catch(() => null);
      return left !== null && left < before - 5;
    }, "A's caret to move in B");
    await a.context.close();
    await b.context.close();
  });

  test('a page opened later, with no one else online, gets the whole text from the history', async () => {
    const a = await openEditor('late');
    await typeAtEnd(a.page, 'Written before anyone else came.');
    await until(async () => (await text(a.page)) === 'Written before anyone else came.', 'A to hold its text');
    // Wait until the engine kept A's updates (the history of the room), then A leaves.
    await new Promise((r) => setTimeout(r, 300));
    await a.context.close();
    const c = await openEditor('late');
    await until(async () => (await text(c.page)) === 'Written before anyone else came.', 'C to get the text');
    expect(await shown(c.page)).toBe('Written before anyone else came.');
    await c.context.close();
  });

  test('after a server restart the document is still there', async () => {
    const a = await openEditor('survives');
    await typeAtEnd(a.page, 'Saved across a restart.');
    await until(async () => (await text(a.page)) === 'Saved across a restart.', 'A to hold its text');
    await new Promise((r) => setTimeout(r, 300));
    await a.context.close();
    const stopped = await app.restart(); // SIGTERM: the last editor's leave saved it; drain; exit
    expect(stopped.code).toBe(0);
    const b = await openEditor('survives');
    await until(async () => (await text(b.page)) === 'Saved across a restart.', 'the saved document after the restart');
    await b.context.close();
  });
});
