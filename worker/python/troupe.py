"""troupe — the Python SDK for actor packages (runtime: python).

A package module defines actor classes deriving from troupe.Actor; the
manifest names the module and, per actor type, its class:

    import troupe

    class Echo(troupe.Actor):
        def receive(self, ctx, msg):
            if msg.is_ask:
                ctx.reply(msg.payload, type=msg.type)

This module is provided by troupe-worker-python (it is not on any path of its
own); it mirrors the C++ SDK of include/troupe/actor.hpp. Everything runs on
the worker's one thread: a Context is valid only during the call it was
passed to, and handlers of one actor never run concurrently.
"""

import json as _json

import _troupe

__all__ = [
    "Actor", "Address", "AskResult", "Context", "HostError", "Message", "ReplyHandle",
    "TELL", "ASK", "REPLY", "ASK_FAILED", "TIMER", "EXIT", "DEAD_LETTER", "POISON", "EXITED",
    "DEBUG", "INFO", "WARN", "ERROR",
]

# Message kinds (troupe/abi.h, troupe_message_kind).
TELL, ASK, REPLY, ASK_FAILED, TIMER, EXIT, DEAD_LETTER, POISON, EXITED = range(1, 10)
KIND_NAMES = {TELL: "tell", ASK: "ask", REPLY: "reply", ASK_FAILED: "ask_failed", TIMER: "timer",
              EXIT: "exit", DEAD_LETTER: "dead_letter", POISON: "poison", EXITED: "exited"}
# Log levels.
DEBUG, INFO, WARN, ERROR = range(4)

HostError = _troupe.HostError
_tell = _troupe.tell
"""Raised by a Context operation the host refused (unknown package, invalid address, ...)."""


class Address(int):
    """A logical actor address: high 32 bits the allocating system, low 32 a
    serial. Prints as "@3fa9c012.17", the form every troupe tool shows."""

    __slots__ = ()

    def __new__(cls, value=0):
        if isinstance(value, str):
            return cls.parse(value)
        return int.__new__(cls, value)

    @classmethod
    def parse(cls, text):
        """The address of "@SSSSSSSS.N"; ValueError for anything else."""
        if not text.startswith("@") or "." not in text:
            raise ValueError("not an address: %r (expected @SYSTEM.SERIAL)" % (text,))
        system, serial = text[1:].split(".", 1)
        value = (int(system, 16) << 32) | int(serial, 10)
        if value == 0 or int(serial) >= 1 << 32 or int(system, 16) >= 1 << 32:
            raise ValueError("not an address: %r" % (text,))
        return int.__new__(cls, value)

    @property
    def system(self):
        return int(self) >> 32

    @property
    def serial(self):
        return int(self) & 0xFFFFFFFF

    @property
    def valid(self):
        return int(self) != 0

    def __str__(self):
        return "@%08x.%d" % (int(self) >> 32, int(self) & 0xFFFFFFFF)

    def __repr__(self):
        return "Address(%s)" % (self,)


def _address(a):
    if isinstance(a, str):
        return Address.parse(a)
    return int(a)


def _bytes(payload):
    """Payload bytes: bytes as they are, str as UTF-8, anything else as compact JSON."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, (bytearray, memoryview)):
        return bytes(payload)
    return to_json(payload)


def to_json(value):
    """value as compact JSON bytes, as the C++ SDK's json dump writes it."""
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ReplyHandle(tuple):
    """Whom to answer for an ask, kept to reply after the handler has
    returned (Context.reply_later): (asker, correlation)."""

    __slots__ = ()

    def __new__(cls, asker, correlation):
        return tuple.__new__(cls, (Address(asker), correlation))

    asker = property(lambda self: self[0])
    correlation = property(lambda self: self[1])


try:
    # The worker's C types (worker/python/python_runtime.cpp): the hot path
    # makes them without a Python call. Message's fields are read-only.
    _MessageBase = _troupe.Message
    _ContextBase = _troupe.Context
except AttributeError:  # a host without them (worker/python/sdk_test.py's fake): the same in Python
    class _MessageBase:
        __slots__ = ("kind", "_sender", "correlation", "type", "payload", "reason")

        def __new__(cls, kind, sender, correlation, type, payload, reason=""):
            self = object.__new__(cls)
            self.kind, self._sender, self.correlation = kind, sender, correlation
            self.type, self.payload, self.reason = type, payload, reason
            return self

    class _ContextBase:
        __slots__ = ("_call", "_actor", "_replayed")

        def __init__(self, call, actor):
            self._call = call
            self._actor = actor
            self._replayed = None

        def tell(self, to, type, payload=b""):
            """One-way message; payload: bytes, str (UTF-8) or a JSON value. An
            undeliverable one comes back as a DEAD_LETTER."""
            if payload.__class__ is not bytes:
                payload = _bytes(payload)
            _tell(self._call, to if to.__class__ is Address else _address(to), type, payload)


