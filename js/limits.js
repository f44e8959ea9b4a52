'use strict';
// Abuse limits (`limits` and `trustProxy` of a Socket.IO Server or a raw channel), checked here
// and turned into what the engine enforces on its I/O threads (native/net/guard.hpp): token
// buckets per connection and event name, connection caps per client address and per user, a
// connect rate per address, the idle timeout, and the proxies whose X-Forwarded-For counts.
const net = require('net');

const POLICIES = new Set(['error', 'drop', 'disconnect']);
// The networks the names stand for (the engine's ProxyTrust has the same).
const NAMED_NETWORKS = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};
// Names a socket.io client keeps for itself: a throttled socket is not told with one.
const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);
const MAX_U32 = 0xffffffff;

function fail(what) {
  throw new TypeError(`sidewire: ${what}`);
}

function rate(value, what) {
  if (!value || typeof value !== 'object' || Array.isArray(value)) fail(`${what} must be { points, perSeconds }`);
  const { points, perSeconds } = value;
  if (!Number.isInteger(points) || points < 1 || points > 1e6) fail(`${what}.points must be a whole number from 1 to 1000000`);
  if (typeof perSeconds !== 'number' || !(perSeconds > 0) || perSeconds > 86400) {
    fail(`${what}.perSeconds must be a number of seconds above 0, at most 86400`);
  }
  return { points, periodMs: Math.max(1, Math.round(perSeconds * 1000)) };
}

function whole(value, what, min = 1) {
  if (value === undefined || value === null || value === 0) return 0;
  if (!Number.isInteger(value) || value < min || value > MAX_U32) fail(`${what} must be a whole number from ${min} (0: no limit)`);
  return value;
}

function proxyEntry(entry) {
  if (typeof entry !== 'string' || !entry.trim()) fail(`trustProxy entries are strings: ${JSON.stringify(entry)}`);
  const e = entry.trim();
  if (Object.prototype.hasOwnProperty.call(NAMED_NETWORKS, e)) return e;
  const slash = e.indexOf('/');
  const address = slash < 0 ? e : e.slice(0, slash);
  const family = net.isIP(address);
  if (family === 0) fail(`trustProxy: '${e}' is no address or network (and not 'loopback', 'linklocal' or 'uniquelocal')`);
  if (slash >= 0) {
    const bits = e.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) fail(`trustProxy: '${e}' needs a prefix length from 0 to ${max}`);
  }
  return e;
}

/** trustProxy: a list (or a comma-separated string) of proxy addresses, networks and names. */
function trustSettings(value) {
  if (value === undefined || value === null || value === false) return [];
  if (value === true) {
    fail("trustProxy: true would believe any client's X-Forwarded-For; list the proxies (addresses, networks, 'loopback')");
  }
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list)) fail("trustProxy must be a list of addresses, networks ('10.0.0.0/8') or 'loopback', 'linklocal', 'uniquelocal'");
  return list.map(proxyEntry);
}

/**
 * The engine's limits for `limits` and `trustProxy`, or null when neither asks for anything.
 * `channel`: a raw channel's (messages have no names: '*' only; the default policy drops
 * silently, as a raw protocol has no error event); `jwt`: auth.jwt is on (connectionsPerUser
 * counts users by their token's sub).
 */
function limitsSettings(limits, trustProxy, { channel = false, jwt = false } = {}) {
  const trust = trustSettings(trustProxy);
  if ((limits === undefined || limits === null || limits === false) && trust.length === 0) return null;
  const l = limits || {};
  if (typeof l !== 'object' || Array.isArray(l)) fail('limits must be an object');
  const events = [];
  if (l.events !== undefined && l.events !== null) {
    if (typeof l.events !== 'object' || Array.isArray(l.events)) {
      fail("limits.events must be an object: event name (or '*') → { points, perSeconds }");
    }
    for (const [name, r] of Object.entries(l.events)) {
      if (channel && name !== '*') {
        fail(`limits.events['${name}']: a raw channel's messages have no names; limit them all with '*'`);
      }
      events.push({ event: name, ...rate(r, `limits.events['${name}']`) });
    }
  }
  const policy = l.policy === undefined ? (channel ? 'drop' : 'error') : l.policy;
  if (!POLICIES.has(policy)) fail(`limits.policy must be 'error', 'drop' or 'disconnect', not ${JSON.stringify(policy)}`);
  const errorEvent = l.errorEvent === undefined ? 'error' : l.errorEvent;
  if (typeof errorEvent !== 'string' || !errorEvent || RESERVED.has(errorEvent)) {
    fail(`limits.errorEvent must be an event name a client may receive, not ${JSON.stringify(errorEvent)}`);
  }
  const connectionsPerUser = whole(l.connectionsPerUser, 'limits.connectionsPerUser');
  if (connectionsPerUser && !jwt) fail('limits.connectionsPerUser counts users by their token: it needs auth.jwt');
  const settings = {
    events,
    policy,
    errorEvent,
    connectionsPerIp: whole(l.connectionsPerIp, 'limits.connectionsPerIp'),
    connectionsPerUser,
    idleTimeoutMs: whole(l.idleTimeoutMs, 'limits.idleTimeoutMs', 100),
    trustProxy: trust,
  };
  if (l.connectRatePerIp !== undefined && l.connectRatePerIp !== null) {
    settings.connectRate = rate(l.connectRatePerIp, 'limits.connectRatePerIp');
  }
  return settings;
}

/**
 * A test of client addresses against entries in trustProxy's forms (addresses, networks,
 * 'loopback' ...), with Node's net.BlockList. An IPv4-mapped IPv6 address is its IPv4 one.
 */
function addressMatcher(entries) {
  const list = new net.BlockList();
  for (const entry of trustSettings(entries)) {
    for (const e of NAMED_NETWORKS[entry] || [entry]) {
      const [address, bits] = e.split('/');
      const type = net.isIPv6(address) ? 'ipv6' : 'ipv4';
      if (bits === undefined) list.addAddress(address, type);
      else list.addSubnet(address, Number(bits), type);
    }
  }
  return (address) => {
    if (!address) return false;
    const a = address.startsWith('::ffff:') ? address.slice(7) : address;
    return list.check(a, net.isIPv6(a) ? 'ipv6' : 'ipv4');
  };
}

module.exports = { limitsSettings, trustSettings, addressMatcher };
