// The collaborative editor's channel, /ws/fabric, installed by server.mjs.
//
// The page (app/fabric) is Y.js with y-websocket's client (WebsocketProvider) and CodeMirror
// (y-codemirror.next): ws://host/ws/fabric?documentId=<id>. The server runs no Y.js per message:
//   - the engine relays every message of a client to the other clients of its document
//     (relay: true): sync step 1 and 2, updates, awareness (cursors), awareness queries;
//   - it keeps the document's sync step 2 and update messages (history.prefixes) and replays
//     them to a client that opens the document later, so it gets the whole text with no other
//     editor online; awareness is not kept (a cursor of someone gone would come back);
//   - every `compactAfter` kept messages, and when a document's last editor leaves, the hook
//     below merges the kept updates into one (Y.mergeUpdates), saves it in SQLite and hands
//     the engine that one message instead; `load` reads it back for the first editor after a
//     restart. In a fleet the relay and the kept messages reach every node (the adapter).
//
// Messages are y-protocols' own: varUint(0 = sync) varUint(0 = step 1 | 1 = step 2 | 2 = update)
// varUint8Array(payload), varUint(1 = awareness) varUint8Array(update), varUint(3) (query).
import { createRequire } from 'node:module';
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

const require = createRequire(import.meta.url);
const db = require('./lib/db.js');

const MESSAGE_SYNC = 0;
const SYNC_STEP_2 = 1;
const SYNC_UPDATE = 2;
const MAX_DOCUMENT_ID = 200;

/** The Y.js update a kept message carries, or null for anything else. */
export function updateOf(message) {
  try {
    const decoder = decoding.createDecoder(message instanceof Uint8Array ? message : new Uint8Array(message));
    if (decoding.readVarUint(decoder) !== MESSAGE_SYNC) return null;
    const type = decoding.readVarUint(decoder);
    if (type !== SYNC_STEP_2 && type !== SYNC_UPDATE) return null;
    return decoding.readVarUint8Array(decoder);
  } catch {
    return null; // not y-protocols: a client sent bytes of its own
  }
}

/** One sync step 2 message carrying `update`. */
export function stateMessage(update) {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  encoding.writeVarUint(encoder, SYNC_STEP_2);
  encoding.writeVarUint8Array(encoder, update);
  return Buffer.from(encoding.toUint8Array(encoder));
}

/** A document's kept messages as one: merged, saved, and what the engine keeps instead. */
export function compactDocument(documentId, messages, { log = console } = {}) {
  const updates = [];
  for (const m of messages) {
    if (typeof m === 'string') continue;
    const u = updateOf(m);
    if (u) updates.push(u);
  }
  if (updates.length === 0) return [];
  let merged;
  try {
    merged = Y.mergeUpdates(updates);
  } catch (err) {
    // A malformed update from a client: keep what the engine has rather than lose the document.
    log.error(`fabric: document ${documentId}: updates do not merge (${err.message}); kept as they are`);
    return null;
  }
  if (documentId.length <= MAX_DOCUMENT_ID) db.saveFabricDocument(documentId, merged);
  return [stateMessage(merged)];
}

/** The channel's options (for engine.channel('/ws/fabric', ...)). */
export function fabricChannelOptions({ adapter = null, log = console } = {}) {
  return {
    roomQuery: 'documentId',
    relay: true,
    history: {
      prefixes: [Buffer.from([MESSAGE_SYNC, SYNC_STEP_2]), Buffer.from([MESSAGE_SYNC, SYNC_UPDATE])],
      // A replay must fit in a joiner's outgoing queue (maxQueuedBytes, 8 MiB).
      maxMessages: 5000,
      maxBytes: 4 * 1024 * 1024,
      compactAfter: 200,
      compact: (documentId, messages) => compactDocument(documentId, messages, { log }),
      load(documentId) {
        if (documentId.length > MAX_DOCUMENT_ID) return null;
        const state = db.loadFabricDocument(documentId);
        return state ? [stateMessage(new Uint8Array(state))] : null;
      },
    },
    ...(adapter ? { adapter } : {}),
  };
}

/**
 * Saves a document when its last editor on this node leaves (the channel's 'close' event).
 * Returns { saveOpen() }: saves every document with an editor (server.mjs, before shutdown).
 */
export function attachFabric(channel, { log = console } = {}) {
  const save = (documentId) =>
    channel.compactHistory(documentId).catch((err) => log.error(`fabric: saving ${documentId} failed: ${err.message}`));
  channel.on('close', (client) => {
    const documentId = client.query.documentId;
    if (typeof documentId !== 'string' || documentId === '' || channel.count(documentId) > 0) return;
    save(documentId);
  });
  return {
    channel,
    saveOpen: () => Promise.all([...channel.rooms().keys()].map(save)),
  };
}
