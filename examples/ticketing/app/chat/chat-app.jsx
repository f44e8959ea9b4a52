'use client';
// The staff chat's page: sign-in (POST /api/chat/session), then one socket on /chat with the
// token, and the messenger. Events and their payloads: examples/ticketing/chat.mjs.
//
// Page contract (data-testid): chat-name, chat-sign-in, chat-me[data-user-id], chat-status
// (the connection), chat-my-status (a select), chat-user[data-user-id][data-status],
// chat-open-direct, chat-conversation[data-conversation-id] (chat-unread inside), chat-message
// [data-message-id][data-receipt="sending" | "sent" | "delivered" | "read"] (chat-body,
// chat-reply-to, chat-react[data-emoji], chat-reaction[data-emoji][data-count], chat-reply),
// chat-typing, chat-input, chat-send, chat-active[data-count], chat-notification[data-id]
// (chat-notification-read), chat-call, chat-incoming-call, chat-answer, chat-reject,
// chat-call-state, chat-hangup, video chat-local-video / chat-remote-video.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { io } from 'socket.io-client';

const SESSION_KEY = 'sidewire.chat.session';
const EMOJIS = ['👍', '❤️', '😂'];
const TYPING_EVERY_MS = 1500;

async function signIn(name) {
  const res = await fetch('/api/chat/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `sign-in failed (${res.status})`);
  return body;
}

function receiptOf(message, members, me) {
  if (message.pending) return 'sending';
  if (message.senderId !== me) return '';
  const others = members.filter((m) => m.id !== me);
  if (others.length === 0) return 'sent';
  if (others.every((m) => m.readId >= message.id)) return 'read';
  if (others.every((m) => m.deliveredId >= message.id)) return 'delivered';
  return 'sent';
}

export default function ChatApp() {
  const [session, setSession] = useState(null);
  const [name, setName] = useState('');
  const [error, setError] = useState('');

  useEffect(() => {
    const saved = sessionStorage.getItem(SESSION_KEY);
    if (saved) setSession(JSON.parse(saved));
  }, []);

  const submit = async (e) => {
    e.preventDefault();
    setError('');
    try {
      const s = await signIn(name);
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
      setSession(s);
    } catch (err) {
      setError(err.message);
    }
  };

  if (!session) {
    return (
      <form onSubmit={submit} className="card chat-signin">
        <label>
          Your name <input data-testid="chat-name" value={name} onChange={(e) => setName(e.target.value)} />
        </label>{' '}
        <button data-testid="chat-sign-in" type="submit">Sign in</button>
        {error && <p className="error">{error}</p>}
      </form>
    );
  }
  return <Messenger session={session} onSignOut={() => { sessionStorage.removeItem(SESSION_KEY); setSession(null); }} />;
}

function Messenger({ session, onSignOut }) {
  const me = session.user.id;
  const socketRef = useRef(null);
  const [connected, setConnected] = useState(false);
  const [conversations, setConversations] = useState([]);
  const [users, setUsers] = useState([]);
  const [statuses, setStatuses] = useState({});
  const [notifications, setNotifications] = useState([]);
  const [openId, setOpenId] = useState(null);
  const openRef = useRef(null);
  const [thread, setThread] = useState({ messages: [], members: [], reactions: [] });
  const [typingUsers, setTypingUsers] = useState({});
  const [active, setActive] = useState([]);
  const [draft, setDraft] = useState('');
  const [replyTo, setReplyTo] = useState(null);
  const [myStatus, setMyStatus] = useState('online');
  const lastTypingSent = useRef(0);
  const call = useCall(socketRef, me);

  const refreshList = useCallback(async () => {
    const s = socketRef.current;
    const r = await s.emitWithAck('chat:list');
    if (!r.ok) return;
    setConversations(r.conversations);
    setUsers(r.users.filter((u) => u.id !== me));
    setNotifications((prev) => {
      const seen = new Set(prev.map((n) => n.id));
      return [...prev, ...r.notifications.filter((n) => !seen.has(n.id))];
    });
    const sub = await s.emitWithAck('presence:subscribe', { userIds: r.users.map((u) => u.id) });
    if (sub.ok) setStatuses(Object.fromEntries(sub.statuses.map((x) => [x.userId, x])));
  }, [me]);

  const openConversation = useCallback(async (id) => {
    const s = socketRef.current;
    const r = await s.emitWithAck('chat:join', id);
    if (!r.ok) return;
    openRef.current = id;
    setOpenId(id);
    setThread({ messages: r.messages, members: r.members, reactions: r.reactions });
    setTypingUsers({});
    const last = r.messages[r.messages.length - 1];
    if (last) s.emit('message:read', { conversationId: id, messageId: last.id });
    setConversations((cs) => cs.map((c) => (c.id === id ? { ...c, unread: 0 } : c)));
    const a = await s.emitWithAck('chat:get-active-members', id);
    if (a.ok) setActive(a.members);
  }, []);

  useEffect(() => {
    const socket = io('/chat', {
      auth: async (cb) => {
        // A fresh token for each (re)connect: the saved one may have expired.
        try {
          const s = await signIn(session.user.name);
          cb({ token: s.token });
        } catch {
          cb({ token: session.token });
        }
      },
      transports: ['websocket', 'polling'],
    });
    socketRef.current = socket;
    socket.on('connect', async () => {
      setConnected(true);
      await refreshList();
      if (openRef.current) openConversation(openRef.current);
    });
    socket.on('disconnect', () => setConnected(false));
    socket.on('message:new', ({ message, tempId }) => {
      if (message.conversationId === openRef.current) {
        setThread((t) => {
          const rest = t.messages.filter((m) => !(tempId && m.tempId === tempId) && m.id !== message.id);
          return { ...t, messages: [...rest, message] };
        });
      }
      if (message.senderId !== me) {
        socket.emit('message:delivered', { conversationId: message.conversationId, messageId: message.id });
        if (message.conversationId === openRef.current && document.visibilityState === 'visible') {
          socket.emit('message:read', { conversationId: message.conversationId, messageId: message.id });
        } else {
          setConversations((cs) => cs.map((c) => (c.id === message.conversationId ? { ...c, unread: (c.unread || 0) + 1 } : c)));
        }
      }
    });
    for (const kind of ['delivered', 'read']) {
      socket.on(`message:${kind}`, ({ conversationId, userId, messageId }) => {
        if (conversationId !== openRef.current) return;
        setThread((t) => ({
          ...t,
          members: t.members.map((m) => {
            if (m.id !== userId) return m;
            const deliveredId = Math.max(m.deliveredId, messageId);
            return kind === 'read' ? { ...m, deliveredId, readId: Math.max(m.readId, messageId) } : { ...m, deliveredId };
          }),
        }));
      });
    }
    socket.on('message:typing', ({ conversationId, userId, name }) => {
      if (conversationId === openRef.current) setTypingUsers((t) => ({ ...t, [userId]: name }));
    });
    socket.on('message:stop-typing', ({ conversationId, userId }) => {
      if (conversationId !== openRef.current) return;
      setTypingUsers((t) => {
        const next = { ...t };
        delete next[userId];
        return next;
      });
    });
    socket.on('presence:update', (p) => setStatuses((s) => ({ ...s, [p.userId]: p })));
    socket.on('chat:active-members', ({ conversationId, members }) => {
      if (conversationId === openRef.current) setActive(members);
    });
    socket.on('chat:conversation', () => refreshList());
    socket.on('reaction:new', (r) => {
      if (r.conversationId === openRef.current) setThread((t) => ({ ...t, reactions: [...t.reactions, r] }));
    });
    socket.on('reaction:remove', (r) => {
      if (r.conversationId !== openRef.current) return;
      setThread((t) => ({
        ...t,
        reactions: t.reactions.filter((x) => !(x.messageId === r.messageId && x.userId === r.userId && x.emoji === r.emoji)),
      }));
    });
    socket.on('notification:new', (n) => setNotifications((prev) => (prev.some((x) => x.id === n.id) ? prev : [...prev, n])));
    call.listen(socket);
    return () => {
      call.hangUp(false);
      socket.disconnect();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [session]);

  const send = async (e) => {
    e.preventDefault();
    const body = draft.trim();
    if (!body || !openId) return;
    const tempId = `t${Date.now()}${Math.random().toString(36).slice(2, 6)}`;
    // Shown at once; the server's copy (with its id) replaces it.
    setThread((t) => ({
      ...t,
      messages: [...t.messages, { id: Number.MAX_SAFE_INTEGER, tempId, pending: true, senderId: me, body, replyTo: replyTo?.id ?? null, conversationId: openId }],
    }));
    setDraft('');
    setReplyTo(null);
    const r = await socketRef.current.emitWithAck('message:new', { conversationId: openId, body, tempId, replyTo: replyTo?.id ?? null });
    if (!r.ok) setThread((t) => ({ ...t, messages: t.messages.filter((m) => m.tempId !== tempId) }));
  };

  const onDraft = (value) => {
    setDraft(value);
    const now = Date.now();
    if (openId && value && now - lastTypingSent.current > TYPING_EVERY_MS) {
      lastTypingSent.current = now;
      socketRef.current.emit('message:typing', { conversationId: openId });
    }
  };

  const toggleReaction = (messageId, emoji) => {
    const mine = thread.reactions.some((r) => r.messageId === messageId && r.userId === me && r.emoji === emoji);
    socketRef.current.emit(mine ? 'reaction:remove' : 'reaction:new', { messageId, emoji });
  };

  const readNotification = async (n) => {
    await socketRef.current.emitWithAck('notification:read', n.id);
    setNotifications((prev) => prev.filter((x) => x.id !== n.id));
    if (n.payload && n.payload.conversationId) openConversation(n.payload.conversationId);
  };

  const openDirect = async (userId) => {
    const r = await socketRef.current.emitWithAck('chat:open-direct', userId);
    if (r.ok) {
      await refreshList();
      openConversation(r.conversation.id);
    }
  };

  const current = conversations.find((c) => c.id === openId);
  const titleOf = (c) => (c.kind === 'group' ? c.title : (c.members || []).filter((m) => m.id !== me).map((m) => m.name).join(', ') || 'direct');
  const peer = current && current.kind === 'direct' ? (current.members || []).find((m) => m.id !== me) : null;
  const byId = useMemo(() => new Map(thread.messages.map((m) => [m.id, m])), [thread.messages]);

  return (
    <div className="chat">
      <aside className="chat-side card">
        <p>
          <strong data-testid="chat-me" data-user-id={me}>{session.user.name}</strong>{' '}
          <span className={`dot ${connected ? 'online' : 'offline'}`} /> <span data-testid="chat-status">{connected ? 'connected' : 'disconnected'}</span>
        </p>
        <select
          data-testid="chat-my-status"
          value={myStatus}
          onChange={(e) => {
            setMyStatus(e.target.value);
            socketRef.current.emit('presence:update', { status: e.target.value });
          }}
        >
          <option value="online">online</option>
          <option value="away">away</option>
          <option value="busy">busy</option>
        </select>{' '}
        <button type="button" onClick={onSignOut}>Sign out</button>
        <h2>Conversations</h2>
        <ul className="chat-list">
          {conversations.map((c) => (
            <li key={c.id}>
              <button type="button" data-testid="chat-conversation" data-conversation-id={c.id} onClick={() => openConversation(c.id)} className={c.id === openId ? 'active' : ''}>
                {titleOf(c)} {c.unread > 0 && <span data-testid="chat-unread" className="badge">{c.unread}</span>}
              </button>
            </li>
          ))}
        </ul>
        <h2>People</h2>
        <ul className="chat-list">
          {users.map((u) => {
            const st = statuses[u.id] || u;
            return (
              <li key={u.id} data-testid="chat-user" data-user-id={u.id} data-status={st.status}>
                <span className={`dot ${st.status}`} /> {u.name} <small className="muted">{st.status === 'offline' && st.lastSeen ? `last seen ${new Date(st.lastSeen).toLocaleTimeString()}` : st.status}</small>{' '}
                <button type="button" data-testid="chat-open-direct" onClick={() => openDirect(u.id)}>Chat</button>
              </li>
            );
          })}
        </ul>
        {notifications.length > 0 && (
          <>
            <h2>Notifications</h2>
            <ul className="chat-list">
              {notifications.map((n) => (
                <li key={n.id} data-testid="chat-notification" data-id={n.id}>
                  {n.kind === 'message' ? `${n.payload.name}: ${n.payload.preview}` : `Missed call from ${n.payload.name}`}{' '}
                  <button type="button" data-testid="chat-notification-read" onClick={() => readNotification(n)}>Open</button>
                </li>
              ))}
            </ul>
          </>
        )}
      </aside>
      <section className="chat-main card">
        {!current ? (
          <p className="muted">Pick a conversation.</p>
        ) : (
          <>
            <header className="chat-head">
              <h2>{titleOf(current)}</h2>
              <span data-testid="chat-active" data-count={active.length}>{active.length} here now</span>
              {peer && !call.state && (
                <button type="button" data-testid="chat-call" onClick={() => call.start(peer.id)}>Call</button>
              )}
            </header>
            <ol className="chat-messages">
              {thread.messages.map((m) => {
                const counts = EMOJIS.map((emoji) => [emoji, thread.reactions.filter((r) => r.messageId === m.id && r.emoji === emoji).length]);
                const original = m.replyTo ? byId.get(m.replyTo) : null;
                return (
                  <li key={m.tempId || m.id} data-testid="chat-message" data-message-id={m.pending ? '' : m.id} data-receipt={receiptOf(m, thread.members, me)} className={m.senderId === me ? 'mine' : ''}>
                    {original && <blockquote data-testid="chat-reply-to">{original.body}</blockquote>}
                    <span className="muted">{m.senderId}</span> <span data-testid="chat-body">{m.body}</span>{' '}
                    <small className="muted">{receiptOf(m, thread.members, me)}</small>
                    {!m.pending && (
                      <span className="chat-tools">
                        {counts.map(([emoji, n]) => (
                          <button key={emoji} type="button" data-testid="chat-react" data-emoji={emoji} onClick={() => toggleReaction(m.id, emoji)}>
                            {emoji}{n > 0 && <span data-testid="chat-reaction" data-emoji={emoji} data-count={n}> {n}</span>}
                          </button>
                        ))}
                        <button type="button" data-testid="chat-reply" onClick={() => setReplyTo(m)}>Reply</button>
                      </span>
                    )}
                  </li>
                );
              })}
            </ol>
            <p data-testid="chat-typing" className="muted">
              {Object.keys(typingUsers).length > 0 ? `${Object.values(typingUsers).join(', ')} typing…` : ''}
            </p>
            {replyTo && <p className="muted">Replying to: {replyTo.body} <button type="button" onClick={() => setReplyTo(null)}>×</button></p>}
            <form onSubmit={send} className="chat-compose">
              <input data-testid="chat-input" value={draft} onChange={(e) => onDraft(e.target.value)} placeholder="Write a message" />
              <button data-testid="chat-send" type="submit" disabled={!connected}>Send</button>
            </form>
          </>
        )}
        <CallPanel call={call} />
      </section>
    </div>
  );
}

// Calls: an RTCPeerConnection per call, its offer, answer and ICE candidates through the server.
function useCall(socketRef, me) {
  const [state, setState] = useState(null); // null | 'calling' | 'ringing' | 'connecting' | 'connected' | 'ended' | 'rejected'
  const [incoming, setIncoming] = useState(null);
  const pcRef = useRef(null);
  const callIdRef = useRef(null);
  const pendingIce = useRef([]); // the other side's, until there is a remote description
  const outbox = useRef([]); // this side's, until the call has an id
  const localRef = useRef(null);
  const remoteRef = useRef(null);
  const streamRef = useRef(null);

  const cleanup = useCallback(() => {
    if (pcRef.current) pcRef.current.close();
    pcRef.current = null;
    if (streamRef.current) for (const t of streamRef.current.getTracks()) t.stop();
    streamRef.current = null;
    callIdRef.current = null;
    pendingIce.current = [];
    outbox.current = [];
  }, []);

  const media = async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    streamRef.current = stream;
    if (localRef.current) localRef.current.srcObject = stream;
    return stream;
  };

  const peer = (stream) => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    pc.onicecandidate = (e) => {
      const candidate = e.candidate ? e.candidate.toJSON() : null;
      if (callIdRef.current) socketRef.current.emit('call:ice-candidate', { callId: callIdRef.current, candidate });
      else outbox.current.push(candidate);
    };
    pc.ontrack = (e) => {
      if (remoteRef.current) remoteRef.current.srcObject = e.streams[0];
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected') setState('connected');
      if (pc.connectionState === 'failed') setState('failed');
    };
    pcRef.current = pc;
    return pc;
  };

  const addIce = async (candidate) => {
    const pc = pcRef.current;
    if (!pc || !pc.remoteDescription) {
      pendingIce.current.push(candidate);
      return;
    }
    if (candidate) await pc.addIceCandidate(candidate).catch(() => {});
  };

  const flushIce = async () => {
    const list = pendingIce.current;
    pendingIce.current = [];
    for (const c of list) await addIce(c);
  };

  const start = async (to) => {
    setState('calling');
    const pc = peer(await media());
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const r = await socketRef.current.emitWithAck('call:initiate', { to, offer: pc.localDescription.toJSON() });
    if (!r.ok) {
      cleanup();
      setState(r.error === 'offline' ? 'offline' : 'failed');
      return;
    }
    callIdRef.current = r.callId;
    // Candidates gathered before the call had an id.
    for (const candidate of outbox.current.splice(0)) socketRef.current.emit('call:ice-candidate', { callId: r.callId, candidate });
  };

  const answer = async () => {
    const call = incoming;
    setIncoming(null);
    setState('connecting');
    callIdRef.current = call.callId;
    const pc = peer(await media());
    await pc.setRemoteDescription(call.offer);
    await flushIce();
    const a = await pc.createAnswer();
    await pc.setLocalDescription(a);
    await socketRef.current.emitWithAck('call:answer', { callId: call.callId, answer: pc.localDescription.toJSON() });
  };

  const reject = () => {
    socketRef.current.emit('call:reject', { callId: incoming.callId });
    setIncoming(null);
    pendingIce.current = [];
  };

  const hangUp = (tell = true) => {
    if (tell && callIdRef.current && socketRef.current) socketRef.current.emit('call:end', { callId: callIdRef.current });
    cleanup();
    setState(tell ? 'ended' : null);
  };

  const listen = (socket) => {
    socket.on('call:initiate', (c) => {
      if (pcRef.current) return; // busy in another call
      pendingIce.current = [];
      setIncoming(c);
      setState('ringing');
    });
    socket.on('call:answer', async ({ callId, answer: a }) => {
      if (callId !== callIdRef.current || !pcRef.current) return;
      setState('connecting');
      await pcRef.current.setRemoteDescription(a);
      await flushIce();
    });
    socket.on('call:reject', ({ callId }) => {
      if (callId !== callIdRef.current) return;
      cleanup();
      setState('rejected');
    });
    socket.on('call:end', ({ callId, reason }) => {
      setIncoming((inc) => (inc && inc.callId === callId ? null : inc));
      if (callId === callIdRef.current || reason === 'answered elsewhere' || reason === 'rejected') {
        if (callId === callIdRef.current) cleanup();
        setState(reason === 'answered elsewhere' ? null : 'ended');
      }
    });
    socket.on('call:ice-candidate', ({ callId, candidate }) => {
      if (callIdRef.current && callId !== callIdRef.current) return;
      addIce(candidate);
    });
  };

  return { state, incoming, start, answer, reject, hangUp, listen, localRef, remoteRef, me };
}

function CallPanel({ call }) {
  if (!call.state && !call.incoming) return null;
  return (
    <div className="chat-call card">
      {call.incoming && (
        <p data-testid="chat-incoming-call">
          {call.incoming.name} is calling{' '}
          <button type="button" data-testid="chat-answer" onClick={call.answer}>Answer</button>{' '}
          <button type="button" data-testid="chat-reject" onClick={call.reject}>Reject</button>
        </p>
      )}
      <p>
        Call: <strong data-testid="chat-call-state">{call.state}</strong>{' '}
        {['calling', 'connecting', 'connected'].includes(call.state) && (
          <button type="button" data-testid="chat-hangup" onClick={() => call.hangUp(true)}>Hang up</button>
        )}
      </p>
      <video data-testid="chat-local-video" ref={call.localRef} autoPlay muted playsInline width="160" />
      <video data-testid="chat-remote-video" ref={call.remoteRef} autoPlay playsInline width="320" />
    </div>
  );
}
