'use strict';
// socket.io's BroadcastOperator and RemoteSocket. The engine selects the recipients (rooms,
// except), encodes once and fans out; JS counts broadcast acks and shapes the results.

// socket.io's socket-types RESERVED_EVENTS: emitting one of these throws.
const RESERVED_EVENTS = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

const FLAG_VOLATILE = 1;
const FLAG_NO_COMPRESS = 2; // compress(false): never permessage-deflate or httpCompression
const FLAG_LOCAL = 4; // this node's sockets only: not carried to the fleet

function flagBits(flags) {
  if (!flags) return 0;
  return (
    (flags.volatile ? FLAG_VOLATILE : 0) | (flags.compress === false ? FLAG_NO_COMPRESS : 0) | (flags.local ? FLAG_LOCAL : 0)
  );
}

// The turn of the event loop JS is in, passed with every emit, broadcast and CONNECT: as in
// engine.io, a transport written to stays unwritable for the rest of the turn (its write
// completes on process.nextTick at the earliest), so a volatile packet after it is dropped.
let turn = 1;
let turnEnds = false;
function nextTurn() {
  turnEnds = false;
  turn = turn >= 0x7fffffff ? 1 : turn + 1;
}
function currentTurn() {
  if (!turnEnds) {
    turnEnds = true;
    process.nextTick(nextTurn);
  }
  return turn;
}

function addRooms(set, room) {
  const next = new Set(set);
  if (Array.isArray(room)) for (const r of room) next.add(r);
  else next.add(room);
  return next;
}

class BroadcastOperator {
  constructor(nsp, rooms = new Set(), exceptRooms = new Set(), flags = {}) {
    this.nsp = nsp;
    this.rooms = rooms;
    this.exceptRooms = exceptRooms;
    this.flags = flags;
  }

  to(room) {
    return new BroadcastOperator(this.nsp, addRooms(this.rooms, room), this.exceptRooms, this.flags);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    return new BroadcastOperator(this.nsp, this.rooms, addRooms(this.exceptRooms, room), this.flags);
  }

  compress(compress) {
    return new BroadcastOperator(this.nsp, this.rooms, this.exceptRooms, { ...this.flags, compress });
  }

  get volatile() {
    return new BroadcastOperator(this.nsp, this.rooms, this.exceptRooms, { ...this.flags, volatile: true });
  }

  /** This node's sockets only (in a fleet; with one process, the same as without it). */
  get local() {
    return new BroadcastOperator(this.nsp, this.rooms, this.exceptRooms, { ...this.flags, local: true });
  }

  timeout(timeout) {
    return new BroadcastOperator(this.nsp, this.rooms, this.exceptRooms, { ...this.flags, timeout });
  }

  _selection() {
    return { rooms: [...this.rooms].map(String), except: [...this.exceptRooms].map(String) };
  }

  emit(ev, ...args) {
    if (RESERVED_EVENTS.has(ev)) throw new Error(`"${String(ev)}" is a reserved event name`);
    const data = [ev, ...args];
    const withAck = typeof data[data.length - 1] === 'function';
    if (this.nsp._children) return this._emitToChildren(data, withAck);
    const { rooms, except } = this._selection();
    if (!withAck) {
      this.nsp._broadcast(data, rooms, except, flagBits(this.flags), -1);
      return true;
    }
    const ack = data.pop();
    const single = Boolean(this.flags.expectSingleResponse);
    const responses = [];
    const cluster = this.flags.local ? null : this.nsp._cluster;
    const collector = {
      threadsExpected: Infinity, // each I/O thread's report says how many threads report
      threadsReported: 0,
      clientsExpected: 0,
      // In a fleet: the other nodes, once serverCount() said how many, each reporting its count.
      serversExpected: 0,
      serversReported: 0,
      done: false,
      onCount: (count, threads) => {
        collector.threadsExpected = threads;
        collector.clientsExpected += count;
        collector.threadsReported++;
        check();
      },
      onServers: (n) => {
        collector.serversExpected = n;
        check();
      },
      onRemoteCount: (count) => {
        collector.clientsExpected += count;
        collector.serversReported++;
        check();
      },
      onResponse: (response) => {
        responses.push(response);
        check();
      },
    };
    const ackId = this.nsp._ids++;
    const finish = (err) => {
      if (collector.done) return;
      collector.done = true;
      clearTimeout(timer);
      this.nsp._endBroadcastAck(ackId);
      if (err) ack.call(this, err, single ? null : responses);
      else ack.call(this, null, single ? responses[0] : responses);
    };
    const check = () => {
      if (
        collector.threadsReported === collector.threadsExpected &&
        collector.serversReported >= collector.serversExpected &&
        responses.length >= collector.clientsExpected
      ) {
        finish(null);
      }
    };
    // As socket.io: without timeout() the timer is setTimeout(fn, undefined), i.e. at once.
    const timer = setTimeout(() => finish(new Error('operation has timed out')), this.flags.timeout);
    this.nsp._startBroadcastAck(ackId, collector);
    this.nsp._broadcast(data, rooms, except, flagBits(this.flags), ackId);
    if (cluster) cluster._broadcastWithAck(data, rooms, except, this.flags, collector);
    return true;
  }

