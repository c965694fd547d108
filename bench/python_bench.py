#!/usr/bin/env python3
"""The Python runtime's figures beside baselines of the same run (docs/PERFORMANCE.md §3.0h).

    python3 bench/python_bench.py [--build build] [--rounds 7] [--asks 2000] [--tells 100000]
                                  [--idle 1000] [--out FILE] [--client-only]

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
  client_ask_rtt_p50_python_same_cpu / _split_cpu: this process, a user of
    the Python client over TCP with a client key the system trusts
    (CurveZMQ), asks a C++ Ponger N times in a row (64 bytes of JSON, type
    p), each ask timed here; baseline the two raw hops of that path measured
    here the same way: a raw pyzmq tcp round trip plus a raw pyzmq ipc round
    trip (PUSH/PULL, 64 B) to an echo child (troupe-bench's own C++ echo, as
    the system's side is C++), rounds interleaved with the client's. Same
    CPU: everything on the first CPU; split: this process on the first, the
    system, the Ponger's worker and the echo children on the second.
    Target <= 1.3x (the C++ client's client_ask_rtt_p50 row, issue 17).

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
import zmq  # noqa: E402


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


class RawRtt:
    """Raw pyzmq round trips between this process and an echo child: PUSH to
    it, PULL back, blocking calls, with troupe's data-socket options (as
    raw_zmq_rtt in bench/baselines.cpp). The child is troupe-bench's echo
    (--zmq-echo / --zmq-echo-connect): C++, like the daemon and the worker
    that answer the client's ask, so the baseline holds no Python but this
    end's. tcp: both ends bound here on ephemeral ports, the child connects."""

    def __init__(self, echo_exe, transport, directory, payload_bytes=64):
        self.transport = transport
        self.child = None
        ctx = zmq.Context.instance()
        self.out = ctx.socket(zmq.PUSH)
        self.inp = ctx.socket(zmq.PULL)
        for s in (self.out, self.inp):
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 100000)
            s.setsockopt(zmq.RCVHWM, 100000)
        if transport == "tcp":
            self.inp.bind("tcp://127.0.0.1:*")
            self.out.bind("tcp://127.0.0.1:*")
            back = self.inp.getsockopt_string(zmq.LAST_ENDPOINT)
            fwd = self.out.getsockopt_string(zmq.LAST_ENDPOINT)
            argv = ["--zmq-echo-connect", fwd, back]
        else:
            fwd = "ipc://" + os.path.join(directory, "py-raw-echo-in.sock")
            back = "ipc://" + os.path.join(directory, "py-raw-echo-out.sock")
            self.inp.bind(back)
            self.out.connect(fwd)
            argv = ["--zmq-echo", fwd, back]
        # setpriv (util-linux): the echo dies with this process, however it ends.
        self.child = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", echo_exe] + argv)
        self.payload = b"x" * payload_bytes
        self.inp.setsockopt(zmq.RCVTIMEO, 5000)  # a dead child: an error, not a hang
        try:
            self.run(500)  # warm-up: connections, caches
        except BaseException:
            self.close()
            raise

    def run(self, n):
        """n timed round trips; their median in µs."""
        us = []
        send, recv, clock = self.out.send, self.inp.recv, time.perf_counter_ns
        payload = self.payload
        try:
            for _ in range(n):
                t0 = clock()
                send(payload)
                recv(copy=False)
                us.append((clock() - t0) / 1000.0)
        except zmq.Again:
            raise SystemExit("python_bench: the raw %s echo did not answer within 5 s" % self.transport)
        return statistics.median(us)

    def close(self):
        try:
            self.out.send(b"", zmq.NOBLOCK)  # the echo's end
        except zmq.ZMQError:
            pass
        if self.child is not None:
            try:
                self.child.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.child.kill()  # our own child
                self.child.wait()
            self.child = None
        self.out.close(linger=0)
        self.inp.close(linger=0)


