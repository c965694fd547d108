"""The conflict example in Python: one module, bundled in two package versions
with two releases of one pure-Python library, pycodec, in site-packages/.

    ask Codec {"text": "abc"}  →  {"codec": "1.2", "encoded": "cba"}        (conflict_py 1.0.0)
                               →  {"codec": "1.5", "encoded": "[1.5] ABC"}  (conflict_py 2.0.0)

In one interpreter both versions would run the pycodec imported first
(sys.modules holds one module per name); one_interpreter_test.py shows it.
"""

import pycodec

import troupe


class Codec(troupe.Actor):
    def receive(self, ctx, msg):
        if msg.kind != troupe.ASK:
            return
        try:
            request = msg.json()
        except ValueError:
            request = None
        answer = {"codec": pycodec.VERSION}
        if isinstance(request, dict) and isinstance(request.get("text"), str):
            answer["encoded"] = pycodec.encode(request["text"])
        ctx.reply(answer)
