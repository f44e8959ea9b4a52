'use strict';
// Moves event arguments across the binding: JSON text plus binary attachments. The engine
// frames the packets; this only turns JS values into `["event", ...args]` JSON with
// `{"_placeholder":true,"num":i}` in place of each binary value, and back.

function isBinary(value) {
  return (
    value instanceof Uint8Array || // Buffer too
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value)
  );
}

function toBuffer(value) {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

// As socket.io-parser's hasBinary: looks through arrays, own properties, and one level of
// toJSON() output.
function hasBinary(value, toJSONCalled) {
  if (value === null || typeof value !== 'object') return false;
  if (isBinary(value)) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (hasBinary(value[i])) return true;
    return false;
  }
  if (typeof value.toJSON === 'function' && !toJSONCalled) return hasBinary(value.toJSON(), true);
  for (const key in value) {
    if (Object.prototype.hasOwnProperty.call(value, key) && hasBinary(value[key])) return true;
  }
  return false;
}

/**
 * Encodes `data` (the array [event, ...args] or an ack's [...args]) with JSON.stringify
 * semantics (toJSON, undefined dropped in objects and null in arrays, Dates as strings).
 * Returns { json, attachments }.
 */
function encode(data) {
  if (!hasBinary(data)) return { json: JSON.stringify(data), attachments: EMPTY };
  const attachments = [];
  // The replacer sees the holder as `this`: the raw value is checked before JSON.stringify
  // would call Buffer's own toJSON.
  const json = JSON.stringify(data, function replacer(key, value) {
    let raw = this[key];
    if (raw === null || typeof raw !== 'object' || !isBinary(raw)) raw = value; // toJSON() may return binary
    if (raw !== null && typeof raw === 'object' && isBinary(raw)) {
      attachments.push(toBuffer(raw));
      return { _placeholder: true, num: attachments.length - 1 };
    }
    return value;
  });
  return { json, attachments };
}

const EMPTY = Object.freeze([]);

function reconstruct(value, attachments) {
  if (value === null || typeof value !== 'object') return value;
  if (value._placeholder === true) {
    const n = value.num;
    if (typeof n === 'number' && n >= 0 && n < attachments.length) return attachments[n];
    throw new Error('illegal attachments');
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reconstruct(value[i], attachments);
    return value;
  }
  for (const key in value) {
    if (Object.prototype.hasOwnProperty.call(value, key)) value[key] = reconstruct(value[key], attachments);
  }
  return value;
}

/** Parses the JSON array of an EVENT or ACK and puts the attachments (Buffers) back. */
function decode(json, attachments) {
  const data = json ? JSON.parse(json) : [];
  if (!Array.isArray(data)) throw new Error('invalid payload');
  if (attachments && attachments.length) reconstruct(data, attachments);
  return data;
}

module.exports = { encode, decode, hasBinary, isBinary };
