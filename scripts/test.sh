#!/usr/bin/env bash
# Full test run: setup, build (addon + GoogleTest), native tests, JS tests.
# Extra arguments are passed to jest (e.g. `npm test -- -t relay`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

echo '[test] building addon and native tests'
node scripts/build.mjs --tests

# Run both suites even if the first fails, then fail if either did.
status=0
echo '[test] ctest'
ctest --test-dir build --output-on-failure --no-tests=error || status=1
echo '[test] jest'
npx --no-install jest --runInBand "$@" || status=1

if ((status)); then
  echo '[test] FAILED' >&2
else
  echo '[test] all passed'
fi
exit "$status"