  // A parent (dynamic) namespace: each child namespace on its own; with an ack, the
  // responses of all children together.
  _emitToChildren(data, withAck) {
    const children = [...this.nsp._children];
    if (!withAck) {
      for (const child of children) new BroadcastOperator(child, this.rooms, this.exceptRooms, this.flags).emit(...data);
      return true;
    }
    const ack = data.pop();
    const all = [];
    let pending = children.length;
    let firstErr = null;
    if (pending === 0) {
      setTimeout(() => ack.call(this, null, []), 0);
      return true;
    }
    for (const child of children) {
      new BroadcastOperator(child, this.rooms, this.exceptRooms, this.flags).emit(...data, (err, responses) => {
        if (err && !firstErr) firstErr = err;
        if (Array.isArray(responses)) all.push(...responses);
        if (--pending === 0) ack.call(this, firstErr, all);
      });
    }
    return true;
  }

  emitWithAck(ev, ...args) {
    return new Promise((resolve, reject) => {
      args.push((err, responses) => {
        if (err) {
          err.responses = responses;
          reject(err);
        } else {
          resolve(responses);
        }
      });
      this.emit(ev, ...args);
    });
  }

  /** @deprecated as in socket.io: use fetchSockets(). */
  allSockets() {
    return this.fetchSockets().then((sockets) => new Set(sockets.map((s) => s.id)));
  }

  fetchSockets() {
    if (this.nsp._children) {
      return Promise.reject(new Error('fetchSockets() is not supported on parent namespaces'));
    }
    const { rooms, except } = this._selection();
    if (this.nsp._cluster && !this.flags.local) return this.nsp._cluster.fetchSockets({ rooms, except });
    return this.nsp.server._fetchSockets(this.nsp, rooms, except);
  }

  // In a fleet these happen here at once and are asked of the other nodes (request types 2-4).
  socketsJoin(room) {
    const toJoin = (Array.isArray(room) ? room : [room]).map(String);
    this._forEachNamespace((nsp, rooms, except) => {
      nsp._socketsJoin(rooms, except, toJoin);
      if (nsp._cluster && !this.flags.local) nsp._cluster._tellOthers(2, rooms, except, { rooms: toJoin });
    });
  }

  socketsLeave(room) {
    const toLeave = (Array.isArray(room) ? room : [room]).map(String);
    this._forEachNamespace((nsp, rooms, except) => {
      nsp._socketsLeave(rooms, except, toLeave);
      if (nsp._cluster && !this.flags.local) nsp._cluster._tellOthers(3, rooms, except, { rooms: toLeave });
    });
  }

  disconnectSockets(close = false) {
    this._forEachNamespace((nsp, rooms, except) => {
      nsp._disconnectSockets(rooms, except, Boolean(close));
      if (nsp._cluster && !this.flags.local) nsp._cluster._tellOthers(4, rooms, except, { close: Boolean(close) });
    });
  }

  _forEachNamespace(fn) {
    const { rooms, except } = this._selection();
    const targets = this.nsp._children ? [...this.nsp._children] : [this.nsp];
    for (const nsp of targets) fn(nsp, rooms, except);
  }
}

/** A socket as fetchSockets() returns it: a snapshot plus operations addressed to its id. */
class RemoteSocket {
  constructor(nsp, details) {
    this.id = details.id;
    this.handshake = details.handshake;
    this.rooms = new Set(details.rooms);
    this.data = details.data;
    this.operator = new BroadcastOperator(nsp, new Set([this.id]), new Set(), { expectSingleResponse: true });
  }

  timeout(timeout) {
    return this.operator.timeout(timeout);
  }

  emit(ev, ...args) {
    return this.operator.emit(ev, ...args);
  }

  join(room) {
    return this.operator.socketsJoin(room);
  }

  leave(room) {
    return this.operator.socketsLeave(room);
  }

  disconnect(close = false) {
    this.operator.disconnectSockets(close);
    return this;
  }
}

module.exports = { BroadcastOperator, RemoteSocket, RESERVED_EVENTS, flagBits, currentTurn };
