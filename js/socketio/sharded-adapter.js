'use strict';
// A namespace's adapter in a fleet on Redis 7's sharded pub/sub: @socket.io/redis-adapter's
// createShardedAdapter, which speaks socket.io-adapter's ClusterAdapter messages
// ({ uid, nsp, type, data }, JSON or MessagePack) on
//   <prefix>#<nsp>#            every node of the namespace (requests, broadcasts)
//   <prefix>#<nsp>#<room>#     a broadcast to one room (dynamic modes: the nodes where it lives)
//   <prefix>#<nsp>#<uid>#      answers to node <uid>
// The engine publishes and receives plain broadcasts itself (native/adapter/wire.cpp), and
// applies socketsJoin/socketsLeave/disconnectSockets in Redis's order; what comes here is the
// part that needs JS: fetchSockets, serverSideEmit, broadcasts with acks.
const crypto = require('node:crypto');
const { ClusterAdapter, msgpack, list, wireFlags } = require('./cluster-adapter.js');
const { RemoteSocket } = require('./broadcast.js');

const MessageType = {
  INITIAL_HEARTBEAT: 1,
  HEARTBEAT: 2,
  BROADCAST: 3,
  SOCKETS_JOIN: 4,
  SOCKETS_LEAVE: 5,
  DISCONNECT_SOCKETS: 6,
  FETCH_SOCKETS: 7,
  FETCH_SOCKETS_RESPONSE: 8,
  SERVER_SIDE_EMIT: 9,
  SERVER_SIDE_EMIT_RESPONSE: 10,
  BROADCAST_CLIENT_COUNT: 11,
  BROADCAST_ACK: 12,
  ADAPTER_CLOSE: 13,
};
// The classic protocol's request types, as the BroadcastOperator names them (_tellOthers).
const FROM_CLASSIC = { 2: MessageType.SOCKETS_JOIN, 3: MessageType.SOCKETS_LEAVE, 4: MessageType.DISCONNECT_SOCKETS };
const MAY_CARRY_BINARY = new Set([
  MessageType.BROADCAST,
  MessageType.BROADCAST_ACK,
  MessageType.FETCH_SOCKETS_RESPONSE,
  MessageType.SERVER_SIDE_EMIT,
  MessageType.SERVER_SIDE_EMIT_RESPONSE,
]);

function randomId() {
  return crypto.randomBytes(8).toString('hex');
}

function hasBinary(v, depth = 0) {
  if (!v || typeof v !== 'object' || depth > 64) return false;
  if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return true;
  if (Array.isArray(v)) return v.some((e) => hasBinary(e, depth + 1));
  for (const k of Object.keys(v)) if (hasBinary(v[k], depth + 1)) return true;
  if (typeof v.toJSON === 'function' && depth === 0) return hasBinary(v.toJSON(), depth + 1);
  return false;
}

class ShardedAdapter extends ClusterAdapter {
  constructor(nsp, settings) {
    super(nsp, settings);
    this.channel = `${settings.key}#${nsp.name}#`;
    this.responseChannel = `${this.channel}${this.uid}#`;
  }

  /** The nodes of the fleet: subscribers of the namespace's channel (PUBSUB SHARDNUMSUB). */
  serverCount() {
    if (!this.link.ready) return Promise.resolve(1);
    return this.link
      .command(['PUBSUB', 'SHARDNUMSUB', this.channel], Math.max(1, Math.floor(this.requestsTimeout / 2)))
      .then(
        (reply) => Math.max(1, Number(Array.isArray(reply) ? reply[1] : 0) || 0),
        () => 1,
      );
  }

  _decodeBinary(buf) {
    return msgpack.decode(buf);
  }

  _encode(message) {
    return MAY_CARRY_BINARY.has(message.type) && hasBinary(message.data) ? msgpack.encode(message) : JSON.stringify(message);
  }

  _publish(type, data) {
    this.link.publish(this.channel, this._encode({ uid: this.uid, nsp: this.nsp.name, type, data }));
  }

