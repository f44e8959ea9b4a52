'use strict';
// The staff chat's data (examples/ticketing/chat.mjs), in the desk's SQLite file through the
// desk's one connection (lib/db.js): users and their chosen status, conversations (direct and
// group) and their members with each member's delivery and read marks, messages (a reply names
// the one it answers), reactions (one per emoji per user), and notifications queued for users
// who were offline.
const { openDb } = require('./db.js');

const SCHEMA = `
CREATE TABLE IF NOT EXISTS chat_users (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  status     TEXT NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'away', 'busy', 'offline')),
  last_seen  TEXT
);
CREATE TABLE IF NOT EXISTS chat_conversations (
  id         INTEGER PRIMARY KEY,
  kind       TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
  title      TEXT NOT NULL DEFAULT '',
  direct_key TEXT UNIQUE,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chat_members (
  conversation_id INTEGER NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
  user_id         TEXT NOT NULL REFERENCES chat_users(id),
  delivered_id    INTEGER NOT NULL DEFAULT 0,
  read_id         INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX IF NOT EXISTS chat_members_by_user ON chat_members (user_id);
CREATE TABLE IF NOT EXISTS chat_messages (
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES chat_conversations(id) ON DELETE CASCADE,
  sender_id       TEXT NOT NULL REFERENCES chat_users(id),
  body            TEXT NOT NULL,
  reply_to        INTEGER REFERENCES chat_messages(id),
  created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_messages_by_conversation ON chat_messages (conversation_id, id);
CREATE TABLE IF NOT EXISTS chat_reactions (
  message_id INTEGER NOT NULL REFERENCES chat_messages(id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL REFERENCES chat_users(id),
  emoji      TEXT NOT NULL,
  PRIMARY KEY (message_id, user_id, emoji)
);
CREATE TABLE IF NOT EXISTS chat_notifications (
  id           INTEGER PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES chat_users(id),
  kind         TEXT NOT NULL,
  payload      TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  delivered_at TEXT,
  read_at      TEXT
);
CREATE INDEX IF NOT EXISTS chat_notifications_by_user ON chat_notifications (user_id, id);
`;

const TEAM_TITLE = 'Support team';
const cache = new WeakMap();

function s() {
  const db = openDb();
  let st = cache.get(db);
  if (st) return st;
  db.exec(SCHEMA);
  st = {
    db,
    upsertUser: db.prepare(
      `INSERT INTO chat_users (id, name) VALUES (@id, @name)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name`,
    ),
    getUser: db.prepare('SELECT * FROM chat_users WHERE id = ?'),
    listUsers: db.prepare('SELECT * FROM chat_users ORDER BY name'),
    setStatus: db.prepare('UPDATE chat_users SET status = @status, last_seen = @lastSeen WHERE id = @id'),
    team: db.prepare("SELECT id FROM chat_conversations WHERE kind = 'group' AND title = ? ORDER BY id LIMIT 1"),
    insertConversation: db.prepare(
      'INSERT INTO chat_conversations (kind, title, direct_key, created_at) VALUES (@kind, @title, @directKey, @now)',
    ),
    direct: db.prepare('SELECT id FROM chat_conversations WHERE direct_key = ?'),
    getConversation: db.prepare('SELECT id, kind, title FROM chat_conversations WHERE id = ?'),
    addMember: db.prepare(
      `INSERT INTO chat_members (conversation_id, user_id, delivered_id, read_id)
       VALUES (@conversationId, @userId, (SELECT COALESCE(MAX(id), 0) FROM chat_messages WHERE conversation_id = @conversationId),
               (SELECT COALESCE(MAX(id), 0) FROM chat_messages WHERE conversation_id = @conversationId))
       ON CONFLICT DO NOTHING`,
    ),
    removeMember: db.prepare('DELETE FROM chat_members WHERE conversation_id = ? AND user_id = ?'),
    isMember: db.prepare('SELECT 1 FROM chat_members WHERE conversation_id = ? AND user_id = ?'),
    conversationsOf: db.prepare(
      `SELECT c.*, m.read_id,
              (SELECT COUNT(*) FROM chat_messages x WHERE x.conversation_id = c.id AND x.id > m.read_id AND x.sender_id <> m.user_id) AS unread
       FROM chat_conversations c JOIN chat_members m ON m.conversation_id = c.id
       WHERE m.user_id = ? ORDER BY c.id`,
    ),
    members: db.prepare(
      `SELECT u.id, u.name, u.status, u.last_seen, m.delivered_id, m.read_id
       FROM chat_members m JOIN chat_users u ON u.id = m.user_id WHERE m.conversation_id = ? ORDER BY u.name`,
    ),
    insertMessage: db.prepare(
      `INSERT INTO chat_messages (conversation_id, sender_id, body, reply_to, created_at)
       VALUES (@conversationId, @senderId, @body, @replyTo, @now)`,
    ),
    getMessage: db.prepare('SELECT * FROM chat_messages WHERE id = ?'),
    recentMessages: db.prepare(
      'SELECT * FROM (SELECT * FROM chat_messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id',
    ),
    reactionsOf: db.prepare(
      `SELECT r.* FROM chat_reactions r JOIN chat_messages m ON m.id = r.message_id
       WHERE m.conversation_id = ? ORDER BY r.rowid`,
    ),
    markDelivered: db.prepare(
      `UPDATE chat_members SET delivered_id = MAX(delivered_id, @messageId)
       WHERE conversation_id = @conversationId AND user_id = @userId`,
    ),
    markRead: db.prepare(
      `UPDATE chat_members SET read_id = MAX(read_id, @messageId), delivered_id = MAX(delivered_id, @messageId)
       WHERE conversation_id = @conversationId AND user_id = @userId`,
    ),
    member: db.prepare('SELECT * FROM chat_members WHERE conversation_id = ? AND user_id = ?'),
    addReaction: db.prepare('INSERT INTO chat_reactions (message_id, user_id, emoji) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
    removeReaction: db.prepare('DELETE FROM chat_reactions WHERE message_id = ? AND user_id = ? AND emoji = ?'),
    insertNotification: db.prepare(
      'INSERT INTO chat_notifications (user_id, kind, payload, created_at) VALUES (@userId, @kind, @payload, @now)',
    ),
    undelivered: db.prepare('SELECT * FROM chat_notifications WHERE user_id = ? AND delivered_at IS NULL ORDER BY id'),
    markNotificationsDelivered: db.prepare(
      'UPDATE chat_notifications SET delivered_at = @now WHERE user_id = @userId AND delivered_at IS NULL AND id <= @upto',
    ),
    readNotification: db.prepare(
      'UPDATE chat_notifications SET read_at = COALESCE(read_at, @now) WHERE id = @id AND user_id = @userId',
    ),
    unreadNotifications: db.prepare('SELECT * FROM chat_notifications WHERE user_id = ? AND read_at IS NULL ORDER BY id'),
  };
  st.signIn = db.transaction((id, name) => {
    st.upsertUser.run({ id, name });
    let team = st.team.get(TEAM_TITLE);
    if (!team) {
      const { lastInsertRowid } = st.insertConversation.run({ kind: 'group', title: TEAM_TITLE, directKey: null, now: now() });
      team = { id: Number(lastInsertRowid) };
    }
    st.addMember.run({ conversationId: team.id, userId: id });
    return st.getUser.get(id);
  });
  st.openDirect = db.transaction((a, b) => {
    const key = [a, b].sort().join('\n');
    const found = st.direct.get(key);
    if (found) return { id: found.id, created: false };
    const { lastInsertRowid } = st.insertConversation.run({ kind: 'direct', title: '', directKey: key, now: now() });
    const id = Number(lastInsertRowid);
    st.addMember.run({ conversationId: id, userId: a });
    st.addMember.run({ conversationId: id, userId: b });
    return { id, created: true };
  });
  cache.set(db, st);
  return st;
}

const now = () => new Date().toISOString();

function publicMessage(row) {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    senderId: row.sender_id,
    body: row.body,
    replyTo: row.reply_to,
    createdAt: row.created_at,
  };
}

