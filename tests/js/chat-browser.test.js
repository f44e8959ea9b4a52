'use strict';
// The staff chat (/chat) in headless Chromium against the real server.mjs in production mode,
// with three signed-in users, each in a browser context of its own: a message appears in the
// other's window; its receipt turns to read when the other opens the conversation; typing shows
// and clears by itself; presence goes offline when the last tab of a user closes; a user who
// was away gets the notification on sign-in; a reaction and a reply; and a call connects: two
// pages with Chromium's fake camera and microphone make a real RTCPeerConnection through the
// signalling the server relays.
const { waitForText, waitForAttr, LIVE_TIMEOUT } = require('./helpers/page');
const { startAppWithBrowser } = require('./helpers/chromium');

const NAV_TIMEOUT = 30000;
const tid = (id) => `[data-testid="${id}"]`;

// The first element of `selector` contains `text`.
function waitForIncludes(page, selector, text, timeout = LIVE_TIMEOUT) {
  return page.waitForFunction(
    ([sel, want]) => (document.querySelector(sel)?.textContent || '').includes(want),
    [selector, text],
    { timeout, polling: 50 },
  );
}

describe('staff chat in headless Chromium', () => {
  let app;
  beforeAll(async () => {
    // Chromium's fake camera and microphone, allowed without a prompt.
    app = await startAppWithBrowser('chat', { chromiumArgs: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] });
  }, 120000);
  afterAll(() => app && app.close(), 30000);

  async function signIn(name) {
    const context = await app.newContext({ permissions: ['camera', 'microphone'] });
    const page = await context.newPage();
    page.setDefaultTimeout(LIVE_TIMEOUT);
    await page.goto(app.srv.url('/chat'), { waitUntil: 'load', timeout: NAV_TIMEOUT });
    await page.fill(tid('chat-name'), name);
    await page.click(tid('chat-sign-in'));
    await waitForText(page, tid('chat-status'), 'connected', NAV_TIMEOUT);
    return { context, page, close: () => context.close() };
  }

  const user = (page, id) => `${tid('chat-user')}[data-user-id="${id}"]`;

  async function openDirect(page, otherId) {
    await page.locator(`${user(page, otherId)} ${tid('chat-open-direct')}`).click();
    await page.waitForSelector(tid('chat-input'));
  }

  async function openTeam(page) {
    await page.locator(tid('chat-conversation'), { hasText: 'Support team' }).first().click();
    await page.waitForSelector(tid('chat-input'));
  }

  async function say(page, text) {
    await page.fill(tid('chat-input'), text);
    await page.click(tid('chat-send'));
  }

  test('messages, read receipts, typing, reactions and replies between two users', async () => {
    const alice = await signIn('Alice');
    const bob = await signIn('Bob');
    await alice.page.reload();
    await waitForText(alice.page, tid('chat-status'), 'connected', NAV_TIMEOUT);
    await waitForAttr(alice.page, user(alice.page, 'bob'), 'data-status', 'online');
    await openDirect(alice.page, 'bob');

    // Bob is online but has not opened the conversation: delivered, not read.
    await say(alice.page, 'Hi Bob, can you take ticket 12?');
    await waitForText(alice.page, `${tid('chat-message')}:last-child ${tid('chat-body')}`, 'Hi Bob, can you take ticket 12?');
    await alice.page.waitForSelector(`${tid('chat-message')}[data-receipt="delivered"]`);
    // Bob sees the conversation with one unread, opens it: the receipt turns to read.
    await bob.page.waitForSelector(`${tid('chat-conversation')} ${tid('chat-unread')}`);
    await bob.page.locator(tid('chat-conversation'), { hasText: 'Alice' }).click();
    await waitForText(bob.page, `${tid('chat-message')} ${tid('chat-body')}`, 'Hi Bob, can you take ticket 12?');
    await alice.page.waitForSelector(`${tid('chat-message')}[data-receipt="read"]`);

    // Typing shows in Alice's window and clears by itself after a few seconds of silence.
    await bob.page.type(tid('chat-input'), 'On it', { delay: 20 });
    await waitForIncludes(alice.page, tid('chat-typing'), 'Bob typing');
    const typedAt = Date.now();
    await alice.page.waitForFunction(
      (sel) => document.querySelector(sel).textContent.trim() === '', tid('chat-typing'), { timeout: 10000 },
    );
    expect(Date.now() - typedAt).toBeGreaterThan(2000);

    // A reply and a reaction.
    await bob.page.locator(tid('chat-message')).last().locator(tid('chat-reply')).click();
    await bob.page.click(tid('chat-send'));
    await waitForText(alice.page, `${tid('chat-message')}:last-child ${tid('chat-reply-to')}`, 'Hi Bob, can you take ticket 12?');
    await waitForText(alice.page, `${tid('chat-message')}:last-child ${tid('chat-body')}`, 'On it');
    await alice.page.locator(tid('chat-message')).last().locator(`${tid('chat-react')}[data-emoji="👍"]`).click();
    await bob.page.waitForSelector(`${tid('chat-message')}:last-child ${tid('chat-reaction')}[data-emoji="👍"][data-count="1"]`);
    // One per emoji per user: a second click takes it back.
    await alice.page.locator(tid('chat-message')).last().locator(`${tid('chat-react')}[data-emoji="👍"]`).click();
    await bob.page.waitForFunction(
      (sel) => !document.querySelector(sel), `${tid('chat-message')}:last-child ${tid('chat-reaction')}`,
    );

    // Bob on a second device: closing one of the two leaves him online; closing the last, offline.
    const bobPhone = await signIn('Bob');
    await bob.close();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await alice.page.getAttribute(user(alice.page, 'bob'), 'data-status')).toBe('online');
    await bobPhone.close();
    await waitForAttr(alice.page, user(alice.page, 'bob'), 'data-status', 'offline');
    expect(await alice.page.textContent(user(alice.page, 'bob'))).toMatch(/last seen/);
    await alice.close();
  });

  test('a user who was offline gets the notification when signing in', async () => {
    const carol = await signIn('Carol');
    await carol.close();
    const dave = await signIn('Dave');
    await waitForAttr(dave.page, user(dave.page, 'carol'), 'data-status', 'offline');
    await openTeam(dave.page);
    await say(dave.page, 'Standup moved to 10:30');
    await dave.page.waitForSelector(`${tid('chat-message')}[data-message-id]:not([data-message-id=""])`);
    const back = await signIn('Carol');
    await waitForIncludes(back.page, tid('chat-notification'), 'Dave: Standup moved to 10:30');
    await back.page.locator(tid('chat-notification-read')).first().click();
    await back.page.waitForFunction((sel) => !document.querySelector(sel), tid('chat-notification'));
    await waitForText(back.page, `${tid('chat-message')}:last-child ${tid('chat-body')}`, 'Standup moved to 10:30');
    await back.close();
    await dave.close();
  });

  test('a call connects: a real RTCPeerConnection over the relayed offer, answer and ICE candidates', async () => {
    const erin = await signIn('Erin');
    const frank = await signIn('Frank');
    await erin.page.reload();
    await waitForText(erin.page, tid('chat-status'), 'connected', NAV_TIMEOUT);
    await waitForAttr(erin.page, user(erin.page, 'frank'), 'data-status', 'online');
    await openDirect(erin.page, 'frank');
    await erin.page.click(tid('chat-call'));
    await waitForIncludes(frank.page, tid('chat-incoming-call'), 'Erin is calling');
    await frank.page.click(tid('chat-answer'));
    await waitForText(erin.page, tid('chat-call-state'), 'connected', 20000);
    await waitForText(frank.page, tid('chat-call-state'), 'connected', 20000);
    // Media flows: the remote video has frames from the other side's fake camera.
    await frank.page.waitForFunction((sel) => document.querySelector(sel).videoWidth > 0, tid('chat-remote-video'), { timeout: 20000 });
    await erin.page.click(tid('chat-hangup'));
    await waitForText(frank.page, tid('chat-call-state'), 'ended');
    await erin.close();
    await frank.close();
  });
});
