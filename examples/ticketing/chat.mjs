// The staff chat's Socket.IO handlers (namespace /chat), installed by server.mjs; the page is
// app/chat, the data lib/chat-db.js. A socket is a signed-in user's device: POST
// /api/chat/session signs a token (sub: the user id), the engine verifies it at CONNECT
// (auth.namespaces['/chat'] in server.mjs) and joins the socket to `user:<id>`, so
// `nsp.to(userRoom(id))` reaches every device of that user on every node.
//
// Rooms: user:<id> (the engine's), conversation:<id> (every device of every member),
// presence:<id> (who subscribed to that user's status).
//
// Client → server (an ack callback last, answered { ok: true, ... } or { ok: false, error }):
//   chat:list                          → { conversations, users, notifications }
//   chat:open-direct userId            → { conversation }     (made once per pair)
//   chat:join conversationId           → { conversation, messages, members, reactions }  (a group: joins it)
//   chat:leave conversationId          (leaves a group)
//   chat:get-active-members conversationId → { members: [{ user, sockets }] }  (the engine's presence)
//   message:new { conversationId, body, tempId, replyTo } → { message, tempId }  (stored, then sent)
//   message:delivered / message:read { conversationId, messageId }
//   message:typing / message:stop-typing { conversationId }   (a typing stops by itself after 4 s)
//   presence:update { status: 'online' | 'away' | 'busy' }
//   presence:subscribe { userIds }     → { statuses }
//   reaction:new / reaction:remove { messageId, emoji }
//   notification:read id
//   call:initiate { to, offer }        → { callId }
//   call:answer { callId, answer }, call:reject { callId }, call:end { callId },
//   call:ice-candidate { callId, candidate }
// Server → client: message:new { message, tempId }, message:delivered / message:read
// { conversationId, userId, messageId }, message:typing / message:stop-typing { conversationId,
// userId, name }, presence:update { userId, status, lastSeen }, chat:conversation
// { conversation }, chat:active-members { conversationId, members }, reaction:new /
// reaction:remove { conversationId, messageId, userId, emoji }, notification:new
// { id, kind, payload, createdAt }, and the call events with { callId, from, name, offer |
// answer | candidate | reason }.
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { splitAck } from './realtime.mjs';

const require = createRequire(import.meta.url);
const chat = require('./lib/chat-db.js');

export const CHAT_NAMESPACE = '/chat';
export const userRoom = (id) => `user:${id}`;
export const conversationRoom = (id) => `conversation:${id}`;
export const presenceRoom = (id) => `presence:${id}`;
const CONVERSATION_ROOM_RE = /^conversation:([1-9][0-9]*)$/;
export const TYPING_TIMEOUT_MS = 4000;
const MAX_BODY = 4000;
const STATUSES = new Set(['online', 'away', 'busy']);

/** The events' rates, for the Server's limits (server.mjs): per socket, in the engine. */
export const CHAT_LIMITS = {
  'message:new': { points: 30, perSeconds: 10 },
  'message:typing': { points: 5, perSeconds: 2 },
  'message:stop-typing': { points: 5, perSeconds: 2 },
  'message:delivered': { points: 100, perSeconds: 10 },
  'message:read': { points: 100, perSeconds: 10 },
  'reaction:new': { points: 20, perSeconds: 10 },
  'reaction:remove': { points: 20, perSeconds: 10 },
  'call:ice-candidate': { points: 200, perSeconds: 10 },
};

const positive = (v) => (Number.isSafeInteger(v) && v > 0 ? v : typeof v === 'string' && /^[1-9][0-9]{0,15}$/.test(v) ? Number(v) : null);

