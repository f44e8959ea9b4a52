'use strict';
// socket.io's Socket (one namespace on one Engine.IO session; its `conn` is engine-io.js's
// Conn). Exists only for namespaces with JS hooks: the engine keeps the real state (rooms, acks
// on the wire, heartbeats); this mirrors what JS needs.
const { EventEmitter } = require('node:events');
const { encode } = require('./parser-helpers.js');
const { BroadcastOperator, RESERVED_EVENTS, flagBits, currentTurn } = require('./broadcast.js');
const { Conn } = require('./engine-io.js');

// A socket's rooms, kept small: an exact-size array while there are few (most sockets have
// their own id and a room or two), a Set from 9 on. `socket.rooms` is a Set made from it.
const NO_ROOMS = Object.freeze([]);
function roomsHas(rooms, r) {
  return rooms instanceof Set ? rooms.has(r) : rooms.includes(r);
}
function roomsAdd(rooms, r) {
  if (rooms instanceof Set) return rooms.add(r);
  if (rooms.includes(r)) return rooms;
  if (rooms.length >= 8) return new Set(rooms).add(r);
  const next = new Array(rooms.length + 1); // exact size: a spread would leave room to grow
  for (let i = 0; i < rooms.length; i++) next[i] = rooms[i];
  next[rooms.length] = r;
  return next;
}
function roomsDelete(rooms, r) {
  if (rooms instanceof Set) {
    rooms.delete(r);
    return rooms;
  }
  return rooms.includes(r) ? rooms.filter((x) => x !== r) : rooms;
}

// A socket's listener table. EventEmitter's own (`{ __proto__: null }`) is a dictionary-mode
// object of about 180 bytes; an instance of this constructor has nothing on its prototype chain
// either (so `events[type]` finds only listeners) but starts with fast properties, and a
// socket's few event names fit in the object itself.
function ListenerTable() {}
ListenerTable.prototype = Object.create(null);

class Socket extends EventEmitter {
  constructor(nsp, nativeId, id, conn, auth) {
    super();
    this._events = new ListenerTable();
    this.nsp = nsp;
    this.id = id;
    this.conn = conn;
    this.connected = false;
    this._nativeId = nativeId;
    this._rooms = NO_ROOMS;
    this._auth = auth; // null: none sent (handshake.auth is {} then)
    this._issued = Date.now();
    // Everything else (the handshake, client, data, acks, middleware, flags, any-listeners) is
    // a prototype default until first use: an idle socket keeps a dozen fields.
  }

  get server() {
    return this.nsp.server;
  }

  get handshake() {
    if (!this._handshake) {
      const info = this.conn._info;
      this._handshake = {
        headers: info.headers,
        time: `${new Date(this._issued)}`,
        address: info.address,
        xdomain: info.xdomain,
        secure: info.secure,
        issued: this._issued,
        url: info.url,
        query: info.query,
        auth: this._auth || {},
      };
    }
    return this._handshake;
  }

  get client() {
    const conn = this.conn;
    return (this._client ??= { id: conn.id, conn, server: this.nsp.server, get request() { return conn.request; } });
  }

  get data() {
    return (this._data ??= {});
  }

  set data(value) {
    this._data = value;
  }

  get flags() {
    return (this._flags ??= {});
  }

  set flags(value) {
    this._flags = value;
  }

  get _acks() {
    return (this._acksMap ??= new Map());
  }

  get _fns() {
    return (this._fnsList ??= []);
  }

  get request() {
    return this.conn.request;
  }

  get disconnected() {
    return !this.connected;
  }

  /** The rooms it is in (a Set made on each call; join/leave change them). */
  get rooms() {
    return new Set(this._rooms);
  }

  emit(ev, ...args) {
    if (RESERVED_EVENTS.has(ev)) throw new Error(`"${String(ev)}" is a reserved event name`);
    const data = [ev, ...args];
    let ackId = -1;
    if (typeof data[data.length - 1] === 'function') {
      ackId = this.nsp._ids++;
      this._registerAck(ackId, data.pop());
    }
    const flags = this._flags;
    this._flags = null;
    this._notifyOutgoing(data);
    const { json, attachments } = encode(data);
    this.server.sidewire._native.sioEmit(this._nativeId, json, attachments, ackId, flagBits(flags), currentTurn(), this.nsp._index);
    return true;
  }

