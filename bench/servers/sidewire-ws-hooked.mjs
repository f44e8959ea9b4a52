// Benchmark server: the raw channel of sidewire-ws.mjs, but relayed by a JS hook instead of the
// engine: every message crosses into JS ('message' on the channel) and goes back out to the other
// members of the sender's room with channel.broadcast. What a channel with JS listeners costs
// per connection and per message. Run: node --expose-gc bench/servers/sidewire-ws-hooked.mjs
import { createRequire } from 'node:module';
import { serveEngine } from './common.mjs';

const require = createRequire(import.meta.url);
const { Engine } = require('../../js/index.js');

const engine = new Engine({ logLevel: process.env.SIDEWIRE_LOG_LEVEL || 'warn' });
const channel = engine.channel('/ws/bench', { roomQuery: 'room' });
channel.on('message', (client, data) => {
  channel.broadcast(client.query.room || 'bench', data, { except: client });
});

await serveEngine(engine);
