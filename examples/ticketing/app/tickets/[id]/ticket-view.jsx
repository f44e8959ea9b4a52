'use client';
import Link from 'next/link';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useRoom, useSocket, useSocketEvent } from '../../socket-provider';
import { STATUSES, PRIORITIES, statusLabel, formatTime, formatBytes, upsertById, apiError } from '../../format';

export default function TicketView({ initial }) {
  const id = initial.id;
  const { comments: initialComments, attachments: initialAttachments, ...initialTicket } = initial;
  const [ticket, setTicket] = useState(initialTicket);
  const [comments, setComments] = useState(initialComments);
  const [attachments, setAttachments] = useState(initialAttachments);
  const [viewers, setViewers] = useState([]);
  const { socket, name } = useSocket();

  const applyTicket = useCallback((t) => {
    setTicket((old) => (!old.updated_at || t.updated_at >= old.updated_at ? t : old));
  }, []);
  const addComments = useCallback((...items) => setComments((list) => upsertById(list, items)), []);
  const addAttachments = useCallback((...items) => setAttachments((list) => upsertById(list, items)), []);

  useSocketEvent('ticket:updated', (t) => {
    if (t.id === id) applyTicket(t);
  });
  useSocketEvent('comment:added', (c) => {
    if (c.ticket_id === id) addComments(c);
  });
  useSocketEvent('attachment:added', (a) => {
    if (a.ticket_id === id) addAttachments(a);
  });
  useSocketEvent('ticket:viewers', (p) => {
    if (p.ticketId === id) setViewers(p.viewers);
  });
  useSocketEvent('disconnect', () => setViewers([]));
  // After every (re)join: a fresh copy of the ticket (events may have been missed while away).
  useRoom('ticket:join', 'ticket:leave', id, async () => {
    try {
      const res = await fetch(`/api/tickets/${id}`, { cache: 'no-store' });
      if (!res.ok) return;
      const { comments: c, attachments: a, ...t } = await res.json();
      applyTicket(t);
      addComments(...c);
      addAttachments(...a);
    } catch {
      // offline: the next reconnect tries again
    }
  });

  return (
    <article className="ticket">
      <p className="crumbs">
        <Link href="/">← All tickets</Link>
      </p>
      <div className="page-head">
        <h1 data-testid="ticket-title">{ticket.title}</h1>
        <span data-testid="ticket-status" className={`badge status-${ticket.status}`}>
          {ticket.status}
        </span>
      </div>
      <p className="muted small">
        #{ticket.id} · opened {formatTime(ticket.created_at)} · updated {formatTime(ticket.updated_at)}
      </p>

      <Viewers viewers={viewers} me={socket?.id} />

      <TicketControls ticket={ticket} onSaved={applyTicket} />

      {ticket.description ? (
        <div className="card description">{ticket.description}</div>
      ) : (
        <p className="muted">No description.</p>
      )}

      <section className="card">
        <h2>Comments ({comments.length})</h2>
        <ul className="comments list" data-testid="comment-list">
          {comments.map((c) => (
            <li key={c.id} data-testid="comment" data-comment-id={c.id}>
              <div className="meta">
                <strong>{c.author}</strong> <span className="muted small">{formatTime(c.created_at)}</span>
              </div>
              <div data-testid="comment-body" className="body">
                {c.body}
              </div>
            </li>
          ))}
        </ul>
        {comments.length === 0 ? <p className="empty">No comments yet.</p> : null}
        <CommentForm ticketId={id} defaultAuthor={name} onAdded={addComments} />
      </section>

      <section className="card">
        <h2>Attachments ({attachments.length})</h2>
        <ul className="attachments list" data-testid="attachment-list">
          {attachments.map((a) => (
            <li key={a.id} data-testid="attachment" data-attachment-id={a.id}>
              <a href={a.url} download={a.filename}>
                {a.filename}
              </a>{' '}
              <span className="muted small">
                {formatBytes(a.size)} · {a.mime}
              </span>
            </li>
          ))}
        </ul>
        {attachments.length === 0 ? <p className="empty">No attachments yet.</p> : null}
        <AttachmentForm ticketId={id} onAdded={addAttachments} />
      </section>
    </article>
  );
}

