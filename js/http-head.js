'use strict';
// Header lines as the engine read them ("Name: value" joined by CRLF), made into node:http's
// `headers` (lower-case names; repeats joined with ", ", cookies with "; ", set-cookie an
// array) and `rawHeaders`.
function parseHeaderLines(text) {
  const headers = {};
  const rawHeaders = [];
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    rawHeaders.push(name, value);
    const key = name.toLowerCase();
    if (key === 'set-cookie') (headers[key] ||= []).push(value);
    else if (key in headers) headers[key] += (key === 'cookie' ? '; ' : ', ') + value;
    else headers[key] = value;
  }
  return { headers, rawHeaders };
}

/**
 * An upgrade-info event's data is the remote address, CRLF, then the header lines: the address,
 * and where the lines start (data.length when there are none).
 */
function upgradeInfoParts(data) {
  const eol = data.indexOf('\r\n');
  return eol >= 0 ? { address: data.slice(0, eol), linesFrom: eol + 2 } : { address: data, linesFrom: data.length };
}

/** Splits an upgrade-info event's data: the remote address, CRLF, then the header lines. */
function splitUpgradeInfo(data) {
  const { address, linesFrom } = upgradeInfoParts(data);
  return { address, lines: data.slice(linesFrom) };
}

// Connections through one path ask with the same URL, and many come from the same address:
// one string for all of them instead of one each (the last one seen, per kind).
const lastSeen = { url: '', address: '' };
function reuse(kind, s) {
  if (s === lastSeen[kind]) return lastSeen[kind];
  lastSeen[kind] = s;
  return s;
}

/**
 * A request target split as the engine splits it: the path ends at the first '?' or '#', the
 * query runs from the '?' to any '#'. (The engine refuses a target with a '#' outright; what
 * JS decides about a request must be about the same path and query.)
 */
function splitTarget(url) {
  const target = url || '/';
  const end = target.search(/[?#]/);
  const pathname = end >= 0 ? target.slice(0, end) : target;
  const q = target.indexOf('?');
  let query = q >= 0 ? target.slice(q + 1) : '';
  const hash = query.indexOf('#');
  if (hash >= 0) query = query.slice(0, hash);
  return { pathname, query };
}

/** A query string as an object, the first value of each key winning (as the engine reads it). */
function firstValues(query) {
  const out = {};
  for (const [k, v] of new URLSearchParams(query)) if (!(k in out)) out[k] = v;
  return out;
}

/** How many times `key` appears in a query string. */
function countKey(query, key) {
  let n = 0;
  for (const k of new URLSearchParams(query).keys()) if (k === key) n += 1;
  return n;
}

module.exports = { parseHeaderLines, splitUpgradeInfo, upgradeInfoParts, splitTarget, firstValues, countKey, reuse };
