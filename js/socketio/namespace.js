'use strict';
// socket.io's Namespace and ParentNamespace (dynamic namespaces). A namespace tells the engine
// whether JS wants its connections and events (sioSetNamespaceHooks): a namespace nobody
// listens to runs entirely in the engine.
const { EventEmitter } = require('node:events');
const { encode } = require('./parser-helpers.js');
const { BroadcastOperator, currentTurn, flagBits } = require('./broadcast.js');
const { roomsHas } = require('./socket.js');
const { Adapter } = require('./adapter.js');
const { Presence } = require('./presence.js');

// socket.io's namespace RESERVED_EVENTS (for serverSideEmit).
const RESERVED_EVENTS = new Set(['connect', 'connection', 'new_namespace']);

let serverSideEmitWarned = false;

function matches(socket, rooms, except) {
  const own = socket._rooms;
  if (rooms.length) {
    let hit = false;
    for (const r of rooms) {
      if (roomsHas(own, r)) {
        hit = true;
        break;
      }
    }
    if (!hit) return false;
  }
  for (const r of except) if (roomsHas(own, r)) return false;
  return true;
}

class Namespace extends EventEmitter {
  constructor(server, name, { native = true } = {}) {
    super();
    this.name = name;
    this.server = server;
    /** Live sockets (only on namespaces with JS hooks: 'connection' listeners or middleware). */
    this.sockets = new Map();
    this._preConnectSockets = new Map();
    this._fns = [];
    this._ids = 0;
    this._outgoing = new Set(); // sockets with onAnyOutgoing listeners
    this._broadcastAcks = new Map(); // ackId → collector (BroadcastOperator.emit with an ack)
    this._hooksQueued = false;
    this._applied = { connect: false, events: false };
    this._adapter = null; // made on first use (at once in a fleet: it subscribes)
    this._cluster = null; // the ClusterAdapter, in a fleet
    this._trackSockets = false; // JS keeps its sockets whatever the listeners (adapter views, cleanup)
    this._parent = null; // a dynamic child removed once empty (cleanupEmptyChildNamespaces)
    this._presence = null; // js/socketio/presence.js, once read
    this._index = native ? server.sidewire._native.sioAddNamespace(name) : -1;
    if (native && server._adapterFactory) this._adapter = new server._adapterFactory(this);
  }

  /**
   * socket.io's in-memory adapter: rooms and sids as read-only live views, room events; in a
   * fleet (sidewire/redis-adapter) the same views plus the fleet's requests.
   */
  get adapter() {
    return (this._adapter ??= this.server._adapterFactory ? new this.server._adapterFactory(this) : new Adapter(this));
  }

  /**
   * sidewire's presence: the distinct users of a room (socket.data.user, or the token's sub)
   * and 'join' / 'leave' (room, user) when a user's first socket joins and its last leaves, for
   * the fleet (js/socketio/presence.js).
   */
  get presence() {
    if (!this._presence) this._presence = new Presence(this);
    return this._presence;
  }

  // io.adapter(...) after the namespace was made: its adapter is made again (views kept live).
  _replaceAdapter() {
    const old = this._adapter;
    if (old && typeof old.close === 'function') old.close();
    this._cluster = null;
    this._adapter = null;
    if (this._index < 0) return;
    const fresh = this.adapter;
    if (old && old._tracking) fresh._track();
    if (this._presence) this._presence._attach(fresh);
  }

  // The adapter's views, when someone reads them (else null: nothing to keep up to date).
  get _views() {
    const a = this._adapter;
    return a !== null && a._tracking ? a : null;
  }

  // ----------------------------------------------------------------------------------- hooks

  _wantsConnect() {
    return (
      this._fns.length > 0 ||
      this._trackSockets ||
      this.listenerCount('connection') + this.listenerCount('connect') > 0 ||
      this.sockets.size > 0 ||
      this._preConnectSockets.size > 0
    );
  }

