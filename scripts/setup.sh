#!/usr/bin/env bash
# Idempotent setup: system packages for the native build, npm dependencies, the addon.
# Fast (a few dpkg queries and stat calls) when everything is already in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[setup] %s\n' "$*"; }

# 1. Debian packages: the native build and its tests, plus what the end-to-end tests drive:
#    nginx and openssl (tests/js/deploy.test.js runs nginx with a self-signed certificate in
#    front of server.mjs; only the binary is used, never the package's own service) and
#    chromium (tests/js/browser.test.js, headless via playwright-core) with a basic font set,
#    libhiredis-dev (the Redis adapter's protocol reader and command formatter) and
#    redis-server (tests/js/redis-*.test.js start their own on a loopback port; the package's
#    own service is stopped like nginx's), and clang with its libFuzzer and sanitizer runtimes (libclang-rt-14-dev, only recommended
#    by clang, so named here) for scripts/fuzz.sh, and prometheus for its promtool (tests/js/metrics.test.js
#    checks /metrics with `promtool check metrics`; the package's own server is never run).
PKGS=(build-essential cmake libboost1.81-dev nlohmann-json3-dev libspdlog-dev libgtest-dev ccache libssl-dev zlib1g-dev
      clang libclang-rt-14-dev
      libhiredis-dev redis-server
      nginx openssl chromium fonts-liberation prometheus)
if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${PKGS[@]}"; do
    # `dpkg -s` also succeeds for removed packages that left config files behind,
    # so check the status field itself.
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
      if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
      else
        say "missing packages: ${missing[*]}; run as root or install sudo" >&2
        exit 1
      fi
    fi
    # Installing nginx would start its service (port 80) through invoke-rc.d or
    # deb-systemd-invoke; both ask /usr/sbin/policy-rc.d first, and exit code 101 means
    # "do not start". Put one in place for the install unless the machine has its own
    # (Docker images ship one that does exactly this).
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\n# written by sidewire scripts/setup.sh for the duration of apt-get install\nexit 101\n' \
        | "${SUDO[@]}" tee "$policy" >/dev/null
      "${SUDO[@]}" chmod 755 "$policy"
      own_policy=1
    fi
    say "installing ${missing[*]}"
    rc=0
    {
      "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    } || rc=$?
    if ((own_policy)); then "${SUDO[@]}" rm -f "$policy"; fi
    ((rc == 0)) || exit "$rc"
    # Should a service have started all the same (a policy-rc.d that allows it), stop it:
    # the tests start their own nginx on loopback ports and nothing may be left running.
    if [[ " ${missing[*]} " == *" nginx "* && -s /run/nginx.pid ]] \
        && "${SUDO[@]}" kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
      say "stopping the nginx service the package started"
      if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        "${SUDO[@]}" systemctl stop nginx || true
      else
        "${SUDO[@]}" nginx -s quit || true
      fi
    fi
    if [[ " ${missing[*]} " == *" redis-server "* && -s /run/redis/redis-server.pid ]] \
        && "${SUDO[@]}" kill -0 "$(cat /run/redis/redis-server.pid)" 2>/dev/null; then
      say "stopping the redis-server service the package started"
      if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        "${SUDO[@]}" systemctl stop redis-server || true
      else
        "${SUDO[@]}" kill "$(cat /run/redis/redis-server.pid)" || true
      fi
    fi
    if [[ " ${missing[*]} " == *" prometheus "* ]] && pgrep -x prometheus >/dev/null 2>&1; then
      say "stopping the prometheus service the package started"
      "${SUDO[@]}" pkill -x prometheus || true
    fi
  else
    say "system packages present"
  fi
else
  say "no dpkg: not a Debian system, make sure these are installed: ${PKGS[*]}"
fi

# 2. npm dependencies. (The package has no install script: users get the prebuilt addon.)
if [[ ! -d node_modules || ! -f node_modules/.package-lock.json \
      || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "npm ci"
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if ! npm ci --no-audit --no-fund 2>&1 | tee "$log"; then
    # A lockfile written against a registry mirror without other platforms' optional
    # packages (e.g. @next/swc-darwin-*) fails npm ci's sync check; npm install copes.
    if grep -q 'package.json and package-lock.json or npm-shrinkwrap.json are in sync' "$log"; then
      say "package-lock.json is not in sync with package.json, falling back to npm install"
      npm install --no-audit --no-fund
    else
      exit 1
    fi
  fi
else
  say "node_modules up to date"
fi

# 3. The addon, if it is missing or older than its sources.
addon=build/sidewire.node
if [[ ! -f $addon ]]; then
  say "building $addon"
  node scripts/build.mjs
elif [[ -n $(find native binding CMakeLists.txt -newer "$addon" -print -quit 2>/dev/null) ]]; then
  say "sources changed, rebuilding $addon"
  node scripts/build.mjs
else
  say "$addon up to date"
fi
