#!/usr/bin/env bash
# libFuzzer harnesses for every parser that reads bytes from the network (tests/fuzz/).
#
#   npm run fuzz                          each harness for 60 s, new inputs kept under build-fuzz/
#   npm run fuzz -- --time=300            seconds per harness
#   npm run fuzz -- --only=ws_frame,http_head
#   npm run fuzz -- --ci                  replay the committed corpus, then 20 s per harness
#                                         (connection: 30 s); non-zero on any crash
#   npm run fuzz -- --build-only
#
# Builds build-fuzz (clang, -fsanitize=fuzzer,address,undefined; ccache when present). The
# corpus in the repository (tests/fuzz/corpus/<harness>/) is only read: what a run finds goes to
# build-fuzz/fuzz-corpus/<harness>/ (kept between runs), crashes to build-fuzz/fuzz-artifacts/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

say() { printf '[fuzz] %s\n' "$*"; }
usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

ALL=(ws_frame http_head eio_payload sio_packet json_shape msgpack cluster_wire jwt inflate connection)
ci=0
build_only=0
time_per=""
only=""
for arg in "$@"; do
  case $arg in
    --ci) ci=1 ;;
    --build-only) build_only=1 ;;
    --time=*) time_per=${arg#--time=} ;;
    --only=*) only=${arg#--only=} ;;
    -h|--help) usage; exit 0 ;;
    *) say "unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done
if [[ -n $time_per && ! $time_per =~ ^[0-9]+$ ]]; then
  say "--time takes whole seconds, not '$time_per'" >&2
  exit 2
fi

harnesses=()
if [[ -n $only ]]; then
  IFS=, read -r -a wanted <<<"$only"
  for h in "${wanted[@]}"; do
    if [[ " ${ALL[*]} " != *" $h "* ]]; then
      say "no harness '$h' (there are: ${ALL[*]})" >&2
      exit 2
    fi
    harnesses+=("$h")
  done
else
  harnesses=("${ALL[@]}")
fi

started=$SECONDS
stamp() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# ---------------------------------------------------------------------------- toolchain
# clang and its libFuzzer runtime come from scripts/setup.sh (clang, libclang-rt-14-dev);
# nothing is installed here.
fuzzer_runtime() {
  command -v clang++ >/dev/null 2>&1 || return 1
  local dir
  dir=$(clang++ -print-resource-dir 2>/dev/null)/lib/linux
  [[ -f $dir/libclang_rt.fuzzer-$(uname -m).a && -f $dir/libclang_rt.asan-$(uname -m).a ]]
}
if ! fuzzer_runtime || ! command -v cmake >/dev/null 2>&1; then
  say "clang with libFuzzer or cmake is missing: running scripts/setup.sh"
  bash scripts/setup.sh
  if ! fuzzer_runtime; then
    say "clang++ with libFuzzer (libclang_rt.fuzzer) is still not there" >&2
    exit 1
  fi
fi

# ---------------------------------------------------------------------------- build
build=$root/build-fuzz
jobs=$(nproc 2>/dev/null || echo 2)
say "building $build (${harnesses[*]})"
t0=$SECONDS
mkdir -p "$build"
configure() {
  cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSIDEWIRE_BUILD_FUZZ=ON -DSIDEWIRE_BUILD_ADDON=OFF -DSIDEWIRE_BUILD_TESTS=OFF -DSIDEWIRE_BUILD_BENCH=OFF \
    >"$build/configure.log" 2>&1
}
if ! configure; then
  # A library's headers missing (a machine the project's setup never ran on): set up, retry.
  say "configuring failed: running scripts/setup.sh, then again"
  bash scripts/setup.sh
  configure || { cat "$build/configure.log" >&2; exit 1; }
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$build" --parallel "$jobs" --target "${targets[@]}"
build_time=$((SECONDS - t0))
say "built in $(stamp $build_time)"
((build_only)) && exit 0

# ---------------------------------------------------------------------------- run
hexdump_file() {
  if command -v xxd >/dev/null 2>&1; then xxd "$1" | head -64; else od -A x -t x1z -v "$1" | head -64; fi
}

