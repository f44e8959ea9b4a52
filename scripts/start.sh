#!/usr/bin/env bash
# Start the sidewire server (Next.js + engine on one port). PORT, HOSTNAME, NODE_ENV,
# SIDEWIRE_DRAIN_MS are read by server.mjs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

# Production mode serves a prebuilt app: build it once if there is no build yet.
if [[ "${NODE_ENV:-}" == production && ! -f examples/ticketing/.next/BUILD_ID ]]; then
  echo '[start] building the Next.js app (next build examples/ticketing)'
  npx --no-install next build examples/ticketing
fi

exec node server.mjs
