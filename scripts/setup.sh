#!/usr/bin/env bash
# Idempotent setup: system packages for the native build, npm dependencies, the addon.
# Fast (a few dpkg queries and stat calls) when everything is already in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[setup] %s\n' "$*"; }

# 1. Debian packages needed to build the engine and its tests.
PKGS=(build-essential cmake libboost1.81-dev nlohmann-json3-dev libspdlog-dev libgtest-dev ccache)
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
    say "installing ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    say "system packages present"
  fi
else
  say "no dpkg: not a Debian system, make sure these are installed: ${PKGS[*]}"
fi

# 2. npm dependencies (npm ci runs this package's `install` script, which builds the addon).
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
  exit 0
fi
say "node_modules up to date"

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
