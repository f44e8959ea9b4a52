// Input validation for the ticket desk's API. Each validator takes the parsed JSON body and
// returns { value } or { errors: { field: message } }; unknown fields are errors too, so a
// typo never silently does nothing.
import { STATUSES, PRIORITIES } from './db.js';

export { STATUSES, PRIORITIES };

const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/; // tab, LF, CR allowed

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function unknownFields(body, allowed, errors) {
  for (const key of Object.keys(body)) if (!allowed.includes(key)) errors[key] = 'unknown field';
}

// A required single-line string: trimmed, 1..max characters.
function line(body, key, max, errors, { required = true } = {}) {
  const v = body[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string') {
    errors[key] = `must be a string of 1 to ${max} characters`;
    return undefined;
  }
  const s = v.trim();
  if (s.length < 1 || s.length > max) errors[key] = `must be 1 to ${max} characters`;
  else if (/[\r\n]/.test(s) || CONTROL_CHARS.test(s)) errors[key] = 'must be a single line without control characters';
  return s;
}

// Multi-line text: min..max characters (not trimmed inside, only at the ends).
function text(body, key, min, max, errors) {
  const v = body[key];
  if (typeof v !== 'string') {
    errors[key] = `must be a string of ${min} to ${max} characters`;
    return undefined;
  }
  const s = v.trim();
  if (s.length < min || s.length > max) errors[key] = `must be ${min} to ${max} characters`;
  else if (CONTROL_CHARS.test(s)) errors[key] = 'must not contain control characters';
  return s;
}

function oneOf(body, key, values, errors) {
  const v = body[key];
  if (!values.includes(v)) errors[key] = `must be one of ${values.join(', ')}`;
  return v;
}

function result(value, errors) {
  return Object.keys(errors).length ? { errors } : { value };
}

function notAnObject() {
  return { errors: { body: 'must be a JSON object' } };
}

/** POST /api/tickets: title (1..200), description (≤ 10000, default ''), priority (default normal). */
export function validateNewTicket(body) {
  if (!isPlainObject(body)) return notAnObject();
  const errors = {};
  unknownFields(body, ['title', 'description', 'priority'], errors);
  const title = line(body, 'title', 200, errors);
  let description = '';
  if (body.description !== undefined && body.description !== null) {
    description = text(body, 'description', 0, 10000, errors);
  }
  const priority = body.priority === undefined ? 'normal' : oneOf(body, 'priority', PRIORITIES, errors);
  return result({ title, description, priority }, errors);
}

/** PATCH /api/tickets/:id: at least one of status, priority, assignee (null or '' unassigns). */
export function validateTicketPatch(body) {
  if (!isPlainObject(body)) return notAnObject();
  const errors = {};
  const fields = ['status', 'priority', 'assignee'];
  unknownFields(body, fields, errors);
  const patch = {};
  if (body.status !== undefined) patch.status = oneOf(body, 'status', STATUSES, errors);
  if (body.priority !== undefined) patch.priority = oneOf(body, 'priority', PRIORITIES, errors);
  if (body.assignee !== undefined) {
    patch.assignee = body.assignee === null || body.assignee === '' ? null : line(body, 'assignee', 100, errors);
  }
  if (!fields.some((f) => body[f] !== undefined) && !Object.keys(errors).length) {
    errors.body = 'give at least one of status, priority, assignee';
  }
  return result(patch, errors);
}

/** POST /api/tickets/:id/comments: author (1..100), body (1..10000). */
export function validateNewComment(body) {
  if (!isPlainObject(body)) return notAnObject();
  const errors = {};
  unknownFields(body, ['author', 'body'], errors);
  const author = line(body, 'author', 100, errors);
  const text_ = text(body, 'body', 1, 10000, errors);
  return result({ author, body: text_ }, errors);
}

/**
 * A stored attachment's display name: the last path segment of what the client sent, without
 * control or reserved characters and leading dots, at most 200 characters (the extension kept).
 */
export function sanitizeFilename(name) {
  let s = String(name ?? '').normalize('NFC').replace(/\\/g, '/');
  s = s.slice(s.lastIndexOf('/') + 1);
  s = s.replace(/[\u0000-\u001f\u007f<>:"|?*]/g, '_').replace(/^[.\s]+/, '').trim();
  const chars = [...s];
  if (chars.length > 200) {
    const dot = s.lastIndexOf('.');
    const ext = dot > 0 ? [...s.slice(dot)] : [];
    const keep = ext.length > 0 && ext.length <= 20 ? ext : [];
    s = chars.slice(0, 200 - keep.length).join('') + keep.join('');
  }
  return s || 'file';
}

/** A MIME type as `type/subtype` (parameters dropped), or application/octet-stream. */
export function sanitizeMime(type) {
  const s = String(type ?? '').split(';', 1)[0].trim().toLowerCase();
  return s.length <= 100 && /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(s)
    ? s
    : 'application/octet-stream';
}

/** A positive integer id from a route segment (digits only), or null. */
export function parseId(raw) {
  if (typeof raw !== 'string' || !/^[1-9][0-9]{0,15}$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : null;
}
