'use strict';
// The engine's link to the fleet (one per Engine): the native cluster adapter holds the two
// Redis connections and does the broadcasts (encode, publish, receive, fan out) on its own
// thread; what reaches JS is the request protocol's traffic (fetchSockets, serverSideEmit,
// broadcasts with acks...), routed here to the namespace adapters, plus command replies and
// state changes.
const crypto = require('node:crypto');

const EVENT_CLUSTER_MESSAGE = 24;
const EVENT_CLUSTER_REPLY = 25;
const EVENT_CLUSTER_STATE = 26;

// A node's id on the wire, as socket.io's adapters make theirs (uid2): a short random string.
function nodeId() {
  return crypto.randomBytes(9).toString('base64url').slice(0, 12);
}

class ClusterLink {
  constructor(engine, config) {
    this.engine = engine;
    this.config = config;
    this.uid = nodeId();
    this.state = 'connecting';
    this._replies = new Map(); // command id → { resolve, reject, timer }
    this._ids = 0;
    this._namespaces = new Map(); // namespace name → its ClusterAdapter
    this._requestPrefix = `${config.key}-request#`;
    this._responsePrefix = `${config.key}-response#`;
    this._channels = new Set();
    this._countPrefix = `${config.channelKey}-count#`;
    this._counts = new Map(); // requestId → { expected, received, total, resolve, reject, timer }
    this._histories = new Map(); // requestId → { expected, received, resolve, timer }
    this._closed = false;
    // The sharded and the streams adapter route the same way (socket.io-adapter's ClusterAdapter
    // channels); the streams adapter's pub/sub is sharded with useShardedPubSub only.
    this._clusterChannels = config.mode === 'sharded' || config.mode === 'streams';
    this._sharded = config.mode === 'sharded' || (config.mode === 'streams' && Boolean(config.useShardedPubSub));
    this._shardPrefix = `${config.key}#`;
    engine._native.clusterStart({
      url: config.url,
      key: config.key,
      channelKey: config.channelKey,
      uid: this.uid,
      maxPendingBytes: config.maxPendingBytes,
      connectTimeoutMs: config.connectTimeoutMs,
      mode: config.mode || 'pubsub',
      subscriptionMode: config.subscriptionMode || 'dynamic',
      ...(config.mode === 'streams'
        ? {
            streamName: config.streamName,
            streamCount: config.streamCount,
            maxLen: config.maxLen,
            readCount: config.readCount,
            blockTimeInMs: config.blockTimeInMs,
            sessionKeyPrefix: config.sessionKeyPrefix,
            useShardedPubSub: config.useShardedPubSub,
          }
        : {}),
    });
  }

  /** Another adapter for the same engine must speak to the same fleet. */
  check(config) {
    if (
      config.url !== this.config.url ||
      config.key !== this.config.key ||
      config.channelKey !== this.config.channelKey ||
      (config.mode || 'pubsub') !== (this.config.mode || 'pubsub') ||
      (config.subscriptionMode || 'dynamic') !== (this.config.subscriptionMode || 'dynamic') ||
      ['streamName', 'streamCount', 'maxLen', 'sessionKeyPrefix', 'useShardedPubSub'].some((k) => config[k] !== this.config[k])
    ) {
      throw new Error(
        `sidewire: this engine is already in a fleet through ${this.config.url} (key "${this.config.key}", ` +
          `${this.config.mode === 'sharded' ? 'sharded' : this.config.mode === 'streams' ? 'streams' : 'pub/sub'}); ` +
          'one engine speaks to one Redis: give every Server and channel of it the same adapter settings',
      );
    }
  }

  addNamespace(name, adapter) {
    this._namespaces.set(name, adapter);
    this.engine._native.clusterAddNamespace(name);
  }

  removeNamespace(name, adapter) {
    if (this._namespaces.get(name) === adapter) this._namespaces.delete(name);
  }

  addChannel(channel) {
    if (this._channels.has(channel.index)) return;
    this._channels.add(channel.index);
    this.engine._native.clusterAddChannel(channel.index);
  }

  publish(channel, payload) {
    if (this._closed) return;
    this.engine._native.clusterPublish(channel, payload);
  }