  emitWithAck(ev, ...args) {
    const withErr = this.flags.timeout !== undefined;
    return new Promise((resolve, reject) => {
      args.push((arg1, arg2) => {
        if (withErr) return arg1 ? reject(arg1) : resolve(arg2);
        return resolve(arg1);
      });
      this.emit(ev, ...args);
    });
  }

  _registerAck(id, ack) {
    const timeout = this.flags.timeout;
    if (timeout === undefined) {
      this._acks.set(id, ack);
      return;
    }
    const timer = setTimeout(() => {
      this._acks.delete(id);
      ack.call(this, new Error('operation has timed out'));
    }, timeout);
    this._acks.set(id, (...args) => {
      clearTimeout(timer);
      ack.apply(this, [null, ...args]);
    });
  }

  send(...args) {
    this.emit('message', ...args);
    return this;
  }

  write(...args) {
    this.emit('message', ...args);
    return this;
  }

  join(rooms) {
    if (this._closed) return;
    const list = (Array.isArray(rooms) ? rooms : [rooms]).map(String);
    this._joinMirror(list);
    this.server.sidewire._native.sioJoin(this._nativeId, list);
  }

  leave(room) {
    if (this._closed) return;
    const r = String(room);
    this._leaveMirror(r);
    this.server.sidewire._native.sioLeave(this._nativeId, r);
  }

  // The JS side of a join or a leave (the engine is told by the caller): socket.rooms, and the
  // adapter's views with their events when someone reads them.
  _joinMirror(list) {
    for (const r of list) this._rooms = roomsAdd(this._rooms, r);
    const views = this.nsp._views;
    if (views) views._join(this.id, list);
  }

  _leaveMirror(r) {
    this._rooms = roomsDelete(this._rooms, r);
    const views = this.nsp._views;
    if (views) views._leave(this.id, r);
  }

  to(room) {
    return this._newBroadcastOperator().to(room);
  }

  in(room) {
    return this._newBroadcastOperator().in(room);
  }

  except(room) {
    return this._newBroadcastOperator().except(room);
  }

  get broadcast() {
    return this._newBroadcastOperator();
  }

  get local() {
    return this._newBroadcastOperator().local;
  }

  get volatile() {
    this.flags.volatile = true;
    return this;
  }

  compress(compress) {
    this.flags.compress = compress;
    return this;
  }

  timeout(timeout) {
    this.flags.timeout = timeout;
    return this;
  }

  _newBroadcastOperator() {
    const flags = { ...this._flags };
    this._flags = null;
    return new BroadcastOperator(this.nsp, new Set(), new Set([this.id]), flags);
  }

  /** Disconnects this socket ("server namespace disconnect"); `close` ends the whole session. */
  disconnect(close = false) {
    if (!this.connected) return this;
    this.server.sidewire._native.sioDisconnect(this._nativeId, Boolean(close));
    this._closeLocally(close);
    return this;
  }

  // What socket.io does in JS when the server disconnects a socket: with `close`, every socket
  // of the session gets "server namespace disconnect" (socket.io's client._disconnect()).
  _closeLocally(close) {
    if (close) {
      for (const other of this.conn._sockets.slice()) if (other !== this) other._onclose('server namespace disconnect');
    }
    this._onclose('server namespace disconnect');
  }

  /** Per-packet middleware: fn([event, ...args], next). */
  use(fn) {
    this._fns.push(fn);
    return this;
  }

  _run(event, fn) {
    if (!this._fns.length) return fn();
    const fns = this._fns.slice(0);
    const step = (i) => {
      fns[i](event, (err) => {
        if (err) return fn(err);
        if (!fns[i + 1]) return fn();
        return step(i + 1);
      });
    };
    return step(0);
  }

  // An EVENT from the client: args already decoded.
  _onevent(args, ackId) {
    if (ackId >= 0) args.push(this._ack(ackId));
    if (this._anyListeners && this._anyListeners.length) {
      for (const listener of this._anyListeners.slice()) listener.apply(this, args);
    }
    this._run(args, (err) => {
      process.nextTick(() => {
        if (err) {
          this._onerror(err);
          return;
        }
        if (this.connected) EventEmitter.prototype.emit.apply(this, args);
      });
    });
  }

