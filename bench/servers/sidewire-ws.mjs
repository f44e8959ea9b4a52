// Benchmark server: node:http + a sidewire Engine channel /ws/bench, room from the `room` query,
// native relay (a client's message goes to the other members of its room without JS).
// The same app as ws.mjs. Run: node --expose-gc bench/servers/sidewire-ws.mjs
import { createRequire } from 'node:module';
import { serveEngine } from './common.mjs';

const require = createRequire(import.meta.url);
const { Engine } = require('../../js/index.js');

const engine = new Engine({ logLevel: process.env.SIDEWIRE_LOG_LEVEL || 'warn' });
engine.channel('/ws/bench', { roomQuery: 'room', relay: true });

await serveEngine(engine);