  /**
   * channel.count(room, { cluster: true }): `local` plus every other node's count of the room
   * (null: the whole channel). The nodes of the channel's fleet are the subscribers of its
   * count channel; each answers on the asking node's own one. While Redis is away: `local`.
   */
  async countRoom(channel, room, local) {
    const requests = `${this._countPrefix}${channel.path}#`;
    let nodes;
    try {
      const reply = await this.command(['PUBSUB', this._sharded ? 'SHARDNUMSUB' : 'NUMSUB', requests], this.config.requestsTimeout);
      nodes = Number(Array.isArray(reply) ? reply[1] : 0) || 0;
    } catch {
      return local; // Redis away: this node is all there is to count
    }
    if (nodes <= 1) return local;
    const requestId = crypto.randomBytes(8).toString('hex');
    return new Promise((resolve, reject) => {
      const pending = { expected: nodes - 1, received: 0, total: local, resolve, reject, timer: null };
      pending.timer = setTimeout(() => {
        this._counts.delete(requestId);
        reject(new Error(`timeout reached: only ${pending.received} responses received out of ${pending.expected}`));
      }, this.config.requestsTimeout);
      this._counts.set(requestId, pending);
      this.publish(requests, JSON.stringify({ uid: this.uid, requestId, room }));
    });
  }

  /**
   * A room's history from the other nodes of the channel's fleet (a node that holds none for
   * it): the first non-empty answer, as [string | Buffer], or null when every node answered
   * without one, within `timeoutMs`, or Redis is away. Rides on the count channel.
   */
  async fetchHistory(channel, room, timeoutMs) {
    const requests = `${this._countPrefix}${channel.path}#`;
    let nodes;
    try {
      const reply = await this.command(['PUBSUB', this._sharded ? 'SHARDNUMSUB' : 'NUMSUB', requests], timeoutMs);
      nodes = Number(Array.isArray(reply) ? reply[1] : 0) || 0;
    } catch {
      return null;
    }
    if (nodes <= 1) return null;
    const requestId = crypto.randomBytes(8).toString('hex');
    return new Promise((resolve) => {
      const pending = { expected: nodes - 1, received: 0, resolve, timer: null };
      pending.timer = setTimeout(() => {
        this._histories.delete(requestId);
        resolve(null);
      }, timeoutMs);
      this._histories.set(requestId, pending);
      this.publish(requests, JSON.stringify({ uid: this.uid, requestId, room, history: true }));
    });
  }

  _onHistoryResponse(message) {
    const pending = this._histories.get(message.requestId);
    if (!pending) return; // answered after the timeout, or already by another node
    const list = Array.isArray(message.messages) ? message.messages : [];
    const done = list.length > 0 || ++pending.received >= pending.expected;
    if (!done) return;
    clearTimeout(pending.timer);
    this._histories.delete(message.requestId);
    pending.resolve(
      list.length > 0
        ? list.map((m) => (m && m.b ? Buffer.from(String(m.b), 'base64') : String(m && m.t !== undefined ? m.t : '')))
        : null,
    );
  }

  _onCountMessage(channel, payload) {
    let rest = channel.slice(this._countPrefix.length, -1); // <path> or <path>#<uid>
    const own = `#${this.uid}`;
    const response = rest.endsWith(own);
    if (response) rest = rest.slice(0, -own.length);
    let message;
    try {
      message = JSON.parse(Buffer.isBuffer(payload) ? payload.toString() : String(payload));
    } catch {
      return; // not one of ours
    }
    if (!message || typeof message !== 'object' || typeof message.requestId !== 'string') return;
    if (response && message.history) {
      this._onHistoryResponse(message);
      return;
    }
    if (response) {
      const pending = this._counts.get(message.requestId);
      if (!pending) return; // answered after the timeout
      pending.total += Number(message.count) || 0;
      if (++pending.received >= pending.expected) {
        clearTimeout(pending.timer);
        this._counts.delete(message.requestId);
        pending.resolve(pending.total);
      }
      return;
    }
    if (message.uid === this.uid || typeof message.uid !== 'string') return;
    const ch = this.engine.getChannel(rest);
    if (!ch || !ch._cluster) return;
    const room = typeof message.room === 'string' ? message.room : null;
    const answer = `${this._countPrefix}${rest}#${message.uid}#`;
    if (message.history) {
      // This node's copy of the room's history: text as is, binary in base64.
      const messages = ch._history && room !== null
        ? ch.history(room).map((m) => (typeof m === 'string' ? { t: m } : { b: m.toString('base64') }))
        : [];
      this.publish(answer, JSON.stringify({ uid: this.uid, requestId: message.requestId, history: true, messages }));
      return;
    }
    this.publish(answer, JSON.stringify({ uid: this.uid, requestId: message.requestId, count: ch.count(room) }));
  }