  _respond(requesterUid, type, data) {
    this.link.publish(`${this.channel}${requesterUid}#`, this._encode({ uid: this.uid, nsp: this.nsp.name, type, data }));
  }

  // A request that waits for `expected` answers, or fails after requestsTimeout.
  _request(type, data, expected, collect, onTimeout) {
    const requestId = randomId();
    return new Promise((resolve, reject) => {
      const timeout = setTimeout(() => {
        const stored = this.requests.get(requestId);
        if (!stored) return;
        this.requests.delete(requestId);
        onTimeout(stored, resolve, reject);
      }, this.requestsTimeout);
      this.requests.set(requestId, { type, expected, current: 0, collect, resolve, timeout, responses: [] });
      this._publish(type, { ...data, requestId });
    });
  }

  // --------------------------------------------------------------- what this node asks the fleet

  async fetchSockets(opts = {}) {
    const rooms = list(opts.rooms);
    const except = list(opts.except);
    const [local, serverCount] = await Promise.all([this.nsp.server._fetchSockets(this.nsp, rooms, except), this.serverCount()]);
    if ((opts.flags && opts.flags.local) || serverCount <= 1) return local;
    const remote = await this._request(
      MessageType.FETCH_SOCKETS,
      { opts: { rooms, except, flags: {} } },
      serverCount - 1,
      (stored, response) => {
        if (Array.isArray(response.data.sockets)) stored.responses.push(...response.data.sockets);
      },
      (stored, _resolve, reject) =>
        reject(new Error(`timeout reached: only ${stored.current} responses received out of ${stored.expected}`)),
    );
    return local.concat(remote.map((details) => new RemoteSocket(this.nsp, details)));
  }

  // As socket.io-adapter's ClusterAdapter, which has no request for them: the sockets of this
  // node (fetchSockets() is the fleet-wide question).
  async sockets(rooms) {
    const local = await this.nsp.server._fetchSockets(this.nsp, list(rooms), []);
    return new Set(local.map((s) => s.id));
  }

  _tellOthers(classicType, rooms, except, extra) {
    const type = FROM_CLASSIC[classicType];
    const data = { opts: { rooms, except, flags: {} } };
    if (type === MessageType.DISCONNECT_SOCKETS) data.close = Boolean(extra.close);
    else data.rooms = extra.rooms;
    this._publish(type, data);
  }

  serverSideEmit(packet) {
    if (typeof packet[packet.length - 1] === 'function') {
      this.serverSideEmitWithAck(packet).catch(() => {});
      return;
    }
    this._publish(MessageType.SERVER_SIDE_EMIT, { packet });
  }

  async serverSideEmitWithAck(packet) {
    const ack = packet.pop();
    const expected = (await this.serverCount()) - 1;
    if (expected <= 0) return ack(null, []);
    const responses = await this._request(
      MessageType.SERVER_SIDE_EMIT,
      { packet },
      expected,
      (stored, response) => stored.responses.push(response.data.packet),
      (stored, resolve) => {
        ack(new Error(`timeout reached: only ${stored.current} responses received out of ${stored.expected}`), stored.responses);
        resolve(null);
      },
    );
    if (responses) ack(null, responses);
    return undefined;
  }

  _broadcastWithAck(data, rooms, except, flags, collector) {
    const requestId = randomId();
    collector.serversExpected = Infinity;
    this.serverCount().then((n) => collector.onServers(n - 1));
    this.ackRequests.set(requestId, {
      clientCountCallback: (count) => collector.onRemoteCount(count),
      ack: (response) => collector.onResponse(response),
    });
    setTimeout(() => this.ackRequests.delete(requestId), flags.timeout);
    this._publish(MessageType.BROADCAST, {
      packet: { type: 2, data, nsp: this.nsp.name },
      requestId,
      opts: { rooms, except, flags: wireFlags(flags) },
    });
  }

  // ------------------------------------------------------------ what the fleet asks this node

