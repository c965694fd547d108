#!/bin/bash
# The Debian package test (ctest deb_package): builds troupe_VERSION_ARCH.deb
# from BUILD_DIR (already built: cpack only installs it into its staging tree)
# and checks it without installing it:
#   - the control fields: Package, Version, Architecture, Depends (from
#     dpkg-shlibdeps: libc6, libzmq5, libsystemd0 ...; adduser for postinst);
#   - the maintainer scripts (postinst, prerm, postrm) and what they do;
#   - the files: the programs, the client library, the SDK headers and CMake
#     package, the systemd unit, copyright and changelog, the bash completion
#     and (where help2man is installed) the man page;
#   - the unit, extracted with the programs, with `systemd-analyze verify`
#     (skipped where systemd-analyze is missing);
#   - `lintian` reports no error (skipped where lintian is missing);
#   - as root, on a machine where no troupe package is installed: `dpkg -i`,
#     then the maintainer script's work (the troupe user, /var/lib/troupe
#     0700), the installed unit verified, and the install test's outside
#     project (tests/install/run.sh --installed /usr) built, packed, loaded
#     and asked with the installed tree; `dpkg --purge` on exit, failed or
#     not. TROUPE_TEST_NO_DPKG=1 skips this part.
#
#   run.sh BUILD_DIR CPACK EXPECTED_VERSION [OUTSIDE_SOURCE_DIR CXX_COMPILER CMAKE]
#
# Everything it makes is under one scratch directory, removed on exit.
set -u

if [ $# -ne 3 ] && [ $# -ne 6 ]; then
  echo "usage: run.sh BUILD_DIR CPACK EXPECTED_VERSION [OUTSIDE_SOURCE_DIR CXX_COMPILER CMAKE]" >&2
  exit 2
fi
build=$1
cpack=$2
version=$3
outside=("${@:4}")

work=$(mktemp -d /tmp/troupe-deb-test.XXXXXX) || exit 1
installed_by_us=
cleanup() {
  if [ -n "$installed_by_us" ]; then
    dpkg --purge troupe > "$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; echo "deb test: dpkg --purge troupe failed" >&2; }
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
say() { echo "deb test: $*"; }
fail() {
  echo "deb test: FAILED: $*" >&2
  exit 1
}

arch=$(dpkg --print-architecture) || fail "dpkg --print-architecture"
deb_name=troupe_${version}_${arch}.deb

say "cpack -G DEB"
timeout 300 "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb=$work/out/$deb_name
[ -f "$deb" ] || { ls -l "$work/out" >&2; fail "no $deb_name"; }

say "control fields"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = troupe ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), expected $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
say "Depends: $depends"
for dep in libc6 libstdc++6 libzmq5 libssl3 libyaml-cpp0.7 libarchive13 libsystemd0 adduser; do
  case ", $depends," in
    *", $dep "* | *", $dep,"*) ;;
    *) fail "Depends lacks $dep" ;;
  esac
done
[ -n "$(field Description)" ] || fail "no Description"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"

say "maintainer scripts"
dpkg-deb -e "$deb" "$work/control" || fail "dpkg-deb -e"
grep -qx "activate-noawait ldconfig" "$work/control/triggers" || fail "no ldconfig trigger"
grep -q "libtroupe-client 0 troupe" "$work/control/shlibs" || fail "no shlibs for libtroupe-client.so.0"
for s in postinst prerm postrm; do
  [ -x "$work/control/$s" ] || fail "no executable $s"
  sh -n "$work/control/$s" || fail "$s: syntax"
done
grep -q 'adduser --system .*--home /var/lib/troupe' "$work/control/postinst" || fail "postinst makes no troupe user"
grep -q 'rm -rf /var/lib/troupe' "$work/control/postrm" || fail "postrm purge keeps /var/lib/troupe"

say "files"
dpkg-deb -c "$deb" >"$work/files" || fail "dpkg-deb -c"
for f in ./usr/bin/troupe ./usr/bin/troupe-worker ./usr/bin/troupe-worker-python ./usr/lib/systemd/system/troupe@.service \
  ./usr/include/troupe/actor.hpp ./usr/lib/cmake/troupe/troupeConfig.cmake \
  ./usr/share/doc/troupe/copyright ./usr/share/doc/troupe/changelog.gz ./usr/share/doc/troupe/OPERATIONS.md \
  ./usr/share/bash-completion/completions/troupe; do
  grep -q " $f\$" "$work/files" || fail "no $f in the package"
