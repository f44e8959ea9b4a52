'use strict';
// A namespace's adapter in a fleet: socket.io's in-memory views (adapter.js) plus the request
// protocol of @socket.io/redis-adapter, message for message, so that socket.io nodes with the
// official adapter, its emitter and sidewire nodes answer each other. Plain broadcasts never
// come here: the engine publishes and receives them itself. What does come here needs JS's
// state or JS's handlers: fetchSockets (socket.data), serverSideEmit, broadcasts with acks,
// socketsJoin/socketsLeave/disconnectSockets addressed to the whole fleet.
const crypto = require('node:crypto');
// notepack.io (the official adapter's encoding), loaded by the first adapter: a Server in no
// fleet never needs it.
let notepack = null;
const msgpack = {
  encode: (v) => (notepack ??= require('notepack.io')).encode(v),
  decode: (b) => (notepack ??= require('notepack.io')).decode(b),
};
const { Adapter } = require('./adapter.js');
const { RemoteSocket } = require('./broadcast.js');

const CLUSTER = Symbol.for('sidewire.cluster');

const RequestType = {
  SOCKETS: 0,
  ALL_ROOMS: 1,
  REMOTE_JOIN: 2,
  REMOTE_LEAVE: 3,
  REMOTE_DISCONNECT: 4,
  REMOTE_FETCH: 5,
  SERVER_SIDE_EMIT: 6,
  BROADCAST: 7,
  BROADCAST_CLIENT_COUNT: 8,
  BROADCAST_ACK: 9,
};

function requestId() {
  return crypto.randomBytes(9).toString('base64url').slice(0, 12);
}

// Requests and responses are JSON, but for those that carry a packet (binary values inside):
// MessagePack. The official adapter tells them apart by the first byte, as here.
function decodeMessage(payload) {
  const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  return buf[0] === 0x7b ? JSON.parse(buf.toString()) : msgpack.decode(buf);
}

function list(v) {
  return v ? [...v].map(String) : [];
}

// The flags that travel with a broadcast (socket.io's BroadcastFlags), without sidewire's own.
function wireFlags(flags = {}) {
  const out = {};
  for (const k of ['volatile', 'compress', 'local', 'timeout']) if (flags[k] !== undefined) out[k] = flags[k];
  return out;
}

class ClusterAdapter extends Adapter {
  constructor(nsp, settings) {
    super(nsp);
    this.settings = settings;
    this.requestsTimeout = settings.requestsTimeout;
    this.publishOnSpecificResponseChannel = settings.publishOnSpecificResponseChannel;
    this.link = nsp.server.sidewire._joinCluster(settings);
    this.uid = this.link.uid;
    this.requestChannel = `${settings.key}-request#${nsp.name}#`;
    this.responseChannel = `${settings.key}-response#${nsp.name}#`;
    this.requests = new Map(); // requestId → a pending request of ours
    this.ackRequests = new Map(); // requestId → a broadcast with acks of ours
    nsp._cluster = this;
    this.link.addNamespace(nsp.name, this);
  }

  close() {
    this.link.removeNamespace(this.nsp.name, this);
    for (const r of this.requests.values()) clearTimeout(r.timeout);
    this.requests.clear();
  }

  /**
   * The nodes of the fleet: subscribers of this namespace's request channel (PUBSUB NUMSUB),
   * as the official adapter counts. 1 while Redis is away: this node is all that can be reached.
   */
  serverCount() {
    if (!this.link.ready) return Promise.resolve(1);
    return this.link
      .command(['PUBSUB', 'NUMSUB', this.requestChannel], Math.max(1, Math.floor(this.requestsTimeout / 2)))
      .then(
        (reply) => Math.max(1, Number(Array.isArray(reply) ? reply[1] : 0) || 0),
        () => 1,
      );
  }

  _local() {
    return this.nsp.server._fetchSockets(this.nsp, [], []);
  }

  _publishResponse(request, response) {
    const channel = this.publishOnSpecificResponseChannel ? `${this.responseChannel}${request.uid}#` : this.responseChannel;
    this.link.publish(channel, response);
  }

  // A request that waits for `numSub - 1` answers, or fails after requestsTimeout.
  _ask(type, request, numSub, state, timeoutMessage) {
    const id = requestId();
    return new Promise((resolve, reject) => {
      const timeout = setTimeout(() => {
        if (this.requests.delete(id)) reject(new Error(timeoutMessage));
      }, this.requestsTimeout);
      this.requests.set(id, { type, numSub, msgCount: 1, resolve, timeout, ...state });
      this.link.publish(this.requestChannel, JSON.stringify({ uid: this.uid, requestId: id, type, ...request }));
    });
  }

  // --------------------------------------------------------------- what this node asks the fleet

  async fetchSockets(opts = {}) {
    const rooms = list(opts.rooms);
    const except = list(opts.except);
    const local = await this.nsp.server._fetchSockets(this.nsp, rooms, except);
    if (opts.flags && opts.flags.local) return local;
    const numSub = await this.serverCount();
    if (numSub <= 1) return local;
    const remote = await this._ask(
      RequestType.REMOTE_FETCH,
      { opts: { rooms, except } },
      numSub,
      { sockets: [] },
      'timeout reached while waiting for fetchSockets response',
    );
    return local.concat(remote.map((details) => new RemoteSocket(this.nsp, details)));
  }

