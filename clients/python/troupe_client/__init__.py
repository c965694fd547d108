"""troupe_client — a Python client of a troupe system (docs/PROTOCOL.md §4.1, §6).

Pure Python on pyzmq (Debian: python3-zmq). Like the C++ client
(include/troupe/client.hpp), connect() takes "HOST:PORT" (or a port) and
prefers the system's local socket, $TROUPE_HOME/systems/PORT/run/client.sock,
when HOST is a loopback address and this user may open it; otherwise TCP, with
CurveZMQ when this user has a client key ($TROUPE_HOME/client/curve.key, made
by `troupe keygen --client`) and the system's public key is known
($TROUPE_SERVER_KEY, or systems/PORT/curve/curve.pub for a loopback HOST).

    import troupe_client
    with troupe_client.connect("127.0.0.1:1900") as c:
        c.load("/path/to/encoders-1.0.0.tpkg")
        morse = c.spawn("Morse", package="encoders")
        print(c.ask(morse, "SOS"))            # ... --- ...

A refused request raises TroupeError carrying the protocol's code
("not_found", "timeout", ...) as .code; no answer in time raises
TroupeError with code "unavailable".
"""

import itertools
import json
import os
import time

import zmq

__all__ = ["Client", "Subscription", "TroupeError", "connect", "default_home", "system_endpoint"]
__version__ = "0.1.0"

SIGNATURE = b"TRC\x01"  # control message signature, version 1 (PROTOCOL.md §4.1)
CODES = ("invalid_argument", "not_found", "timeout", "refused", "unavailable", "io", "protocol", "limit",
         "unknown")
# The request path is timed against raw ZeroMQ (bench/python_bench.py,
# client_ask_rtt_p50_python_*): int flags (pyzmq's enum flags make an object
# per use) and one JSON encoder made once.
_SNDMORE = int(zmq.SNDMORE)
_RCVTIMEO = int(zmq.RCVTIMEO)
_encode = json.JSONEncoder(separators=(",", ":")).encode


class TroupeError(Exception):
    """A request the system refused, or could not be answered. code is one of
    CODES (an unknown code reads as "refused", as the C++ client does)."""

    def __init__(self, message, code="refused", body=None):
        super().__init__(message)
        self.code = code if code in CODES else "refused"
        self.body = body or {}


def default_home():
    """$TROUPE_HOME, else ~/.troupe, else /var/lib/troupe (as the C++ client)."""
    home = os.environ.get("TROUPE_HOME")
    if home:
        return home
    if os.environ.get("HOME"):
        return os.path.join(os.environ["HOME"], ".troupe")
    return "/var/lib/troupe"


def system_endpoint(system):
    """"HOST:PORT" or "PORT" → "tcp://HOST:PORT"; ValueError when malformed."""
    system = str(system)
    host, _, port = system.rpartition(":")
    host = host or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError("system %r is not HOST:PORT" % system)
    return "tcp://%s:%d" % (host, int(port))


def _loopback(host):
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def _read_key(text):
    """A Z85 key given as text or as a file holding it."""
    if len(text) == 40 and not os.path.exists(text):
        return text
    with open(text) as f:
        key = f.readline().strip()
    if len(key) != 40:
        raise ValueError("%s holds no 40-character Z85 key" % text)
    return key


