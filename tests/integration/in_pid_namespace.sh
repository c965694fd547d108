#!/bin/sh
# Runs a test program as the init of a new pid namespace, with its own /proc:
# a signal sent by mistake (kill(-1), a pid of 0) reaches nothing outside it,
# and every process the test made dies with it. ctest treats exit 77 as skipped.
if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
  echo "skipped: cannot make a pid namespace here (needs root or user namespaces)"
  exit 77
fi
exec unshare --pid --fork --mount-proc --kill-child "$@"
