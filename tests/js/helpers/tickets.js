'use strict';
// The ticket-desk example's HTTP API (examples/ticketing/app/api) and its Socket.IO room, as the
// deploy and browser tests drive them. Plain node:http(s) with `agent: false`, so that a test
// against nginx can trust its self-signed certificate (`ca`) and no keep-alive socket outlives
// the test.
const http = require('node:http');
const https = require('node:https');

/** One request; resolves with { status, headers, text, json }. */
function request(url, { method = 'GET', json, headers = {}, ca, timeoutMs = 30000 } = {}) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  return new Promise((resolve, reject) => {
    const req = mod.request(u, {
      method,
      agent: false,
      ca,
      headers: {
        ...(body ? { 'content-type': 'application/json', 'content-length': body.length } : {}),
        ...headers,
      },
      timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** POST /api/tickets → the created ticket (an object with `id`). */
async function createTicket(base, fields, opts = {}) {
  const r = await request(`${base}/api/tickets`, { method: 'POST', json: fields, ...opts });
  if (r.status !== 201 && r.status !== 200) throw new Error(`POST /api/tickets: ${r.status} ${r.text.slice(0, 300)}`);
  const ticket = r.json?.ticket ?? r.json;
  if (ticket?.id === undefined) throw new Error(`POST /api/tickets: no id in ${r.text.slice(0, 300)}`);
  return ticket;
}

/** POST /api/tickets/:id/comments → the created comment (an object with `id`). */
async function addComment(base, ticketId, fields, opts = {}) {
  const r = await request(`${base}/api/tickets/${encodeURIComponent(ticketId)}/comments`, { method: 'POST', json: fields, ...opts });
  if (r.status !== 201 && r.status !== 200) throw new Error(`POST comment: ${r.status} ${r.text.slice(0, 300)}`);
  const comment = r.json?.comment ?? r.json;
  if (comment?.id === undefined) throw new Error(`POST comment: no id in ${r.text.slice(0, 300)}`);
  return comment;
}

/** Joins the `tickets` room (every ticket:created goes there) and resolves with the ack. */
function joinTickets(socket, timeoutMs = 10000) {
  return socket.timeout(timeoutMs).emitWithAck('tickets:join');
}

module.exports = { request, createTicket, addComment, joinTickets };
