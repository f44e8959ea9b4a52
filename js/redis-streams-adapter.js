'use strict';
// sidewire/redis-streams-adapter: @socket.io/redis-streams-adapter's module on sidewire's engine,
// so that `import { createAdapter } from "@socket.io/redis-streams-adapter"` ports by changing
// the import. The same adapter as sidewire/redis-adapter's createStreamsAdapter.
const { createStreamsAdapter, RedisStreamsAdapter } = require('./redis-adapter.js');

module.exports = { createAdapter: createStreamsAdapter, RedisStreamsAdapter };