class Message(_MessageBase):
    """A message being handled (read-only). kind is one of TELL, ASK, ...;
    type a str; payload the raw bytes; json() parses them; text decodes them
    as UTF-8; sender an Address; reason a str (why, for POISON and EXITED)."""

    __slots__ = ()

    @property
    def sender(self):
        return Address(self._sender)

    def json(self):
        """The payload parsed as JSON (ValueError when it is not JSON)."""
        return _json.loads(self.payload)

    @property
    def text(self):
        return self.payload.decode("utf-8", "replace")

    is_ask = property(lambda self: self.kind == ASK)
    is_tell = property(lambda self: self.kind == TELL)
    is_exit = property(lambda self: self.kind == EXIT)
    is_poison = property(lambda self: self.kind == POISON)
    is_exited = property(lambda self: self.kind == EXITED)
    is_timer = property(lambda self: self.kind == TIMER)
    is_dead_letter = property(lambda self: self.kind == DEAD_LETTER)

    @property
    def reply_handle(self):
        """For an ask: what Context.reply_later needs to answer it later."""
        return ReplyHandle(self._sender, self.correlation)

    def __repr__(self):
        return "Message(%s, from=%s, type=%r, payload=%r)" % (
            KIND_NAMES.get(self.kind, self.kind), self.sender, self.type, self.payload[:64])


class AskResult:
    """The outcome of an ask: ok and reply (a Message), or error (why it failed)."""

    __slots__ = ("reply", "ok")

    def __init__(self, msg):
        self.reply = msg
        self.ok = msg.kind == REPLY

    @property
    def error(self):
        return "" if self.ok else self.reply.text

    def json(self):
        return self.reply.json()


class Context(_ContextBase):
    """What an actor can do. Valid only during the call it was passed to:
    using it later raises HostError.

    tell(to, type, payload=b"") sends a one-way message; payload: bytes, str
    (UTF-8) or a JSON value (encoded now: what the sender changes later is not
    seen by the receiver). An undeliverable one comes back as a DEAD_LETTER.
    (Written in C in the worker: the hot call.)"""

    __slots__ = ()

    @property
    def self(self):
        """This actor's address."""
        return Address(_troupe.self_address(self._call))

    def tell_json(self, to, value, type="json"):
        _troupe.tell(self._call, _address(to), type, to_json(value))

    def ask(self, to, type, payload, then, timeout=5.0):
        """Request; then(ctx, result) runs on this actor with an AskResult
        once the reply comes or the ask fails (timeout in seconds)."""
        ask_id = _troupe.ask(self._call, _address(to), type, _bytes(payload), int(timeout * 1000))
        self._actor.__dict__.setdefault("_troupe_asks", {})[ask_id] = then
        return ask_id

    def reply(self, payload, type="json"):
        """Answers the ask being handled (an ask taken back from the stash too)."""
        if self._replayed is not None:
            return self.reply_later(self._replayed, payload, type)
        _troupe.reply(self._call, type, _bytes(payload))

    def reply_later(self, handle, payload, type="json"):
        """Answers an ask whose handler already returned (keep msg.reply_handle)."""
        _troupe.reply_to(self._call, int(handle[0]), handle[1], type, _bytes(payload))

    def spawn(self, type_name, package="", name=""):
        """Creates an actor (package: group or id, empty: this package;
        name: a global name); its address is usable at once."""
        return Address(_troupe.spawn(self._call, type_name, package, name))

    def stop(self, target=None):
        """Stops target (it gets an exit request), or this actor."""
        _troupe.stop(self._call, _troupe.self_address(self._call) if target is None else _address(target))

    def watch(self, target):
        """EXITED messages (sender = target, type "stopped", "restarted" or
        "failed", reason) come each time target stops, restarts or fails."""
        _troupe.watch(self._call, _address(target), True)

    def unwatch(self, target):
        _troupe.watch(self._call, _address(target), False)

    def schedule(self, delay, type, payload=b""):
        """A TIMER message of this type to this actor after delay seconds; the timer id."""
        return _troupe.schedule(self._call, int(delay * 1000), type, _bytes(payload))

    def cancel(self, timer_id):
        _troupe.cancel(self._call, timer_id)

    def lookup(self, name):
        """The address under a global name, or None when unknown."""
        a = _troupe.lookup(self._call, name)
        return Address(a) if a else None

    def log(self, text, level=INFO):
        _troupe.log(self._call, level, str(text))

    def log_info(self, text):
        _troupe.log(self._call, INFO, str(text))

    def log_warn(self, text):
        _troupe.log(self._call, WARN, str(text))

    def log_error(self, text):
        _troupe.log(self._call, ERROR, str(text))


