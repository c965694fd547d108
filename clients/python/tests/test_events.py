"""troupe_client's events against real systems (PROTOCOL.md §6.5): once,
followed while other calls go on, ended by an unsubscribe or by the system's
stop, the subscriber limit; and a silent system (a fake one) read as gone."""

import json
import threading
import time

import pytest
import zmq

import troupe_client
from troupe_client import TroupeError


def kinds_of(events, address=None):
    return [e["kind"] for e in events if address is None or e.get("address") == address]


def test_events_once_in_order_with_since_and_max(system):
    with troupe_client.connect(system.where, home=system.home) as c:
        loaded = c.load(system.package("encoders-1.0.0.tpkg"))
        morse = c.spawn("Morse", package="encoders")
        c.kill(morse)
        events = c.all_events()
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert all(e["time_ms"] > 0 for e in events)
        pkg = [e for e in events if e["kind"] == "package_loaded"]
        assert [e["package_id"] for e in pkg] == [loaded["id"]]
        assert pkg[0]["package"] == "encoders" and pkg[0]["version"] == "1.0.0"
        assert kinds_of(events, morse) == ["actor_started", "actor_stopped"]
        started = next(e for e in events if e.get("address") == morse)
        assert started["type"] == "Morse" and pkg[0]["seq"] < started["seq"]

        after = c.events(since=started["seq"])
        assert after["events"] and all(e["seq"] > started["seq"] for e in after["events"])
        assert after["system"] == c.status()["system"]
        assert after["missed"] == 0 and after["following"] is False

        one = c.events(0, max=1)
        assert len(one["events"]) == 1 and one["events"][0]["seq"] == one["first_seq"]
        assert one["more"] is True
        # A number of another run of the daemon (above last_seq): nothing.
        assert c.events(since=one["last_seq"] + 1000)["events"] == []


def test_bad_events_requests_are_refused_with_a_code(system):
    with troupe_client.connect(system.where, home=system.home) as c:
        with pytest.raises(TroupeError) as e:
            c.call("events", {"since": "yesterday"})
        assert e.value.code == "invalid_argument"
        assert c.status()["state"] == "running"  # and nothing changed


def test_follow_streams_new_events_while_other_calls_go_on(system):
    with troupe_client.connect(system.where, home=system.home) as c:
        with c.follow() as sub:
            # Calls while subscribed: the stream's messages that arrive
            # meanwhile are kept for the subscription, not lost.
            loaded = c.load(system.package("encoders-1.0.0.tpkg"))
            morse = c.spawn("Morse", package="encoders", name="morse")
            assert c.ask("morse", "SOS") == "... --- ..."
            c.kill(morse)
            got = []
            deadline = time.monotonic() + 20
            for e in sub:
                got.append(e)
                if e["kind"] == "actor_stopped" and e["address"] == morse:
                    break
                assert time.monotonic() < deadline, got
            assert kinds_of(got)[0] == "package_loaded" and got[0]["package_id"] == loaded["id"]
            assert kinds_of(got, morse) == ["actor_started", "actor_stopped"]
            assert [e for e in got if e.get("address") == morse][0]["name"] == "morse"
            assert sub.missed == 0 and sub.last_seq == got[-1]["seq"]
        assert sub.ended == "unsubscribed"
        assert not list(sub)  # nothing after the end
        assert c.status()["state"] == "running"  # the connection serves on


def test_follow_from_since_sends_the_backlog_first(system):
    with troupe_client.connect(system.where, home=system.home) as c:
        c.load(system.package("encoders-1.0.0.tpkg"))
        with c.follow(since=0) as sub:
            batch = sub.next_batch(timeout=10)
            assert batch is not None and batch["events"][0]["seq"] == 1
            assert "package_loaded" in kinds_of(batch["events"])


def test_follow_ends_when_the_system_stops(system):
    c = troupe_client.connect(system.where, home=system.home)
    try:
        sub = c.follow()
        r = system.troupe("stop", str(system.port))
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 20
        while sub.ended is None and time.monotonic() < deadline:
            sub.next_batch(timeout=0.5)
        assert sub.ended == "the system is stopping"
    finally:
        c.close()


def test_at_most_max_event_subscribers(make_system):
    s = make_system("--max-event-subscribers", "1")
    with troupe_client.connect(s.where, home=s.home) as a, troupe_client.connect(s.where, home=s.home) as b:
        first = a.follow()
        with pytest.raises(TroupeError) as e:
            b.follow()
        assert e.value.code == "limit"
        assert "max-event-subscribers" in str(e.value)
        first.close()
        b.follow().close()  # the slot is free again


def test_a_system_that_stops_sending_is_unavailable():
    # A fake system: answers the follow with a 50 ms heartbeat, then is silent.
    ctx = zmq.Context()
    server = ctx.socket(zmq.ROUTER)
    server.setsockopt(zmq.LINGER, 0)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    answered = threading.Event()

    def serve():
        if server.poll(10000, zmq.POLLIN):
            ident, sig, _, body = server.recv_multipart()
            rid = json.loads(body)["rid"]
            answer = {"rid": rid, "ok": True, "following": True, "heartbeat_ms": 50, "missed": 0,
                      "events": [], "first_seq": 1, "last_seq": 0, "system": "00000001"}
            server.send_multipart([ident, sig, b"reply", json.dumps(answer).encode()])
            answered.set()

    t = threading.Thread(target=serve)
    t.start()
    c = troupe_client.Client("tcp://127.0.0.1:%d" % port, context=ctx)
    try:
        sub = c.follow(since=0, heartbeats=3)
        assert answered.is_set()
        t0 = time.monotonic()
        with pytest.raises(TroupeError) as e:
            for _ in sub:
                pass
        assert e.value.code == "unavailable"
        assert "went away" in str(e.value)
        assert sub.ended is not None
        assert time.monotonic() - t0 < 5
    finally:
        t.join(timeout=15)
        c.close()
        server.close(linger=0)
        ctx.term()