  _queueHooks() {
    if (this._hooksQueued || this._index < 0) return;
    this._hooksQueued = true;
    queueMicrotask(() => {
      this._hooksQueued = false;
      this._applyHooks();
    });
  }

  _applyHooks() {
    if (this._index < 0 || this.server._closed) return;
    // A child removed when it emptied whose engine slot a fresh child of the same name took.
    const owner = this.server._byIndex[this._index];
    if (owner !== undefined && owner !== this) return;
    const connect = this._wantsConnect();
    const events = connect || this._broadcastAcks.size > 0;
    if (connect === this._applied.connect && events === this._applied.events) return;
    this._applied = { connect, events };
    // The session hooks (handshakes, EIO_CLOSE) go on before the first namespace needs them.
    this.server._updateHooks();
    this.server.sidewire._native.sioSetNamespaceHooks(this._index, connect, events);
  }

  // -------------------------------------------------------------------------------- middleware

  use(fn) {
    this._fns.push(fn);
    this._queueHooks();
    return this;
  }

  _run(socket, fn) {
    if (!this._fns.length) return fn();
    const fns = this._fns.slice(0);
    const step = (i) => {
      fns[i](socket, (err) => {
        if (err) return fn(err);
        if (!fns[i + 1]) return fn();
        return step(i + 1);
      });
    };
    return step(0);
  }

  // The middleware passed: the engine sends CONNECT, then the app hears 'connection'.
  _doConnect(socket) {
    this._preConnectSockets.delete(socket.id);
    this.sockets.set(socket.id, socket);
    this._applyHooks(); // a new (dynamic) namespace: its hooks before its first socket
    this.server.sidewire._native.sioAccept(socket._nativeId, this._index, currentTurn());
    if (socket.recovered) this.server._recoveryData.delete(socket.pid);
    socket._onconnect();
    EventEmitter.prototype.emit.call(this, 'connect', socket);
    EventEmitter.prototype.emit.call(this, 'connection', socket);
  }

  _remove(socket) {
    if (!this.sockets.delete(socket.id)) this._preConnectSockets.delete(socket.id);
    // A socket refused by middleware leaves the rooms it joined there (the views, presence).
    const views = this._views;
    if (views) views._leaveAll(socket.id);
    this._outgoing.delete(socket);
    // As socket.io: a child of a dynamic namespace goes once its last socket left (or was refused).
    if (this._parent && this.sockets.size === 0) this._parent._removeChild(this);
    if (this.sockets.size === 0 && this._preConnectSockets.size === 0) this._queueHooks();
  }

  // ----------------------------------------------------------------------------- broadcasting

  _broadcast(data, rooms, except, flags, ackId) {
    // As socket.io: after io.close() an emit reaches nobody (timers such as admin-ui's stats
    // outlive the server), and must not throw at a stopped engine.
    if (this.server._closed) return;
    if (this._outgoing.size) {
      for (const socket of this._outgoing) if (socket.connected && matches(socket, rooms, except)) socket._notifyOutgoing(data);
    }
    const { json, attachments } = encode(data);
    this.server.sidewire._native.sioBroadcast(this._index, rooms, except, json, attachments, ackId, flags, currentTurn());
  }

  // A broadcast with acks to this node's sockets only, for another node of the fleet: how many
  // clients it went to (once every I/O thread counted), then each client's answer, until
  // `timeoutMs` has passed.
  _broadcastWithAckLocally(data, rooms, except, flags, timeoutMs, onCount, onAck) {
    if (this.server._closed) return;
    const ackId = this._ids++;
    let total = 0;
    let reported = 0;
    this._startBroadcastAck(ackId, {
      onCount: (count, threads) => {
        total += count;
        if (++reported === threads) onCount(total);
      },
      onResponse: onAck,
    });
    setTimeout(() => this._endBroadcastAck(ackId), timeoutMs).unref();
    this._broadcast(data, rooms, except, flagBits({ ...flags, local: true }), ackId);
  }

