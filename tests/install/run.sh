#!/bin/bash
# The install test (ctest install_outside): what a package author does after
# `cmake --install`, with nothing of the source tree but what is installed.
#
#   run.sh BUILD_DIR OUTSIDE_SOURCE_DIR CXX_COMPILER CMAKE
#   run.sh --installed PREFIX BUILD_DIR OUTSIDE_SOURCE_DIR CXX_COMPILER CMAKE
#
# (--installed: troupe is already installed in PREFIX, by the .deb of
# tests/deb/run.sh: step 1 only checks the files; BUILD_DIR is only what the
# outside project must not use.)
#
# 1. installs BUILD_DIR (already built: nothing is rebuilt) into a scratch prefix;
# 2. makes a signing key with the installed `troupe keygen`;
# 3. configures and builds OUTSIDE_SOURCE_DIR (copied to the scratch directory)
#    with find_package(troupe) and CMAKE_PREFIX_PATH=prefix only: an actor
#    package packed and signed by troupe_signed_package(), and a program linked
#    to troupe::client;
# 4. starts a system with the installed `troupe` (scratch TROUPE_HOME trusting
#    the key, a free loopback port, a convention of its own), loads the
#    package, spawns its actor, asks it with the CLI and with the program;
# 5. stops the system. Everything it made is removed on exit, failed or not:
#    the system is stopped, and killed (its process group, after checking that
#    the pid is still the installed troupe) if it does not stop.
# Every step is bounded by `timeout`, the whole run by 200 s (ctest's TIMEOUT is 300).
set -u

installed=
if [ "${1:-}" = --installed ]; then
  installed=$2
  shift 2
fi
if [ $# -ne 4 ]; then
  echo "usage: run.sh [--installed PREFIX] BUILD_DIR OUTSIDE_SOURCE_DIR CXX_COMPILER CMAKE" >&2
  exit 2
fi
build=$1
outside_src=$2
cxx=$3
cmake=$4

work=$(mktemp -d /tmp/troupe-install-test.XXXXXX) || exit 1
prefix=${installed:-$work/prefix}
home=$work/home
port=
daemon_pid=

say() { echo "install test: $*"; }
fail() {
  echo "install test: FAILED: $*" >&2
  exit 1
}

# Kills the process group of daemon PID (its workers are in it), only if PID
# is still a process of the installed troupe this test runs.
kill_daemon() {
  local pid=$1 pgid
  case "$pid" in '' | *[!0-9]*) return ;; esac
  [ "$pid" -gt 1 ] || return
  [ "$(readlink "/proc/$pid/exe" 2> /dev/null)" = "$prefix/bin/troupe" ] || return
  pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
  case "$pgid" in
    '' | *[!0-9]*) kill -KILL "$pid" 2> /dev/null ;;
    *) if [ "$pgid" -gt 1 ]; then kill -KILL -- "-$pgid" 2> /dev/null; fi ;;
  esac
}

