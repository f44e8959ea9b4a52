'use strict';
// A raw channel's room history (the channel option `history`): the engine keeps what each
// room was relayed or broadcast (native/channels/history.hpp) and replays it, in order, to a
// client that joins later. This file checks the option and runs the two JS hooks: `compact`
// (the engine hands over a room's entries; what comes back replaces them) and `load` (a room
// a client is about to join, whose history this process does not hold, from the app's store).

// How long an upgrade waits for the other nodes' copy of a room's history.
const FLEET_HISTORY_TIMEOUT_MS = 1000;

const HISTORY_SHAPE =
  "a channel's history is true or { maxMessages, maxBytes, ttlMs, maxRooms, prefixes, compact, compactAfter, load }";

function whole(h, name, fallback, min) {
  const v = h[name] ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > 0xffffffff) {
    throw new TypeError(`sidewire: history.${name} is a whole number from ${min} to ${0xffffffff}, not ${String(v)}`);
  }
  return v;
}

function asBuffer(value, what) {
  if (typeof value === 'string') return Buffer.from(value);
  if (Buffer.isBuffer(value)) return value;
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  throw new TypeError(`sidewire: ${what} is a string, a Buffer or a Uint8Array`);
}

/**
 * The option as the engine takes it, and the hooks, or null for none. Throws TypeError.
 * `maxQueuedBytes`: the channel's; a joiner's replay must fit in its outgoing queue.
 */
function historySettings(h, maxQueuedBytes = Infinity) {
  if (h === undefined || h === null || h === false) return null;
  if (h === true) h = {};
  if (typeof h !== 'object' || Array.isArray(h)) throw new TypeError(`sidewire: ${HISTORY_SHAPE}`);
  for (const hook of ['compact', 'load']) {
    if (h[hook] !== undefined && typeof h[hook] !== 'function') {
      throw new TypeError(`sidewire: history.${hook} is a function`);
    }
  }
  const maxMessages = whole(h, 'maxMessages', 1000, 1);
  if (h.compactAfter !== undefined && !h.compact) {
    throw new TypeError('sidewire: history.compactAfter needs history.compact, the hook that compacts');
  }
  const prefixes = h.prefixes === undefined ? [] : h.prefixes;
  if (!Array.isArray(prefixes)) throw new TypeError('sidewire: history.prefixes is an array of strings or Buffers');
  const native = {
    maxMessages,
    maxBytes: whole(h, 'maxBytes', 1024 * 1024, 1),
    ttlMs: whole(h, 'ttlMs', 0, 0),
    maxRooms: whole(h, 'maxRooms', 10000, 1),
    compactAfter: h.compact ? whole(h, 'compactAfter', Math.max(1, Math.floor(maxMessages / 2)), 1) : 0,
    prefixes: prefixes.map((p, i) => {
      const b = asBuffer(p, `history.prefixes[${i}]`);
      if (b.length === 0) throw new TypeError(`sidewire: history.prefixes[${i}] is empty (it would keep every message)`);
      return b;
    }),
  };
  if (native.compactAfter > maxMessages) {
    throw new TypeError('sidewire: history.compactAfter is at most history.maxMessages (the oldest would go first)');
  }
  // A replay is queued at once: past the queue's limit the joiner would be dropped (1008).
  if (native.maxBytes + 64 * native.maxMessages > maxQueuedBytes) {
    throw new TypeError(
      `sidewire: history.maxBytes + 64 × history.maxMessages (${native.maxBytes + 64 * native.maxMessages}) is past the channel's maxQueuedBytes (${maxQueuedBytes}): a late joiner's replay would not fit in its queue`,
    );
  }
  return { native, compact: h.compact || null, load: h.load || null };
}

/** What a hook returned, as the engine takes it: an array of strings and Buffers. */
function messagesOf(list, what) {
  if (!Array.isArray(list)) throw new TypeError(`sidewire: ${what} is an array of messages (strings, Buffers)`);
  return list.map((m, i) => (typeof m === 'string' ? m : asBuffer(m, `${what}[${i}]`)));
}

/** The history side of a Channel: its hooks and the calls into the engine. */
class ChannelHistory {
  constructor(channel, settings) {
    this.channel = channel;
    this.compact = settings.compact;
    this.load = settings.load;
    this.loading = new Map(); // room → the Promise of its load
    if (settings.native.ttlMs > 0) {
      // Expired entries of rooms nobody sends to are freed too.
      this.sweeper = setInterval(() => this.native.historySweep(this.channel.index), Math.min(1000, settings.native.ttlMs));
      this.sweeper.unref();
    }
  }

  get native() {
    return this.channel.engine._native;
  }

  messages(room) {
    return this.native.history(this.channel.index, String(room)).messages;
  }

  // upto -1: everything; version 0: the app's own (else a compaction's snapshot).
  replace(room, upto, version, messages) {
    return this.native.historyReplace(this.channel.index, String(room), upto, version, messagesOf(messages, 'the history'));
  }

  // The engine's kHistoryCompact: `flags` one '0' (text) or '1' (binary) per message.
  onCompact(room, upto, version, flags, buffers) {
    const list = (buffers || []).map((b, i) => (flags[i] === '1' ? b : b.toString('utf8')));
    this.runCompact(room, upto, version, list, true).catch(() => {});
  }

  async runCompact(room, upto, version, list, asked) {
    const { engine } = this.channel;
    try {
      const result = await this.compact(room, list);
      if (result === undefined || result === null) {
        if (asked) this.native.historyCompactionFailed(this.channel.index, room);
        return false;
      }
      // False: the room changed meanwhile, or a thread is behind (the engine says which at debug).
      return this.replace(room, upto, version, result);
    } catch (err) {
      engine._log('error', `history.compact failed for ${this.channel.path} room ${room}: ${err && err.stack}`);
      if (asked) this.native.historyCompactionFailed(this.channel.index, room);
      throw err;
    }
  }

  /** Compacts a room now (channel.compactHistory). */
  async compactNow(room) {
    if (!this.compact) throw new TypeError('sidewire: compactHistory needs the history.compact hook');
    const { messages, upto, version } = this.native.history(this.channel.index, String(room));
    if (messages.length === 0) return false;
    return this.runCompact(String(room), upto, version, messages, false);
  }

  // Upgrades go through JS first: to load a room's history from the app, or from the fleet.
  get gated() {
    return Boolean(this.load || this.channel._cluster);
  }

  /**
   * Before an upgrade into `room`, when the engine holds no history for it: the app's stored
   * one (load), else another node's copy (the channel's adapter), once for concurrent upgrades.
   */
  ensureLoaded(room) {
    if (!this.gated || typeof room !== 'string' || room === '') return undefined;
    const running = this.loading.get(room);
    if (running) return running;
    if (this.native.historyKnown(this.channel.index, room)) return undefined;
    const cluster = this.channel._cluster;
    const p = Promise.resolve()
      .then(() => (this.load ? this.load(room) : null))
      .then((stored) => {
        if ((stored === undefined || stored === null) && cluster) return cluster.fetchHistory(this.channel, room, FLEET_HISTORY_TIMEOUT_MS);
        return stored;
      })
      .then((stored) => {
        if (stored === undefined || stored === null) return;
        // In front of what arrived while it loaded; not over a state a compaction put in meanwhile.
        this.native.historyRestore(this.channel.index, room, messagesOf(stored, 'what history.load returned'));
      })
      .then(() => this.native.historyMarkKnown(this.channel.index, room)) // the listener takes the next ones itself
      .finally(() => this.loading.delete(room));
    this.loading.set(room, p);
    return p;
  }
}

module.exports = { historySettings, ChannelHistory };
