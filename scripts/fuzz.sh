#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang 14, ASan + UBSan, in a build
# directory of their own) and runs each for a bounded time on a copy of its
# seed corpus (fuzz/corpus/TARGET; the committed corpus is never written).
# Prints per target the inputs run, the coverage reached and the result;
# exits 1 when any target crashed, leaking, timing out or running out of
# memory, and names the input that did it (docs/SECURITY.md, "Fuzzing").
#
#   FUZZ_SECONDS  seconds per target (default 30)
#   FUZZ_TARGETS  targets to run (default: all of them)
#   FUZZ_BUILD    build directory (default build-fuzz)
#   JOBS          build parallelism (default 2)
#
# Total time: the build (a few minutes when clean, seconds after) plus about
# FUZZ_SECONDS per target; each run is killed FUZZ_SECONDS + 60 s in at most.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-30}"
build="${FUZZ_BUILD:-$root/build-fuzz}"
jobs="${JOBS:-2}"
read -r -a targets <<< "${FUZZ_TARGETS:-control wire peer manifest archive capabilities}"

# Longest input per target: a little above its largest real message.
max_len() {
  case "$1" in
    control | peer) echo 4096 ;;
    wire) echo 8192 ;;
    manifest) echo 8192 ;;
    archive) echo 16384 ;; # tar is 512-byte blocks; the seeds are about 5 KiB
    capabilities) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

for tool in clang-14 clang++-14; do
  command -v "$tool" > /dev/null || { echo "fuzz: $tool is missing (make setup installs it)" >&2; exit 1; }
done
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

start=$(date +%s)
mkdir -p "$build"
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -DTROUPE_FUZZ=ON -DTROUPE_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" > "$build/fuzz-configure.log" 2>&1 ||
  { cat "$build/fuzz-configure.log" >&2; exit 1; }
# Only the targets and the libraries they link, not the whole product.
cmake --build "$build" -j"$jobs" --target fuzz_all > "$build/fuzz-build.log" 2>&1 ||
  { tail -50 "$build/fuzz-build.log" >&2; echo "fuzz: build failed ($build/fuzz-build.log)" >&2; exit 1; }
echo "fuzz: built in $(( $(date +%s) - start )) s; ${seconds} s per target"

failed=0
printf '%-14s %12s %8s  %s\n' target runs cov result
for t in "${targets[@]}"; do
  bin="$build/bin/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: no target $t" >&2; failed=1; continue; }
  run="$build/fuzz-runs/$t"
  rm -rf "$run"
  mkdir -p "$run/corpus" "$run/artifacts"
  cp -r "$root/fuzz/corpus/$t/." "$run/corpus/"
  rc=0
  # The archive target writes a throwaway key under TMPDIR once per run.
  (cd "$run" && TMPDIR="$run" timeout -k 10 $((seconds + 60)) "$bin" -max_total_time="$seconds" \
    -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$run/artifacts/" "$run/corpus" > "$run/log" 2>&1) || rc=$?
  # Greps that find nothing (a crash on the first input) must not end the script.
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log" | tail -1)
  cov=$( (grep -o 'cov: [0-9]*' "$run/log" || true) | tail -1 | cut -d' ' -f2)
  artifact=$(find "$run/artifacts" -type f | head -1)
  if [ "$rc" -eq 0 ] && [ -z "$artifact" ]; then
    result=ok
  else
    failed=1
    result="FAILED (exit $rc)"
    [ -n "$artifact" ] && result="$result: input $artifact"
  fi
  printf '%-14s %12s %8s  %s\n' "$t" "${runs:-?}" "${cov:-?}" "$result"
  if [ "$result" != ok ]; then
    (grep -E 'ERROR|SUMMARY|invariant|#[0-9]+ in ' "$run/log" || true) | head -20 | sed 's/^/    /' >&2
    echo "    log: $run/log" >&2
  fi
done
echo "fuzz: $(( $(date +%s) - start )) s in all"
exit "$failed"
