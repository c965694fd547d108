#!/usr/bin/env python3
"""The Python runtime's figures beside baselines of the same run (docs/PERFORMANCE.md §3.0h).

    python3 bench/python_bench.py [--build build] [--rounds 7] [--asks 2000] [--tells 100000]
                                  [--idle 1000] [--out FILE]

troupe-bench (`make bench`) runs it as a child and merges its rows (--out);
alone it is the quick loop for work on the Python runtime. It starts its own
system (a scratch TROUPE_HOME, a free loopback port), loads the C++ bench
package (bench/package.cpp, packed twice: two workers) and the Python bench
package benchpy (bench/python/benchpy.py), and measures, the rounds of every
figure interleaved with those of its baseline:

  python_ask_rtt_p50_py_to_cpp / _cpp_to_py: a Pinger asks a Ponger of
    another worker N times in a row, each round trip timed in the Pinger
    (median per round), Python → C++ and C++ → Python; baseline the same with
    both C++ (cross_worker_ask_rtt's actors). The workers and the system are
    pinned to one CPU while these run (the scheduler's placement otherwise
    decides the figure: docs/PERFORMANCE.md §2).
  python_in_worker_tell: Flood tells its Sink (same Python worker) N messages
    carrying the same bytes; baseline: the same objects passed N times through
    a plain Python loop of the same interpreter (a deque as the mailbox, a
    message object, a receive() call). Target >= 0.3x.
  python_version_serving: load of a Python package version (a new worker and
    interpreter) + spawn + first answer; baseline `python3 -c 'import zmq'`.
    Target <= 1.5x.
  python_actor_memory: the Python worker's VmRSS growth per idle actor
    (--idle more Echo actors, measured first, in a fresh worker).

Uses clients/python (troupe_client) and the build's troupe; needs python3-zmq.
"""

import argparse
import json
import os
import shutil
import signal
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


def say(text):
    print("python_bench: " + text, file=sys.stderr, flush=True)


