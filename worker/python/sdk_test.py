"""Unit test of the Python SDK (troupe.py) without a worker: a fake _troupe
records the host calls; messages go in through _create/_handle as the worker
sends them. Run by ctest (python_sdk) with the build's python3.

    python3 worker/python/sdk_test.py
"""

import os
import sys
import types
import unittest

calls = []


class HostError(RuntimeError):
    pass


fake = types.ModuleType("_troupe")
fake.HostError = HostError
fake.tell = lambda call, to, type, payload: calls.append(("tell", call, to, type, payload))
fake.ask = lambda call, to, type, payload, timeout: calls.append(("ask", to, type, payload, timeout)) or 7
fake.reply = lambda call, type, payload: calls.append(("reply", type, payload))
fake.reply_to = lambda call, to, corr, type, payload: calls.append(("reply_to", to, corr, type, payload))
fake.self_address = lambda call: (5 << 32) | 9
sys.modules["_troupe"] = fake
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import troupe  # noqa: E402

T = troupe


def handle(actor, kind, sender=0, corr=0, type="json", payload=b"", reason="", call=1):
    troupe._handle(actor, call, kind, sender, corr, type, payload, reason)


class Gate(troupe.Actor):
    def on_start(self, ctx):
        self.seen = []

    def receive(self, ctx, msg):
        if msg.type == "open":
            self.become(self.opened)
            self.unstash_all()
        else:
            self.stash(msg)

    def opened(self, ctx, msg):
        if msg.type == "close":
            return self.unbecome()
        self.seen.append(msg.json())
        if msg.is_ask:
            ctx.reply({"got": msg.json()})


class SdkTest(unittest.TestCase):
    def setUp(self):
        calls.clear()

    def test_address_text(self):
        a = T.Address.parse("@3fa9c012.17")
        self.assertEqual(str(a), "@3fa9c012.17")
        self.assertEqual(a.system, 0x3FA9C012)
        self.assertEqual(a.serial, 17)
        self.assertEqual(T.Address("@3fa9c012.17"), a)
        for bad in ("3fa9c012.17", "@0.0", "@x.1", "@1"):
            with self.assertRaises(ValueError):
                T.Address.parse(bad)

    def test_payloads_bytes_text_json(self):
        g = troupe._create(Gate, 1)
        ctx = T.Context(1, g)
        ctx.tell(3, "t", b"\x00raw")
        ctx.tell(3, "t", "héllo")
        ctx.tell(3, "t", {"a": [1, "é"]})
        ctx.tell("@00000001.2", "t", 42)
        self.assertEqual([c[4] for c in calls],
                         [b"\x00raw", "héllo".encode(), '{"a":[1,"é"]}'.encode(), b"42"])
        self.assertEqual(calls[3][2], (1 << 32) | 2)

    def test_stash_become_unstash_in_order_and_a_stashed_ask_is_answered(self):
        g = troupe._create(Gate, 1)
        handle(g, T.TELL, payload=b"1")
        handle(g, T.ASK, sender=44, corr=9, payload=b"2")
        handle(g, T.TELL, payload=b"3")
        self.assertEqual(g.stash_size, 3)
        handle(g, T.TELL, type="open")
        self.assertEqual(g.seen, [1, 2, 3])
        self.assertEqual(g.stash_size, 0)
        # The replayed ask is answered to its asker, by reply_to.
        self.assertEqual(calls, [("reply_to", 44, 9, "json", b'{"got":2}')])
        calls.clear()
        handle(g, T.ASK, sender=45, corr=10, payload=b"4")
        self.assertEqual(calls, [("reply", "json", b'{"got":4}')])
        handle(g, T.TELL, type="close")
        handle(g, T.TELL, payload=b"5")
        self.assertEqual(g.stash_size, 1)

    def test_ask_callback_gets_reply_or_failure_and_late_replies_are_dropped(self):
        got = []

        class Asker(T.Actor):
            def receive(self, ctx, msg):
                ctx.ask(99, "json", msg.payload, lambda c, r: got.append((r.ok, r.json() if r.ok else r.error)))

        a = troupe._create(Asker, 1)
        handle(a, T.TELL, payload=b'"q"')
        self.assertEqual(calls, [("ask", 99, "json", b'"q"', 5000)])
        handle(a, T.REPLY, corr=7, payload=b'"answer"')
        handle(a, T.REPLY, corr=7, payload=b'"late"')
        handle(a, T.TELL, payload=b'"q2"')
        handle(a, T.ASK_FAILED, corr=7, payload=b"ask to @x timed out")
        self.assertEqual(got, [(True, "answer"), (False, "ask to @x timed out")])

    def test_exit_goes_to_on_exit_and_a_context_dies_with_its_call(self):
        seen = []

        class Keeper(T.Actor):
            def receive(self, ctx, msg):
                self.kept = ctx

            def on_exit(self, ctx):
                seen.append("exit")

        k = troupe._create(Keeper, 1)
        handle(k, T.TELL)
        handle(k, T.EXIT)
        self.assertEqual(seen, ["exit"])
        self.assertEqual(k.kept._call, 0)  # the worker then refuses call 0

    def test_message_fields(self):
        m = T.Message(T.POISON, (2 << 32) | 3, 0, "t", b'{"x":1}', "died")
        self.assertEqual(str(m.sender), "@00000002.3")
        self.assertTrue(m.is_poison)
        self.assertEqual(m.json(), {"x": 1})
        self.assertEqual(m.reason, "died")
        self.assertEqual(m.text, '{"x":1}')


if __name__ == "__main__":
    unittest.main()
