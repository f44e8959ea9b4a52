// Shared pieces of the ticket desk's route handlers: JSON answers, bounded body reading, and
// emitting to Socket.IO rooms after a write.
import { getServer } from 'sidewire';

export const TICKETS_ROOM = 'tickets';
export const ticketRoom = (id) => `ticket:${id}`;

const NO_STORE = { 'cache-control': 'no-store' };

export function json(body, status = 200, headers = {}) {
  return Response.json(body, { status, headers: { ...NO_STORE, ...headers } });
}

/** `{ error, details? }` with its status (400 invalid input, 404, 413 …). */
export function fail(status, error, details) {
  return json(details === undefined ? { error } : { error, details }, status);
}

export const invalidId = () => fail(400, 'invalid id', { id: 'must be a positive integer' });
export const ticketNotFound = () => fail(404, 'ticket not found');

// Past the limit the rest of a body is still read (and dropped) up to this, so that the client
// gets the 413 answer instead of a connection reset in the middle of its upload.
const DRAIN_CAP = 64 * 1024 * 1024;

/**
 * Reads the request body into a Buffer, at most `limit` bytes. Resolves { bytes } or
 * { tooLarge: true }.
 */
export async function readBody(request, limit) {
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (!request.body) return { bytes: Buffer.alloc(0) };
  if (declared > DRAIN_CAP) {
    await request.body.cancel().catch(() => {});
    return { tooLarge: true };
  }
  const reader = request.body.getReader();
  const chunks = [];
  let total = 0;
  let tooLarge = declared > limit;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) tooLarge = true;
      if (tooLarge) {
        if (total > DRAIN_CAP) {
          await reader.cancel().catch(() => {});
          break;
        }
        continue;
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock?.();
  }
  return tooLarge ? { tooLarge: true } : { bytes: Buffer.concat(chunks, total) };
}

const MAX_JSON_BYTES = 64 * 1024; // every valid body is far smaller

/** Parses a JSON body. Resolves { value } or { response } (400 / 413) to return as it is. */
export async function readJson(request) {
  const { bytes, tooLarge } = await readBody(request, MAX_JSON_BYTES);
  if (tooLarge) return { response: fail(413, 'request body too large', { maxBytes: MAX_JSON_BYTES }) };
  try {
    return { value: JSON.parse(bytes.toString('utf8')) };
  } catch {
    return { response: fail(400, 'invalid JSON body') };
  }
}

export function validationFailed(errors) {
  return fail(400, 'validation failed', errors);
}

let warnedNoServer = false;

/**
 * Emits `event` to `rooms` (one emit: a socket in several of them gets it once) through the
 * process's Socket.IO server. Called after the write has committed. Without a server (plain
 * `next dev`, no server.mjs) or if the emit fails, the write stands: the emit is skipped with
 * a warning and the answer carries `x-sidewire-emit: skipped`.
 * Returns the headers for the response.
 */
export function emitAfterWrite(rooms, event, payload) {
  try {
    getServer().to(rooms).emit(event, payload);
    return { 'x-sidewire-emit': 'sent' };
  } catch (err) {
    const message = err?.message || String(err);
    if (!warnedNoServer || !/no Socket\.IO server/.test(message)) {
      console.warn(`[ticketing] ${event} not emitted (the write is saved): ${message}`);
    } else {
      console.warn(`[ticketing] ${event} not emitted (no Socket.IO server in this process)`);
    }
    if (/no Socket\.IO server/.test(message)) warnedNoServer = true;
    return { 'x-sidewire-emit': 'skipped' };
  }
}