class Actor:
    """Base class of actor types. One instance per actor; the worker creates
    it with no arguments, then calls on_start(ctx).

    receive(ctx, msg) gets every TELL, ASK, TIMER, DEAD_LETTER, POISON and
    EXITED message (check msg.kind); replies to this actor's asks go to their
    callbacks and the exit request to on_exit(ctx). An exception raised by a
    handler is the actor's failure: its restart policy applies, an ask being
    handled fails with the exception's last traceback line, a tell goes back
    to its sender as poison; the full traceback is logged.
    """

    def on_start(self, ctx):
        pass

    def receive(self, ctx, msg):
        pass

    def on_exit(self, ctx):
        pass

    # Selective receive, as in the C++ SDK: become/unbecome, stash/unstash_all.
    # The stash belongs to this instance: a restart or an exit drops it (an
    # ask in it is then answered by its timeout). Replies and exit requests
    # never reach it.

    _troupe_behavior = None  # the handler of become(); None: receive()
    _troupe_replay = ()  # messages unstash_all() gave back, to handle next

    def become(self, handler):
        """The next messages go to handler(ctx, msg) instead of receive(), until
        become() again or unbecome()."""
        self._troupe_behavior = handler

    def unbecome(self):
        """Back to receive()."""
        self._troupe_behavior = None

    def stash(self, msg):
        """Keeps msg to handle it later; an ask in it is answered by
        ctx.reply() in the handler that takes it back."""
        self.__dict__.setdefault("_troupe_stash", []).append(msg)

    def unstash_all(self):
        """The stashed messages come back, oldest first, before any newer
        message: once the current handler has returned."""
        stash = self.__dict__.pop("_troupe_stash", None)
        if stash:
            stash.extend(self._troupe_replay)
            self._troupe_replay = stash

    @property
    def stash_size(self):
        return len(self.__dict__.get("_troupe_stash", ()))

    # The internal state lives in the instance's __dict__ under _troupe_*
    # names (made on first use, so subclasses need not call __init__).


def _create(cls, ctx):
    """Called by the worker: a new instance of cls, started. ctx: the Context
    of this call (or its call id)."""
    if ctx.__class__ is not Context:
        ctx = Context(ctx, None)
    actor = cls()
    ctx._actor = actor
    try:
        actor.on_start(ctx)
    finally:
        ctx._call = 0
    return actor


def _replay(actor, ctx):
    """Handles the messages unstash_all() gave back (called once a handler returned with some)."""
    replay = actor._troupe_replay
    while replay:
        msg = replay.pop(0)
        ctx._replayed = msg.reply_handle if msg.kind == ASK else None
        try:
            behavior = actor._troupe_behavior
            if behavior is None:
                actor.receive(ctx, msg)
            else:
                behavior(ctx, msg)
        finally:
            ctx._replayed = None
        replay = actor._troupe_replay  # a handler may have unstashed again


def _handle_other(actor, ctx, kind, sender, correlation, type, payload, reason):
    """The exit request and the answers to this actor's asks."""
    if kind == EXIT:
        actor.on_exit(ctx)
    else:  # a reply or failure of this actor's ask
        then = actor.__dict__.get("_troupe_asks", {}).pop(correlation, None)
        if then is not None:  # else a late reply after a timeout
            then(ctx, AskResult(Message(kind, sender, correlation, type, payload, reason)))


def _handle(actor, call, kind, sender, correlation, type, payload, reason):
    """The dispatch of one message to actor, as the worker does it in C
    (python_runtime.cpp handle()): for hosts without the C path and the tests."""
    ctx = Context(call, actor)
    try:
        if kind <= ASK or kind == TIMER or kind > EXIT:  # tell, ask, timer, dead letter, poison, exited
            msg = Message(kind, sender, correlation, type, payload, reason)
            behavior = actor._troupe_behavior
            if behavior is None:
                actor.receive(ctx, msg)
            else:
                behavior(ctx, msg)
            if actor._troupe_replay:
                _replay(actor, ctx)
        else:
            _handle_other(actor, ctx, kind, sender, correlation, type, payload, reason)
    finally:
        ctx._call = 0