  async sockets(rooms) {
    const sockets = await this.fetchSockets({ rooms });
    return new Set(sockets.map((s) => s.id));
  }

  async allRooms() {
    const local = await this._localRooms();
    const numSub = await this.serverCount();
    if (numSub <= 1) return local;
    const remote = await this._ask(RequestType.ALL_ROOMS, {}, numSub, { rooms: [] }, 'timeout reached while waiting for allRooms response');
    for (const r of remote) local.add(r);
    return local;
  }

  // ------------------------------------------- what both protocols answer the same way

  /** This node's sockets of a selection, as a fetchSockets answer carries them. */
  async _localDetails(opts) {
    const sockets = await this.nsp.server._fetchSockets(this.nsp, list(opts.rooms), list(opts.except));
    return sockets.map((s) => {
      const { sessionStore, ...handshake } = s.handshake || {};
      return { id: s.id, handshake, rooms: [...s.rooms], data: s.data };
    });
  }

  /** A serverSideEmit from another node; `answer` (once) when it asked for acks. */
  _serverSideEmitHere(packet, answer) {
    if (!answer) {
      this.nsp._onServerSideEmit(packet);
      return;
    }
    let called = false;
    this.nsp._onServerSideEmit([
      ...packet,
      (arg) => {
        if (called) return;
        called = true;
        answer(arg);
      },
    ]);
  }

  /** Another node's broadcast with acks, to this node's clients: their count, then each answer. */
  _broadcastWithAckHere(packet, opts, onCount, onAck) {
    if (!packet || !Array.isArray(packet.data) || packet.data.length === 0) return;
    const flags = opts.flags || {};
    this.nsp._broadcastWithAckLocally(
      packet.data,
      list(opts.rooms),
      list(opts.except),
      flags,
      flags.timeout === undefined ? this.requestsTimeout : Number(flags.timeout),
      onCount,
      onAck,
    );
  }

  async _localRooms() {
    const rooms = new Set();
    const stats = this.nsp.server.sidewire._native.sioStats();
    const mine = (stats.namespaces || {})[this.nsp.name];
    if (mine && mine.rooms) for (const r of Object.keys(mine.rooms)) rooms.add(r);
    for (const s of await this._local()) rooms.add(s.id);
    return rooms;
  }

  // socketsJoin, socketsLeave, disconnectSockets: done here at once (the BroadcastOperator did),
  // and asked of the others; this node ignores its own request when it comes back.
  _tellOthers(type, rooms, except, extra) {
    this.link.publish(this.requestChannel, JSON.stringify({ uid: this.uid, type, opts: { rooms, except }, ...extra }));
  }

  serverSideEmit(packet) {
    if (typeof packet[packet.length - 1] === 'function') {
      this.serverSideEmitWithAck(packet).catch(() => {});
      return;
    }
    this.link.publish(this.requestChannel, JSON.stringify({ uid: this.uid, type: RequestType.SERVER_SIDE_EMIT, data: packet }));
  }

  async serverSideEmitWithAck(packet) {
    const ack = packet.pop();
    const numSub = (await this.serverCount()) - 1; // not this node
    if (numSub <= 0) return ack(null, []);
    const id = requestId();
    const timeout = setTimeout(() => {
      const stored = this.requests.get(id);
      if (!stored) return;
      this.requests.delete(id);
      ack(new Error(`timeout reached: only ${stored.responses.length} responses received out of ${stored.numSub}`), stored.responses);
    }, this.requestsTimeout);
    this.requests.set(id, { type: RequestType.SERVER_SIDE_EMIT, numSub, timeout, resolve: ack, responses: [] });
    this.link.publish(
      this.requestChannel,
      JSON.stringify({ uid: this.uid, requestId: id, type: RequestType.SERVER_SIDE_EMIT, data: packet }),
    );
    return undefined;
  }

  /**
   * The fleet's part of a broadcast with acks (the BroadcastOperator does this node's): the
   * other nodes say how many clients they sent it to, then relay each client's answer.
   */
  _broadcastWithAck(data, rooms, except, flags, collector) {
    const id = requestId();
    collector.serversExpected = Infinity;
    this.serverCount().then((n) => collector.onServers(n - 1));
    this.ackRequests.set(id, {
      clientCountCallback: (count) => collector.onRemoteCount(count),
      ack: (response) => collector.onResponse(response),
    });
    setTimeout(() => this.ackRequests.delete(id), flags.timeout);
    const request = msgpack.encode({
      uid: this.uid,
      requestId: id,
      type: RequestType.BROADCAST,
      packet: { type: 2, data, nsp: this.nsp.name },
      opts: { rooms, except, flags: wireFlags(flags) },
    });
    this.link.publish(this.requestChannel, request);
  }

  // ------------------------------------------------------------ what the fleet asks this node

