'use strict';
// Presence (sidewire-only; socket.io has nothing like it): a room's members as distinct users
// rather than sockets, and an event when a user's first socket joins a room and when the last
// one leaves, across every device of the user and every node of the fleet. The user of a
// socket is its `socket.data.user` (a string or number, or an object's `id`, else its `sub`:
// with auth.jwt that is the verified token's claims), read when the socket joins the room.
//
// Built on the namespace adapter's room views (join-room / leave-room), which the engine's
// own changes keep up to date. In a fleet a transition on this node is checked against the
// others (fetchSockets through the adapter) before it is reported: 'join' when no other node
// had the user in the room, 'leave' when none has it any more. Each transition is reported on
// the node where it happened, once for the fleet.
const { EventEmitter } = require('node:events');

/** The presence id of a socket (or a RemoteSocket): its data.user as above, or null. */
function userOf(socket) {
  const u = socket && socket.data ? socket.data.user : undefined;
  if (typeof u === 'string' && u !== '') return u;
  if (typeof u === 'number' && Number.isFinite(u)) return String(u);
  if (u && typeof u === 'object') {
    const id = u.id ?? u.sub;
    if ((typeof id === 'string' && id !== '') || (typeof id === 'number' && Number.isFinite(id))) return String(id);
  }
  return null;
}

class Presence extends EventEmitter {
  constructor(nsp) {
    super();
    this.nsp = nsp;
    this._rooms = new Map(); // room → Map(user → sockets of this node)
    this._counted = new Map(); // socket id → Map(room → user) it was counted as
    this._attach(nsp.adapter);
  }

  // Listens to `adapter`'s room views (again after io.adapter() replaced the namespace's): the
  // members it already has are counted without events.
  _attach(adapter) {
    this._rooms.clear();
    this._counted.clear();
    adapter.on('join-room', (room, id) => this._joined(room, id));
    adapter.on('leave-room', (room, id) => this._left(room, id));
    for (const [room, ids] of adapter._rooms) {
      for (const id of ids) this._joined(room, id, false);
    }
  }

  _joined(room, id, events = true) {
    if (room === id) return; // a socket's own room
    // Middleware may join rooms before the socket is connected.
    const socket = this.nsp.sockets.get(id) || this.nsp._preConnectSockets.get(id);
    const user = userOf(socket);
    if (user === null) return;
    let mine = this._counted.get(id);
    if (!mine) {
      mine = new Map();
      this._counted.set(id, mine);
    }
    if (mine.has(room)) return;
    mine.set(room, user);
    let users = this._rooms.get(room);
    if (!users) {
      users = new Map();
      this._rooms.set(room, users);
    }
    const n = (users.get(user) || 0) + 1;
    users.set(user, n);
    if (n === 1 && events) this._transition('join', room, user);
  }

  _left(room, id) {
    const mine = this._counted.get(id);
    if (!mine || !mine.has(room)) return;
    const user = mine.get(room);
    mine.delete(room);
    if (mine.size === 0) this._counted.delete(id);
    const users = this._rooms.get(room);
    const n = (users.get(user) || 1) - 1;
    if (n > 0) {
      users.set(user, n);
      return;
    }
    users.delete(user);
    if (users.size === 0) this._rooms.delete(room);
    this._transition('leave', room, user);
  }

  _transition(kind, room, user) {
    if (!this.nsp._cluster) {
      this.emit(kind, room, user);
      return;
    }
    // In a fleet: only if no other node has the user in the room. This node's own answer to
    // fetchSockets may lag behind its mirror (the join is on its way to the engine), so this
    // node's sockets are left out of the count and its mirror decides for itself.
    this.nsp.in(room).fetchSockets().then(
      (sockets) => {
        const elsewhere = sockets.some((s) => !this.nsp.sockets.has(s.id) && userOf(s) === user);
        if (elsewhere) return;
        const here = this.has(room, user);
        if (kind === 'join' ? here : !here) this.emit(kind, room, user);
      },
      (err) => {
        // A node did not answer: reported as this node sees it rather than not at all.
        this.nsp.server?.sidewire?._log?.('warn', `presence: the fleet did not answer for ${room} (${err && err.message})`);
        const here = this.has(room, user);
        if (kind === 'join' ? here : !here) this.emit(kind, room, user);
      },
    );
  }

  /** The distinct users in `room` on this node: [{ user, sockets }]. */
  local(room) {
    const users = this._rooms.get(String(room));
    return users ? [...users].map(([user, sockets]) => ({ user, sockets })) : [];
  }

  /** Whether `user` has a socket in `room` on this node. */
  has(room, user) {
    const users = this._rooms.get(String(room));
    return Boolean(users && users.has(String(user)));
  }

  /** The distinct users in `room` on every node (the adapter's fetchSockets): Promise of [{ user, sockets }]. */
  async users(room) {
    const name = String(room);
    const sockets = await this.nsp.in(name).fetchSockets();
    // This node's from its mirror (the engine's answer may not have the latest join yet).
    const counts = new Map(this._rooms.get(name) || []);
    for (const s of sockets) {
      if (this.nsp.sockets.has(s.id)) continue;
      const user = userOf(s);
      if (user !== null) counts.set(user, (counts.get(user) || 0) + 1);
    }
    return [...counts].map(([user, n]) => ({ user, sockets: n }));
  }
}

module.exports = { Presence, userOf };
