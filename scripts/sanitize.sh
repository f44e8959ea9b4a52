#!/usr/bin/env bash
# Sanitizer runs, each in a build directory of its own (gcc, RelWithDebInfo, ccache):
#   asan       the GoogleTest suite with AddressSanitizer + UBSan (and LeakSanitizer) in build-asan/
#   tsan       the GoogleTest suite with ThreadSanitizer in build-tsan/
#   jest-asan  the Jest suite against build-asan/sidewire.node: node is not sanitized, so every
#              node process (Jest and the server.mjs, next build, pm2 ... children it spawns)
#              runs with gcc's libasan preloaded, and no other program does
#              (scripts/sanitize-node.cjs; see jest_asan below).
# Any sanitizer report fails the part it happens in. The parts run one after another, all of
# them even if one fails; the exit status is non-zero when any failed. No suppression files:
# none has been needed.
#
#   bash scripts/sanitize.sh                        all three
#   bash scripts/sanitize.sh --only=asan,tsan       some of them
#   bash scripts/sanitize.sh --only=jest-asan -- tests/js/channels.test.js
#   bash scripts/sanitize.sh --only=tsan -- -R EngineThreads
# Arguments after -- go to jest when jest-asan runs, else to ctest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

only=asan,tsan,jest-asan
extra=()
while (($#)); do
  case $1 in
    --only=*) only=${1#--only=} ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "sanitize.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
IFS=, read -r -a parts <<<"$only"
for p in "${parts[@]}"; do
  case $p in asan|tsan|jest-asan) ;; *) echo "sanitize.sh: unknown part '$p' (asan, tsan, jest-asan)" >&2; exit 2 ;; esac
done
want() { [[ ",$only," == *",$1,"* ]]; }

say() { printf '[sanitize] %s\n' "$*"; }
jobs=$(nproc 2>/dev/null || echo 2)
jest_work=
trap '[[ -n $jest_work ]] && rm -rf "$jest_work"' EXIT
status=0
timings=()
took() { # took LABEL START
  local s=$((SECONDS - $2))
  timings+=("$(printf '%-22s %3dm%02ds' "$1" $((s / 60)) $((s % 60)))")
}

# The build tools, npm dependencies (the addon's build needs node-addon-api) — fast when present.
bash scripts/setup.sh >/dev/null

# configure_and_build DIR SANITIZER ADDON(ON|OFF) TARGET...
configure_and_build() {
  local dir=$1 sanitizer=$2 addon=$3
  shift 3
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIDEWIRE_SANITIZE="$sanitizer" \
    -DSIDEWIRE_BUILD_TESTS=ON -DSIDEWIRE_BUILD_ADDON="$addon" >/dev/null
  local t
  for t in "$@"; do cmake --build "$dir" --parallel "$jobs" --target "$t"; done
}

# Options common to every ASan/UBSan run: stop at the first report, with its stack.
asan_common=halt_on_error=1:abort_on_error=0:print_stacktrace=1:strict_init_order=1:check_initialization_order=1:detect_stack_use_after_return=1
ubsan_common=halt_on_error=1:print_stacktrace=1

