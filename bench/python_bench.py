#!/usr/bin/env python3
"""Python runtime figures beside baselines of the same run (docs/PERFORMANCE.md).

    python3 bench/python_bench.py [--build build] [--rounds 5] [--asks 2000] [--tells 100000]

Starts its own system (a scratch TROUPE_HOME, a free loopback port), loads the
C++ relay fixture (two versions: two workers) and the bench
package benchpy (runtime python), and prints:

  ask round trip across workers, client → relay → echo → relay → client,
    C++ relay → C++ echo (the baseline), Python relay → C++ echo,
    C++ relay → Python echo: medians of --asks asks per round, the median
    round; the client hop is in all three, so the differences are the
    runtimes'.
  in-worker tell throughput: Flood tells its Sink (same Python worker) N
    messages; the baseline passes the same objects N times through a plain
    Python loop of the same interpreter (deque mailbox, a receive() call).

Uses clients/python (troupe_client) and the build's troupe; needs python3-zmq.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
import troupe_client  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--asks", type=int, default=2000)
    ap.add_argument("--tells", type=int, default=100000)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    troupe = os.path.join(build, "bin", "troupe")
    home = tempfile.mkdtemp(prefix="troupe-pybench-")
    os.makedirs(os.path.join(home, "keys"))
    shutil.copy(os.path.join(build, "packages", "dev.pub"), os.path.join(home, "keys"))
    port = free_port()
    where = "127.0.0.1:%d" % port
    env = dict(os.environ, TROUPE_HOME=home)

    def run(*a):
        r = subprocess.run([troupe, "--system", where, *a], env=env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit("troupe %s: %s" % (" ".join(a), r.stderr.strip()))
        return r.stdout

    run("start", "--port", str(port), "--leader", where)
    try:
        c = troupe_client.connect(where, home=home)
        fixtures = os.path.join(build, "tests", "packages")  # TROUPE_FIXTURE_PACKAGE_OUT
        relay1 = c.load(os.path.join(fixtures, "relay-1.0.0.tpkg"))["id"]
        relay2 = c.load(os.path.join(fixtures, "relay-2.0.0.tpkg"))["id"]
        c.load(os.path.join(build, "bench", "benchpy-1.0.0.tpkg"))
        cpp_relay = c.spawn("Relay", package=relay1)
        cpp_echo = c.spawn("Relay", package=relay2)
        py_relay = c.spawn("Relay", package="benchpy")
        py_echo = c.spawn("Echo", package="benchpy")
        flood = c.spawn("Flood", package="benchpy")
        paths = {
            "cpp_to_cpp": (cpp_relay, {"via": cpp_echo, "payload": {"echo": 1}}),
            "py_to_cpp": (py_relay, {"via": cpp_echo, "payload": {"echo": 1}}),
            "cpp_to_py": (cpp_relay, {"via": py_echo, "payload": {"echo": 1}}),
        }
        for target, payload in paths.values():  # warm up: routes resolved, code paths hot
            for _ in range(200):
                c.ask(target, payload)
        # Memory per idle Python actor: the worker's resident set before and
        # after 1000 more Echo actors.
        def rss_kib(pid):
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
            return 0
        pid = next(x["worker_pid"] for x in c.actors() if x["address"] == py_echo)
        before = rss_kib(pid)
        for _ in range(1000):
            c.spawn("Echo", package="benchpy")
        after = rss_kib(pid)
        rtt = {k: [] for k in paths}
        for _ in range(args.rounds):
            for name, (target, payload) in paths.items():
                samples = []
                for _ in range(args.asks):
                    t0 = time.perf_counter()
                    c.ask(target, payload)
                    samples.append(time.perf_counter() - t0)
                rtt[name].append(statistics.median(samples) * 1e6)
        c.ask(flood, {"flood": 1000, "payload": {"n": 1, "text": "hello"}}, timeout=30)
        tput, base = [], []
        for _ in range(args.rounds):
            secs = c.ask(flood, {"flood": args.tells, "payload": {"n": 1, "text": "hello"}}, timeout=120)
            tput.append(args.tells / secs)
            secs = c.ask(flood, {"baseline": args.tells, "payload": {"n": 1, "text": "hello"}}, timeout=120)
            base.append(args.tells / secs)
        # A package version serving: load (a new worker and interpreter) + spawn +
        # first answer, beside a bare `python3 -c 'import zmq'`.
        serve, bare = [], []
        conflict = os.path.join(build, "packages", "conflict_py-1.0.0.tpkg")
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            pkg = c.load(conflict)["id"]
            a = c.spawn("Codec", package=pkg)
            c.ask(a, {"text": "abc"})
            serve.append((time.perf_counter() - t0) * 1e3)
            c.unload(pkg)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import zmq"], check=True)
            bare.append((time.perf_counter() - t0) * 1e3)
        c.close()
    finally:
        subprocess.run([troupe, "--system", where, "stop", str(port)], env=env, capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in rtt.items()}
    figures = [
        ("ask_rtt_cpp_to_cpp_us", med["cpp_to_cpp"], "us", None),
        ("ask_rtt_py_to_cpp_us", med["py_to_cpp"], "us", med["cpp_to_cpp"]),
        ("ask_rtt_cpp_to_py_us", med["cpp_to_py"], "us", med["cpp_to_cpp"]),
        ("py_in_worker_tells_per_s", statistics.median(tput), "msg/s", statistics.median(base)),
        ("py_version_serving_ms", statistics.median(serve), "ms", statistics.median(bare)),
        ("py_idle_actor_kib", (after - before) / 1000.0, "KiB", None),
    ]
    print("%-28s %12s %-6s %12s %7s" % ("name", "value", "unit", "baseline", "ratio"))
    for name, value, unit, baseline in figures:
        print("%-28s %12.1f %-6s %12s %7s" % (name, value, unit, "-" if baseline is None else "%.1f" % baseline,
                                             "-" if baseline is None else "%.2f" % (value / baseline)))
    print("\nbaselines (this run): ask_rtt_*: the C++ relay asking the C++ echo of another worker, through the "
          "same client hop;\n  py_in_worker_tells_per_s: a plain Python loop of the same interpreter passing "
          "the same payload through a deque to a receive() call;\n  py_version_serving_ms: "
          "`python3 -c 'import zmq'` (a bare interpreter start that imports pyzmq)")
    print("rounds:", args.rounds, "asks per round:", args.asks, "tells per round:", args.tells)
    if args.out:
        with open(args.out, "w") as f:
            json.dump([{"name": n, "value": v, "unit": u, "baseline": b} for n, v, u, b in figures], f, indent=1)


if __name__ == "__main__":
    main()
