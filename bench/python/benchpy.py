"""The bench package of runtime python (group benchpy), for bench/python_bench.py.

Flood answers an ask {"flood": N, "payload": X}: it tells its Sink (spawned
in the same worker at start) N messages carrying X, the Sink counts them and
answers the ask once the last arrived; the answer is the seconds it took,
measured in the worker. {"baseline": N, "payload": X} passes the same
objects N times through a plain Python loop of the same interpreter (a deque
as the mailbox, a message object, a receive() call that counts), the
interpreter's own cost for the same work.
Pinger and Ponger speak the protocol of the C++ bench package's
(bench/package.cpp), so that a Python and a C++ actor ask each other across
workers exactly as two C++ ones do:
  Ponger   ask "p" → reply "p" with the same payload
  Pinger   {"op": "run", "target": A, "n": N, "payload_bytes": B}: N
           sequential asks "p" to A, each round trip timed in the actor;
           {"op": "result"} → {"done", "n", "failures", "p50_us", "p99_us"}
Relay: see below (asks by address or name, as encoders_py's Relay).
"""

import collections
import time

import troupe


class Sink(troupe.Actor):
    def on_start(self, ctx):
        self.count = 0
        self.want = 0
        self.handle = None
        self.started = 0.0

    def receive(self, ctx, msg):
        if msg.type == "expect":
            self.want, asker, corr, self.started = msg.json()
            self.count = 0
            self.handle = troupe.ReplyHandle(asker, corr)
            return
        self.count += 1
        if self.count == self.want:
            ctx.reply_later(self.handle, time.perf_counter() - self.started)


class _Msg:
    __slots__ = ("kind", "sender", "type", "payload")

    def __init__(self, kind, sender, type, payload):
        self.kind, self.sender, self.type, self.payload = kind, sender, type, payload


class _PlainSink:
    def __init__(self):
        self.count = 0

    def receive(self, ctx, msg):
        self.count += 1


class Flood(troupe.Actor):
    def on_start(self, ctx):
        self.sink = ctx.spawn("Sink")

    def receive(self, ctx, msg):
        if msg.kind != troupe.ASK:
            return
        req = msg.json()
        payload = troupe.to_json(req.get("payload", ""))
        if "baseline" in req:
            n = req["baseline"]
            sink = _PlainSink()
            mailbox = collections.deque()
            start = time.perf_counter()
            for _ in range(n):
                mailbox.append(_Msg(troupe.TELL, 1, "json", payload))
            while mailbox:
                sink.receive(None, mailbox.popleft())
            assert sink.count == n
            return ctx.reply(time.perf_counter() - start)
        n = req["flood"]
        ctx.tell(self.sink, "expect", [n, int(msg.sender), msg.correlation, time.perf_counter()])
        for _ in range(n):
            ctx.tell(self.sink, "json", payload)


class Echo(troupe.Actor):
    def receive(self, ctx, msg):
        if msg.kind == troupe.ASK:
            ctx.reply(msg.payload, type=msg.type)


class Relay(troupe.Actor):
    """ask {"via": address or name, "payload": X} → asks it with X and answers its reply."""

    def receive(self, ctx, msg):
        if msg.kind != troupe.ASK:
            return
        req = msg.json()
        via = req["via"]
        target = troupe.Address.parse(via) if via.startswith("@") else ctx.lookup(via)
        handle = msg.reply_handle

        def answered(ctx, result):
            ctx.reply_later(handle, {"answer": result.json()} if result.ok else {"error": result.error})

        ctx.ask(target, "json", troupe.to_json(req.get("payload")), answered)


class Ponger(troupe.Actor):
    def receive(self, ctx, msg):
        if msg.kind == troupe.ASK and msg.type == "p":
            ctx.reply(msg.payload, type="p")


def _percentile_us(samples, q):
    """Nearest rank, as bench/package.cpp's percentile_us."""
    if not samples:
        return 0.0
    v = sorted(samples)
    return v[min(int(q * (len(v) - 1) + 0.5), len(v) - 1)] / 1000.0


class Pinger(troupe.Actor):
    def on_start(self, ctx):
        self.running = False
        self.samples = []
        self.failures = 0

    def receive(self, ctx, msg):
        if msg.kind != troupe.ASK or msg.type != "json":
            return
        req = msg.json()
        if req.get("op") == "run":
            if self.running:
                return ctx.reply({"error": "already running"})
            self.target = req["target"]
            self.left = req.get("n", 1000)
            self.payload = b"x" * req.get("payload_bytes", 64)
            self.samples = []
            self.failures = 0
            self.running = True
            ctx.reply({"started": True})
            self._next(ctx)
        elif req.get("op") == "result":
            r = {"done": not self.running, "n": len(self.samples), "failures": self.failures}
            if not self.running:
                r["p50_us"] = _percentile_us(self.samples, 0.50)
                r["p99_us"] = _percentile_us(self.samples, 0.99)
            ctx.reply(r)

    def _next(self, ctx):
        if self.left == 0:
            self.running = False
            return
        self.left -= 1
        t0 = time.monotonic_ns()  # CLOCK_MONOTONIC, as the C++ Pinger's steady_clock

        def answered(ctx, result):
            if result.ok:
                self.samples.append(time.monotonic_ns() - t0)
            else:
                self.failures += 1
            self._next(ctx)

        ctx.ask(self.target, "p", self.payload, answered)
