'use strict';
// engine.metrics(): after known traffic, each series says what happened (connections by transport,
// namespace and channel, connects and disconnects by reason, broadcast fan-out, limit refusals,
// bytes, the I/O thread's CPU), and Prometheus's own promtool accepts the whole text.
const { spawnSync } = require('node:child_process');
const { startImpl } = require('./helpers/impls');
const { connected, once, sleep, waitFor } = require('./helpers/sio');
const ws = require('./helpers/ws');

// name{labels} -> value, from the exposition text.
function samples(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('engine.metrics() (sidewire)', () => {
  let t;
  afterAll(async () => {
    if (t) await t.close();
  });

  test('the series follow the traffic, and promtool accepts them', async () => {
    t = await startImpl('sidewire', { limits: { events: { ping: { points: 1, perSeconds: 60 } } } }, (io) => {
      io.on('connection', (socket) => socket.on('ping', () => {}));
      io.of('/admin').on('connection', () => {});
    });
    const room = t.engine.channel('/ws/m', { roomQuery: 'room', relay: true });
    room.on('connection', () => {});
    const polling = t.client({ transports: ['polling'] });
    const websocket = t.client({ transports: ['websocket'] });
    const admin = t.client('/admin', { transports: ['websocket'] });
    await Promise.all([connected(polling), connected(websocket), connected(admin)]);
    const a = await ws.open(`ws://127.0.0.1:${t.port}/ws/m?room=r`);
    const b = await ws.open(`ws://127.0.0.1:${t.port}/ws/m?room=r`);
    const c = await ws.open(`ws://127.0.0.1:${t.port}/ws/m?room=r`);
    await waitFor(() => room.count() === 3);

    let m = samples(await t.engine.metrics());
    expect(m.get('sidewire_socketio_sessions{transport="polling"}')).toBe(1);
    expect(m.get('sidewire_socketio_sessions{transport="websocket"}')).toBe(2);
    expect(m.get('sidewire_socketio_sockets{namespace="/"}')).toBe(2);
    expect(m.get('sidewire_socketio_sockets{namespace="/admin"}')).toBe(1);
    expect(m.get('sidewire_channel_connections{channel="/ws/m"}')).toBe(3);
    expect(m.get('sidewire_channel_rooms{channel="/ws/m"}')).toBe(1);
    expect(m.get('sidewire_connects_total{protocol="socketio"}')).toBe(3);
    expect(m.get('sidewire_connects_total{protocol="channel"}')).toBe(3);

    // A broadcast to the two sockets of '/', a relay to two peers, an event over its rate.
    const before = { broadcasts: m.get('sidewire_broadcasts_total') || 0, recipients: m.get('sidewire_broadcast_recipients_total') || 0 };
    const got = [once(polling, 'news'), once(websocket, 'news')];
    t.io.emit('news', 1);
    await Promise.all(got);
    const relayed = [ws.messages(b, 1), ws.messages(c, 1)];
    a.send('hello');
    await Promise.all(relayed);
    websocket.emit('ping');
    websocket.emit('ping');
    await sleep(200);
    m = samples(await t.engine.metrics());
    expect(m.get('sidewire_broadcasts_total') - before.broadcasts).toBe(2);
    expect(m.get('sidewire_broadcast_recipients_total') - before.recipients).toBe(4);
    expect(m.get('sidewire_limit_refusals_total{limit="rateLimited"}')).toBe(1);
    expect(m.get('sidewire_received_bytes_total')).toBeGreaterThan(0);
    expect(m.get('sidewire_sent_bytes_total')).toBeGreaterThan(m.get('sidewire_received_bytes_total') / 10);
    expect(m.get('sidewire_messages_delivered_total')).toBeGreaterThanOrEqual(4);
    expect(m.get('sidewire_io_thread_cpu_seconds_total{thread="0"}')).toBeGreaterThan(0);

    // Disconnects, by reason and by close code.
    websocket.disconnect();
    const gone = ws.closed(a);
    a.close(4001, 'bye');
    await gone;
    await waitFor(() => room.count() === 2 && t.io.of('/').sockets.size === 1);
    await sleep(100);
    const text = await t.engine.metrics();
    m = samples(text);
    expect(m.get('sidewire_disconnects_total{protocol="socketio",reason="client namespace disconnect"}')).toBe(1);
    expect(m.get('sidewire_disconnects_total{protocol="channel",reason="application"}')).toBe(1);
    expect(m.get('sidewire_socketio_sessions{transport="websocket"}')).toBe(1);
    expect(m.get('sidewire_channel_connections{channel="/ws/m"}')).toBe(2);
    expect([...m.keys()].some((k) => k.startsWith('nodejs_eventloop_lag_p99_seconds'))).toBe(true);
    expect([...m.keys()].some((k) => k.startsWith('sidewire_adapter_'))).toBe(false); // no adapter, no series

    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
    for (const x of [b, c]) x.close();
  });
});

describe('deploy/prometheus.yml', () => {
  test("is a configuration promtool accepts, scraping the app's /metrics", () => {
    const file = require('node:path').join(__dirname, '..', '..', 'deploy', 'prometheus.yml');
    const check = spawnSync('promtool', ['check', 'config', file], { encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(check.status).toBe(0);
    expect(check.stdout).toMatch(/SUCCESS/);
    const text = require('node:fs').readFileSync(file, 'utf8');
    expect(text).toMatch(/metrics_path: \/metrics/);
    expect(text).toMatch(/targets: \['127\.0\.0\.1:3000'\]/);
  });
});
