#!/usr/bin/env bash
# The main demonstration (make demo): real systems, a real package, actors in
# worker processes, a worker killed with SIGKILL and restarted under the same
# address. Everything lives in a temporary TROUPE_HOME on free loopback ports
# and is stopped on exit, even on failure.
set -euo pipefail
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
pkg=$(cd "$build/examples/encoders/package" && pwd)
export TROUPE_HOME=$(mktemp -d /tmp/troupe-demo.XXXXXX)
troupe() { "$bin/troupe" "$@"; }

free_port() {  # a port nothing listens on
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
ports=()
cleanup() {
  for p in "${ports[@]}"; do troupe stop "$p" >/dev/null 2>&1 || true; done
  # Anything left (a failed run): the daemon's whole session, workers included.
  for f in "$TROUPE_HOME"/systems/*/pid; do
    [ -f "$f" ] || continue
    pgid=$(ps -o pgid= -p "$(cat "$f")" 2>/dev/null | tr -d ' ') || true
    [ -n "$pgid" ] && kill -9 -- "-$pgid" 2>/dev/null || true
  done
  rm -rf "$TROUPE_HOME"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_running() {  # wait_running SYSTEM ADDRESS OLD_PID: until the actor runs in a new worker
  for _ in $(seq 200); do
    if troupe --system "$1" actors --json | grep -A12 "\"$2\"" | grep -q '"state": "running"' &&
       ! troupe --system "$1" actors --json | grep -A12 "\"$2\"" | grep -q "\"worker_pid\": $3,"; then
      return 0
    fi
    sleep 0.05
  done
  echo "actor $2 did not come back" >&2; return 1
}

A=$(free_port); ports+=("$A"); B=$(free_port); ports+=("$B")
SA=127.0.0.1:$A; SB=127.0.0.1:$B

step "Two systems on one host (ports $A and $B)"
troupe start --port "$A" --caps "morse,Caesar cipher"
troupe start --port "$B" --caps "gpu_mem=16"
troupe --system "$SA" status

step "Load the encoders package (a directory package: manifest.yaml + libencoders.so)"
troupe --system "$SA" load "$pkg"
troupe --system "$SB" load "$pkg" | tail -1
troupe --system "$SA" list

step "Spawn actors under global names; each package version gets its own worker process"
troupe --system "$SA" spawn Morse --name morse
troupe --system "$SA" spawn Base64 --name base64
troupe --system "$SA" spawn Rot13 --name rot13
troupe --system "$SB" spawn Rot13 --name rot13 >/dev/null
troupe --system "$SA" actors

step 'echo "This is a multi-system test" | encoders-client --use-names'
echo "This is a multi-system test" | "$bin/encoders-client" --system "$SA" --use-names

step "Ask by name on each system"
printf 'system A rot13: '; troupe --system "$SA" ask rot13 '"Hello, troupe"'
printf 'system B rot13: '; troupe --system "$SB" ask rot13 '"Hello, troupe"'

step "SIGKILL the worker hosting 'morse'; the supervisor restarts it, same address"
morse=$(troupe --system "$SA" actors --json | grep -B2 '"name": "morse"' | grep -o '@[0-9a-f]*\.[0-9]*' | head -1)
pid=$(troupe --system "$SA" actors --json | grep -A12 "\"$morse\"" | grep -o '"worker_pid": [0-9]*' | grep -o '[0-9]*$')
echo "morse is $morse in worker pid $pid; kill -9 $pid"
kill -9 "$pid"
wait_running "$SA" "$morse" "$pid"
printf 'morse answers again: '; troupe --system "$SA" ask "$morse" '"SOS"'
troupe --system "$SA" actors

step "Clear errors for bad input"
troupe --system "$SA" ask nobody '"x"' || true
troupe --system "$SA" ask morse '{not json' || true
troupe --system "$SA" spawn Teleporter || true

step "Stop both systems (actors get exit requests, workers exit)"
troupe stop "$A" "$B"
ports=()
echo
echo "Coming with the next issues: signed packages and conflicting versions side by side (#3),"
echo "restart policies and no-loss delivery (#4), conventions with chgcap moving actors (#5)."
