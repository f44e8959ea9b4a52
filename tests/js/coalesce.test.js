'use strict';
// Coalesced writes (the Engine's writeDelayMs) and the JS heap's collection after a burst
// (gcAfterBurst), driven through the bindings with real ws clients.
const { Engine } = require('../../js/index.js');
const { startServer, open, messages, waitFor, sleep } = require('./helpers/ws');

jest.setTimeout(60000);

describe('writeDelayMs', () => {
  test('is a number of milliseconds from 0 to 1000', () => {
    for (const bad of [-1, 1001, Number.NaN, '1', Infinity]) {
      expect(() => new Engine({ global: false, logLevel: 'off', writeDelayMs: bad })).toThrow(/writeDelayMs is a number of milliseconds from 0 to 1000/);
    }
    expect(() => new Engine({ global: false, logLevel: 'off', gcAfterBurst: 'no' })).toThrow(/gcAfterBurst is true or false/);
    const e = new Engine({ global: false, logLevel: 'off', writeDelayMs: 0.5 });
    expect(e.options.writeDelayMs).toBe(0.5);
    return e.close({ drainMs: 10 });
  });

  test('SIDEWIRE_WRITE_DELAY_MS is the default', async () => {
    process.env.SIDEWIRE_WRITE_DELAY_MS = '2';
    try {
      const e = new Engine({ global: false, logLevel: 'off' });
      expect(e.options.writeDelayMs).toBe(2);
      await e.close({ drainMs: 10 });
    } finally {
      delete process.env.SIDEWIRE_WRITE_DELAY_MS;
    }
  });

  test('frames relayed within the delay reach every member in order, many to a write', async () => {
    const t = await startServer((engine) => engine.channel('/ws/c', { relay: true, roomQuery: 'room' }), { writeDelayMs: 30 });
    try {
      const sender = await open(t.url('/ws/c?room=r'));
      const receivers = await Promise.all([1, 2, 3].map(() => open(t.url('/ws/c?room=r'))));
      await waitFor(() => t.engine.getChannel('/ws/c').count('r') === 4);
      await sleep(100); // the 101s and anything else queued are out
      const before = t.engine.stats();
      const n = 50;
      const got = receivers.map((ws) => messages(ws, n, 5000));
      for (let i = 0; i < n; ++i) sender.send(`m${i}`);
      for (const list of await Promise.all(got)) expect(list.map(([m]) => m)).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
      const after = t.engine.stats();
      const delivered = after.messagesDelivered - before.messagesDelivered;
      const writes = after.writes - before.writes;
      expect(delivered).toBe(3 * n);
      // 50 messages to each of 3 receivers: without a delay up to 150 writes; held 30 ms, a few.
      expect(writes).toBeLessThanOrEqual(3 * 6);
      for (const ws of [sender, ...receivers]) ws.close();
    } finally {
      await t.close();
    }
  });
});

describe('gcAfterBurst', () => {
  async function burst(engineOptions) {
    const t = await startServer((engine) => engine.channel('/ws/b'), engineOptions);
    const clients = [];
    for (let i = 0; i < 1000; i += 100) {
      clients.push(...(await Promise.all(Array.from({ length: 100 }, () => open(t.url('/ws/b'), { perMessageDeflate: false })))));
    }
    for (const ws of clients) ws.close();
    await waitFor(() => t.engine.getChannel('/ws/b').count() === 0, 10000);
    return t;
  }

  test('the JS heap is collected once the engine is quiet after a burst of connections', async () => {
    const t = await burst({});
    try {
      await waitFor(() => t.engine.gcAfterBurstCount === 1, 10000);
      await sleep(1500); // once per burst: quiet goes on, nothing more
      expect(t.engine.gcAfterBurstCount).toBe(1);
      expect(typeof globalThis.gc).toBe('undefined'); // the collector was not exposed to the app
    } finally {
      await t.close();
    }
  });

  test('gcAfterBurst: false leaves the heap to V8', async () => {
    const t = await burst({ gcAfterBurst: false });
    try {
      await sleep(4000); // past the 2 s of quiet the trim waits for
      expect(t.engine.gcAfterBurstCount).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});