cleanup() {
  if [ -n "$port" ]; then
    TROUPE_HOME=$home timeout 30 "$prefix/bin/troupe" stop "127.0.0.1:$port" > /dev/null 2>&1
  fi
  # A daemon that would not stop, or one a start cut short left running: the
  # scratch home holds the pid file of every daemon of this test.
  kill_daemon "$daemon_pid"
  for f in "$home"/systems/*/pid; do
    [ -f "$f" ] && kill_daemon "$(cat "$f")"
  done
  # The package cache is read-only (docs/OPERATIONS.md §5.1).
  chmod -R u+w "$work" 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

start_time=$(date +%s.%N)
# Each step is bounded by its own time and by what is left of 200 s, so that
# the run ends (and cleans up) before ctest's TIMEOUT (300 s) would kill it.
deadline=$(($(date +%s) + 200))
bound() {
  local left=$((deadline - $(date +%s)))
  [ "$left" -gt 0 ] || fail "out of time (200 s)"
  if [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}
elapsed() { echo "$(date +%s.%N) $start_time" | awk '{ printf "%.1f s", $1 - $2 }'; }

# 1. Install what the build made (or check what is installed).
if [ -z "$installed" ]; then
  timeout "$(bound 60)" "$cmake" --install "$build" --prefix "$prefix" > "$work/install.log" 2>&1 ||
    fail "cmake --install: $(tail -5 "$work/install.log")"
fi
for f in bin/troupe bin/troupe-worker bin/troupe-worker-python include/troupe/actor.hpp include/troupe/client.hpp \
  lib/cmake/troupe/troupeConfig.cmake lib/cmake/troupe/troupeConfigVersion.cmake \
  lib/cmake/troupe/troupePackage.cmake share/doc/troupe/README.md share/doc/troupe/examples/encoders/package.cpp; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
ls "$prefix"/lib/libtroupe-client.so.* > /dev/null 2>&1 || fail "not installed: lib/libtroupe-client.so.*"
if [ -z "$installed" ]; then
  bins=$(cd "$prefix/bin" && echo *)
  [ "$bins" = "troupe troupe-worker troupe-worker-python" ] ||
    fail "bin/ holds '$bins', not the three programs alone (tests installed?)"
fi
say "installed into $prefix ($(elapsed))"

# 2. A signing key, made by the installed tool.
mkdir -p "$work/keys" "$home/keys"
timeout "$(bound 30)" "$prefix/bin/troupe" keygen "$work/keys/author" > /dev/null || fail "troupe keygen"
cp "$work/keys/author.pub" "$home/keys/" || fail "cannot trust the key"

# 3. The outside project: its own copy, the prefix as the only hint.
cp -r "$outside_src" "$work/src" || fail "cannot copy $outside_src"
generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi
launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# Paths under the scratch directory are taken relative to it by ccache, so a
# second run hits the cache.
export CCACHE_BASEDIR=$work
timeout "$(bound 120)" "$cmake" -S "$work/src" -B "$work/out" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DCMAKE_PREFIX_PATH="$prefix" -DTROUPE_SIGNING_KEY="$work/keys/author.key" \
  > "$work/configure.log" 2>&1 || fail "configuring the outside project: $(tail -20 "$work/configure.log")"
timeout "$(bound 180)" "$cmake" --build "$work/out" > "$work/build.log" 2>&1 ||
  fail "building the outside project: $(tail -30 "$work/build.log")"
archive=$work/out/greeter-1.2.0.tpkg
[ -f "$archive" ] || fail "no $archive after the build"
# Nothing of the build or source tree was used: only the prefix.
if grep -q -e "$build" -e "$(dirname "$(dirname "$outside_src")")/include" "$work/out/compile_commands.json"; then
  fail "the outside project compiled against the build or source tree: $(cat "$work/out/compile_commands.json")"
fi
say "outside project built and signed $archive ($(elapsed))"

# 4. A system of the installed troupe. A random loopback port, tried again when
# taken (bounded).
export TROUPE_HOME=$home
unset TROUPE_SYSTEM TROUPE_WORKER TROUPE_SERVER_KEY
started=
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 30000))
  # --leader itself: a convention of its own, not one on the default 1900.
  if out=$(timeout "$(bound 30)" "$prefix/bin/troupe" --json start --port "$port" --leader "127.0.0.1:$port" 2>&1); then
    started=1
    break
  fi
  say "start on port $port failed (attempt $attempt): $out"
  port=
done
[ -n "$started" ] || fail "no system started"
daemon_pid=$(echo "$out" | sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p')
say "system on 127.0.0.1:$port, pid $daemon_pid ($(elapsed))"
sys=(--system "127.0.0.1:$port")

out=$(timeout "$(bound 60)" "$prefix/bin/troupe" "${sys[@]}" load "$archive" 2>&1) || fail "load: $out"
out=$(timeout "$(bound 30)" "$prefix/bin/troupe" "${sys[@]}" spawn Greeter --name greeter 2>&1) || fail "spawn: $out"
out=$(timeout "$(bound 30)" "$prefix/bin/troupe" "${sys[@]}" ask greeter '"outside"' 2>&1) || fail "ask: $out"
[ "$out" = '"hello, outside"' ] || fail "ask answered '$out', not '\"hello, outside\"'"
out=$(timeout "$(bound 30)" "$work/out/greeter-client" "127.0.0.1:$port" greeter client 2>&1) || fail "greeter-client: $out"
[ "$out" = "hello, client" ] || fail "greeter-client printed '$out', not 'hello, client'"
say "loaded, spawned and asked ($(elapsed))"

# 5. Stop; cleanup() removes the rest.
out=$(timeout "$(bound 30)" "$prefix/bin/troupe" "${sys[@]}" stop 2>&1) || fail "stop: $out"
port=
say "stopped; passed in $(elapsed)"