def pin(pid, cpus):
    """Every thread of pid onto cpus (sched_setaffinity is per thread)."""
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:
                pass  # a thread that just ended
    except OSError:
        pass


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def figure(name, samples, unit, base_samples, baseline_is, target=None, check=None):
    value = statistics.median(samples)
    baseline = statistics.median(base_samples) if base_samples else None
    row = {"name": name, "value": value, "unit": unit, "baseline": baseline,
           "ratio": value / baseline if baseline else None, "baseline_is": baseline_is,
           "target": target or "-", "samples": samples}
    if base_samples:
        row["baseline_samples"] = base_samples
    if check is not None:
        row["met"] = bool(check(row))
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--asks", type=int, default=2000, help="asks per round of each round-trip figure")
    ap.add_argument("--tells", type=int, default=100000, help="tells per round of the tell figure")
    ap.add_argument("--idle", type=int, default=2000, help="idle Python actors of the memory figure")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()
    # SIGTERM (troupe-bench's timeout, or its end) still stops the system below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    build = os.path.abspath(args.build)
    troupe = os.path.join(build, "bin", "troupe")
    home = tempfile.mkdtemp(prefix="troupe-pybench-")
    os.makedirs(os.path.join(home, "keys"))
    shutil.copy(os.path.join(build, "packages", "dev.pub"), os.path.join(home, "keys"))
    port = free_port()
    where = "127.0.0.1:%d" % port
    env = dict(os.environ, TROUPE_HOME=home)
    env.pop("TROUPE_SYSTEM", None)

    def run(*a):
        r = subprocess.run([troupe, "--system", where, *a], env=env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit("python_bench: troupe %s: %s" % (" ".join(a), r.stderr.strip()))
        return r.stdout

    # The C++ bench package, as two versions (two workers), signed with the build's key.
    for v in ("1.0.0", "2.0.0"):
        run("pack", os.path.join(build, "bench", "package", "manifest.yaml"), "--key",
            os.path.join(build, "keys", "dev.key"), "--version", v, "--out", os.path.join(home, "bench-%s.tpkg" % v))
    run("start", "--port", str(port), "--leader", where)
    rows = []
    try:
        c = troupe_client.connect(where, home=home)
        bench1 = c.load(os.path.join(home, "bench-1.0.0.tpkg"))["id"]
        bench2 = c.load(os.path.join(home, "bench-2.0.0.tpkg"))["id"]
        c.load(os.path.join(build, "bench", "benchpy-1.0.0.tpkg"))
        cpp_pinger = c.spawn("Pinger", package=bench1)
        cpp_ponger = c.spawn("Ponger", package=bench2)
        py_pinger = c.spawn("Pinger", package="benchpy")
        py_ponger = c.spawn("Ponger", package="benchpy")
        flood = c.spawn("Flood", package="benchpy")
        py_echo = c.spawn("Echo", package="benchpy")
        worker_of = {a["address"]: a["worker_pid"] for a in c.actors()}

        # ---- memory per idle Python actor, first: the worker's heap has not
        # grown and shrunk yet (a flood frees what new actors would then reuse)
        say("memory per idle Python actor (%d more Echo actors)" % args.idle)
        pid = worker_of[py_echo]
        before = rss_kib(pid)
        for _ in range(args.idle):
            c.spawn("Echo", package="benchpy")
        time.sleep(0.2)
        after = rss_kib(pid)
        memory_row = figure("python_actor_memory", [(after - before) * 1024.0 / args.idle], "bytes", None, "-")
        # ---- ask round trips across workers, in the actors
        def addr(text):
            system, serial = text[1:].split(".")
            return (int(system, 16) << 32) | int(serial)

        paths = {"cpp_to_cpp": (cpp_pinger, cpp_ponger), "py_to_cpp": (py_pinger, cpp_ponger),
                 "cpp_to_py": (cpp_pinger, py_ponger)}
        per_ask = {k: 100e-6 for k in paths}

        def rtt(name, n):
            pinger, ponger = paths[name]
            t0 = time.monotonic()
            c.ask(pinger, {"op": "run", "target": addr(ponger), "n": n, "payload_bytes": 64})
            # Polls are asks into the pinger's worker: sleep through most of the run.
            time.sleep(0.9 * per_ask[name] * n)
            deadline = time.monotonic() + 120
            while True:
                r = c.ask(pinger, {"op": "result"})
                if r.get("done"):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("python_bench: %s did not finish" % name)
                time.sleep(0.01)
            per_ask[name] = (time.monotonic() - t0) / n
            if r.get("failures"):
                raise SystemExit("python_bench: %s: %d asks failed" % (name, r["failures"]))
            return r["p50_us"]

        allowed = sorted(os.sched_getaffinity(0))
        one_cpu = {allowed[0]}
        pids = {c.status()["pid"], worker_of[cpp_pinger], worker_of[cpp_ponger], worker_of[py_pinger]}
        say("ask round trips across workers (%d rounds of %d asks, on CPU %d)" % (args.rounds, args.asks, allowed[0]))
        for pid in pids:
            pin(pid, one_cpu)
        try:
            for name in paths:
                rtt(name, 300)  # warm-up: routes resolved, code paths hot
            got = {k: [] for k in paths}
            for i in range(args.rounds):
                order = list(paths)[i % 3:] + list(paths)[:i % 3]  # each goes first in turn
                for name in order:
                    got[name].append(rtt(name, args.asks))
        finally:
            for pid in pids:
                pin(pid, set(allowed))
        base_is = "C++ Pinger asking a C++ Ponger of another worker, the same way (cross_worker_ask_rtt's actors)"
        rows.append(figure("python_ask_rtt_p50_py_to_cpp", got["py_to_cpp"], "us", got["cpp_to_cpp"], base_is))
        rows.append(figure("python_ask_rtt_p50_cpp_to_py", got["cpp_to_py"], "us", got["cpp_to_cpp"], base_is))

        # ---- in-worker tells
        say("in-worker tells between two Python actors vs a plain Python loop (%d rounds of %d)" % (
            args.rounds, args.tells))
        request = {"payload": {"n": 1, "text": "hello"}}
        c.ask(flood, dict(request, flood=1000), timeout=30)
        c.ask(flood, dict(request, baseline=1000), timeout=30)
        tput, base = [], []
        for i in range(args.rounds):
            for which in (("flood", "baseline") if i % 2 == 0 else ("baseline", "flood")):
                secs = c.ask(flood, dict(request, **{which: args.tells}), timeout=120)
                (tput if which == "flood" else base).append(args.tells / secs)
        rows.append(figure("python_in_worker_tell", tput, "msg/s", base,
                           "a plain Python loop of the same interpreter passing the same bytes through a deque "
                           "to a receive() call", ">= 0.3x baseline", lambda r: r["ratio"] >= 0.3))

        # ---- a package version serving
        say("a Python package version serving vs python3 -c 'import zmq' (%d rounds)" % args.rounds)
        serve, bare = [], []
        conflict = os.path.join(build, "packages", "conflict_py-1.0.0.tpkg")
        subprocess.run([sys.executable, "-c", "import zmq"], check=True)  # warm: the files in the page cache
        for i in range(args.rounds + 1):  # round 0 is a warm-up
            t0 = time.perf_counter()
            pkg = c.load(conflict)["id"]
            a = c.spawn("Codec", package=pkg)
            c.ask(a, {"text": "abc"})
            served = (time.perf_counter() - t0) * 1e3
            c.unload(pkg)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import zmq"], check=True)
            started = (time.perf_counter() - t0) * 1e3
            if i > 0:
                serve.append(served)
                bare.append(started)
        rows.append(figure("python_version_serving", serve, "ms", bare,
                           "`%s -c 'import zmq'`: an interpreter start that imports pyzmq" % sys.executable,
                           "<= 1.5x baseline", lambda r: r["ratio"] <= 1.5))

        rows.append(memory_row)
        c.close()
    finally:
        subprocess.run([troupe, "--system", where, "stop", str(port)], env=env, capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)

    print("%-30s %12s %-6s %12s %7s  %-18s" % ("name", "value", "unit", "baseline", "ratio", "target"))
    for r in rows:
        based = r["baseline"] is not None
        print("%-30s %12.1f %-6s %12s %7s  %-18s %s" % (
            r["name"], r["value"], r["unit"], "%.1f" % r["baseline"] if based else "-",
            "%.2f" % r["ratio"] if based else "-", r["target"],
            "" if "met" not in r else "met" if r["met"] else "MISSED"))
    print("\nbaselines (measured in this run):")
    for r in rows:
        print("  %-30s %s" % (r["name"], r["baseline_is"]))
    print("rounds: %d, asks per round: %d, tells per round: %d" % (args.rounds, args.asks, args.tells))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