export function attachChat(io, { log = console } = {}) {
  const nsp = io.of(CHAT_NAMESPACE);
  const typing = new Map(); // `${conversationId}\n${userId}` → timer
  const calls = new Map(); // callId → { from, to, state, callerSocket, calleeSocket }

  // Presence from the engine: a user is online from its first device to its last, on any node.
  nsp.presence.on('join', (room, user) => {
    if (room === userRoom(user)) setStatus(user, 'online');
    else if (CONVERSATION_ROOM_RE.test(room)) activeMembersChanged(room);
  });
  nsp.presence.on('leave', (room, user) => {
    if (room === userRoom(user)) setStatus(user, 'offline');
    else if (CONVERSATION_ROOM_RE.test(room)) activeMembersChanged(room);
  });

  function setStatus(userId, status) {
    if (!chat.getUser(userId)) return;
    const lastSeen = new Date().toISOString();
    chat.setStatus(userId, status, lastSeen);
    nsp.to(presenceRoom(userId)).emit('presence:update', { userId, status, lastSeen });
  }

  async function activeMembersChanged(room) {
    const conversationId = Number(CONVERSATION_ROOM_RE.exec(room)[1]);
    const members = await nsp.presence.users(room).catch(() => nsp.presence.local(room));
    nsp.to(room).emit('chat:active-members', { conversationId, members });
  }

  function stopTyping(conversationId, userId, name) {
    const key = `${conversationId}\n${userId}`;
    const timer = typing.get(key);
    if (!timer) return;
    clearTimeout(timer);
    typing.delete(key);
    nsp.to(conversationRoom(conversationId)).emit('message:stop-typing', { conversationId, userId, name });
  }

  // The other side of a call for a socket of `userId`: the device that took part, else every device.
  function otherSide(call, userId) {
    if (userId === call.from) return call.calleeSocket || userRoom(call.to);
    return call.callerSocket;
  }

  function endCall(callId, reason, byUser) {
    const call = calls.get(callId);
    if (!call) return;
    calls.delete(callId);
    call.state = 'ended';
    const payload = { callId, reason, by: byUser };
    nsp.to(userRoom(call.from)).to(userRoom(call.to)).emit('call:end', payload);
  }

  nsp.on('connection', (socket) => {
    const claims = socket.data.user || {};
    const me = String(claims.sub);
    const myName = typeof claims.name === 'string' ? claims.name : me;
    const user = chat.getUser(me);
    if (!user) {
      socket.emit('chat:error', { error: 'unknown user: sign in again' });
      socket.disconnect(true);
      return;
    }
    // Every conversation of the user: its messages reach each device as they are sent.
    socket.join(chat.conversationsOf(me).map((c) => conversationRoom(c.id)));
    // What came while the user was away.
    for (const n of chat.takeUndelivered(me)) socket.emit('notification:new', n);

    const member = (conversationId) => conversationId !== null && chat.isMember(conversationId, me);
    const on = (event, handler) =>
      socket.on(event, async (...raw) => {
        const [args, reply] = splitAck(raw);
        try {
          const answer = await handler(...args);
          reply(answer === undefined ? { ok: true } : { ok: true, ...answer });
        } catch (err) {
          if (!err.expose) log.error(`chat: ${event} from ${me} failed: ${err.stack}`);
          reply({ ok: false, error: err.expose ? err.message : 'internal error' });
        }
      });
    const refuse = (message) => Object.assign(new Error(message), { expose: true });
    const need = (ok, message) => {
      if (!ok) throw refuse(message);
    };

    on('chat:list', () => ({
      conversations: chat.conversationsOf(me).map((c) => ({ ...c, members: chat.members(c.id) })),
      users: chat.listUsers(),
      notifications: chat.unreadNotifications(me),
    }));

    on('chat:open-direct', (userId) => {
      need(typeof userId === 'string' && chat.getUser(userId) && userId !== me, 'no such user');
      const { id, created } = chat.openDirect(me, userId);
      const conversation = { id, kind: 'direct', title: '', unread: 0, members: chat.members(id) };
      if (created) {
        // Both users' devices, on every node, join it and hear of it.
        nsp.in(userRoom(me)).socketsJoin(conversationRoom(id));
        nsp.in(userRoom(userId)).socketsJoin(conversationRoom(id));
        nsp.to(userRoom(me)).to(userRoom(userId)).emit('chat:conversation', { conversation });
      }
      return { conversation };
    });

    on('chat:join', (rawId) => {
      const conversationId = positive(rawId);
      need(conversationId !== null, 'invalid conversation id');
      const existing = chat.conversationsOf(me).find((c) => c.id === conversationId);
      if (!existing) {
        // Groups are open to the staff; a direct conversation is its two users'.
        const found = chat.getConversation(conversationId);
        need(found, 'no such conversation');
        need(found.kind === 'group', 'not a member of this conversation');
        chat.addMember(conversationId, me);
        nsp.in(userRoom(me)).socketsJoin(conversationRoom(conversationId));
      }
      const conversation = chat.conversationsOf(me).find((c) => c.id === conversationId);
      return {
        conversation,
        messages: chat.recentMessages(conversationId),
        members: chat.members(conversationId),
        reactions: chat.reactionsOf(conversationId),
      };
    });

    on('chat:leave', (rawId) => {
      const conversationId = positive(rawId);
      need(member(conversationId), 'not a member of this conversation');
      const c = chat.conversationsOf(me).find((x) => x.id === conversationId);
      need(c.kind === 'group', 'a direct conversation cannot be left');
      chat.removeMember(conversationId, me);
      nsp.in(userRoom(me)).socketsLeave(conversationRoom(conversationId));
    });

    on('chat:get-active-members', async (rawId) => {
      const conversationId = positive(rawId);
      need(member(conversationId), 'not a member of this conversation');
      return { members: await nsp.presence.users(conversationRoom(conversationId)) };
    });

    on('message:new', async (m) => {
      const conversationId = positive(m && m.conversationId);
      need(member(conversationId), 'not a member of this conversation');
      const body = typeof m.body === 'string' ? m.body.trim() : '';
      need(body.length > 0 && body.length <= MAX_BODY, `a message is 1 to ${MAX_BODY} characters`);
      let replyTo = null;
      if (m.replyTo !== undefined && m.replyTo !== null) {
        replyTo = positive(m.replyTo);
        const original = replyTo && chat.getMessage(replyTo);
        need(original && original.conversationId === conversationId, 'the message replied to is not in this conversation');
      }
      const tempId = typeof m.tempId === 'string' ? m.tempId.slice(0, 64) : null;
      // Stored first: what the room hears is what a reload shows.
      const message = chat.addMessage(conversationId, me, body, replyTo);
      stopTyping(conversationId, me, myName);
      nsp.to(conversationRoom(conversationId)).emit('message:new', { message, tempId });
      // Members with no device online get a notification when they next sign in.
      for (const other of chat.members(conversationId)) {
        if (other.id === me) continue;
        const online = (await nsp.presence.users(userRoom(other.id)).catch(() => [])).length > 0;
        if (!online) {
          chat.queueNotification(other.id, 'message', {
            conversationId, messageId: message.id, from: me, name: myName, preview: body.slice(0, 140),
          });
        }
      }
      return { message, tempId };
    });

    for (const kind of ['delivered', 'read']) {
      on(`message:${kind}`, (m) => {
        const conversationId = positive(m && m.conversationId);
        const messageId = positive(m && m.messageId);
        need(member(conversationId) && messageId, 'not a member of this conversation');
        const message = chat.getMessage(messageId);
        need(message && message.conversationId === conversationId, 'no such message');
        if (kind === 'read') chat.markRead(conversationId, me, messageId);
        else chat.markDelivered(conversationId, me, messageId);
        nsp.to(conversationRoom(conversationId)).emit(`message:${kind}`, { conversationId, userId: me, messageId });
      });
    }

    on('message:typing', (m) => {
      const conversationId = positive(m && m.conversationId);
      need(member(conversationId), 'not a member of this conversation');
      const key = `${conversationId}\n${me}`;
      const was = typing.get(key);
      if (was) clearTimeout(was);
      else socket.to(conversationRoom(conversationId)).emit('message:typing', { conversationId, userId: me, name: myName });
      // Silence stops it: a tab closed mid-word does not type forever.
      typing.set(key, setTimeout(() => stopTyping(conversationId, me, myName), TYPING_TIMEOUT_MS).unref());
    });

    on('message:stop-typing', (m) => {
      const conversationId = positive(m && m.conversationId);
      need(member(conversationId), 'not a member of this conversation');
      stopTyping(conversationId, me, myName);
    });

    on('presence:update', (p) => {
      need(p && STATUSES.has(p.status), "status is 'online', 'away' or 'busy'");
      setStatus(me, p.status);
    });

    on('presence:subscribe', (p) => {
      const ids = Array.isArray(p && p.userIds) ? p.userIds.filter((x) => typeof x === 'string').slice(0, 500) : [];
      socket.join(ids.map(presenceRoom));
      return { statuses: ids.map((id) => chat.getUser(id)).filter(Boolean).map((u) => ({ userId: u.id, status: u.status, lastSeen: u.last_seen })) };
    });

    for (const kind of ['new', 'remove']) {
      on(`reaction:${kind}`, (r) => {
        const messageId = positive(r && r.messageId);
        const emoji = r && typeof r.emoji === 'string' ? r.emoji : '';
        need(emoji.length > 0 && emoji.length <= 16, 'an emoji is 1 to 16 characters');
        const message = messageId && chat.getMessage(messageId);
        need(message && member(message.conversationId), 'no such message');
        const changed = kind === 'new' ? chat.addReaction(messageId, me, emoji) : chat.removeReaction(messageId, me, emoji);
        if (changed) {
          nsp.to(conversationRoom(message.conversationId)).emit(`reaction:${kind}`, {
            conversationId: message.conversationId, messageId, userId: me, emoji,
          });
        }
        return { changed };
      });
    }

    on('notification:read', (id) => {
      need(positive(id) !== null, 'invalid notification id');
      return { changed: chat.readNotification(me, positive(id)) };
    });

    on('call:initiate', async (c) => {
      const to = c && typeof c.to === 'string' ? c.to : '';
      need(to !== me && chat.getUser(to), 'no such user');
      need(c.offer && typeof c.offer.sdp === 'string', 'an offer is an RTCSessionDescription');
      const online = (await nsp.presence.users(userRoom(to))).length > 0;
      if (!online) {
        chat.queueNotification(to, 'missed-call', { from: me, name: myName });
        throw refuse('offline');
      }
      const callId = randomUUID();
      calls.set(callId, { from: me, to, state: 'ringing', callerSocket: socket.id, calleeSocket: null });
      nsp.to(userRoom(to)).emit('call:initiate', { callId, from: me, name: myName, offer: c.offer });
      return { callId };
    });

    on('call:answer', (c) => {
      const call = c && calls.get(c.callId);
      need(call && call.to === me && call.state === 'ringing', 'no such call ringing');
      need(c.answer && typeof c.answer.sdp === 'string', 'an answer is an RTCSessionDescription');
      call.state = 'active';
      call.calleeSocket = socket.id;
      nsp.to(call.callerSocket).emit('call:answer', { callId: c.callId, from: me, name: myName, answer: c.answer });
      // The user's other devices stop ringing.
      socket.to(userRoom(me)).emit('call:end', { callId: c.callId, reason: 'answered elsewhere', by: me });
    });

    on('call:reject', (c) => {
      const call = c && calls.get(c.callId);
      need(call && call.to === me && call.state === 'ringing', 'no such call ringing');
      calls.delete(c.callId);
      nsp.to(call.callerSocket).emit('call:reject', { callId: c.callId, from: me, name: myName });
      socket.to(userRoom(me)).emit('call:end', { callId: c.callId, reason: 'rejected', by: me });
    });

    on('call:end', (c) => {
      const call = c && calls.get(c.callId);
      need(call && (call.from === me || call.to === me), 'no such call');
      endCall(c.callId, 'ended', me);
    });

    on('call:ice-candidate', (c) => {
      const call = c && calls.get(c.callId);
      need(call && (call.from === me || call.to === me), 'no such call');
      nsp.to(otherSide(call, me)).emit('call:ice-candidate', { callId: c.callId, from: me, candidate: c.candidate ?? null });
    });

    socket.on('disconnect', () => {
      for (const [callId, call] of calls) {
        if (call.callerSocket === socket.id || call.calleeSocket === socket.id) endCall(callId, 'disconnected', me);
      }
      for (const key of typing.keys()) {
        const [conversationId, userId] = key.split('\n');
        if (userId === me && !nsp.presence.has(userRoom(me), me)) stopTyping(Number(conversationId), me, myName);
      }
    });
  });

  return { nsp };
}
