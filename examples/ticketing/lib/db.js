'use strict';
// The ticket desk's data: SQLite through better-sqlite3 (synchronous, so a write and its
// transaction are done when a function here returns; route handlers emit after that).
//
// One connection per process, kept on globalThis: server.mjs opens it at startup (Node's copy
// of this file), route handlers and pages use it from Next's bundle (a second copy of this
// file, and more after each edit in `next dev`), and all of them share the one connection.
//
//   SIDEWIRE_DATA_DIR          where ticketing.db (WAL mode) and uploads/ live. server.mjs
//                              defaults it to examples/ticketing/data; without it (plain
//                              `next dev`) it is <cwd>/examples/ticketing/data when that app
//                              exists below the working directory, else <cwd>/data.
//                              Several processes of one machine may share it (a fleet): WAL
//                              lets readers run beside the one writer, busy_timeout makes a
//                              writer wait for another. Not on a network filesystem (WAL's
//                              -shm index is shared memory).
//   SIDEWIRE_MAX_UPLOAD_BYTES  largest attachment, default 5 MiB.
//
// CommonJS on purpose: server.mjs loads it with require() (the app has no package.json of its
// own, so a .js file here is CommonJS to Node) and Turbopack bundles it as well.
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const path = require('node:path');
const crypto = require('node:crypto');
const Database = require('better-sqlite3');

const STATE_KEY = Symbol.for('sidewire.ticketing.db');

const STATUSES = ['open', 'in_progress', 'resolved', 'closed'];
const PRIORITIES = ['low', 'normal', 'high', 'urgent'];
const DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024 * 1024;
const SCHEMA_VERSION = 1;

function dataDir() {
  const fromEnv = process.env.SIDEWIRE_DATA_DIR;
  if (fromEnv) return path.resolve(fromEnv);
  const appBelowCwd = path.join(process.cwd(), 'examples', 'ticketing');
  const base = fs.existsSync(path.join(appBelowCwd, 'app')) ? appBelowCwd : process.cwd();
  return path.join(base, 'data');
}

