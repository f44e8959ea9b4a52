'use strict';
// Misbehaving clients for soak tests: raw WebSocket frames of every broken kind, slow request
// heads, and the /proc figures (RSS, open descriptors) of a server process. Loopback only.
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const { wsHead, parseResponses } = require('./raw-http');
const { serverFrames } = require('./ws');

/** VmRSS in bytes and the number of open descriptors of process `pid` (Linux /proc). */
function procStats(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  const threads = /^Threads:\s+(\d+)/m.exec(status);
  return {
    rss: m ? Number(m[1]) * 1024 : NaN,
    fds: fs.readdirSync(`/proc/${pid}/fd`).length,
    threads: threads ? Number(threads[1]) : NaN,
  };
}

/**
 * A client frame with every bit under control: fin, rsv (0–7), opcode, mask, payload, and
 * `length` to claim another length than the payload's (or a BigInt for the 64-bit form).
 */
function frame({ fin = true, rsv = 0, opcode = 1, mask = true, payload = Buffer.alloc(0), length, form } = {}) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = length === undefined ? body.length : length;
  const parts = [Buffer.from([(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)])];
  const m = mask ? 0x80 : 0;
  const big = typeof len === 'bigint' || form === 64 || len > 0xffff;
  if (!big && form !== 16 && len < 126) {
    parts.push(Buffer.from([m | len]));
  } else if (!big) {
    const b = Buffer.alloc(3);
    b[0] = m | 126;
    b.writeUInt16BE(Number(len), 1);
    parts.push(b);
  } else {
    const b = Buffer.alloc(9);
    b[0] = m | 127;
    b.writeBigUInt64BE(BigInt(len), 1);
    parts.push(b);
  }
  if (mask) {
    const key = crypto.randomBytes(4);
    const masked = Buffer.alloc(body.length);
    for (let i = 0; i < body.length; i++) masked[i] = body[i] ^ key[i & 3];
    parts.push(key, masked);
  } else {
    parts.push(body);
  }
  return Buffer.concat(parts);
}

function closePayload(code, reason = Buffer.alloc(0)) {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code, 0);
  return Buffer.concat([b, Buffer.isBuffer(reason) ? reason : Buffer.from(reason)]);
}

/**
 * Upgrades a raw TCP connection at `target` and resolves once the answer head is in:
 * { sock, status, frames(), closed, closedAt, data() }. Everything the server sends is kept.
 */
function rawWebSocket(port, target, { headers = [], timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    const st = {
      sock,
      status: null,
      closed: false,
      closedAt: 0,
      error: null,
      data: () => data,
      body() {
        const parsed = parseResponses(data);
        return parsed.upgraded ? parsed.rest : Buffer.alloc(0);
      },
      frames() {
        return serverFrames(st.body());
      },
      closeFrame() {
        return st.frames().find((f) => f.opcode === 8) || null;
      },
      whenClosed(ms) {
        if (st.closed) return Promise.resolve(true);
        return new Promise((res) => {
          const timer = setTimeout(() => res(false), ms);
          sock.once('close', () => {
            clearTimeout(timer);
            res(true);
          });
        });
      },
    };
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(st);
    };
    const timer = setTimeout(done, timeoutMs);
    sock.on('data', (d) => {
      data = data.length ? Buffer.concat([data, d]) : d;
      if (st.status === null) {
        const end = data.indexOf('\r\n\r\n');
        if (end >= 0) {
          const m = /^HTTP\/1\.1 (\d{3})/.exec(data.subarray(0, end).toString('latin1'));
          st.status = m ? Number(m[1]) : -1;
          done();
        }
      }
    });
    sock.on('error', (err) => { st.error = err.code || err.message; });
    sock.on('close', () => {
      st.closed = true;
      st.closedAt = Date.now();
      done();
    });
    sock.once('connect', () => sock.write(wsHead(target, headers)));
  });
}

// Broken frames sent after a valid upgrade. `expect`: the close codes a conforming server
// answers with (RFC 6455 and the README's table), or null where any orderly close will do (the
// client then ends its side after `thenEnd` ms and only a prompt close is required).
const utf8Bad = [
  Buffer.from([0x68, 0xc3, 0x28]), // a broken two-byte sequence
  Buffer.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate
  Buffer.from([0xc0, 0xaf]), // an overlong '/'
  Buffer.from([0xf5, 0x80, 0x80, 0x80]), // above U+10FFFF
  Buffer.from([0xff]),
];