# ------------------------------------------------------------------------------------ asan
if want asan || want jest-asan; then
  t0=$SECONDS
  say "building build-asan/ (ASan + UBSan)"
  targets=()
  want asan && targets+=(native_tests)
  want jest-asan && targets+=(sidewire_addon)
  if configure_and_build build-asan address ON "${targets[@]}"; then
    took "asan build" "$t0"
  else
    say "asan: BUILD FAILED"
    status=1
    took "asan build (failed)" "$t0"
    only=${only//jest-asan/}
    only=${only//asan/}
  fi
fi

if want asan; then
  t0=$SECONDS
  say "asan: ctest"
  # ctest_args: what follows -- when only the native parts run (a -R filter, say).
  ctest_args=()
  want jest-asan || ctest_args=("${extra[@]}")
  if ASAN_OPTIONS=$asan_common:detect_leaks=1 UBSAN_OPTIONS=$ubsan_common \
      ctest --test-dir build-asan --output-on-failure --no-tests=error "${ctest_args[@]}"; then
    say "asan: passed"
  else
    say "asan: FAILED"
    status=1
  fi
  took "asan ctest" "$t0"
fi

# ------------------------------------------------------------------------------------ tsan
if want tsan; then
  t0=$SECONDS
  say "building build-tsan/ (TSan)"
  if configure_and_build build-tsan thread OFF native_tests; then
    took "tsan build" "$t0"
    t0=$SECONDS
    say "tsan: ctest"
    ctest_args=()
    want jest-asan || ctest_args=("${extra[@]}")
    # No suppressions: none has been needed (a report is a race to fix, not to hide).
    if TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:history_size=4 \
        ctest --test-dir build-tsan --output-on-failure --no-tests=error "${ctest_args[@]}"; then
      say "tsan: passed"
    else
      say "tsan: FAILED"
      status=1
    fi
    took "tsan ctest" "$t0"
  else
    say "tsan: BUILD FAILED"
    status=1
    took "tsan build (failed)" "$t0"
  fi
fi

# ------------------------------------------------------------------------------- jest-asan
# Node is not sanitized, so the ASan runtime must be the first library of every node process
# that loads the addon: node starts with LD_PRELOAD=libasan.so. Programs that are not node must
# not get it (ps, which pm2 runs to stop an app, curl and chromium hang at startup with it), so
# scripts/sanitize-node.cjs, loaded into every node process through NODE_OPTIONS, takes
# LD_PRELOAD out of the environment and gives it back to node children only. The children
# inherit SIDEWIRE_ADDON (js/native.js loads that file instead of build/sidewire.node) with the
# rest of the environment. Each node process notes what it loaded; a sanitized one that ended up
# with build/sidewire.node fails the run.
# Reports go to files (log_path), not to a child's stderr that a test may never show; any file
# there fails the part, and is printed.
jest_asan() {
  local libasan
  libasan=$(gcc -print-file-name=libasan.so)
  [[ -f $libasan ]] || { say "jest-asan: gcc's libasan.so not found"; return 1; }
  local addon=$root/build-asan/sidewire.node
  local work
  work=$(mktemp -d /tmp/sidewire-jest-asan.XXXXXX)
  jest_work=$work  # removed on exit
  mkdir -p "$work/reports"

  # Node's own allocations at exit are not ours to find: no leak checking in node.
  local env=(
    "LD_PRELOAD=$libasan"
    "NODE_OPTIONS=${NODE_OPTIONS:+$NODE_OPTIONS }--require \"$root/scripts/sanitize-node.cjs\""
    "SIDEWIRE_ASAN_RUNTIME=$libasan"
    "SIDEWIRE_ASAN_PROCS=$work/processes.jsonl"
    "ASAN_OPTIONS=$asan_common:detect_leaks=0:log_path=$work/reports/asan"
    "UBSAN_OPTIONS=$ubsan_common:log_path=$work/reports/ubsan"
    "SIDEWIRE_ADDON=$addon"
  )
  # The addon loads from that file, with the runtime, in a child too.
  if ! env "${env[@]}" node -e '
      const { execFileSync } = require("node:child_process");
      execFileSync(process.execPath, ["-e", `
        const p = require("path").resolve(process.env.SIDEWIRE_ADDON);
        require(p);
        const maps = require("fs").readFileSync("/proc/self/maps", "utf8");
        if (!maps.includes(p)) throw new Error(p + " is not mapped");
        if (!/libasan\\.so/.test(maps)) throw new Error("libasan is not loaded");
        if (process.env.LD_PRELOAD) throw new Error("LD_PRELOAD was left in the environment");`], { stdio: "inherit" });
      if (/^LD_PRELOAD=/m.test(execFileSync("env", { encoding: "utf8" }))) throw new Error("a program that is not node got LD_PRELOAD");'; then
    say "jest-asan: node cannot load $addon with libasan preloaded"
    return 1
  fi
  : >"$work/processes.jsonl"
  local rc=0
  # tests/js/package.test.js is left out: it packs the release build and runs the packed
  # prebuilt binary in a fresh Next.js app, so no process of it loads the addon under test.
  env "${env[@]}" node "$root/node_modules/jest/bin/jest.js" --runInBand \
    --testPathIgnorePatterns '/node_modules/' '<rootDir>/tests/js/package\.test\.js$' "${extra[@]}" || rc=1
  if compgen -G "$work/reports/*" >/dev/null; then
    say "jest-asan: sanitizer reports:"
    local f
    for f in "$work"/reports/*; do
      printf '\n===== %s =====\n' "$(basename "$f")"
      cat "$f"
    done
    rc=1
  fi
  # What the node processes loaded.
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
    const starts = lines.filter((l) => l.event === "start");
    const exits = lines.filter((l) => l.event === "exit");
    const bare = starts.filter((l) => !l.sanitized);
    const fellBack = exits.filter((l) => l.sanitized && l.release && !l.addon);
    console.log(`[sanitize] jest-asan: ${starts.length} node processes, ${starts.length - bare.length} with the ASan runtime; ` +
      `${exits.filter((l) => l.addon).length} of those that exited normally had loaded the ASan addon`);
    for (const l of bare) console.log(`[sanitize]   without the runtime: pid ${l.pid} ${l.argv.join(" ")}`);
    for (const l of fellBack) console.log(`[sanitize]   LOADED build/sidewire.node INSTEAD: pid ${l.pid} ${l.argv.join(" ")}`);
    process.exit(fellBack.length ? 1 : 0);' "$work/processes.jsonl" || rc=1
  return "$rc"
}

if want jest-asan; then
  t0=$SECONDS
  say "jest-asan: jest against build-asan/sidewire.node"
  if jest_asan; then
    say "jest-asan: passed"
  else
    say "jest-asan: FAILED"
    status=1
  fi
  took "jest-asan" "$t0"
fi

say "times:"
for line in "${timings[@]}"; do say "  $line"; done
if ((status)); then
  say FAILED
else
  say "all passed"
fi
exit "$status"
