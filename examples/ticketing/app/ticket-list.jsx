'use client';
import Link from 'next/link';
import { useCallback, useState } from 'react';
import { useRoom, useSocketEvent } from './socket-provider';
import { PRIORITIES, formatTime, upsertById, apiError } from './format';

const newestFirst = (a, b) => b.id - a.id;

export default function TicketList({ initialTickets }) {
  const [tickets, setTickets] = useState(() => [...initialTickets].sort(newestFirst));
  const upsert = useCallback((...items) => setTickets((list) => upsertById(list, items, newestFirst)), []);

  useSocketEvent('ticket:created', (t) => upsert(t));
  useSocketEvent('ticket:updated', (t) => upsert(t));
  // After every (re)join: a fresh list, merged (events may have been missed while away).
  useRoom('tickets:join', 'tickets:leave', undefined, async () => {
    try {
      const res = await fetch('/api/tickets', { cache: 'no-store' });
      if (res.ok) upsert(...(await res.json()));
    } catch {
      // offline: the next reconnect tries again
    }
  });

  return (
    <section>
      <div className="page-head">
        <h1>Tickets</h1>
        <span className="muted">{tickets.length} total</span>
      </div>
      <NewTicketForm onCreated={upsert} />
      <table className="tickets" data-testid="ticket-list">
        <thead>
          <tr>
            <th className="num">#</th>
            <th>Title</th>
            <th>Status</th>
            <th>Priority</th>
            <th>Assignee</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {tickets.map((t) => (
            <tr key={t.id} data-testid="ticket-row" data-ticket-id={t.id}>
              <td className="num">{t.id}</td>
              <td>
                <Link href={`/tickets/${t.id}`}>{t.title}</Link>
              </td>
              <td>
                <span data-testid="ticket-status" className={`badge status-${t.status}`}>
                  {t.status}
                </span>
              </td>
              <td>
                <span className={`prio prio-${t.priority}`}>{t.priority}</span>
              </td>
              <td>{t.assignee || <span className="muted">—</span>}</td>
              <td className="muted nowrap">{formatTime(t.updated_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {tickets.length === 0 ? <p className="empty">No tickets yet: open the first one above.</p> : null}
    </section>
  );
}

function NewTicketForm({ onCreated }) {
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [priority, setPriority] = useState('normal');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = await fetch('/api/tickets', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title, description, priority }),
      });
      if (!res.ok) {
        setError(await apiError(res));
        return;
      }
      onCreated(await res.json());
      setTitle('');
      setDescription('');
      setPriority('normal');
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card form" onSubmit={submit}>
      <h2>New ticket</h2>
      <div className="row">
        <input
          data-testid="new-ticket-title"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          placeholder="Title"
          aria-label="title"
          maxLength={200}
          required
        />
        <select value={priority} onChange={(e) => setPriority(e.target.value)} aria-label="priority">
          {PRIORITIES.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      </div>
      <textarea
        data-testid="new-ticket-description"
        value={description}
        onChange={(e) => setDescription(e.target.value)}
        placeholder="Description (optional)"
        aria-label="description"
        rows={3}
        maxLength={10000}
      />
      <div className="row end">
        {error ? <span className="error">{error}</span> : null}
        <button data-testid="new-ticket-submit" type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create ticket'}
        </button>
      </div>
    </form>
  );
}