  /**
   * A Redis command on the publishing connection. Rejects at once when Redis is away (the
   * engine says so), and after `timeoutMs` whatever Redis does.
   */
  command(args, timeoutMs = 5000) {
    if (this._closed) return Promise.reject(new Error('sidewire: the cluster adapter is closed'));
    return new Promise((resolve, reject) => {
      const id = (this._ids = (this._ids % 0x7fffffff) + 1);
      const timer = setTimeout(() => {
        this._replies.delete(id);
        reject(new Error(`sidewire: Redis did not answer ${args[0]} within ${timeoutMs} ms`));
      }, timeoutMs);
      this._replies.set(id, { resolve, reject, timer });
      this.engine._native.clusterCommand(id, args.map(String));
    });
  }

  get ready() {
    return this.state === 'ready';
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    this.engine._native.clusterStop();
    for (const { reject, timer } of this._replies.values()) {
      clearTimeout(timer);
      reject(new Error('sidewire: the cluster adapter is closed'));
    }
    this._replies.clear();
    for (const { reject, timer } of this._counts.values()) {
      clearTimeout(timer);
      reject(new Error('sidewire: the cluster adapter is closed'));
    }
    this._counts.clear();
    for (const { resolve, timer } of this._histories.values()) {
      clearTimeout(timer);
      resolve(null);
    }
    this._histories.clear();
  }

  // ------------------------------------------------------------------- events from the engine

  // code (a message): 1 when the engine applied it already (a socketsJoin/socketsLeave/
  // disconnectSockets of a selection, in Redis's order among the broadcasts).
  _onEvent(type, data, text, number, code) {
    switch (type) {
      case EVENT_CLUSTER_MESSAGE:
        this._onMessage(text, data, code === 1);
        return;
      case EVENT_CLUSTER_REPLY: {
        const pending = this._replies.get(number);
        if (!pending) return;
        this._replies.delete(number);
        clearTimeout(pending.timer);
        let value;
        try {
          value = JSON.parse(data);
        } catch (err) {
          pending.reject(err);
          return;
        }
        if (value && typeof value === 'object' && !Array.isArray(value) && typeof value.error === 'string') {
          pending.reject(new Error(`sidewire: Redis: ${value.error}`));
        } else {
          pending.resolve(value);
        }
        return;
      }
      case EVENT_CLUSTER_STATE: {
        const before = this.state;
        this.state = data;
        if (before !== data) this.engine.emit('adapter', { state: data, reason: text });
        return;
      }
      default:
    }
  }

  // Sharded and streams: <prefix>#<nsp>#<uid># carries answers to this node, <prefix>#<nsp>#
  // the namespace's requests (and, from the engine, the stream's entries that change rooms).
  _onShardedMessage(channel, payload, applied) {
    if (!channel.startsWith(this._shardPrefix) || !channel.endsWith('#')) return;
    let rest = channel.slice(this._shardPrefix.length, -1);
    const own = `#${this.uid}`;
    const response = rest.endsWith(own);
    if (response) rest = rest.slice(0, -own.length);
    const adapter = this._namespaces.get(rest);
    if (!adapter) return;
    if (response) adapter._onResponse(payload);
    else adapter._onRequest(payload, applied);
  }

  _onMessage(channel, payload, applied) {
    if (channel.startsWith(this._countPrefix)) {
      this._onCountMessage(channel, payload);
      return;
    }
    if (this._clusterChannels) {
      this._onShardedMessage(channel, payload, applied);
      return;
    }
    let request;
    let rest;
    if (channel.startsWith(this._requestPrefix)) {
      request = true;
      rest = channel.slice(this._requestPrefix.length, -1);
    } else if (channel.startsWith(this._responsePrefix)) {
      request = false;
      rest = channel.slice(this._responsePrefix.length, -1);
      const own = `#${this.uid}`;
      if (rest.endsWith(own)) rest = rest.slice(0, -own.length);
    } else {
      return;
    }
    const adapter = this._namespaces.get(rest);
    if (!adapter) return;
    if (request) adapter._onRequest(payload, applied);
    else adapter._onResponse(payload);
  }
}

module.exports = { ClusterLink, EVENT_CLUSTER_MESSAGE, EVENT_CLUSTER_STATE };
