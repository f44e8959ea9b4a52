'use strict';
// socket.io's in-memory Adapter as JS sees it: `nsp.adapter.rooms` (room → socket ids) and
// `nsp.adapter.sids` (socket id → rooms), its room events and the methods apps call. Rooms
// live in the engine; these are views of the mirror JS keeps (socket._rooms), built the first
// time someone reads them or listens to a room event, and kept up to date from then on. Until
// then nothing here costs a byte per socket.
const { EventEmitter } = require('node:events');
const { BroadcastOperator } = require('./broadcast.js');

const ROOM_EVENTS = new Set(['create-room', 'delete-room', 'join-room', 'leave-room']);

function readOnly() {
  throw new TypeError(
    'sidewire: adapter.rooms and adapter.sids are read-only views (rooms live in the engine); ' +
      'use socket.join(), socket.leave() or io.in(room).socketsJoin()',
  );
}

// A Map and a Set that cannot be changed from outside; the adapter changes them through
// Map's and Set's own methods. To everyone else they are plain Maps and Sets (their prototype,
// deep equality in assert and test frameworks, util.inspect): the guards are own,
// non-enumerable properties (about 40 bytes a Set, paid only once someone reads the views).
const GUARD = { value: readOnly, writable: false, enumerable: false, configurable: false };
const MAP_GUARDS = { set: GUARD, delete: GUARD, clear: GUARD };
const SET_GUARDS = { add: GUARD, delete: GUARD, clear: GUARD };
function roomMap() {
  return Object.defineProperties(new Map(), MAP_GUARDS);
}
function roomSet() {
  return Object.defineProperties(new Set(), SET_GUARDS);
}
const mapSet = Map.prototype.set;
const mapDelete = Map.prototype.delete;
const setAdd = Set.prototype.add;
const setDelete = Set.prototype.delete;

function opsOf(nsp, opts = {}) {
  return new BroadcastOperator(nsp, new Set(opts.rooms || []), new Set(opts.except || []), { ...(opts.flags || {}) });
}

class Adapter extends EventEmitter {
  constructor(nsp) {
    super();
    this.nsp = nsp;
    this._rooms = null; // a read-only Map once tracked
    this._sids = null;
  }

  /** Room → Set of socket ids (a socket's own id is a room), read-only and live. */
  get rooms() {
    this._track();
    return this._rooms;
  }

  /** Socket id → Set of its rooms (its own id included), read-only and live. */
  get sids() {
    this._track();
    return this._sids;
  }

  get _tracking() {
    return this._rooms !== null;
  }

  // From now on the namespace's sockets are JS's (its hooks go on) and every change of their
  // rooms updates the views. Sockets that connected while the namespace had no hooks are the
  // engine's alone: they are not in the views (docs/socketio.md).
  _track() {
    if (this._rooms) return;
    this._rooms = roomMap();
    this._sids = roomMap();
    for (const socket of this.nsp.sockets.values()) {
      if (socket.connected) this._join(socket.id, socket._rooms, false);
    }
    if (!this.nsp._children) {
      this.nsp._trackSockets = true;
      this.nsp._applyHooks();
    }
  }

  // ------------------------------------------------------ kept up to date by Socket / Namespace

  _join(id, rooms, events = true) {
    let mine = this._sids.get(id);
    if (!mine) {
      mine = roomSet();
      mapSet.call(this._sids, id, mine);
    }
    for (const room of rooms) {
      setAdd.call(mine, room);
      let members = this._rooms.get(room);
      if (!members) {
        members = roomSet();
        mapSet.call(this._rooms, room, members);
        if (events) this.emit('create-room', room);
      }
      if (!members.has(id)) {
        setAdd.call(members, id);
        if (events) this.emit('join-room', room, id);
      }
    }
  }

  _leave(id, room) {
    const mine = this._sids.get(id);
    if (mine) setDelete.call(mine, room);
    this._del(room, id);
  }

  _leaveAll(id) {
    const mine = this._sids.get(id);
    if (!mine) return;
    for (const room of mine) this._del(room, id);
    mapDelete.call(this._sids, id);
  }

  _del(room, id) {
    const members = this._rooms.get(room);
    if (!members) return;
    if (setDelete.call(members, id)) this.emit('leave-room', room, id);
    if (members.size === 0 && mapDelete.call(this._rooms, room)) this.emit('delete-room', room);
  }

  // ---------------------------------------------------------- socket.io's Adapter methods

  init() {}

  close() {}

  /** One process: always 1. */
  serverCount() {
    return Promise.resolve(1);
  }

  addAll(id, rooms) {
    const socket = this.nsp.sockets.get(id);
    if (socket) socket.join([...rooms]);
    else opsOf(this.nsp, { rooms: [id] }).socketsJoin([...rooms]);
  }

  del(id, room) {
    const socket = this.nsp.sockets.get(id);
    if (socket) socket.leave(room);
    else opsOf(this.nsp, { rooms: [id] }).socketsLeave(room);
  }

  delAll(id) {
    const socket = this.nsp.sockets.get(id);
    if (!socket) return;
    for (const room of socket.rooms) if (room !== id) socket.leave(room);
  }

  socketRooms(id) {
    return this.sids.get(id);
  }

  /** The ids of the sockets in any of `rooms` (all of them when empty), from the engine. */
  sockets(rooms) {
    return this.fetchSockets({ rooms }).then((sockets) => new Set(sockets.map((s) => s.id)));
  }

  fetchSockets(opts) {
    return opsOf(this.nsp, opts).fetchSockets();
  }

  addSockets(opts, rooms) {
    opsOf(this.nsp, opts).socketsJoin([...rooms]);
  }

  delSockets(opts, rooms) {
    opsOf(this.nsp, opts).socketsLeave([...rooms]);
  }

  disconnectSockets(opts, close) {
    opsOf(this.nsp, opts).disconnectSockets(close);
  }

  /** An EVENT packet ({ type: 2, data: [event, ...args] }) to the selection of `opts`. */
  broadcast(packet, opts) {
    if (!packet || !Array.isArray(packet.data)) return;
    opsOf(this.nsp, opts).emit(...packet.data);
  }

  serverSideEmit() {
    console.warn('this adapter does not support the serverSideEmit() functionality');
  }

  persistSession() {}

  restoreSession() {
    return null;
  }
}

// A listener for a room event makes the views live (the events need them).
for (const method of ['on', 'addListener', 'prependListener', 'once', 'prependOnceListener']) {
  Adapter.prototype[method] = function listen(ev, listener) {
    EventEmitter.prototype[method].call(this, ev, listener);
    if (ROOM_EVENTS.has(ev)) this._track();
    return this;
  };
}

module.exports = { Adapter, ROOM_EVENTS };
