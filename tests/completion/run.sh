#!/bin/bash
# The bash completion test (ctest bash_completion): sources
# packaging/troupe.bash-completion and calls its function _troupe as bash
# would, with COMP_WORDS and COMP_CWORD, checking COMPREPLY: command names,
# options of a command, values of options, ports from a scratch TROUPE_HOME,
# files, and no actor names (quickly) when no system answers. Actor names
# from a running system are checked by the CLI integration test.
#
#   run.sh BIN_DIR COMPLETION_FILE
set -u

if [ $# -ne 2 ]; then
  echo "usage: run.sh BIN_DIR COMPLETION_FILE" >&2
  exit 2
fi
export PATH=$1:$PATH
# shellcheck source=/dev/null
source "$2" || exit 1

work=$(mktemp -d /tmp/troupe-completion-test.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
export TROUPE_HOME=$work/home
mkdir -p "$TROUPE_HOME/systems/1901" "$TROUPE_HOME/systems/1902" "$TROUPE_HOME/systems/notaport" "$work/files"
touch "$work/files/encoders-1.0.0.tpkg" "$work/files/1901.toml"
unset TROUPE_SYSTEM

failures=0
# complete WORD... : COMPREPLY for the line "WORD..." with the cursor on the last word.
complete_line() {
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _troupe
}
# expect "LINE" WORD... : COMPREPLY holds each WORD. expect_not: holds none of them.
expect() {
  local line=$1
  shift
  local w r found
  for w in "$@"; do
    found=
    for r in "${COMPREPLY[@]}"; do [[ $r == "$w" ]] && found=1; done
    if [[ -z $found ]]; then
      echo "FAILED: '$line': no '$w' in: ${COMPREPLY[*]}" >&2
      failures=$((failures + 1))
    fi
  done
}
expect_not() {
  local line=$1
  shift
  local w r
  for w in "$@"; do
    for r in "${COMPREPLY[@]}"; do
      if [[ $r == "$w" ]]; then
        echo "FAILED: '$line': '$w' should not be in: ${COMPREPLY[*]}" >&2
        failures=$((failures + 1))
      fi
    done
  done
}
expect_empty() {
  if [ ${#COMPREPLY[@]} -ne 0 ]; then
    echo "FAILED: '$1': expected nothing, got: ${COMPREPLY[*]}" >&2
    failures=$((failures + 1))
  fi
}

complete_line troupe st
expect "troupe st" start status stop
expect_not "troupe st" spawn __complete

complete_line troupe ""
expect "troupe " start ask chgcap config help
expect_not "troupe " __complete

complete_line troupe --system 127.0.0.1:1901 --json a
expect "troupe --system ... a" ask actors avail
expect_not "troupe --system ... a" start

complete_line troupe help bo
expect "troupe help bo" bootstart

complete_line troupe start --ma
expect "troupe start --ma" --max-workers --max-held --max-package-size --max-json-depth --max-client-message \
  --max-tcp-clients
expect_not "troupe start --ma" --port

complete_line troupe start --
expect "troupe start --" --port --caps --leader --etcd --config --foreground --allow-unsigned --system --json
expect_not "troupe start --" --ready-fd --running

complete_line troupe config --r
expect "troupe config --r" --running

complete_line troupe start --delivery ""
expect "troupe start --delivery" no-loss best-effort

complete_line troupe stop ""
expect "troupe stop" 1901 1902
expect_not "troupe stop" notaport

complete_line troupe stop 1901 19
expect "troupe stop 1901 19" 1901 1902

complete_line troupe chgcap 190
expect "troupe chgcap 190" 1901 1902

complete_line troupe chgcap 1901 ""
expect_empty "troupe chgcap 1901"

complete_line troupe --system ""
expect "troupe --system" 127.0.0.1:1901 127.0.0.1:1902

complete_line troupe move x --to ""
expect "troupe move x --to" 1901 1902

complete_line troupe start --config "$work/files/19"
expect "troupe start --config" "$work/files/1901.toml"

complete_line troupe load "$work/files/enc"
expect "troupe load" "$work/files/encoders-1.0.0.tpkg"

complete_line troupe pack "$work/files/enc"
expect "troupe pack" "$work/files/encoders-1.0.0.tpkg"

complete_line troupe ask morse "@$work/files/19"
expect "troupe ask morse @" "@$work/files/1901.toml"

# No system on that port: nothing, and at once (the CLI waits 500 ms at most).
start=$(date +%s%N)
complete_line troupe --system 127.0.0.1:9 ask ""
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_empty "troupe --system 127.0.0.1:9 ask"
if [ $elapsed_ms -gt 3000 ]; then
  echo "FAILED: actor names with no system took $elapsed_ms ms" >&2
  failures=$((failures + 1))
fi

if [ $failures -ne 0 ]; then
  echo "bash completion: $failures failure(s)" >&2
  exit 1
fi
echo "bash completion: ok"