function maxUploadBytes() {
  const n = Number.parseInt(process.env.SIDEWIRE_MAX_UPLOAD_BYTES ?? '', 10);
  return Number.isSafeInteger(n) && n > 0 ? n : DEFAULT_MAX_UPLOAD_BYTES;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tickets (
  id          INTEGER PRIMARY KEY,
  title       TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  status      TEXT NOT NULL DEFAULT 'open'
              CHECK (status IN (${STATUSES.map((s) => `'${s}'`).join(', ')})),
  priority    TEXT NOT NULL DEFAULT 'normal'
              CHECK (priority IN (${PRIORITIES.map((s) => `'${s}'`).join(', ')})),
  assignee    TEXT,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS comments (
  id          INTEGER PRIMARY KEY,
  ticket_id   INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
  author      TEXT NOT NULL,
  body        TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_by_ticket ON comments (ticket_id, id);
CREATE TABLE IF NOT EXISTS attachments (
  id          INTEGER PRIMARY KEY,
  ticket_id   INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
  filename    TEXT NOT NULL,
  stored_name TEXT NOT NULL UNIQUE,
  size        INTEGER NOT NULL,
  mime        TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attachments_by_ticket ON attachments (ticket_id, id);
CREATE TABLE IF NOT EXISTS fabric_documents (
  id          TEXT PRIMARY KEY,
  state       BLOB NOT NULL,
  updated_at  TEXT NOT NULL
);
`;

/** The process's connection (opened, with its directories and schema, on first use). */
function openDb() {
  const existing = globalThis[STATE_KEY];
  if (existing && existing.db.open) return existing.db;
  const dir = dataDir();
  const uploads = path.join(dir, 'uploads');
  fs.mkdirSync(uploads, { recursive: true });
  const file = path.join(dir, 'ticketing.db');
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    if (db.pragma('user_version', { simple: true }) < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  } catch (err) {
    db.close();
    throw err;
  }
  globalThis[STATE_KEY] = { db, dir, uploads, file };
  return db;
}

function state() {
  openDb();
  return globalThis[STATE_KEY];
}

/** Closes the connection (server.mjs, on shutdown); the next use opens it again. */
function closeDb() {
  const s = globalThis[STATE_KEY];
  if (!s) return;
  delete globalThis[STATE_KEY];
  if (s.db.open) s.db.close();
}

// Prepared statements, per connection and per copy of this module (a dev reload of this file
// prepares its own).
const statementCache = new WeakMap();
function stmts() {
  const db = openDb();
  let s = statementCache.get(db);
  if (s) return s;
  s = {
    listTickets: db.prepare('SELECT * FROM tickets ORDER BY id DESC'),
    getTicket: db.prepare('SELECT * FROM tickets WHERE id = ?'),
    insertTicket: db.prepare(
      `INSERT INTO tickets (title, description, priority, created_at, updated_at)
       VALUES (@title, @description, @priority, @now, @now)`,
    ),
    updateTicket: db.prepare(
      `UPDATE tickets SET status = @status, priority = @priority, assignee = @assignee, updated_at = @now
       WHERE id = @id`,
    ),
    listComments: db.prepare('SELECT * FROM comments WHERE ticket_id = ? ORDER BY id'),
    getComment: db.prepare('SELECT * FROM comments WHERE id = ?'),
    insertComment: db.prepare(
      'INSERT INTO comments (ticket_id, author, body, created_at) VALUES (@ticketId, @author, @body, @now)',
    ),
    listAttachments: db.prepare('SELECT * FROM attachments WHERE ticket_id = ? ORDER BY id'),
    getFabricDocument: db.prepare('SELECT state FROM fabric_documents WHERE id = ?'),
    saveFabricDocument: db.prepare(
      `INSERT INTO fabric_documents (id, state, updated_at) VALUES (@id, @state, @now)
       ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
    ),
    getAttachment: db.prepare('SELECT * FROM attachments WHERE id = ? AND ticket_id = ?'),
    insertAttachment: db.prepare(
      `INSERT INTO attachments (ticket_id, filename, stored_name, size, mime, created_at)
       VALUES (@ticketId, @filename, @storedName, @size, @mime, @now)`,
    ),
  };
  // The write transactions are run with .immediate() (BEGIN IMMEDIATE): they take the write lock
  // first, so a writer in another process sharing the file (a fleet: several server.mjs on one
  // data directory) makes them wait (busy_timeout) instead of failing with SQLITE_BUSY when it
  // committed between their first read and their first write.
  s.txCreateTicket = db.transaction((fields) => {
    const { lastInsertRowid } = s.insertTicket.run({ ...fields, now: new Date().toISOString() });
    return s.getTicket.get(lastInsertRowid);
  });
  s.txUpdateTicket = db.transaction((id, patch) => {
    const current = s.getTicket.get(id);
    if (!current) return null;
    const next = { ...current, ...patch };
    s.updateTicket.run({
      id, status: next.status, priority: next.priority, assignee: next.assignee ?? null, now: new Date().toISOString(),
    });
    return s.getTicket.get(id);
  });
  s.txAddComment = db.transaction((ticketId, fields) => {
    if (!s.getTicket.get(ticketId)) return null;
    const { lastInsertRowid } = s.insertComment.run({ ticketId, ...fields, now: new Date().toISOString() });
    return s.getComment.get(lastInsertRowid);
  });
  s.txAddAttachment = db.transaction((ticketId, meta) => {
    if (!s.getTicket.get(ticketId)) return null;
    const { lastInsertRowid } = s.insertAttachment.run({ ticketId, ...meta, now: new Date().toISOString() });
    return s.getAttachment.get(lastInsertRowid, ticketId);
  });
  statementCache.set(db, s);
  return s;
}

function listTickets() {
  return stmts().listTickets.all();
}

function getTicket(id) {
  return stmts().getTicket.get(id) ?? null;
}

/** The ticket with its comments and attachments (public attachment metadata), or null. */
function getTicketDetail(id) {
  const s = stmts();
  const ticket = s.getTicket.get(id);
  if (!ticket) return null;
  return {
    ...ticket,
    comments: s.listComments.all(id),
    attachments: s.listAttachments.all(id).map(publicAttachment),
  };
}

/** { title, description, priority } (validated) → the new ticket. */
function createTicket(fields) {
  return stmts().txCreateTicket.immediate(fields);
}

/** { status?, priority?, assignee? } (validated) → the updated ticket, or null if there is none. */
function updateTicket(id, patch) {
  return stmts().txUpdateTicket.immediate(id, patch);
}

/** { author, body } (validated) → the new comment, or null if the ticket does not exist. */
function addComment(ticketId, fields) {
  return stmts().txAddComment.immediate(ticketId, fields);
}

/**
 * Stores `data` under uploads/ and records it. Resolves with the public metadata, or null if
 * the ticket does not exist (then nothing is left on disk).
 */
async function addAttachment(ticketId, { filename, mime, data }) {
  const s = stmts();
  if (!s.getTicket.get(ticketId)) return null;
  const storedName = crypto.randomUUID();
  const file = path.join(state().uploads, storedName);
  await fsp.writeFile(file, data, { flag: 'wx' });
  let row;
  try {
    row = s.txAddAttachment.immediate(ticketId, { filename, storedName, size: data.length, mime });
  } catch (err) {
    await fsp.rm(file, { force: true });
    throw err;
  }
  if (!row) {
    await fsp.rm(file, { force: true });
    return null;
  }
  return publicAttachment(row);
}

/** The attachment row and the path of its file, or null. */
function getAttachmentFile(ticketId, attachmentId) {
  const row = stmts().getAttachment.get(attachmentId, ticketId);
  if (!row) return null;
  return { ...publicAttachment(row), path: path.join(state().uploads, row.stored_name) };
}

/** What clients see of an attachment (never stored_name). */
function publicAttachment(row) {
  return {
    id: row.id,
    ticket_id: row.ticket_id,
    filename: row.filename,
    size: row.size,
    mime: row.mime,
    created_at: row.created_at,
    url: `/api/tickets/${row.ticket_id}/attachments/${row.id}`,
  };
}

/** A collaborative document's saved Y.js state (one merged update), or null (examples/ticketing/fabric.mjs). */
function loadFabricDocument(id) {
  const row = stmts().getFabricDocument.get(id);
  return row ? row.state : null;
}

function saveFabricDocument(id, state) {
  stmts().saveFabricDocument.run({ id, state: Buffer.from(state.buffer, state.byteOffset, state.byteLength), now: new Date().toISOString() });
}

module.exports = {
  loadFabricDocument,
  saveFabricDocument,
  STATUSES,
  PRIORITIES,
  DEFAULT_MAX_UPLOAD_BYTES,
  dataDir,
  maxUploadBytes,
  openDb,
  closeDb,
  listTickets,
  getTicket,
  getTicketDetail,
  createTicket,
  updateTicket,
  addComment,
  addAttachment,
  getAttachmentFile,
  publicAttachment,
};
