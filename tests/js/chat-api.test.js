'use strict';
// The staff chat's Socket.IO API (/chat, examples/ticketing/chat.mjs) against the real
// server.mjs with socket.io-client: the token the engine checks, what a bad event is answered,
// optimistic sending, the per-user presence of a conversation, the typing limit in the engine.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { io: ioClient } = require('socket.io-client');
const { startServerProcess, deskAuth } = require('./helpers/server-process');
const { ensureProductionBuild } = require('./helpers/next-build');

describe('staff chat API', () => {
  let srv;
  let dataDir;
  const sockets = [];

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidewire-chat-api-'));
    await ensureProductionBuild({ env: { SIDEWIRE_DATA_DIR: dataDir } });
    srv = await startServerProcess({ NODE_ENV: 'production', SIDEWIRE_DATA_DIR: dataDir, SIDEWIRE_DRAIN_MS: '300' });
  }, 120000);

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    if (srv) await srv.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function session(name) {
    const res = await fetch(srv.url('/api/chat/session'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    return { status: res.status, body: await res.json() };
  }

  function connect(auth) {
    const s = ioClient(srv.url('/chat'), { auth, transports: ['websocket'], reconnection: false, forceNew: true });
    sockets.push(s);
    return new Promise((resolve, reject) => {
      s.once('connect', () => resolve(s));
      s.once('connect_error', (err) => reject(err));
    });
  }

  async function signedIn(name) {
    const { body } = await session(name);
    return { socket: await connect({ token: body.token }), user: body.user };
  }

  test('sign-in needs a name; /chat takes only its own tokens', async () => {
    expect((await session('')).status).toBe(400);
    await expect(connect({})).rejects.toMatchObject({ message: 'unauthorized', data: { reason: 'missing' } });
    // The desk's token (another issuer) does not open the chat.
    await expect(connect(deskAuth('Mallory'))).rejects.toMatchObject({ message: 'unauthorized', data: { reason: 'invalid' } });
  });

  test('a message is stored and sent with the sender’s temp id; bad ones are answered with an error', async () => {
    const a = await signedIn('Gina');
    const b = await signedIn('Hank');
    const { conversation } = await a.socket.emitWithAck('chat:open-direct', b.user.id);
    // Hank's device joined the new conversation's room on the server's word.
    await new Promise((r) => setTimeout(r, 200));
    const heard = new Promise((resolve) => b.socket.once('message:new', resolve));
    const ack = await a.socket.emitWithAck('message:new', { conversationId: conversation.id, body: ' hello ', tempId: 'tmp-1' });
    expect(ack).toMatchObject({ ok: true, tempId: 'tmp-1', message: { body: 'hello', senderId: a.user.id, conversationId: conversation.id } });
    expect(await heard).toMatchObject({ tempId: 'tmp-1', message: { id: ack.message.id } });
    // It is there after a reload.
    const joined = await b.socket.emitWithAck('chat:join', conversation.id);
    expect(joined.messages.map((m) => m.body)).toEqual(['hello']);

    const bad = [
      ['message:new', { conversationId: conversation.id, body: '' }, /1 to 4000 characters/],
      ['message:new', { conversationId: conversation.id, body: 'x'.repeat(4001) }, /1 to 4000 characters/],
      ['message:new', { conversationId: 999999, body: 'hi' }, /not a member/],
      ['message:new', { conversationId: conversation.id, body: 'hi', replyTo: 999999 }, /replied to/],
      ['message:read', { conversationId: conversation.id, messageId: 999999 }, /no such message/],
      ['reaction:new', { messageId: ack.message.id, emoji: '' }, /emoji/],
      ['presence:update', { status: 'asleep' }, /status is/],
      ['chat:join', 'abc', /invalid conversation id/],
      ['chat:leave', conversation.id, /cannot be left/],
      ['call:answer', { callId: 'nope', answer: { sdp: '' } }, /no such call/],
    ];
    for (const [event, payload, error] of bad) {
      const r = await a.socket.emitWithAck(event, payload);
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(error);
    }
    // A third user is not in their direct conversation.
    const c = await signedIn('Ivy');
    expect(await c.socket.emitWithAck('chat:join', conversation.id)).toEqual({ ok: false, error: 'not a member of this conversation' });
    // The sockets still work.
    expect((await a.socket.emitWithAck('chat:list')).ok).toBe(true);
  });

  test("a conversation's active members are its users, once each, whatever their devices", async () => {
    const a = await signedIn('Jack');
    const phone = await connect({ token: (await session('Jack')).body.token });
    const b = await signedIn('Kim');
    const { conversation } = await a.socket.emitWithAck('chat:open-direct', b.user.id);
    await new Promise((r) => setTimeout(r, 200));
    const { members } = await phone.emitWithAck('chat:get-active-members', conversation.id);
    expect(members.sort((x, y) => x.user.localeCompare(y.user))).toEqual([
      { user: 'jack', sockets: 2 },
      { user: 'kim', sockets: 1 },
    ]);
  });

  test('typing is rate-limited in the engine: a flood is answered with an error event and dropped', async () => {
    const a = await signedIn('Lena');
    const b = await signedIn('Max');
    const { conversation } = await a.socket.emitWithAck('chat:open-direct', b.user.id);
    await new Promise((r) => setTimeout(r, 200));
    const limited = new Promise((resolve) => a.socket.once('error', resolve));
    for (let i = 0; i < 20; i++) a.socket.emit('message:typing', { conversationId: conversation.id });
    expect(await limited).toMatchObject({ message: 'rate limited', data: { event: 'message:typing' } });
    // Messages go on.
    expect((await a.socket.emitWithAck('message:new', { conversationId: conversation.id, body: 'still here' })).ok).toBe(true);
  });
});
