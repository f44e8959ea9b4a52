'use strict';
// engine.metrics(): the engine's counters in Prometheus's text exposition format, through
// prom-client (its registry, types and escaping), with Node's own default metrics: the event
// loop's lag, CPU, memory, heap, GC. Every value is read from the engine when scraped: nothing
// here runs on the hot path.
const client = require('prom-client');

// At most one read of the engine per scrape, however many metrics ask.
function snapshotOf(engine) {
  let at = -Infinity;
  let snap = null;
  return () => {
    const now = Date.now();
    if (now - at > 50 || !snap) {
      const stats = engine.stats();
      let sio = null;
      if (engine._sioServer) {
        try {
          sio = engine._native.sioStats();
        } catch {
          sio = null;
        }
      }
      snap = { stats, sio };
      at = now;
    }
    return snap;
  };
}

class EngineMetrics {
  constructor(engine, { defaultMetrics = true } = {}) {
    const registry = new client.Registry();
    this.registry = registry;
    if (defaultMetrics) {
      client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
      // Gauges named like counters, which promtool's lint refuses; their per-type breakdowns
      // (nodejs_active_handles{type} ...) stay.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
        registry.removeSingleMetric(name);
      }
    }
    const read = snapshotOf(engine);
    const registers = [registry];

    // A series whose values the engine keeps, read on each scrape: a counter is set by
    // incrementing it from zero (prom-client's counters have no set()).
    const metric = (Type, name, help, labelNames, values) =>
      new Type({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const [labels, value] of values(read())) {
            if (Type === client.Gauge) this.set(labels, value);
            else if (value > 0) this.inc(labels, value);
          }
        },
      });
    const counter = (...a) => metric(client.Counter, ...a);
    const gauge = (...a) => metric(client.Gauge, ...a);
    const one = (f) => (snap) => [[{}, f(snap)]];

    gauge('sidewire_connections', 'TCP connections the engine holds (WebSocket connections and polling sessions\' transports)', [],
      one(({ stats }) => stats.connections));
    gauge('sidewire_socketio_sessions', 'Engine.IO sessions open, by transport', ['transport'], ({ stats }) => [
      [{ transport: 'polling' }, stats.sessions.polling],
      [{ transport: 'websocket' }, stats.sessions.websocket],
    ]);
    gauge('sidewire_socketio_sockets', 'Socket.IO sockets connected, by namespace', ['namespace'], ({ sio }) =>
      sio ? Object.entries(sio.namespaces).map(([name, n]) => [{ namespace: name }, n.sockets]) : []);
    gauge('sidewire_channel_connections', 'Raw WebSocket channel connections open, by channel', ['channel'], ({ stats }) =>
      Object.entries(stats.channels).map(([path, c]) => [{ channel: path }, c.connections]));
    gauge('sidewire_channel_rooms', 'Rooms with members, by channel', ['channel'], ({ stats }) =>
      Object.entries(stats.channels).map(([path, c]) => [{ channel: path }, Object.keys(c.rooms).length]));
    counter('sidewire_connects_total', 'Connections that opened: Socket.IO sockets (a namespace connected) and channel clients', ['protocol'],
      ({ stats }) => [
        [{ protocol: 'socketio' }, stats.connects.socketio],
        [{ protocol: 'channel' }, stats.connects.channel],
      ]);
    counter('sidewire_disconnects_total', 'Disconnects by protocol and reason (Socket.IO\'s reason, a channel\'s close code)', ['protocol', 'reason'],
      ({ stats }) => {
        const out = [];
        for (const [protocol, reasons] of Object.entries(stats.disconnects)) {
          for (const [reason, n] of Object.entries(reasons)) out.push([{ protocol, reason }, n]);
        }
        return out;
      });
    counter('sidewire_messages_received_total', 'Messages received from clients (WebSocket messages, Engine.IO packets)', [],
      one(({ stats }) => stats.messagesReceived));
    counter('sidewire_messages_delivered_total', 'Messages queued to clients (a broadcast to N counts N)', [],
      one(({ stats }) => stats.messagesDelivered));
    counter('sidewire_received_bytes_total', 'Bytes read from clients', [], one(({ stats }) => stats.bytesReceived));
    counter('sidewire_sent_bytes_total', 'Bytes written to clients', [], one(({ stats }) => stats.bytesSent));
    counter('sidewire_writes_total', 'sendmsg calls (messages delivered / writes: messages per system call)', [],
      one(({ stats }) => stats.writes));
    counter('sidewire_broadcasts_total', 'Broadcasts: from JS, from other nodes, raw channels\' relays', [],
      one(({ stats }) => stats.broadcasts));
    counter('sidewire_broadcast_recipients_total', 'Connections broadcasts reached (fan-out: this over sidewire_broadcasts_total)', [],
      one(({ stats }) => stats.broadcastRecipients));
    counter('sidewire_backpressure_drops_total', 'Clients dropped for not reading (outgoing queue over its limit)', [],
      one(({ stats }) => stats.backpressureDrops));
    counter('sidewire_heartbeat_timeouts_total', 'WebSocket connections closed for no pong in time', [],
      one(({ stats }) => stats.heartbeatTimeouts));
    counter('sidewire_limit_refusals_total', 'Refusals by limit: rate limits, connection caps, tokens refused by reason, size limits', ['limit'],
      ({ stats }) => Object.entries(stats.limits).map(([limit, n]) => [{ limit }, n]));
    counter('sidewire_upgrades_refused_total', 'WebSocket upgrades answered with an HTTP error', [], one(({ stats }) => stats.upgradesRefused));
    counter('sidewire_protocol_errors_total', 'Connections closed for breaking the protocol', [], one(({ stats }) => stats.protocolErrors));
    counter('sidewire_internal_errors_total', 'Exceptions caught on an I/O thread (each closed its connection): a bug to report', [],
      one(({ stats }) => stats.internalErrors));
    counter('sidewire_js_backpressure_pauses_total', 'Connections not read for a while because JS was behind with their events', [],
      one(({ stats }) => stats.jsBackpressurePauses));
    counter('sidewire_io_thread_cpu_seconds_total', 'CPU time of each I/O thread: its busy time (it sleeps when idle)', ['thread'],
      ({ stats }) => stats.ioThreadCpuSeconds.map((s, i) => [{ thread: String(i) }, s]));
    gauge('sidewire_malloc_in_use_bytes', 'The process\'s malloc heap in use (the engine and Node\'s C++ side)', [],
      one(({ stats }) => stats.mallocInUse));

    // connectionStateRecovery, when Socket.IO runs.
    gauge('sidewire_recovery_sessions', 'Disconnected sockets kept for connection state recovery', [], ({ sio }) =>
      sio ? [[{}, sio.recovery.sessions]] : []);
    counter('sidewire_recovery_recovered_total', 'Sockets that came back with their state', [], ({ sio }) =>
      sio ? [[{}, sio.recovery.recovered]] : []);

    // The cluster adapter, when one is set.
    gauge('sidewire_adapter_up', 'The Redis adapter\'s connections are all ready (1) or not (0)', ['mode'], ({ stats }) =>
      stats.adapter ? [[{ mode: stats.adapter.mode }, stats.adapter.state === 'ready' ? 1 : 0]] : []);
    const adapterCounter = (name, key, help) =>
      counter(name, help, ['mode'], ({ stats }) => (stats.adapter ? [[{ mode: stats.adapter.mode }, stats.adapter[key]]] : []));
    adapterCounter('sidewire_adapter_published_total', 'published', 'Messages handed to Redis');
    adapterCounter('sidewire_adapter_received_total', 'received', 'Broadcasts from other nodes delivered here');
    adapterCounter('sidewire_adapter_dropped_total', 'dropped', 'Publishes lost while Redis was away, past maxPendingBytes');
    adapterCounter('sidewire_adapter_reconnects_total', 'reconnects', 'Connection attempts to Redis after the first');
    adapterCounter('sidewire_adapter_invalid_total', 'invalid', 'Messages from the fleet that did not decode');
    gauge('sidewire_adapter_pending_bytes', 'Publishes waiting for Redis', ['mode'], ({ stats }) =>
      stats.adapter ? [[{ mode: stats.adapter.mode }, stats.adapter.pendingBytes]] : []);
  }

  get contentType() {
    return this.registry.contentType;
  }

  /** The exposition text. */
  text() {
    return this.registry.metrics();
  }
}

module.exports = { EngineMetrics };