  // An event from another node's serverSideEmit: this namespace's own listeners hear it.
  _onServerSideEmit(args) {
    EventEmitter.prototype.emit.apply(this, args);
  }

  _startBroadcastAck(ackId, collector) {
    this._broadcastAcks.set(ackId, collector);
    // ACKs must cross into JS before the packet goes out: applied now, not in a microtask.
    if (!this._applied.events) this._applyHooks();
  }

  _endBroadcastAck(ackId) {
    this._broadcastAcks.delete(ackId);
    if (this._broadcastAcks.size === 0) this._queueHooks();
  }

  // The JS sockets a selection picks, in the order socket.io's in-memory adapter visits them
  // when the adapter's views exist (their room events come in that order).
  _selected(rooms, except) {
    const views = this._views;
    if (!views) return [...this.sockets.values()].filter((s) => matches(s, rooms, except));
    const excluded = new Set();
    for (const r of except) for (const id of views._rooms.get(r) || []) excluded.add(id);
    const hit = [];
    const seen = new Set();
    const visit = (id) => {
      if (seen.has(id) || excluded.has(id)) return;
      const socket = this.sockets.get(id);
      if (socket) {
        seen.add(id);
        hit.push(socket);
      }
    };
    if (rooms.length) {
      for (const r of rooms) for (const id of views._rooms.get(r) || []) visit(id);
    } else {
      for (const id of views._sids.keys()) visit(id);
    }
    return hit;
  }

  // `engineDone`: the engine applied it already (another node's request, which the cluster
  // adapter applies in Redis's order among the broadcasts): only JS's mirror is left to do.
  _socketsJoin(rooms, except, toJoin, engineDone = false) {
    for (const socket of this._selected(rooms, except)) socket._joinMirror(toJoin);
    if (!engineDone) this.server.sidewire._native.sioSocketsJoin(this._index, rooms, except, toJoin);
  }

  _socketsLeave(rooms, except, toLeave, engineDone = false) {
    const hit = this._selected(rooms, except);
    for (const socket of hit) for (const r of toLeave) socket._leaveMirror(r);
    if (!engineDone) this.server.sidewire._native.sioSocketsLeave(this._index, rooms, except, toLeave);
  }

  _disconnectSockets(rooms, except, close, engineDone = false) {
    const hit = this._selected(rooms, except);
    if (!engineDone) this.server.sidewire._native.sioDisconnectSockets(this._index, rooms, except, close);
    for (const socket of hit) socket._closeLocally(close);
  }

  // ------------------------------------------------------------------------------ public API

  to(room) {
    return new BroadcastOperator(this).to(room);
  }

  in(room) {
    return new BroadcastOperator(this).in(room);
  }

  except(room) {
    return new BroadcastOperator(this).except(room);
  }

  emit(ev, ...args) {
    return new BroadcastOperator(this).emit(ev, ...args);
  }

  send(...args) {
    this.emit('message', ...args);
    return this;
  }

  write(...args) {
    this.emit('message', ...args);
    return this;
  }

  /**
   * As socket.io with its default (in-memory) adapter: there are no other servers, so the
   * event goes nowhere. This server's own listeners are not called, and an acknowledgement
   * callback is never called (socket.io prints the same warning).
   */
  serverSideEmit(ev, ...args) {
    if (RESERVED_EVENTS.has(ev)) throw new Error(`"${String(ev)}" is a reserved event name`);
    if (this._cluster) {
      this._cluster.serverSideEmit([ev, ...args]);
      return true;
    }
    if (!serverSideEmitWarned) {
      serverSideEmitWarned = true;
      console.warn('this adapter does not support the serverSideEmit() functionality');
    }
    return true;
  }

  serverSideEmitWithAck(ev, ...args) {
    return new Promise((resolve, reject) => {
      args.push((err, responses) => {
        if (err) {
          err.responses = responses;
          reject(err);
        } else {
          resolve(responses);
        }
      });
      this.serverSideEmit(ev, ...args);
    });
  }

