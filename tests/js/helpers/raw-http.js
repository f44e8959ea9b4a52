'use strict';
// Raw HTTP/1.1 on a TCP connection, for tests that must control every byte: keep-alive and
// pipelined requests, odd request targets, upgrades whose answer is read by hand.
const net = require('node:net');
const crypto = require('node:crypto');

/** A WebSocket upgrade request head for `target` (extra header lines as [name, value] pairs). */
function wsHead(target, extra = [], { host = '127.0.0.1' } = {}) {
  let s = `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n`;
  for (const [k, v] of extra) s += `${k}: ${v}\r\n`;
  return `${s}\r\n`;
}

/** A plain keep-alive GET head. */
function getHead(target, extra = []) {
  let s = `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n`;
  for (const [k, v] of extra) s += `${k}: ${v}\r\n`;
  return `${s}\r\n`;
}

/**
 * Parses consecutive HTTP responses off the front of `buf`. A 101 ends the HTTP part: what
 * follows it is WebSocket data (`rest`). Bodies are read by Content-Length (or chunked).
 * Returns { responses: [{ status, head, body }], rest, complete } where `complete` says the
 * last response was read whole.
 */
function parseResponses(buf) {
  const responses = [];
  let pos = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', pos);
    if (end < 0) return { responses, rest: buf.subarray(pos), complete: pos === buf.length };
    const head = buf.subarray(pos, end).toString('latin1');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (!m) return { responses, rest: buf.subarray(pos), complete: false, garbage: true };
    const status = Number(m[1]);
    let p = end + 4;
    if (status === 101) {
      responses.push({ status, head, body: Buffer.alloc(0) });
      return { responses, rest: buf.subarray(p), complete: true, upgraded: true };
    }
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
    let body;
    if (cl) {
      const n = Number(cl[1]);
      if (p + n > buf.length) return { responses, rest: buf.subarray(pos), complete: false };
      body = buf.subarray(p, p + n);
      p += n;
    } else if (chunked) {
      const parts = [];
      for (;;) {
        const eol = buf.indexOf('\r\n', p);
        if (eol < 0) return { responses, rest: buf.subarray(pos), complete: false };
        const size = parseInt(buf.subarray(p, eol).toString('latin1'), 16);
        if (p + (eol - p) + 2 + size + 2 > buf.length) return { responses, rest: buf.subarray(pos), complete: false };
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        p = eol + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      body = buf.subarray(p); // read to the end of the connection
      p = buf.length;
    }
    responses.push({ status, head, body });
    pos = p;
    if (pos >= buf.length) return { responses, rest: Buffer.alloc(0), complete: true };
  }
}

/**
 * A raw TCP connection to talk HTTP on by hand. `send(bytes, n)` writes and waits until `n`
 * whole responses have arrived since the connection opened (or a 101, or the close, or
 * timeoutMs); `state()` parses everything received so far. The caller destroys `sock`.
 */
function rawConnection(port, { timeoutMs = 3000, host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    let data = Buffer.alloc(0);
    let closed = false;
    let waiter = null;
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (waiter) waiter();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      closed = true;
      if (waiter) waiter();
    });
    const conn = {
      sock,
      get closed() { return closed; },
      get data() { return data; },
      state() {
        return { ...parseResponses(data), closed, data };
      },
      wait(n) {
        return new Promise((res) => {
          const timer = setTimeout(() => { waiter = null; res(conn.state()); }, timeoutMs);
          waiter = () => {
            const parsed = parseResponses(data);
            if (closed || (parsed.responses.length >= n && parsed.complete) || parsed.upgraded) {
              clearTimeout(timer);
              waiter = null;
              res(conn.state());
            }
          };
          waiter();
        });
      },
      send(bytes, n = 0) {
        if (!closed) sock.write(bytes);
        return n > 0 ? conn.wait(n) : Promise.resolve(conn.state());
      },
    };
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(conn);
    });
  });
}

/**
 * Runs `steps` ({ write, responses }) on a new connection; resolves with the parsed state plus
 * `sock` (left open when the server did not close it: the caller destroys it).
 */
async function converse(port, steps, options = {}) {
  const conn = await rawConnection(port, options);
  for (const step of steps) {
    if (conn.closed) break;
    await conn.send(step.write, step.responses || 0);
  }
  return { sock: conn.sock, conn, ...conn.state() };
}

module.exports = { wsHead, getHead, parseResponses, rawConnection, converse };
