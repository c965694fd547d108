#!/usr/bin/env bash
# The main demonstration (make demo): a convention of three real systems,
# signed packages loaded on the leader and fetched by members, actors placed by
# capability and moved by chgcap and by a member's death, actors in
# worker processes, two versions of one package bundling conflicting builds of
# one library answering side by side, a worker killed with SIGKILL and
# restarted under the same address, a pipeline that loses no item when a stage's
# worker is killed; clients of another user admitted by key and role; Python actors (runtime
# python) and C++ actors asking each other in both directions. It ends by printing the web
# dashboard and metrics URLs of the systems still running (on a terminal, they run until Enter).
# Everything lives in a temporary TROUPE_HOME on free loopback ports and is stopped on exit, even on
# failure.
set -euo pipefail
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
packages=$(cd "$build/packages" && pwd)  # signed by the build's development key
export TROUPE_HOME=$(mktemp -d /tmp/troupe-demo.XXXXXX)
troupe() { "$bin/troupe" "$@"; }

taken=" "
free_port() {  # a port nothing listens on, not given before (call it in this shell, not in $(...))
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    [[ $taken == *" $p "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { taken+="$p "; port=$p; return; }
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
  rm -rf "$TROUPE_HOME" "${client_home:-}"
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

wait_systems() {  # wait_systems SYSTEM N: until the convention lists N systems up
  for _ in $(seq 100); do
    [ "$(troupe --system "$1" systems --json | grep -o '"state": *"up"' | wc -l)" -ge "$2" ] && return 0
    sleep 0.05
  done
  echo "the convention did not gather $2 systems" >&2; return 1
}

free_port; L=$port; free_port; A=$port; free_port; B=$port; ports+=("$L" "$A" "$B")
SL=127.0.0.1:$L; SA=127.0.0.1:$A; SB=127.0.0.1:$B
# Each system's dashboard (--http) and Prometheus metrics (--metrics), on ports of their own.
declare -A web metrics
for p in "$L" "$A" "$B"; do free_port; web[$p]=$port; free_port; metrics[$p]=$port; done
observed() { echo --http "${web[$1]}" --metrics "${metrics[$1]}"; }

step "A convention of three systems on one host: the leader on $L, members on $A and $B"
troupe start --port "$L" --leader "$SL" $(observed "$L") | grep -v '^dashboard:'
troupe start --port "$A" --caps "morse,Caesar cipher" --leader "$SL" $(observed "$A") | grep -v '^dashboard:'
troupe start --port "$B" --caps "64bit encoder" --leader "$SL" $(observed "$B") | grep -v '^dashboard:'
echo "(each serves its dashboard and /metrics: their URLs come at the end)"
wait_systems "$SL" 3
troupe --system "$SL" systems
echo "(they share TROUPE_HOME, so each trusts the others' CurveZMQ keys: convention/trusted/)"

step "Trust the build's development key; pack the act-5 encoders (each needs a capability)"
mkdir -p "$TROUPE_HOME/keys" && cp "$packages/dev.pub" "$TROUPE_HOME/keys/"
mkdir -p "$TROUPE_HOME/encoders-src"
cp "$build/examples/encoders/package/libencoders.so" "$TROUPE_HOME/encoders-src/"
cp examples/encoders/manifest-convention.yaml "$TROUPE_HOME/encoders-src/manifest.yaml"
grep -A4 '^actors' "$TROUPE_HOME/encoders-src/manifest.yaml"
troupe pack "$TROUPE_HOME/encoders-src/manifest.yaml" --key "$build/keys/dev.key" --out "$TROUPE_HOME/encoders-1.1.0.tpkg" | tail -1

step "Load it on the leader only; a tampered copy is refused and nothing changes"
troupe --system "$SL" load "$TROUPE_HOME/encoders-1.1.0.tpkg" | tail -1
cp "$TROUPE_HOME/encoders-1.1.0.tpkg" "$TROUPE_HOME/tampered.tpkg"
printf '\x01' | dd of="$TROUPE_HOME/tampered.tpkg" bs=1 seek=100000 conv=notrunc status=none
troupe --system "$SL" load "$TROUPE_HOME/tampered.tpkg" || true
troupe --system "$SL" list

step "Spawn the encoders by name: the leader places each on a system with its capability;"
echo "   the members fetch the package from the leader and verify it with their own keys"
troupe --system "$SL" spawn Morse --name morse
troupe --system "$SL" spawn Base64 --name base64
troupe --system "$SL" spawn Rot13 --name rot13
troupe --system "$SL" actors

step 'echo "This is a multi-system test" | encoders-client --use-names (through a member)'
echo "This is a multi-system test" | "$bin/encoders-client" --system "$SA" --use-names

step "Ask by name through any system of the convention"
printf 'through %s: ' "$L"; troupe --system "$SL" ask rot13 '"Hello, troupe"'
printf 'through %s: ' "$B"; troupe --system "$SB" ask rot13 '"Hello, troupe"'

step "chgcap $B - \"64bit encoder\": base64 no longer fits anywhere and waits, pending"
troupe chgcap "$B" - "64bit encoder"
troupe --system "$SL" actors | grep -E 'ADDRESS|base64'
step "chgcap $L + \"64bit encoder\": base64 is re-created on the leader, same address"
troupe chgcap "$L" + "64bit encoder"
printf 'base64 answers: '; troupe --system "$SA" ask base64 '"foo"'
troupe --system "$SL" actors | grep -E 'ADDRESS|base64'

step "Failover: $B gains morse and Caesar cipher; SIGKILL the supervisor of $A"
troupe chgcap "$B" + morse >/dev/null
troupe chgcap "$B" + "Caesar cipher" >/dev/null
pid=$(cat "$TROUPE_HOME/systems/$A/pid")
echo "kill -9 $pid (system $A, hosting morse and rot13)"
kill -9 "$pid"
printf 'morse, asked at once, waits for its new system: '; troupe --system "$SL" ask morse '"SOS"'
troupe --system "$SL" systems
troupe --system "$SL" actors

step "Two versions of one package, each bundling its own libcodec.so.1 (1.2 and 1.5)"
troupe inspect "$packages/conflict-1.0.0.tpkg" --contents
troupe inspect "$packages/conflict-2.0.0.tpkg" --contents
troupe --system "$SL" load "$packages/conflict-1.0.0.tpkg" >/dev/null
old_codec=$(troupe --system "$SL" spawn Codec)
v2=$(troupe --system "$SL" load "$packages/conflict-2.0.0.tpkg" | tail -1)
new_codec=$(troupe --system "$SL" spawn Codec)  # new spawns go to the active (newest) version
troupe --system "$SL" list
printf 'conflict 1.0.0 (%s): ' "$old_codec"; troupe --system "$SL" ask "$old_codec" '{"text": "abc"}'
printf 'conflict 2.0.0 (%s): ' "$new_codec"; troupe --system "$SL" ask "$new_codec" '{"text": "abc"}'
echo "(loaded into one process, the second would silently get the first one's codec: see"
echo " examples/conflict/README.md and its one-process test)"

step "Unload 2.0.0: its actors get exit requests, 1.0.0 is active again"
troupe --system "$SL" unload "$v2"
troupe --system "$SL" spawn Codec --package "$v2" || true
troupe --system "$SL" list

step "SIGKILL the worker hosting the 1.0.0 codec; the supervisor restarts it, same address"
pid=$(troupe --system "$SL" actors --json | grep -A12 "\"$old_codec\"" | grep -o '"worker_pid": [0-9]*' | grep -o '[0-9]*$')
echo "the codec is $old_codec in worker pid $pid; kill -9 $pid"
kill -9 "$pid"
wait_running "$SL" "$old_codec" "$pid"
printf 'it answers again: '; troupe --system "$SL" ask "$old_codec" '{"text": "abc"}'
troupe --system "$SL" actors | grep -E 'ADDRESS|Codec'

step "Another user or host: no key, no answer; a key with the read role may ask, not spawn"
client_home=$(mktemp -d /tmp/troupe-demo-client.XXXXXX)
server_key=$TROUPE_HOME/systems/$L/curve/curve.pub  # what its operator hands out
as_client() { TROUPE_HOME=$client_home TROUPE_SERVER_KEY=$server_key troupe "$@"; }
as_client --system "$SL" status || true
key=$(as_client --json keygen --client | sed -n 's/.*"public_key": "\(.*\)".*/\1/p')
as_client --system "$SL" status || true
troupe trust-client demo-reader "$key" --role read
as_client --system "$SL" ask morse '"SOS"'
as_client --system "$SL" spawn Morse || true
rm -rf "$client_home"

step "Clear errors for bad input"
troupe --system "$SL" ask nobody '"x"' || true
troupe --system "$SL" ask morse '{not json' || true
troupe --system "$SL" spawn Teleporter || true

step "A pipeline in three workers: SIGKILL the transform mid-stream, lose no item"
troupe --system "$SL" load "$packages/pipeline-1.0.0.tpkg" >/dev/null
troupe --system "$SL" spawn Sink --name pipeline.sink >/dev/null  # downstream first: stages
troupe --system "$SL" spawn Transform --name pipeline.transform >/dev/null  # find the next by name
troupe --system "$SL" spawn Source --name pipeline.source >/dev/null
emit() {  # emit FROM COUNT: one range; asked again when the Source died handling it
  until troupe --system "$SL" ask pipeline.source "{\"from\": $1, \"count\": $2}" --type emit >/dev/null; do
    echo "  range from $1 failed (above); asking again"
  done
}
items=20000
for from in $(seq 0 2000 $((items / 2 - 1))); do emit "$from" 2000; done
transform=$(troupe --system "$SL" actors --json | grep -B2 '"name": "pipeline.transform"' | grep -o '@[0-9a-f]*\.[0-9]*')
pid=$(troupe --system "$SL" actors --json | grep -A12 "\"$transform\"" | grep -o '"worker_pid": [0-9]*' | grep -o '[0-9]*$')
echo "$((items / 2)) items asked for; kill -9 $pid (the worker of pipeline.transform $transform)"
kill -9 "$pid"
for from in $(seq $((items / 2)) 2000 $((items - 1))); do emit "$from" 2000; done
echo "$items items asked for; the sink's stats once it has them all (at most 10 s):"
for _ in $(seq 100); do
  stats=$(troupe --system "$SL" ask pipeline.sink null --type stats)
  [ "$(echo "$stats" | grep -o '"distinct":[0-9]*' | grep -o '[0-9]*$')" = "$items" ] && break
  sleep 0.1
done
echo "$stats"
troupe --system "$SL" actors | grep -E 'ADDRESS|pipeline'
echo "$stats" | grep -q "\"distinct\":$items,.*\"missing_below\":0}" ||
  { echo "the sink is missing items" >&2; exit 1; }

step "Python and C++ actors ask each other: encoders_py is the encoders in Python (runtime: python)"
echo "   a Python package version runs in its own troupe-worker-python (embedded CPython, its own sys.path)"
troupe --system "$SL" load "$packages/encoders_py-1.0.0.tpkg" | head -1
troupe --system "$SL" spawn Morse --package encoders_py --name py.morse >/dev/null
troupe --system "$SL" spawn Relay --package encoders_py --name py.relay >/dev/null
troupe --system "$SL" spawn Asker --package encoders --name cpp.asker >/dev/null  # the C++ one
printf 'C++ asker asks the Python morse:   '
troupe --system "$SL" ask cpp.asker '{"via": "py.morse", "payload": "SOS"}'
printf 'Python relay asks the C++ morse:   '
troupe --system "$SL" ask py.relay '{"via": "morse", "payload": "SOS"}'
printf 'C++ asker -> Python relay -> C++ rot13: '
troupe --system "$SL" ask cpp.asker '{"via": "py.relay", "payload": {"via": "rot13", "payload": "Hello"}}'
printf 'the Python and the C++ morse agree: '
[ "$(troupe --system "$SL" ask py.morse '"Hello, troupe"')" = "$(troupe --system "$SL" ask morse '"Hello, troupe"')" ] &&
  echo yes || { echo "they differ" >&2; exit 1; }
troupe --system "$SL" actors | grep -E 'ADDRESS|relay|asker|py\.'

step "The dashboards and metrics of the systems still running ($A was killed above)"
for p in "$L" "$B"; do
  echo "system $p: dashboard $(troupe --system "127.0.0.1:$p" dashboard)"
  echo "             metrics   http://127.0.0.1:${metrics[$p]}/metrics"
done
if [ -t 0 ] && [ -t 1 ]; then
  read -r -p "(open them in a browser; press Enter to stop the systems) " _
  troupe stop "$B" "$L" >/dev/null
  ports=()
else
  echo "(the systems stop as the demo ends; run it on a terminal to keep them until Enter)"
fi