failed=()
report_artifacts() {  # harness, artifact dir, log
  local h=$1 dir=$2 log=$3 found=0
  for f in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir"/slow-unit-*; do
    [[ -e $f ]] || continue
    [[ $(basename "$f") == slow-unit-* ]] && continue  # slow, not wrong
    found=1
    say "$h: $(basename "$f") ($(stat -c %s "$f") bytes), in hex:"
    hexdump_file "$f"
    say "replay: $build/fuzz_$h $f"
  done
  if ((found == 0)); then
    # Replaying files one by one leaves no artifact: the input is the file that was running.
    local input
    input=$(grep -E '^Running: ' "$log" | tail -1 | sed 's/^Running: //' || true)
    if [[ -n $input && -f $input ]]; then
      say "$h: failed on $input ($(stat -c %s "$input") bytes), in hex:"
      hexdump_file "$input"
      say "replay: $build/fuzz_$h $input"
    else
      say "$h: failed without an artifact"
    fi
  fi
  say "--- $log (end) ---"
  grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|^(Running|Executed):? ' "$log" | tail -60
}

# One harness: replay (CI), then fuzz for `secs`.
run_one() {
  local h=$1 secs=$2
  local bin=$build/fuzz_$h seeds=$root/tests/fuzz/corpus/$h dict=$root/tests/fuzz/$h.dict
  local art work log
  if ((ci)); then
    art=$build/fuzz-ci/$h/artifacts
    work=$build/fuzz-ci/$h/corpus
    rm -rf "$build/fuzz-ci/$h"
  else
    art=$build/fuzz-artifacts/$h
    work=$build/fuzz-corpus/$h
  fi
  mkdir -p "$art" "$work" "$build/fuzz-logs"
  log=$build/fuzz-logs/$h.log
  local opts=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$art/" -print_final_stats=1)
  [[ -f $dict ]] && opts+=(-dict="$dict")
  local t=$SECONDS

  if ((ci)); then
    # Every committed input once, each on its own: a regression input that crashes again fails here.
    local files=()
    [[ -d $seeds ]] && mapfile -t files < <(find "$seeds" -type f | sort)
    if ((${#files[@]})); then
      if ! "$bin" "${opts[@]}" "${files[@]}" >"$log.replay" 2>&1; then
        say "$h: replaying tests/fuzz/corpus/$h FAILED"
        report_artifacts "$h" "$art" "$log.replay"
        failed+=("$h (corpus replay)")
        return
      fi
      say "$h: replayed ${#files[@]} committed inputs in $((SECONDS - t)) s"
    fi
  fi

  local rc=0
  "$bin" "${opts[@]}" -max_total_time="$secs" "$work" "$seeds" >"$log" 2>&1 || rc=$?
  local summary
  summary=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  if ((rc != 0)); then
    say "$h: FAILED (exit $rc) after $((SECONDS - t)) s"
    report_artifacts "$h" "$art" "$log"
    failed+=("$h")
  else
    say "$h: ok in $((SECONDS - t)) s: ${summary:-no summary line}"
  fi
}

for h in "${harnesses[@]}"; do
  if ((ci)); then
    secs=${time_per:-20}
    [[ $h == connection ]] && secs=$((secs * 3 / 2))
  else
    secs=${time_per:-60}
  fi
  run_one "$h" "$secs"
done

say "total $(stamp $((SECONDS - started))) (build $(stamp $build_time))"
if ((${#failed[@]})); then
  say "FAILED: ${failed[*]}"
  say "a crash input goes into tests/fuzz/corpus/<harness>/ as a regression input once fixed"
  exit 1
fi
if ((ci == 0)); then
  cat <<EOF
[fuzz] new inputs are in build-fuzz/fuzz-corpus/<harness>/ (not in the repository). To keep the
[fuzz] ones that add coverage, merge them into a fresh directory and review it first:
[fuzz]   mkdir /tmp/merged && build-fuzz/fuzz_<harness> -merge=1 /tmp/merged \\
[fuzz]       tests/fuzz/corpus/<harness> build-fuzz/fuzz-corpus/<harness>
[fuzz] shrink a crash input before committing it:
[fuzz]   build-fuzz/fuzz_<harness> -minimize_crash=1 -runs=10000 -exact_artifact_path=/tmp/min <crash file>
EOF
fi