  _decode(payload) {
    try {
      const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
      const message = buf[0] === 0x7b ? JSON.parse(buf.toString()) : this._decodeBinary(buf);
      return message && typeof message === 'object' && message.uid !== this.uid && message.nsp === this.nsp.name
        ? message
        : null;
    } catch {
      return null; // the official adapter ignores what it cannot read too
    }
  }

  async _onRequest(payload, applied = false) {
    const message = this._decode(payload);
    if (!message) return;
    const nsp = this.nsp;
    const data = message.data && typeof message.data === 'object' ? message.data : {};
    const opts = data.opts || {};
    try {
      switch (message.type) {
        case MessageType.BROADCAST:
          // A plain broadcast is the engine's; one with acks is answered here.
          if (data.requestId === undefined) return;
          this._broadcastWithAckHere(
            data.packet,
            opts,
            (clientCount) => this._respond(message.uid, MessageType.BROADCAST_CLIENT_COUNT, { requestId: data.requestId, clientCount }),
            (arg) => this._respond(message.uid, MessageType.BROADCAST_ACK, { requestId: data.requestId, packet: arg }),
          );
          return;
        case MessageType.SOCKETS_JOIN:
          nsp._socketsJoin(list(opts.rooms), list(opts.except), list(data.rooms), applied);
          return;
        case MessageType.SOCKETS_LEAVE:
          nsp._socketsLeave(list(opts.rooms), list(opts.except), list(data.rooms), applied);
          return;
        case MessageType.DISCONNECT_SOCKETS:
          nsp._disconnectSockets(list(opts.rooms), list(opts.except), Boolean(data.close), applied);
          return;
        case MessageType.FETCH_SOCKETS:
          this._respond(message.uid, MessageType.FETCH_SOCKETS_RESPONSE, {
            requestId: data.requestId,
            sockets: await this._localDetails(opts),
          });
          return;
        case MessageType.SERVER_SIDE_EMIT:
          if (!Array.isArray(data.packet)) return;
          this._serverSideEmitHere(
            data.packet,
            data.requestId === undefined
              ? null
              : (arg) => this._respond(message.uid, MessageType.SERVER_SIDE_EMIT_RESPONSE, { requestId: data.requestId, packet: arg }),
          );
          return;
        default:
          // Answers may come on the namespace's channel too (the official adapter accepts them there).
          this._answer(message);
      }
    } catch (err) {
      nsp.server._log('warn', `cluster message ${message.type} on ${nsp.name} failed: ${err && err.message}`);
    }
  }

  _onResponse(payload) {
    const message = this._decode(payload);
    if (message) this._answer(message);
  }

  _answer(message) {
    const data = message.data && typeof message.data === 'object' ? message.data : {};
    const requestId = data.requestId;
    switch (message.type) {
      case MessageType.BROADCAST_CLIENT_COUNT: {
        const ackRequest = this.ackRequests.get(requestId);
        if (ackRequest) ackRequest.clientCountCallback(Number(data.clientCount) || 0);
        return;
      }
      case MessageType.BROADCAST_ACK: {
        const ackRequest = this.ackRequests.get(requestId);
        if (ackRequest) ackRequest.ack(data.packet);
        return;
      }
      case MessageType.FETCH_SOCKETS_RESPONSE:
      case MessageType.SERVER_SIDE_EMIT_RESPONSE: {
        const stored = this.requests.get(requestId);
        const wanted = message.type === MessageType.FETCH_SOCKETS_RESPONSE ? MessageType.FETCH_SOCKETS : MessageType.SERVER_SIDE_EMIT;
        if (!stored || stored.type !== wanted) return;
        stored.current++;
        stored.collect(stored, message);
        if (stored.current >= stored.expected) {
          clearTimeout(stored.timeout);
          this.requests.delete(requestId);
          stored.resolve(stored.responses);
        }
        return;
      }
      default:
    }
  }
}

// Nor has it allRooms() (the classic adapter's ALL_ROOMS request has no counterpart in the
// sharded protocol): code written for it never calls one, and code that does fails the same way.
ShardedAdapter.prototype.allRooms = undefined;

module.exports = { ShardedAdapter, MessageType };