function Viewers({ viewers, me }) {
  return (
    <div className="viewers" data-testid="viewers" data-count={viewers.length}>
      <span className="muted">Viewing now:</span>{' '}
      {viewers.length === 0 ? (
        <span className="muted">nobody (offline)</span>
      ) : (
        viewers.map((v) => (
          <span key={v.id} className={v.id === me ? 'viewer me' : 'viewer'}>
            {v.name}
            {v.id === me ? ' (you)' : ''}
          </span>
        ))
      )}
    </div>
  );
}

function TicketControls({ ticket, onSaved }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [assignee, setAssignee] = useState(ticket.assignee ?? '');
  const lastAssignee = useRef(ticket.assignee);
  useEffect(() => {
    // Someone else changed the assignee: show it (unless this field is being edited).
    if (ticket.assignee !== lastAssignee.current) {
      lastAssignee.current = ticket.assignee;
      setAssignee(ticket.assignee ?? '');
    }
  }, [ticket.assignee]);

  async function patch(fields) {
    setBusy(true);
    setError(null);
    try {
      const res = await fetch(`/api/tickets/${ticket.id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(fields),
      });
      if (!res.ok) setError(await apiError(res));
      else onSaved(await res.json());
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="controls card">
      <label>
        Status{' '}
        <select
          aria-label="status"
          data-testid="status-select"
          value={ticket.status}
          disabled={busy}
          onChange={(e) => patch({ status: e.target.value })}
        >
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {statusLabel(s)}
            </option>
          ))}
        </select>
      </label>
      <label>
        Priority{' '}
        <select
          aria-label="priority"
          data-testid="priority-select"
          value={ticket.priority}
          disabled={busy}
          onChange={(e) => patch({ priority: e.target.value })}
        >
          {PRIORITIES.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      </label>
      <form
        className="assignee"
        onSubmit={(e) => {
          e.preventDefault();
          patch({ assignee: assignee.trim() || null });
        }}
      >
        <label>
          Assignee{' '}
          <input
            aria-label="assignee"
            value={assignee}
            placeholder="nobody"
            maxLength={100}
            onChange={(e) => setAssignee(e.target.value)}
          />
        </label>{' '}
        <button type="submit" disabled={busy || assignee.trim() === (ticket.assignee ?? '')}>
          Assign
        </button>
      </form>
      {error ? <span className="error">{error}</span> : null}
    </div>
  );
}

function CommentForm({ ticketId, defaultAuthor, onAdded }) {
  const [author, setAuthor] = useState('');
  const [body, setBody] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const touched = useRef(false);
  useEffect(() => {
    if (defaultAuthor && !touched.current) setAuthor(defaultAuthor);
  }, [defaultAuthor]);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = await fetch(`/api/tickets/${ticketId}/comments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ author, body }),
      });
      if (!res.ok) {
        setError(await apiError(res));
        return;
      }
      onAdded(await res.json());
      setBody('');
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="form" onSubmit={submit}>
      <input
        data-testid="comment-author"
        value={author}
        onChange={(e) => {
          touched.current = true;
          setAuthor(e.target.value);
        }}
        placeholder="Your name"
        aria-label="author"
        maxLength={100}
        required
      />
      <textarea
        data-testid="comment-body-input"
        value={body}
        onChange={(e) => setBody(e.target.value)}
        placeholder="Write a comment"
        aria-label="comment"
        rows={3}
        maxLength={10000}
        required
      />
      <div className="row end">
        {error ? <span className="error">{error}</span> : null}
        <button data-testid="comment-submit" type="submit" disabled={busy}>
          {busy ? 'Posting…' : 'Comment'}
        </button>
      </div>
    </form>
  );
}

function AttachmentForm({ ticketId, onAdded }) {
  const inputRef = useRef(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  async function submit(event) {
    event.preventDefault();
    const file = inputRef.current?.files?.[0];
    if (!file) {
      setError('choose a file first');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const form = new FormData();
      form.append('file', file);
      const res = await fetch(`/api/tickets/${ticketId}/attachments`, { method: 'POST', body: form });
      if (!res.ok) {
        setError(await apiError(res));
        return;
      }
      onAdded(await res.json());
      inputRef.current.value = '';
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="row upload" onSubmit={submit}>
      <input data-testid="attachment-input" ref={inputRef} type="file" name="file" aria-label="file" />
      <button data-testid="attachment-submit" type="submit" disabled={busy}>
        {busy ? 'Uploading…' : 'Upload'}
      </button>
      {error ? <span className="error">{error}</span> : null}
    </form>
  );
}
