'use client';

import { useEffect, useRef, useState } from 'react';

const MAX_MESSAGES = 50;

export default function FabricClient({ documentId = 'demo' }) {
  const [status, setStatus] = useState('disconnected');
  const [messages, setMessages] = useState([]);
  const [text, setText] = useState('');
  const wsRef = useRef(null);

  useEffect(() => {
    const clientID = Math.random().toString(36).slice(2, 10);
    let ws = null;
    let retryTimer = null;
    let retryDelay = 500;
    let stopped = false;

    const connect = () => {
      const proto = location.protocol === 'https:' ? 'wss' : 'ws';
      ws = new WebSocket(
        `${proto}://${location.host}/ws/fabric?documentId=${encodeURIComponent(documentId)}&clientID=${clientID}`
      );
      wsRef.current = ws;
      ws.onopen = () => {
        retryDelay = 500;
        setStatus('connected');
      };
      ws.onmessage = (event) => {
        const data = typeof event.data === 'string' ? event.data : '[binary message]';
        setMessages((prev) => [...prev, { id: `${Date.now()}-${Math.random()}`, data }].slice(-MAX_MESSAGES));
      };
      ws.onclose = () => {
        setStatus('disconnected');
        if (wsRef.current === ws) wsRef.current = null;
        if (!stopped) {
          retryTimer = setTimeout(connect, retryDelay);
          retryDelay = Math.min(retryDelay * 2, 10000);
        }
      };
    };

    connect();
    return () => {
      stopped = true;
      clearTimeout(retryTimer);
      if (ws) ws.close(1000);
    };
  }, [documentId]);

  const send = (event) => {
    event.preventDefault();
    const ws = wsRef.current;
    if (!text || !ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
    setText('');
  };

  return (
    <section>
      <p>
        Status: <strong data-testid="status">{status}</strong>
      </p>
      <form onSubmit={send}>
        <input
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="Type a message"
          aria-label="message"
        />{' '}
        <button type="submit" disabled={status !== 'connected'}>
          Send
        </button>
      </form>
      <ul data-testid="messages">
        {messages.map((m) => (
          <li key={m.id}>{m.data}</li>
        ))}
      </ul>
    </section>
  );
}