done
grep -q ' ./usr/lib/libtroupe-client.so' "$work/files" || fail "no libtroupe-client.so in the package"
# The man page, where the build had help2man to make it.
if command -v help2man >/dev/null; then
  grep -q ' ./usr/share/man/man1/troupe.1.gz$' "$work/files" || fail "no troupe.1.gz in the package"
fi
if grep -E ' \./(usr/local|home|tmp|var|etc)/' "$work/files"; then fail "files outside /usr"; fi

say "the unit"
dpkg-deb -x "$deb" "$work/root" || fail "dpkg-deb -x"
unit=$work/root/usr/lib/systemd/system/troupe@.service
for line in 'Type=notify' 'User=troupe' 'Environment=TROUPE_HOME=/var/lib/troupe' 'StateDirectory=troupe' \
  'Restart=on-failure' 'Delegate=yes' 'NoNewPrivileges=yes' 'ProtectSystem=strict'; do
  grep -qx "$line" "$unit" || fail "troupe@.service lacks $line"
done
grep -q '^ExecStart=/usr/bin/troupe start --foreground --port %i' "$unit" || fail "ExecStart"
if command -v systemd-analyze >/dev/null; then
  # An instance of the template, its ExecStart pointing at the extracted program.
  mkdir -p "$work/units"
  sed "s|/usr/bin/troupe|$work/root/usr/bin/troupe|" "$unit" >"$work/units/troupe@1900.service"
  SYSTEMD_LOG_LEVEL=warning timeout 60 systemd-analyze verify --man=no "$work/units/troupe@1900.service" \
    >"$work/verify.log" 2>&1
  if [ -s "$work/verify.log" ]; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify"
  fi
else
  say "systemd-analyze not installed: the unit is not verified"
fi

if command -v lintian >/dev/null; then
  say "lintian"
  timeout 300 lintian --fail-on error --tag-display-limit 0 "$deb" >"$work/lintian.log" 2>&1
  rc=$?
  cat "$work/lintian.log"
  [ $rc -eq 0 ] || fail "lintian reports errors"
else
  say "lintian not installed: skipped"
fi

if [ "$(id -u)" -ne 0 ] || [ "${TROUPE_TEST_NO_DPKG:-}" = 1 ] || [ ${#outside[@]} -ne 3 ]; then
  say "not root (or TROUPE_TEST_NO_DPKG=1): the package is not installed"
elif dpkg-query -W -f='${Status}' troupe 2> /dev/null | grep -q "installed"; then
  say "a troupe package is installed on this machine already: not replaced"
else
  say "dpkg -i"
  installed_by_us=1
  timeout 300 dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
  getent passwd troupe | grep -q ':/var/lib/troupe:' || fail "no troupe user with home /var/lib/troupe"
  [ "$(stat -c '%U %a' /var/lib/troupe)" = "troupe 700" ] || fail "/var/lib/troupe is $(stat -c '%U %a' /var/lib/troupe)"
  /usr/bin/troupe --version | grep -q "^troupe $version " || fail "installed troupe --version: $(/usr/bin/troupe --version)"
  if command -v systemd-analyze > /dev/null; then
    cp /usr/lib/systemd/system/troupe@.service "$work/units/troupe@1901.service"
    SYSTEMD_LOG_LEVEL=warning timeout 60 systemd-analyze verify --man=no "$work/units/troupe@1901.service" \
      > "$work/verify2.log" 2>&1
    [ -s "$work/verify2.log" ] && { cat "$work/verify2.log" >&2; fail "systemd-analyze verify of the installed unit"; }
  fi
  say "the installed tree builds, packs, loads and asks an outside project"
  bash "$(dirname "$0")/../install/run.sh" --installed /usr "$build" "${outside[@]}" || fail "outside project on the installed tree"
fi

say "ok: $deb_name"
