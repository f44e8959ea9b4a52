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

/** Splits an upgrade-info event's data: the remote address, CRLF, then the header lines. */
function splitUpgradeInfo(data) {
  const eol = data.indexOf('\r\n');
  return eol >= 0 ? { address: data.slice(0, eol), lines: data.slice(eol + 2) } : { address: data, lines: '' };
}

module.exports = { parseHeaderLines, splitUpgradeInfo };