  /** @deprecated as in socket.io: use fetchSockets(). */
  allSockets() {
    return new BroadcastOperator(this).allSockets();
  }

  compress(compress) {
    return new BroadcastOperator(this).compress(compress);
  }

  get volatile() {
    return new BroadcastOperator(this).volatile;
  }

  get local() {
    return new BroadcastOperator(this).local;
  }

  timeout(timeout) {
    return new BroadcastOperator(this).timeout(timeout);
  }

  fetchSockets() {
    return new BroadcastOperator(this).fetchSockets();
  }

  socketsJoin(room) {
    return new BroadcastOperator(this).socketsJoin(room);
  }

  socketsLeave(room) {
    return new BroadcastOperator(this).socketsLeave(room);
  }

  disconnectSockets(close = false) {
    return new BroadcastOperator(this).disconnectSockets(close);
  }
}

/**
 * The namespace io.of(regex | fn) returns. Not a namespace of the engine: each matching name
 * becomes a child namespace that takes over the parent's middleware and connection listeners.
 */
// Adding or removing a 'connection'/'connect' listener may change the hooks. (Not through
// 'newListener': emit() is the namespace's broadcast, so EventEmitter's own events are off.)
for (const method of ['on', 'addListener', 'prependListener', 'once', 'prependOnceListener', 'off', 'removeListener']) {
  Namespace.prototype[method] = function hooked(ev, listener) {
    EventEmitter.prototype[method].call(this, ev, listener);
    if (ev === 'connection' || ev === 'connect') this._queueHooks();
    return this;
  };
}
Namespace.prototype.removeAllListeners = function removeAllListeners(...args) {
  EventEmitter.prototype.removeAllListeners.apply(this, args);
  this._queueHooks();
  return this;
};

class ParentNamespace extends Namespace {
  constructor(server) {
    super(server, `/_${ParentNamespace.count++}`, { native: false });
    this.children = new Set();
    this._children = this.children;
  }

  // cleanupEmptyChildNamespaces: the child is forgotten (io._nsps, children). Its engine slot
  // keeps the name with CONNECTs going to JS (the child tracks its sockets, so its hooks are
  // on): the next client that asks for the name goes through the parents again, and the fresh
  // child they create gets the same slot back (sioAddNamespace is idempotent per name).
  _removeChild(nsp) {
    const server = this.server;
    if (server._nsps.get(nsp.name) === nsp) server._nsps.delete(nsp.name);
    if (server._byIndex[nsp._index] === nsp) server._byIndex[nsp._index] = undefined;
    if (nsp._cluster) nsp._cluster.close(); // a fresh child of the same name registers again
    this.children.delete(nsp);
  }

  emit(ev, ...args) {
    for (const nsp of this.children) nsp.emit(ev, ...args);
    return true;
  }

  createChild(name) {
    const nsp = new Namespace(this.server, name);
    for (const fn of this._fns) nsp.use(fn);
    for (const listener of this.listeners('connect')) nsp.on('connect', listener);
    for (const listener of this.listeners('connection')) nsp.on('connection', listener);
    if (this.server.opts.cleanupEmptyChildNamespaces) {
      // JS must see its sockets come and go to know when it is empty.
      nsp._parent = this;
      nsp._trackSockets = true;
    }
    this.children.add(nsp);
    this.server._registerNamespace(nsp);
    nsp._applyHooks(); // now: the engine may see a CONNECT for it at any moment
    EventEmitter.prototype.emit.call(this.server.sockets, 'new_namespace', nsp);
    return nsp;
  }

  fetchSockets() {
    throw new Error('fetchSockets() is not supported on parent namespaces');
  }
}
ParentNamespace.count = 0;

module.exports = { Namespace, ParentNamespace, RESERVED_EVENTS };