function badFrameCases() {
  const cases = [];
  for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    cases.push({ name: `reserved opcode ${op}`, bytes: frame({ opcode: op, payload: 'x' }), expect: [1002] });
  }
  cases.push({ name: 'unmasked text frame', bytes: frame({ mask: false, payload: 'hello' }), expect: [1002] });
  cases.push({ name: 'unmasked close frame', bytes: frame({ mask: false, opcode: 8, payload: closePayload(1000) }), expect: [1002] });
  for (const rsv of [1, 2, 4, 7]) cases.push({ name: `rsv bits ${rsv}`, bytes: frame({ rsv, payload: 'x' }), expect: [1002] });
  utf8Bad.forEach((b, i) => cases.push({ name: `invalid UTF-8 text #${i}`, bytes: frame({ payload: b }), expect: [1007] }));
  cases.push({
    name: 'invalid UTF-8 across fragments',
    bytes: Buffer.concat([frame({ fin: false, payload: Buffer.from([0x61, 0xe2, 0x82]) }), frame({ fin: true, opcode: 0, payload: Buffer.from([0x28]) })]),
    expect: [1007],
  });
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
    cases.push({ name: `close code ${code}`, bytes: frame({ opcode: 8, payload: closePayload(code) }), expect: [1002] });
  }
  cases.push({ name: 'close frame with a 1-byte payload', bytes: frame({ opcode: 8, payload: Buffer.from([3]) }), expect: [1002] });
  cases.push({ name: 'close reason with invalid UTF-8', bytes: frame({ opcode: 8, payload: closePayload(1000, Buffer.from([0xff, 0xfe])) }), expect: [1007] });
  cases.push({ name: 'fragmented ping', bytes: frame({ fin: false, opcode: 9, payload: 'p' }), expect: [1002] });
  cases.push({ name: 'ping with 126 bytes', bytes: frame({ opcode: 9, payload: Buffer.alloc(126, 1) }), expect: [1002] });
  cases.push({ name: 'continuation without a start', bytes: frame({ opcode: 0, payload: 'x' }), expect: [1002] });
  cases.push({
    name: 'new text frame inside a fragmented message',
    bytes: Buffer.concat([frame({ fin: false, payload: 'a' }), frame({ payload: 'b' })]),
    expect: [1002],
  });
  cases.push({ name: '64-bit length with the top bit set', bytes: frame({ length: 0x8000000000000001n, payload: Buffer.alloc(0) }), expect: [1002, 1009] });
  cases.push({ name: 'a 4 GiB length', bytes: frame({ length: 0x100000001n, payload: Buffer.alloc(0) }), expect: [1009] });
  // Valid closes are answered with the same code (sanity: the checks are not just "close on anything").
  for (const code of [1000, 3000, 4999]) cases.push({ name: `valid close ${code}`, bytes: frame({ opcode: 8, payload: closePayload(code) }), expect: [code] });
  // Cut short: the server must wait, then close when the client goes.
  const cuts = [
    Buffer.from([0x81]),
    Buffer.from([0x81, 0xfe, 0x00]),
    Buffer.from([0x81, 0xff, 0, 0, 0]),
    Buffer.from([0x81, 0x85, 1, 2]),
    frame({ payload: 'hello world' }).subarray(0, 9),
    frame({ payload: Buffer.alloc(300, 7) }).subarray(0, 150),
  ];
  cuts.forEach((b, i) => cases.push({ name: `frame cut short #${i}, then FIN`, bytes: b, expect: null, thenEnd: 300 }));
  cuts.forEach((b, i) => cases.push({ name: `frame cut short #${i}, then RST`, bytes: b, expect: null, thenReset: 300 }));
  return cases;
}

/** Random bytes: sometimes pure noise, sometimes a plausible frame head followed by noise. */
function randomJunk(rand) {
  const n = 1 + Math.floor(rand() * 2048);
  const b = crypto.randomBytes(n);
  if (rand() < 0.5) b[0] = 0x80 | Math.floor(rand() * 16);
  if (rand() < 0.5 && n > 1) b[1] |= 0x80;
  return b;
}

/**
 * A slowloris: a TCP connection that sends `head` one byte every `intervalMs` and never finishes
 * it. Resolves (via .done) once the server closes the connection, with what it answered.
 */
function slowloris(port, head, { intervalMs = 1000 } = {}) {
  const sock = net.connect(port, '127.0.0.1');
  const st = { sock, openedAt: Date.now(), closedAt: 0, answer: '', sent: 0, byServer: false, stopped: false };
  let timer = null;
  st.done = new Promise((resolve) => {
    sock.on('data', (d) => { st.answer += d.toString('latin1'); });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearInterval(timer);
      st.closedAt = Date.now();
      st.byServer = !st.stopped;
      resolve(st);
    });
  });
  sock.once('connect', () => {
    const tick = () => {
      if (st.sent < head.length - 2) sock.write(head[st.sent++]); // never the final CRLF
    };
    tick();
    timer = setInterval(tick, intervalMs);
  });
  st.stop = () => {
    st.stopped = true;
    clearInterval(timer);
    sock.destroy();
  };
  return st;
}

module.exports = { procStats, frame, closePayload, serverFrames, rawWebSocket, badFrameCases, randomJunk, slowloris };
