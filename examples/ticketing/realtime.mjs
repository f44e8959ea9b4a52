// The ticket desk's Socket.IO handlers, installed by server.mjs on the process's Server.
//
// Rooms: `tickets` (the list page: ticket:created, ticket:updated) and `ticket:<id>` (a ticket
// page: ticket:updated, comment:added, attachment:added, ticket:viewers). The API routes emit
// the data events (examples/ticketing/lib/api.js); this file handles joins, leaves and presence.
//
// Client → server (each takes an optional ack callback last, answered { ok: true } or
// { ok: false, error }):
//   tickets:join, tickets:leave
//   ticket:join <id>, ticket:leave <id>   (id: a positive integer, or a string of digits)
// Server → room `ticket:<id>`:
//   ticket:viewers { ticketId, viewers: [{ id, name }] }   after every join, leave, disconnect
// A viewer's name is its session token's `name` claim (server.mjs verifies the token in the
// engine: socket.data.user), else the handshake's `auth.name`, else 'anonymous'.

export const TICKETS_ROOM = 'tickets';
export const ticketRoom = (id) => `ticket:${id}`;
const TICKET_ROOM_RE = /^ticket:([1-9][0-9]*)$/;

/** A positive safe integer from a number or a string of digits, or null. */
export function parseTicketId(v) {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : null;
  if (typeof v === 'string' && /^[1-9][0-9]{0,15}$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : null;
  }
  return null;
}

/** The display name from the handshake: one line, at most 40 characters, or 'anonymous'. */
export function viewerName(v) {
  if (typeof v !== 'string') return 'anonymous';
  const s = v.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 40);
  return s || 'anonymous';
}

// The ack callback is the last argument when it is a function (`socket.emit('tickets:join', cb)`
// sends it alone, `socket.emit('ticket:join', 7, cb)` after the id).
export function splitAck(args) {
  const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
  return [args, (answer) => {
    if (ack) ack(answer);
  }];
}

const invalidId = { ok: false, error: 'invalid ticket id: expected a positive integer' };

/**
 * Installs the handlers on `io` (a sidewire or socket.io Server). Returns { refreshViewers }.
 */
export function attachTicketing(io, { log = console } = {}) {
  // One presence broadcast per ticket at a time; a change during one asks for another, so the
  // last list a room receives reflects the last join or leave. (Per process: in a fleet, two
  // nodes' updates made within the same few milliseconds may arrive in either order.)
  const pending = new Map(); // ticketId → { again }

  async function broadcastViewers(ticketId) {
    const room = ticketRoom(ticketId);
    // The room's sockets on every node (in a fleet, with the Redis adapter), and this node's.
    const [sockets, here] = await Promise.all([io.in(room).fetchSockets(), io.local.in(room).fetchSockets()]);
    const mine = new Set(here.map((s) => s.id));
    // Every connected socket of the main namespace is in io.sockets.sockets (it has listeners);
    // one of this node's that the engine still listed while it disconnects is left out. Other
    // nodes' sockets are kept: each node leaves out its own and sends the list after they go.
    const live = io.sockets.sockets;
    const viewers = sockets
      .filter((s) => !mine.has(s.id) || live.get(s.id)?.connected)
      .map((s) => ({ id: s.id, name: viewerName(s.data?.name) }));
    io.to(room).emit('ticket:viewers', { ticketId, viewers });
  }

  function refreshViewers(ticketId) {
    const running = pending.get(ticketId);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    pending.set(ticketId, state);
    (async () => {
      try {
        do {
          state.again = false;
          await broadcastViewers(ticketId);
        } while (state.again);
      } catch (err) {
        log.error(`[ticketing] presence update for ticket ${ticketId} failed:`, err);
      } finally {
        pending.delete(ticketId);
      }
    })();
  }

  io.on('connection', (socket) => {
    socket.data.name = viewerName(socket.data.user?.name ?? socket.handshake.auth?.name);
    if (socket.recovered) {
      // Back within the recovery window, in the rooms it had: it shows as a viewer again.
      for (const room of socket.rooms) {
        const m = TICKET_ROOM_RE.exec(room);
        if (m) refreshViewers(Number(m[1]));
      }
    }

    socket.on('tickets:join', (...raw) => {
      const [, reply] = splitAck(raw);
      socket.join(TICKETS_ROOM);
      reply({ ok: true });
    });

    socket.on('tickets:leave', (...raw) => {
      const [, reply] = splitAck(raw);
      socket.leave(TICKETS_ROOM);
      reply({ ok: true });
    });

    socket.on('ticket:join', (...raw) => {
      const [args, reply] = splitAck(raw);
      const id = parseTicketId(args[0]);
      if (id === null) return reply(invalidId);
      socket.join(ticketRoom(id));
      reply({ ok: true });
      refreshViewers(id);
      return undefined;
    });

    socket.on('ticket:leave', (...raw) => {
      const [args, reply] = splitAck(raw);
      const id = parseTicketId(args[0]);
      if (id === null) return reply(invalidId);
      const room = ticketRoom(id);
      const wasIn = socket.rooms.has(room);
      socket.leave(room);
      reply({ ok: true });
      if (wasIn) refreshViewers(id);
      return undefined;
    });

    // The rooms are still there while 'disconnecting' runs, gone by 'disconnect'.
    let viewed = [];
    socket.on('disconnecting', () => {
      viewed = [];
      for (const room of socket.rooms) {
        const m = TICKET_ROOM_RE.exec(room);
        if (m) viewed.push(Number(m[1]));
      }
    });
    socket.on('disconnect', () => {
      for (const id of viewed) refreshViewers(id);
    });
  });

  return { refreshViewers };
}