class Client:
    """One connection to a system. Not thread-safe: one thread at a time."""

    def __init__(self, endpoint, curve=None, context=None):
        self.endpoint = endpoint
        self._curve = curve  # (client secret, client public, server public) or None
        self._ctx = context or zmq.Context.instance()
        self._rid = itertools.count(1)
        self._socket = None
        self._subs = {}  # rid → the live Subscription of events (follow) under it
        self._open()

    def _open(self):
        if self._socket is not None:
            self._socket.close(linger=0)
        # A new connection is a new peer to the system: its subscriptions are gone.
        for sub in list(self._subs.values()):
            sub._finish("the connection was reopened (a call had no answer in time)")
        s = self._ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        if self._curve:
            secret, public, server = self._curve
            s.curve_secretkey = secret.encode()
            s.curve_publickey = public.encode()
            s.curve_serverkey = server.encode()
        s.connect(self.endpoint)
        self._socket = s

    def close(self):
        for sub in list(self._subs.values()):
            sub._finish("the client was closed")
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ requests

    def call(self, command, body=None, timeout=10.0):
        """Sends one command with a JSON object body; returns the answer's body
        without rid and ok. Raises TroupeError with the protocol's code."""
        return self._call(next(self._rid), command, body, timeout)

    def _call(self, rid, command, body, timeout):
        if self._socket is None:
            raise TroupeError("this client is closed", "invalid_argument")
        request = dict(body or {})
        request["rid"] = rid
        data = _encode(request).encode("utf-8")
        s = self._socket
        # Frame by frame rather than send_multipart (which type-checks every
        # frame and makes a flag object per frame).
        s.send(SIGNATURE, _SNDMORE)
        s.send(command.encode("ascii"), _SNDMORE)
        s.send(data)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._open()  # a late answer must not be read as the next call's
                raise TroupeError("no answer from the system at %s within %d ms (is it running?)"
                                  % (self.endpoint, timeout * 1000), "unavailable")
            # A receive that waits at most what is left, rather than a poll
            # and then a receive (Socket.poll builds a Poller on every call).
            s.setsockopt(_RCVTIMEO, min(int(left * 1000) + 1, 3600000))
            try:
                frames = s.recv_multipart()
            except zmq.Again:
                continue  # the deadline is checked above
            if len(frames) != 3 or frames[0] != SIGNATURE:
                raise TroupeError("malformed answer from the system", "protocol")
            try:
                answer = json.loads(frames[2])
            except ValueError as e:
                raise TroupeError("malformed answer from the system: %s" % e, "protocol")
            if frames[1] == b"reply" and answer.get("rid") in self._subs:
                self._subs[answer["rid"]]._take(answer)  # a followed stream's message: kept for it
                continue
            if frames[1] != b"reply" or answer.get("rid") != rid:
                continue  # a stale answer to an earlier, timed-out call
            if not answer.get("ok", False):
                raise TroupeError(answer.get("error", "the system refused without a reason"),
                                  answer.get("code", "refused"), answer)
            answer.pop("rid", None)
            answer.pop("ok", None)
            return answer

    def status(self):
        return self.call("status")

    def spawn(self, type, package=None, name=None):
        """Creates an actor; its address ("@3fa9c012.17")."""
        body = {"type": type}
        if package:
            body["package"] = package
        if name:
            body["name"] = name
        return self.call("spawn", body, timeout=30.0)["address"]

    def ask(self, target, payload, type="json", timeout=5.0):
        """Asks target (address or global name) with a JSON payload; the reply parsed."""
        body = {"target": str(target), "type": type, "payload": payload, "timeout_ms": int(timeout * 1000)}
        return self.call("ask", body, timeout=timeout + 2)["payload"]

    def tell(self, target, payload, type="json"):
        self.call("tell", {"target": str(target), "type": type, "payload": payload})

    def kill(self, target, timeout=5.0):
        return self.call("kill", {"target": str(target), "timeout_ms": int(timeout * 1000)}, timeout=timeout + 2)

    def actors(self):
        return self.call("actors")["actors"]

    def load(self, path=None, group=None, unsigned=False, timeout=30.0):
        """Loads a package archive (path), a directory package (path, unsigned=True)
        or the newest archive of a group; path is on the daemon's host."""
        body = {}
        if path is not None:
            body["path"] = os.path.abspath(path)
        if group is not None:
            body["group"] = group
        if unsigned:
            body["unsigned"] = True
        return self.call("load", body, timeout=timeout)

    def unload(self, package, timeout=30.0):
        return self.call("unload", {"package": package}, timeout=timeout)

    def list(self):
        return self.call("list")["packages"]

    def chgcap(self, op, name, value=None):
        body = {"op": op, "name": name}
        if value is not None:
            body["value"] = str(value).lower() if isinstance(value, bool) else str(value)
        return self.call("chgcap", body)["capabilities"]

    def systems(self):
        return self.call("systems")

    def events(self, since=0, max=None):
        """The events numbered after since that the system still keeps, oldest
        first (PROTOCOL.md §6.5): one answer, at most max (1–1000, default 1000)
        events. Its fields: events (a list of dicts with seq, time_ms, kind, ...),
        missed, first_seq, last_seq, system, more (ask again with since the last
        seq). See all_events() for every one."""
        body = {"since": int(since)}
        if max is not None:
            body["max"] = int(max)
        return self.call("events", body)

    def all_events(self, since=0):
        """Every event numbered after since that the system keeps (asks while more)."""
        out = []
        while True:
            answer = self.events(since)
            out.extend(answer["events"])
            if answer["events"]:
                since = answer["events"][-1]["seq"]
            if not answer.get("more") or not answer["events"]:
                return out

    def follow(self, since=None, heartbeats=5):
        """Subscribes this connection to the system's events: a Subscription
        whose iteration yields every event after since (default: from now on)
        as it happens, ending when the system ends the stream (its reason in
        .ended). A system silent for `heartbeats` heartbeat periods is gone:
        TroupeError with code "unavailable". Other calls on this client may be
        made meanwhile. Close it (or leave its with block) to unsubscribe."""
        if since is None:
            since = self.events(0, max=1)["last_seq"]
        rid = next(self._rid)  # the stream's messages come under the request's rid
        first = self._call(rid, "events", {"since": int(since), "follow": True}, 10.0)
        sub = Subscription(self, rid, first, heartbeats)
        self._subs[rid] = sub
        return sub

    def unsubscribe(self, timeout=10.0):
        """Ends every subscription of this connection; how many there were."""
        n = self.call("events", {"unsubscribe": True}, timeout=timeout).get("unsubscribed", 0)
        for sub in list(self._subs.values()):
            sub._finish("unsubscribed")
        return n

    def _next_stream_message(self, sub, timeout):
        """Reads the socket until sub has a message queued or timeout (seconds) passes."""
        deadline = time.monotonic() + timeout
        while not sub._queue:
            left = deadline - time.monotonic()
            if left <= 0 or self._socket is None:
                return
            if not self._socket.poll(max(1, int(left * 1000)), zmq.POLLIN):
                continue
            frames = self._socket.recv_multipart()
            if len(frames) != 3 or frames[0] != SIGNATURE or frames[1] != b"reply":
                raise TroupeError("malformed message from the system", "protocol")
            try:
                answer = json.loads(frames[2])
            except ValueError as e:
                raise TroupeError("malformed message from the system: %s" % e, "protocol")
            target = self._subs.get(answer.get("rid"))
            if target is not None:
                target._take(answer)
            # else a stale answer to an earlier, timed-out call


