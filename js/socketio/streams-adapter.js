'use strict';
// A namespace's adapter in a fleet on Redis streams: @socket.io/redis-streams-adapter's, which
// speaks socket.io-adapter's ClusterAdapter messages ({ uid, nsp, type, data }) two ways:
//   the stream <streamName>      what every node must see in order: plain broadcasts,
//                                socketsJoin, socketsLeave, disconnectSockets (XADD entries
//                                uid, nsp, type, data); an entry's id is a recovery offset
//   <prefix>#<nsp>#              requests to every node (fetchSockets, serverSideEmit,
//                                broadcasts with acks), MessagePack on pub/sub
//   <prefix>#<nsp>#<uid>#        answers to node <uid>
// and keeps the sessions of disconnected sockets in Redis (SET <sessionKeyPrefix><pid>), so a
// client that drops from one node is recovered, with what it missed, by any other.
// The engine adds, reads and delivers the broadcasts, applies the entries that change rooms,
// and restores sessions itself (native/adapter/redis_adapter.cpp); what comes here is the part
// that needs JS, as for the sharded adapter, plus the sessions of the sockets JS knows.
const { ShardedAdapter, MessageType } = require('./sharded-adapter.js');

// @msgpack/msgpack, the official adapter's encoding, loaded by the first adapter.
let msgpackLib = null;
const msgpack = {
  encode: (v) => Buffer.from((msgpackLib ??= require('@msgpack/msgpack')).encode(v)),
  decode: (b) => (msgpackLib ??= require('@msgpack/msgpack')).decode(b),
};

// The messages that go into the stream, all others on pub/sub ("ephemeral" in the official adapter).
const IN_STREAM = new Set([MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE, MessageType.DISCONNECT_SOCKETS]);

// JavaScript's hash of the namespace name, and the stream it picks, as the official adapter's.
function streamOf(settings, nsp) {
  if (settings.streamCount <= 1) return settings.streamName;
  let hash = 0;
  for (let i = 0; i < nsp.length; i++) {
    hash = hash * 31 + nsp.charCodeAt(i);
    hash |= 0;
  }
  return `${settings.streamName}-${hash % settings.streamCount}`;
}

class StreamsAdapter extends ShardedAdapter {
  constructor(nsp, settings) {
    super(nsp, settings);
    this.streamName = streamOf(settings, nsp.name);
    this._fleetSessions = true; // disconnected sockets' sessions go to Redis (server.js)
  }

  /** The nodes of the fleet: subscribers of the namespace's channel (PUBSUB NUMSUB, or SHARDNUMSUB). */
  serverCount() {
    if (!this.link.ready) return Promise.resolve(1);
    return this.link
      .command(['PUBSUB', this.settings.useShardedPubSub ? 'SHARDNUMSUB' : 'NUMSUB', this.channel], Math.max(1, Math.floor(this.requestsTimeout / 2)))
      .then(
        (reply) => Math.max(1, Number(Array.isArray(reply) ? reply[1] : 0) || 0),
        () => 1,
      );
  }

  _encode(message) {
    return msgpack.encode(message);
  }

  _publish(type, data) {
    if (!IN_STREAM.has(type)) {
      super._publish(type, data);
      return;
    }
    // In the stream, in order with the engine's broadcasts (the same connection). Its data is
    // JSON: these carry no binary values.
    this.link
      .command([
        'XADD',
        this.streamName,
        'MAXLEN',
        '~',
        String(this.settings.maxLen),
        '*',
        'uid',
        this.uid,
        'nsp',
        this.nsp.name,
        'type',
        String(type),
        'data',
        JSON.stringify(data),
      ])
      .catch((err) => this.nsp.server._log('warn', `cluster: ${type} not added to the stream: ${err.message}`));
  }

  // On pub/sub everything is @msgpack/msgpack's (the stream's entries come from the engine as JSON).
  _decodeBinary(buf) {
    return msgpack.decode(buf);
  }

  /**
   * A disconnected socket's session, for connectionStateRecovery on any node of the fleet:
   * kept in Redis for maxDisconnectionDuration, as the official adapter keeps it.
   */
  persistSession(session) {
    const recovery = this.nsp.server.opts.connectionStateRecovery;
    if (!recovery) return;
    const value = msgpack.encode(session).toString('base64');
    this.link
      .command(['SET', `${this.settings.sessionKeyPrefix}${session.pid}`, value, 'PX', String(Math.max(1, recovery.maxDisconnectionDuration))])
      .catch((err) => this.nsp.server._log('warn', `cluster: session ${session.pid} not kept: ${err.message}`));
  }
  // (Sessions are restored by the engine: it reads them from Redis before the CONNECT reaches JS.)
}

module.exports = { StreamsAdapter, streamOf, msgpack };
