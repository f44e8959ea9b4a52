'use strict';
// The official socket.io-msgpack-parser as `parser`, encoded and decoded in the engine; each test
// body runs against the `socket.io` package and against sidewire, with the same parser on the
// official client.
const parser = require('socket.io-msgpack-parser');
const notepack = require('notepack.io');
const { WebSocket } = require('ws');
const { IMPLS, startImpl } = require('./helpers/impls');
const { connected, connectError } = require('./helpers/sio');
const { waitFor } = require('./helpers/ws');

describe.each(IMPLS)('socket.io-msgpack-parser (%s)', (kind) => {
  let t;
  afterEach(async () => {
    if (t) await t.close();
    t = null;
  });

  test.each([['websocket'], ['polling']])('events, acks, binary and rooms over %s', async (transport) => {
    const received = [];
    t = await startImpl(kind, { parser }, (io) => {
      io.on('connection', (socket) => {
        socket.join('room');
        socket.on('echo', (...args) => {
          const ack = args.pop();
          received.push(args);
          ack(args);
        });
        socket.on('bcast', () => io.to('room').emit('news', { n: 1, list: [1.5, 'two', null, true] }, Buffer.from([9, 8])));
        socket.emit('welcome', 'hi', 42, { nested: { deep: [1, { x: 'y' }] } });
      });
    });
    const c = t.client({ parser, transports: [transport] });
    const welcome = new Promise((resolve) => c.on('welcome', (...a) => resolve(a)));
    await connected(c);
    expect(await welcome).toEqual(['hi', 42, { nested: { deep: [1, { x: 'y' }] } }]);
    const answer = await c.timeout(3000).emitWithAck('echo', 'a', 2, Buffer.from([1, 2, 3]), { b: Buffer.from('xyz') });
    expect(answer[0]).toBe('a');
    expect(answer[1]).toBe(2);
    expect(Buffer.from(answer[2])).toEqual(Buffer.from([1, 2, 3]));
    expect(Buffer.from(answer[3].b).toString()).toBe('xyz');
    expect(received).toHaveLength(1);
    expect(Buffer.isBuffer(received[0][2])).toBe(true);
    expect(received[0][2]).toEqual(Buffer.from([1, 2, 3]));
    const news = new Promise((resolve) => c.on('news', (...a) => resolve(a)));
    c.emit('bcast');
    const [obj, bin] = await news;
    expect(obj).toEqual({ n: 1, list: [1.5, 'two', null, true] });
    expect(Buffer.from(bin)).toEqual(Buffer.from([9, 8]));
  });

  test('namespaces, a middleware refusal with data, and a server disconnect', async () => {
    t = await startImpl(kind, { parser }, (io) => {
      io.of('/admin').use((socket, next) => {
        const err = new Error('not allowed');
        err.data = { code: 7 };
        next(socket.handshake.auth.token === 'ok' ? undefined : err);
      });
      io.of('/admin').on('connection', (socket) => {
        socket.on('bye', () => socket.disconnect());
      });
    });
    const refused = t.client('/admin', { parser, transports: ['websocket'] });
    const err = await connectError(refused);
    expect(err.message).toBe('not allowed');
    expect(err.data).toEqual({ code: 7 });
    const admin = t.client('/admin', { parser, transports: ['websocket'], auth: { token: 'ok' } });
    await connected(admin);
    const reason = new Promise((resolve) => admin.on('disconnect', resolve));
    admin.emit('bye');
    expect(await reason).toBe('io server disconnect');
  });

  test('a packet that is not MessagePack closes the connection with an error', async () => {
    const errors = [];
    const reasons = [];
    t = await startImpl(kind, { parser }, (io) => {
      io.on('connection', (socket) => {
        socket.on('error', (e) => errors.push(e.message));
        socket.on('disconnect', (r) => reasons.push(r));
      });
    });
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/socket.io/?EIO=4&transport=websocket`);
    const frames = [];
    ws.on('message', (d, isBinary) => frames.push(isBinary ? Buffer.from(d) : d.toString()));
    await waitFor(() => frames.length === 1, 3000);
    ws.send(notepack.encode({ type: 0, nsp: '/' })); // CONNECT, as the client's parser writes it
    await waitFor(() => frames.length === 2, 3000);
    const ack = notepack.decode(frames[1]);
    expect(ack).toMatchObject({ type: 0, nsp: '/', data: { sid: expect.any(String) } });
    ws.send(notepack.encode({ type: 2, nsp: '/', data: { not: 'an array' } }));
    await waitFor(() => reasons.length === 1, 3000);
    expect(errors).toEqual(['invalid payload']);
    expect(reasons).toEqual(['forced close']);
    ws.close();
  });
});