class Subscription:
    """The events a Client follows (Client.follow). Iterating yields each event
    (a dict: seq, time_ms, kind, ...); next_batch() gives the system's
    messages one at a time. missed counts the events this subscription did not
    get (not kept by the system, or this client fell behind); ended is None
    while the stream lives, else why it ended."""

    def __init__(self, client, rid, first, heartbeats):
        self._client = client
        self.rid = rid
        self.heartbeat = first.get("heartbeat_ms", 1000) / 1000.0
        self._silence = heartbeats * self.heartbeat  # then the system is gone
        self._heard = time.monotonic()
        self._queue = [dict(first, ok=True)]  # call() took ok off
        self.system = first.get("system")
        self.missed = 0
        self.last_seq = 0
        self.ended = None

    def _take(self, answer):
        self._heard = time.monotonic()
        self._queue.append(answer)

    def _finish(self, why):
        if self.ended is None:
            self.ended = why
        self._client._subs.pop(self.rid, None)

    def next_batch(self, timeout=1.0):
        """The next message of the stream that carries events or ends it, as a
        dict (events, missed; end: why, when it is the last); None when none
        came within timeout seconds (heartbeats are read, not returned). After
        the end, None at once. Raises TroupeError "unavailable" when the system
        stopped sending (no heartbeat for the subscription's silence), or with
        the system's code when it ended the stream with an error."""
        deadline = time.monotonic() + timeout
        while True:
            if self._queue:
                body = self._queue.pop(0)
                if not body.get("ok", False):
                    self._finish(body.get("error", "the system ended the subscription"))
                    raise TroupeError(self.ended, body.get("code", "refused"), body)
                self.missed += body.get("missed", 0)
                events = body.get("events", [])
                if events:
                    self.last_seq = max(self.last_seq, events[-1].get("seq", 0))
                if "end" in body:
                    self._finish(body["end"])
                    return body
                if events:
                    return body
                continue  # a heartbeat
            if self.ended is not None:
                return None
            now = time.monotonic()
            if now - self._heard > self._silence:
                self._finish("the system stopped sending its events")
                raise TroupeError("the system at %s stopped sending its events (%d ms without a heartbeat): "
                                  "it went away" % (self._client.endpoint, self._silence * 1000), "unavailable")
            left = deadline - now
            if left <= 0:
                return None
            self._client._next_stream_message(self, min(left, self.heartbeat))

    def __iter__(self):
        while True:
            body = self.next_batch(self.heartbeat)
            if body is None:
                if self.ended is not None:
                    return
                continue
            for e in body.get("events", []):
                yield e
            if "end" in body:
                return

    def close(self):
        """Unsubscribes (every subscription of the client's connection ends)."""
        if self.ended is None and self._client._socket is not None:
            self._client.unsubscribe()
        self._finish("unsubscribed")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(system="127.0.0.1:1900", home=None, tcp_only=False, server_key=None, context=None):
    """A Client of the system at "HOST:PORT", chosen as the C++ client does
    (see the module's documentation)."""
    endpoint = system_endpoint(system)
    home = home or default_home()
    hostport = endpoint[len("tcp://"):]
    host, _, port = hostport.rpartition(":")
    system_dir = os.path.join(home, "systems", port)
    where = ""
    try:
        with open(os.path.join(system_dir, "where")) as f:
            where = f.readline().strip()
    except OSError:
        pass
    local = _loopback(host) or where == hostport
    sock = os.path.join(system_dir, "run", "client.sock")
    if local and not tcp_only and os.access(sock, os.R_OK | os.W_OK):
        return Client("ipc://" + sock, context=context)
    curve = None
    key_text = server_key or os.environ.get("TROUPE_SERVER_KEY", "")
    if not key_text and local and os.path.exists(os.path.join(system_dir, "curve", "curve.pub")):
        key_text = os.path.join(system_dir, "curve", "curve.pub")
    client_key = os.path.join(home, "client", "curve.key")
    if key_text and os.path.exists(client_key):
        secret = _read_key(client_key)
        curve = (secret, zmq.curve_public(secret.encode()).decode(), _read_key(key_text))
    return Client(endpoint, curve=curve, context=context)
