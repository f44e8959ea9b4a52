// This repository's PM2 process file for a fleet: the one in deploy/ (which apps copy next to
// their server.mjs), run from the repository root. See deploy/ecosystem.fleet.config.cjs.
const config = require('./deploy/ecosystem.fleet.config.cjs');

for (const app of config.apps) app.cwd = __dirname;
module.exports = config;