def measure_client_ask(run_cli, build, home, where, c, ponger_package, rounds, asks):
    """client_ask_rtt_p50_python_*: the Python client over tcp (CurveZMQ, a
    trusted client key) asking a C++ Ponger, against the raw tcp + raw ipc
    round trips of the same run and placement (measure_client_ask in
    bench/main.cpp, for the C++ client)."""
    # As a remote user would: a client key of its own, trusted by the system.
    key = json.loads(run_cli("keygen", "--client", "--json"))["public_key"]
    run_cli("trust-client", "pybench", key, "--role", "read")
    tc = troupe_client.connect(where, home=home, tcp_only=True)
    if not tc.endpoint.startswith("tcp://") or tc._curve is None:
        raise SystemExit("python_bench: the client did not connect over tcp with CurveZMQ (%s)" % tc.endpoint)
    ponger = c.spawn("Ponger", package=ponger_package)
    ponger_pid = {a["address"]: a["worker_pid"] for a in c.actors()}[ponger]
    system_pid = c.status()["pid"]
    payload = "x" * 62  # 64 bytes of JSON text, as the C++ row
    echo = os.path.join(build, "bin", "troupe-bench")
    if not os.access(echo, os.X_OK):
        raise SystemExit("python_bench: %s (the raw echo of the client path's baseline) is not built" % echo)

    def ask_run(n):
        us = []
        ask, clock = tc.ask, time.perf_counter_ns
        for _ in range(n):
            t0 = clock()
            ask(ponger, payload, type="p")
            us.append((clock() - t0) / 1000.0)
        return statistics.median(us)

    allowed = sorted(os.sched_getaffinity(0))
    placements = ["same_cpu"] + (["split_cpu"] if len(allowed) >= 2 else [])
    if len(allowed) < 2:
        say("  client_ask_rtt_p50_python_split_cpu unavailable: this process may use one CPU only")

    def place(p):
        first = {allowed[0]} if p else set(allowed)
        second = set(allowed) if not p else {allowed[0]} if p == "same_cpu" else {allowed[1]}
        pin(os.getpid(), first)
        for pid in [system_pid, ponger_pid] + [r.child.pid for r in raws]:
            pin(pid, second)

    say("client ask through the gateway (Python client over tcp) vs raw tcp + raw ipc round trips "
        "(%d rounds of %d asks, %s)" % (rounds, asks, ", ".join(placements)))
    got = {p: ([], []) for p in placements}
    raws = []
    try:
        raw_tcp = RawRtt(echo, "tcp", home)
        raws.append(raw_tcp)
        raw_ipc = RawRtt(echo, "ipc", home)
        raws.append(raw_ipc)
        ask_run(200)  # warm-up: connection, CurveZMQ handshake, route
        for i in range(rounds):
            for p in placements:
                place(p)
                t, b = got[p]
                # Untimed after re-pinning: caches and frequency of the new CPU.
                raw_tcp.run(50)
                raw_ipc.run(50)
                ask_run(50)
                # Taking turns going first: what comes first pays for any drift.
                if i % 2 == 0:
                    b.append(raw_tcp.run(asks) + raw_ipc.run(asks))
                    t.append(ask_run(asks))
                else:
                    t.append(ask_run(asks))
                    b.append(raw_tcp.run(asks) + raw_ipc.run(asks))
    finally:
        place(None)
        for r in raws:
            r.close()
        tc.close()
    rows = []
    for p in placements:
        where_ = "all on one CPU" if p == "same_cpu" else "client and system on two CPUs"
        t, b = got[p]
        rows.append(figure("client_ask_rtt_p50_python_" + p, t, "us", b,
                           "raw pyzmq tcp + raw pyzmq ipc PUSH/PULL round trips from this process to a C++ echo "
                           "child, 64 B, " + where_, "<= 1.3x baseline", lambda r: r["ratio"] <= 1.3))
    return rows


def measure_runtime(c, args, build, bench1, bench2):
    """The python_* rows: the Python runtime beside its baselines."""
    rows = []
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
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--asks", type=int, default=2000, help="asks per round of each round-trip figure")
    ap.add_argument("--tells", type=int, default=100000, help="tells per round of the tell figure")
    ap.add_argument("--idle", type=int, default=2000, help="idle Python actors of the memory figure")
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--client-only", action="store_true", help="the client_ask_rtt_p50_python_* rows alone")
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
        if not args.client_only:
            rows += measure_runtime(c, args, build, bench1, bench2)
        rows += measure_client_ask(run, build, home, where, c, bench2, args.rounds, args.asks)
        c.close()
    finally:
        subprocess.run([troupe, "--system", where, "stop", str(port)], env=env, capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)

    print("%-36s %12s %-6s %12s %7s  %-18s" % ("name", "value", "unit", "baseline", "ratio", "target"))
    for r in rows:
        based = r["baseline"] is not None
        print("%-36s %12.1f %-6s %12s %7s  %-18s %s" % (
            r["name"], r["value"], r["unit"], "%.1f" % r["baseline"] if based else "-",
            "%.2f" % r["ratio"] if based else "-", r["target"],
            "" if "met" not in r else "met" if r["met"] else "MISSED"))
    print("\nbaselines (measured in this run):")
    for r in rows:
        print("  %-36s %s" % (r["name"], r["baseline_is"]))
    print("rounds: %d, asks per round: %d, tells per round: %d" % (args.rounds, args.asks, args.tells))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
