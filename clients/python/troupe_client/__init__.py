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

__all__ = ["Client", "TroupeError", "connect", "default_home", "system_endpoint"]
__version__ = "0.1.0"

SIGNATURE = b"TRC\x01"  # control message signature, version 1 (PROTOCOL.md §4.1)
CODES = ("invalid_argument", "not_found", "timeout", "refused", "unavailable", "io", "protocol", "limit",
         "unknown")


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
        self._open()

    def _open(self):
        if self._socket is not None:
            self._socket.close(linger=0)
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
        rid = next(self._rid)
        request = dict(body or {})
        request["rid"] = rid
        self._socket.send_multipart([SIGNATURE, command.encode("ascii"), json.dumps(request).encode("utf-8")])
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._socket.poll(int(left * 1000) + 1, zmq.POLLIN):
                if time.monotonic() < deadline:
                    continue
                self._open()  # a late answer must not be read as the next call's
                raise TroupeError("no answer from the system at %s within %d ms (is it running?)"
                                  % (self.endpoint, timeout * 1000), "unavailable")
            frames = self._socket.recv_multipart()
            if len(frames) != 3 or frames[0] != SIGNATURE:
                raise TroupeError("malformed answer from the system", "protocol")
            try:
                answer = json.loads(frames[2])
            except ValueError as e:
                raise TroupeError("malformed answer from the system: %s" % e, "protocol")
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
