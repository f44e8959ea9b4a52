'use strict';
// Waiting in a Chromium page (playwright-core) for what a live update changes.
const LIVE_TIMEOUT = 10000;

function waitForText(page, selector, text, timeout = LIVE_TIMEOUT) {
  return page.waitForFunction(
    ([sel, want]) => document.querySelector(sel)?.textContent.trim() === want,
    [selector, text],
    { timeout, polling: 50 },
  );
}

function waitForAttr(page, selector, attr, value, timeout = LIVE_TIMEOUT) {
  return page.waitForFunction(
    ([sel, a, want]) => document.querySelector(sel)?.getAttribute(a) === want,
    [selector, attr, value],
    { timeout, polling: 50 },
  );
}

module.exports = { waitForText, waitForAttr, LIVE_TIMEOUT };
