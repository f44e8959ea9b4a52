'use client';
// One Socket.IO connection per tab, shared by every page (it lives in the root layout, so it
// survives client-side navigation). Pages join their rooms with useRoom() and listen with
// useSocketEvent(); both re-run their joins on every (re)connect.
import { createContext, useContext, useEffect, useRef, useState } from 'react';
import { io } from 'socket.io-client';

const NAME_KEY = 'sidewire-ticketing-name';

const SocketContext = createContext({ socket: null, connected: false, name: null });

/** This browser's agent name (agent-1234), kept in localStorage. */
function agentName() {
  try {
    const saved = localStorage.getItem(NAME_KEY);
    if (saved) return saved;
    const name = `agent-${1000 + Math.floor(Math.random() * 9000)}`;
    localStorage.setItem(NAME_KEY, name);
    return name;
  } catch {
    return `agent-${1000 + Math.floor(Math.random() * 9000)}`; // storage blocked
  }
}

/** A session token for `name` from the desk's API route: { token, expiresAt } (seconds). */
async function sessionToken(name) {
  const res = await fetch('/api/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (!res.ok) throw new Error(`POST /api/session: ${res.status}`);
  return res.json();
}

export function SocketProvider({ children }) {
  const [value, setValue] = useState({ socket: null, connected: false, name: null });

  useEffect(() => {
    const name = agentName();
    let refreshTimer = null;
    let stopped = false;
    // A fresh token a minute before this one expires, sent on the connection ('auth:refresh':
    // the engine answers it); a connection whose token expires is closed by the server.
    const scheduleRefresh = (expiresAt) => {
      clearTimeout(refreshTimer);
      const inMs = Math.max(5000, (expiresAt - 60) * 1000 - Date.now());
      refreshTimer = setTimeout(async () => {
        if (stopped) return;
        try {
          const fresh = await sessionToken(name);
          const answer = await socket.timeout(10000).emitWithAck('auth:refresh', fresh.token);
          if (answer && answer.ok) return scheduleRefresh(fresh.expiresAt);
        } catch {
          // Offline, or the server restarting: try again below; a reconnect gets a new token anyway.
        }
        if (socket.connected) scheduleRefresh(Math.floor(Date.now() / 1000) + 60 + 15); // again in 15 s
      }, inMs);
    };
    // Same origin, path /socket.io. `auth` as a function: every (re)connect gets a fresh token.
    const socket = io({
      auth: (cb) => {
        sessionToken(name).then(
          ({ token, expiresAt }) => {
            scheduleRefresh(expiresAt);
            cb({ token, name });
          },
          () => cb({ name }), // refused by the engine ('unauthorized'); the client retries
        );
      },
    });
    // A refused CONNECT (no token: the API route was unreachable) is not retried by the client
    // on its own: try again in a while.
    socket.on('connect_error', () => {
      if (!socket.active && !stopped) setTimeout(() => !stopped && socket.connect(), 3000);
    });
    // The server closed it (its token expired before a refresh got through): connect again, with
    // a fresh token. socket.io-client does not after an 'io server disconnect'.
    socket.on('disconnect', (reason) => {
      if (reason === 'io server disconnect' && !stopped) setTimeout(() => !stopped && socket.connect(), 1000);
    });
    const update = () => setValue({ socket, connected: socket.connected, name });
    socket.on('connect', update);
    socket.on('disconnect', update);
    update();
    return () => {
      stopped = true;
      clearTimeout(refreshTimer);
      socket.off('connect', update);
      socket.off('disconnect', update);
      socket.disconnect();
    };
  }, []);

  return <SocketContext.Provider value={value}>{children}</SocketContext.Provider>;
}

export function useSocket() {
  return useContext(SocketContext);
}

/** Calls handler(...args) for every `event` on the shared socket. */
export function useSocketEvent(event, handler) {
  const { socket } = useSocket();
  const ref = useRef(handler);
  useEffect(() => {
    ref.current = handler;
  });
  useEffect(() => {
    if (!socket) return undefined;
    const listener = (...args) => ref.current(...args);
    socket.on(event, listener);
    return () => socket.off(event, listener);
  }, [socket, event]);
}

/**
 * Joins a room with `joinEvent` (and `arg`, if given) now and after every reconnect that was not
 * recovered, calls onJoined() once the server acknowledged (the place to fetch a fresh snapshot),
 * and leaves with `leaveEvent` on unmount. A recovered reconnect (connection state recovery:
 * `socket.recovered`) is already in its rooms and has been sent what it missed.
 */
export function useRoom(joinEvent, leaveEvent, arg, onJoined) {
  const { socket } = useSocket();
  const ref = useRef(onJoined);
  useEffect(() => {
    ref.current = onJoined;
  });
  useEffect(() => {
    if (!socket) return undefined;
    const args = arg === undefined ? [] : [arg];
    let active = true;
    const join = () => {
      if (socket.recovered) return;
      socket.timeout(10000).emit(joinEvent, ...args, (err, answer) => {
        if (!active) return;
        if (err || !answer?.ok) {
          console.warn(`[ticketing] ${joinEvent} failed:`, err?.message || answer?.error);
          return;
        }
        ref.current?.();
      });
    };
    socket.on('connect', join);
    if (socket.connected) join();
    return () => {
      active = false;
      socket.off('connect', join);
      if (socket.connected) socket.emit(leaveEvent, ...args);
    };
  }, [socket, joinEvent, leaveEvent, arg]);
}
