"""A real troupe system per test (the pytest side of tests/integration/harness.hpp).

Needs TROUPE_BIN_DIR (the build's bin/, with troupe) and TROUPE_PACKAGES_DIR
(the build's signed packages and dev.pub), which ctest sets. Each system runs
in a temporary TROUPE_HOME on a free loopback port and is stopped with
`troupe stop`; only the daemon this fixture started is ever signalled.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

BIN = os.environ.get("TROUPE_BIN_DIR", "")
PACKAGES = os.environ.get("TROUPE_PACKAGES_DIR", "")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class System:
    def __init__(self, *start_args):
        if not BIN or not PACKAGES:
            pytest.skip("TROUPE_BIN_DIR and TROUPE_PACKAGES_DIR are not set (run through ctest)")
        self.home = tempfile.mkdtemp(prefix="troupe-pytest-")
        os.makedirs(os.path.join(self.home, "keys"))
        shutil.copy(os.path.join(PACKAGES, "dev.pub"), os.path.join(self.home, "keys", "dev.pub"))
        self.env = dict(os.environ, TROUPE_HOME=self.home)
        self.env.pop("TROUPE_SYSTEM", None)
        self.pid = 0
        why = ""
        for _ in range(5):  # a free port may be taken before the daemon binds it
            self.port = free_port()
            r = self.troupe("start", "--port", str(self.port), "--leader", self.where, *start_args)
            if r.returncode == 0:
                with open(os.path.join(self.home, "systems", str(self.port), "pid")) as f:
                    self.pid = int(f.read().strip())
                return
            why = r.stderr
        shutil.rmtree(self.home, ignore_errors=True)
        raise RuntimeError("troupe start failed: " + why)

    @property
    def where(self):
        return "127.0.0.1:%d" % self.port

    def troupe(self, *args, timeout=60):
        return subprocess.run([os.path.join(BIN, "troupe"), "--system", self.where, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def package(self, name):
        return os.path.join(PACKAGES, name)

    def stop(self):
        self.troupe("stop", str(self.port))
        deadline = time.monotonic() + 10
        while self.pid > 0 and time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            # Only the daemon this fixture started: still our troupe binary
            # (not a reused pid), and its group only when it leads it
            # (troupe start puts the daemon in a session of its own).
            try:
                ours = self.pid > 0 and os.path.realpath("/proc/%d/exe" % self.pid) == os.path.realpath(
                    os.path.join(BIN, "troupe"))
                if ours and os.getpgid(self.pid) == self.pid:
                    os.killpg(self.pid, signal.SIGKILL)
                elif ours:
                    os.kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def system():
    s = System()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def make_system():
    """System(*start_args) for a test that needs its own options; each stopped at the end."""
    made = []

    def make(*start_args):
        made.append(System(*start_args))
        return made[-1]

    try:
        yield make
    finally:
        for s in made:
            s.stop()