function publicMember(row) {
  return { id: row.id, name: row.name, status: row.status, lastSeen: row.last_seen, deliveredId: row.delivered_id, readId: row.read_id };
}

module.exports = {
  TEAM_TITLE,
  signIn: (id, name) => s().signIn(id, name),
  getUser: (id) => s().getUser.get(id) || null,
  listUsers: () => s().listUsers.all().map((u) => ({ id: u.id, name: u.name, status: u.status, lastSeen: u.last_seen })),
  setStatus: (id, status, lastSeen) => s().setStatus.run({ id, status, lastSeen }),
  openDirect: (a, b) => s().openDirect(a, b),
  getConversation: (id) => s().getConversation.get(id) || null,
  addMember: (conversationId, userId) => s().addMember.run({ conversationId, userId }).changes > 0,
  removeMember: (conversationId, userId) => s().removeMember.run(conversationId, userId).changes > 0,
  isMember: (conversationId, userId) => Boolean(s().isMember.get(conversationId, userId)),
  conversationsOf: (userId) =>
    s().conversationsOf.all(userId).map((c) => ({ id: c.id, kind: c.kind, title: c.title, unread: c.unread, readId: c.read_id })),
  members: (conversationId) => s().members.all(conversationId).map(publicMember),
  addMessage(conversationId, senderId, body, replyTo) {
    const st = s();
    const { lastInsertRowid } = st.insertMessage.run({ conversationId, senderId, body, replyTo, now: now() });
    return publicMessage(st.getMessage.get(lastInsertRowid));
  },
  getMessage: (id) => {
    const row = s().getMessage.get(id);
    return row ? publicMessage(row) : null;
  },
  recentMessages: (conversationId, limit = 200) => s().recentMessages.all(conversationId, limit).map(publicMessage),
  reactionsOf: (conversationId) =>
    s().reactionsOf.all(conversationId).map((r) => ({ messageId: r.message_id, userId: r.user_id, emoji: r.emoji })),
  markDelivered: (conversationId, userId, messageId) => s().markDelivered.run({ conversationId, userId, messageId }).changes > 0,
  markRead: (conversationId, userId, messageId) => s().markRead.run({ conversationId, userId, messageId }).changes > 0,
  member: (conversationId, userId) => s().member.get(conversationId, userId) || null,
  addReaction: (messageId, userId, emoji) => s().addReaction.run(messageId, userId, emoji).changes > 0,
  removeReaction: (messageId, userId, emoji) => s().removeReaction.run(messageId, userId, emoji).changes > 0,
  queueNotification(userId, kind, payload) {
    const { lastInsertRowid } = s().insertNotification.run({ userId, kind, payload: JSON.stringify(payload), now: now() });
    return Number(lastInsertRowid);
  },
  takeUndelivered(userId) {
    const st = s();
    const rows = st.undelivered.all(userId);
    if (rows.length) st.markNotificationsDelivered.run({ userId, upto: rows[rows.length - 1].id, now: now() });
    return rows.map((r) => ({ id: r.id, kind: r.kind, payload: JSON.parse(r.payload), createdAt: r.created_at }));
  },
  readNotification: (userId, id) => s().readNotification.run({ userId, id, now: now() }).changes > 0,
  unreadNotifications: (userId) =>
    s().unreadNotifications.all(userId).map((r) => ({ id: r.id, kind: r.kind, payload: JSON.parse(r.payload), createdAt: r.created_at })),
};
