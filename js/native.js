'use strict';
// Loads the compiled addon. SIDEWIRE_ADDON overrides the path (for a Debug build, say).
const path = require('node:path');

const candidates = [
  process.env.SIDEWIRE_ADDON,
  path.join(__dirname, '..', 'build', 'sidewire.node'),
].filter(Boolean);

let native;
let lastError;
for (const file of candidates) {
  try {
    native = require(file);
    break;
  } catch (err) {
    lastError = err;
  }
}
if (!native) {
  const err = new Error(
    `sidewire: the native addon is not built (tried ${candidates.join(', ')}). ` +
      'Run `npm install` (or `node scripts/build.mjs`) in the sidewire package.',
  );
  err.cause = lastError;
  throw err;
}

module.exports = native;