  _ack(id) {
    let sent = false;
    return (...args) => {
      if (sent) return;
      sent = true;
      const { json, attachments } = encode(args);
      this.server.sidewire._native.sioAck(this._nativeId, id, json, attachments, currentTurn());
    };
  }

  // An ACK from the client for one of this socket's emits. False when the id is not ours.
  _onack(id, args) {
    const ack = this._acks.get(id);
    if (typeof ack !== 'function') return false;
    this._acks.delete(id);
    ack.apply(this, args);
    return true;
  }

  _onerror(err) {
    // As socket.io: an 'error' without listeners must not throw.
    if (this.listenerCount('error') > 0) EventEmitter.prototype.emit.call(this, 'error', err);
  }

  // Accepted by the namespace: the engine has sent the CONNECT packet.
  _onconnect() {
    this.connected = true;
    // The rooms the engine put it in as it connected (a recovered socket's own, its user's room
    // with auth.jwt): the views hear of them.
    this._joinMirror([this.id, ...this._rooms]);
    const siblings = this.conn._sockets;
    if (siblings.length === 0) this.conn._sockets = [this]; // exact size: most sessions have one
    else if (!siblings.includes(this)) siblings.push(this);
  }

  _onclose(reason, description) {
    if (!this.connected) return this;
    EventEmitter.prototype.emit.call(this, 'disconnecting', reason, description);
    this._cleanup();
    this.connected = false;
    EventEmitter.prototype.emit.call(this, 'disconnect', reason, description);
    return this;
  }

  _cleanup() {
    this._closed = true;
    const views = this.nsp._views;
    if (views) views._leaveAll(this.id);
    this._rooms = NO_ROOMS;
    const i = this.conn._sockets.indexOf(this);
    if (i >= 0) this.conn._sockets.splice(i, 1);
    this.nsp._remove(this);
    this.server._sockets.delete(this._nativeId);
  }

  onAny(listener) {
    (this._anyListeners ||= []).push(listener);
    return this;
  }

  prependAny(listener) {
    (this._anyListeners ||= []).unshift(listener);
    return this;
  }

  offAny(listener) {
    if (!this._anyListeners) return this;
    if (listener) {
      const i = this._anyListeners.indexOf(listener);
      if (i >= 0) this._anyListeners.splice(i, 1);
    } else {
      this._anyListeners = [];
    }
    return this;
  }

  listenersAny() {
    return this._anyListeners || [];
  }

  onAnyOutgoing(listener) {
    (this._anyOutgoingListeners ||= []).push(listener);
    this.nsp._outgoing.add(this);
    return this;
  }

  prependAnyOutgoing(listener) {
    (this._anyOutgoingListeners ||= []).unshift(listener);
    this.nsp._outgoing.add(this);
    return this;
  }

  offAnyOutgoing(listener) {
    if (!this._anyOutgoingListeners) return this;
    if (listener) {
      const i = this._anyOutgoingListeners.indexOf(listener);
      if (i >= 0) this._anyOutgoingListeners.splice(i, 1);
    } else {
      this._anyOutgoingListeners = [];
    }
    if (!this._anyOutgoingListeners.length) this.nsp._outgoing.delete(this);
    return this;
  }

  listenersAnyOutgoing() {
    return this._anyOutgoingListeners || [];
  }

  _notifyOutgoing(data) {
    if (this._anyOutgoingListeners && this._anyOutgoingListeners.length) {
      for (const listener of this._anyOutgoingListeners.slice()) listener.apply(this, data);
    }
  }
}

// Prototype defaults: own fields appear only on the sockets that use them.
Object.assign(Socket.prototype, {
  recovered: false,
  pid: undefined, // connectionStateRecovery's private id
  _gone: false, // the engine reported it closed before it was accepted
  _closed: false,
  _anyListeners: undefined,
  _anyOutgoingListeners: undefined,
  _handshake: null,
  _client: null,
  _data: null,
  _acksMap: null,
  _fnsList: null,
  _flags: null,
});

module.exports = { Socket, Conn, roomsHas, roomsAdd, roomsDelete };
