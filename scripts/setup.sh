#!/usr/bin/env bash
# Installs the Debian packages troupe needs to build, test and demo.
# Does nothing when everything is present; otherwise runs `apt-get update` once,
# then `apt-get install -y` of what is missing. Must run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  python3 iproute2 util-linux             # the README test: its blocks run in namespaces (unshare, ip)
  libboost-dev libboost-filesystem-dev   # Asio, Process (Process needs filesystem in 1.74)
  libzmq3-dev cppzmq-dev                 # ZeroMQ and its C++ binding
  libssl-dev                             # OpenSSL 3: Ed25519, SHA-256
  libyaml-cpp-dev                        # manifests
  nlohmann-json3-dev                     # payloads, CLI output
  libcli11-dev                           # the CLI: arguments, environment, configuration file
  libarchive-dev                         # package archives
  libsystemd-dev                         # sd_notify: Type=notify under systemd
  libspdlog-dev                          # the log: levels, sinks, rotation (ipc/log.cpp)
  catch2                                 # tests (v2)
  lintian                                # the .deb test (tests/deb/run.sh)
  help2man mandoc                        # the man page troupe.1 (generated from --help) and its lint test
  clang-format                           # make format-check (CI)
  clang-14 libclang-rt-14-dev            # make fuzz (CI): its runtimes are libFuzzer, ASan, UBSan
  etcd-server etcd-client                # conventions on etcd (tests start their own)
  libpython3-dev pybind11-dev            # troupe-worker-python embeds CPython (runtime: python)
  python3-zmq python3-pytest             # the Python client (clients/python) and its tests
  prometheus-cpp-dev                     # --metrics: registry, metric types, text format (core library)
  prometheus                             # tests: a real Prometheus scrapes a system; promtool checks the output
  chromium                               # tests: the dashboard in a real headless browser (tests/browser)
  nodejs                                 # tests: node and npm run puppeteer-core, pinned in tests/browser
)

# The browser test's npm packages (puppeteer-core, which downloads no
# browser: the test drives Debian's /usr/bin/chromium), as pinned by
# tests/browser/package-lock.json; only when they are not there yet.
npm_packages() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
  [ -d "$dir/node_modules" ] && return 0
  command -v npm >/dev/null || return 0
  echo "setup: npm ci in $dir"
  (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  npm_packages
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
npm_packages