  // `applied`: the engine did the engine's part already (see _socketsJoin's engineDone).
  async _onRequest(payload, applied = false) {
    let request;
    try {
      request = decodeMessage(payload);
    } catch {
      return; // not ours to answer: the official adapter ignores it too
    }
    if (!request || typeof request !== 'object') return;
    const nsp = this.nsp;
    const fromMe = request.uid === this.uid;
    const opts = request.opts || {};
    try {
      switch (request.type) {
        case RequestType.SOCKETS: {
          if (this.requests.has(request.requestId)) return;
          const sockets = await nsp.server._fetchSockets(nsp, list(request.rooms), []);
          this._publishResponse(request, JSON.stringify({ requestId: request.requestId, sockets: sockets.map((s) => s.id) }));
          return;
        }
        case RequestType.ALL_ROOMS: {
          if (this.requests.has(request.requestId)) return;
          const rooms = await this._localRooms();
          this._publishResponse(request, JSON.stringify({ requestId: request.requestId, rooms: [...rooms] }));
          return;
        }
        case RequestType.REMOTE_JOIN:
        case RequestType.REMOTE_LEAVE:
        case RequestType.REMOTE_DISCONNECT: {
          if (fromMe) return;
          const byOpts = Boolean(request.opts);
          const rooms = byOpts ? list(opts.rooms) : [String(request.sid)];
          const except = byOpts ? list(opts.except) : [];
          const known = !byOpts && nsp.sockets.has(String(request.sid));
          // With a selection the engine has usually applied it already (native/adapter/
          // redis_adapter.cpp), in Redis's order among the broadcasts; a single sid's request
          // is done here.
          if (request.type === RequestType.REMOTE_JOIN) {
            nsp._socketsJoin(rooms, except, byOpts ? list(request.rooms) : [String(request.room)], applied);
          } else if (request.type === RequestType.REMOTE_LEAVE) {
            nsp._socketsLeave(rooms, except, byOpts ? list(request.rooms) : [String(request.room)], applied);
          } else {
            nsp._disconnectSockets(rooms, except, Boolean(request.close), applied);
          }
          if (known) this._publishResponse(request, JSON.stringify({ requestId: request.requestId }));
          return;
        }
        case RequestType.REMOTE_FETCH: {
          if (this.requests.has(request.requestId)) return;
          const sockets = await this._localDetails(opts);
          this._publishResponse(request, JSON.stringify({ requestId: request.requestId, sockets }));
          return;
        }
        case RequestType.SERVER_SIDE_EMIT: {
          if (fromMe || !Array.isArray(request.data)) return;
          this._serverSideEmitHere(
            request.data,
            request.requestId === undefined
              ? null
              : (arg) =>
                  this.link.publish(
                    this.responseChannel,
                    JSON.stringify({ type: RequestType.SERVER_SIDE_EMIT, requestId: request.requestId, data: arg }),
                  ),
          );
          return;
        }
        case RequestType.BROADCAST: {
          if (this.ackRequests.has(request.requestId) || fromMe) return;
          this._broadcastWithAckHere(
            request.packet,
            opts,
            (clientCount) =>
              this._publishResponse(
                request,
                JSON.stringify({ type: RequestType.BROADCAST_CLIENT_COUNT, requestId: request.requestId, clientCount }),
              ),
            (arg) =>
              this._publishResponse(
                request,
                msgpack.encode({ type: RequestType.BROADCAST_ACK, requestId: request.requestId, packet: arg }),
              ),
          );
          return;
        }
        default:
      }
    } catch (err) {
      nsp.server._log('warn', `cluster request ${request.type} on ${nsp.name} failed: ${err && err.message}`);
    }
  }

  _onResponse(payload) {
    let response;
    try {
      response = decodeMessage(payload);
    } catch {
      return;
    }
    if (!response || typeof response !== 'object') return;
    const id = response.requestId;
    const ackRequest = this.ackRequests.get(id);
    if (ackRequest) {
      if (response.type === RequestType.BROADCAST_CLIENT_COUNT) ackRequest.clientCountCallback(Number(response.clientCount) || 0);
      else if (response.type === RequestType.BROADCAST_ACK) ackRequest.ack(response.packet);
      return;
    }
    const request = id !== undefined && this.requests.get(id);
    if (!request) return;
    const done = (value) => {
      clearTimeout(request.timeout);
      this.requests.delete(id);
      request.resolve(value);
    };
    switch (request.type) {
      case RequestType.REMOTE_FETCH:
      case RequestType.ALL_ROOMS: {
        const key = request.type === RequestType.REMOTE_FETCH ? 'sockets' : 'rooms';
        request.msgCount++;
        if (Array.isArray(response[key])) request[key].push(...response[key]);
        if (request.msgCount >= request.numSub) done(request[key]);
        return;
      }
      case RequestType.SERVER_SIDE_EMIT:
        request.responses.push(response.data);
        if (request.responses.length >= request.numSub) {
          clearTimeout(request.timeout);
          this.requests.delete(id);
          request.resolve(null, request.responses);
        }
        return;
      default:
    }
  }
}

module.exports = { ClusterAdapter, CLUSTER, RequestType, msgpack, list, wireFlags };
