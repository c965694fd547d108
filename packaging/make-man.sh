#!/bin/sh
# Makes the man page troupe.1 (and troupe.1.gz) from `troupe --help` and
# `troupe --version` with help2man, then fixes what mandoc -Tlint would warn
# about: the date in .TH as YYYY-MM-DD (SOURCE_DATE_EPOCH when set, for a
# reproducible page), and "Exit status:" as a section of its own.
#
#   make-man.sh HELP2MAN TROUPE OUT_FILE
set -eu
help2man=$1
troupe=$2
out=$3

"$help2man" --no-info --section=1 --name="process-isolated actor supervisor" --output="$out.tmp" "$troupe"
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  day=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
else
  day=$(date -u +%Y-%m-%d)
fi
sed -e "s/^\(\.TH [^ ]* \"1\" \)\"[^\"]*\"/\1\"$day\"/" \
  -e 's/^\.SS "Exit status:"$/.SH "EXIT STATUS"/' "$out.tmp" >"$out"
rm -f "$out.tmp"
gzip -9nc "$out" >"$out.gz"
