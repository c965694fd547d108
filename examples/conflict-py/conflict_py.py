"""The conflict example in Python: one module, bundled in two package versions
with two releases of one pure-Python library, pycodec, unpacked from its
wheel into site-packages/ by `troupe pack --wheel`.

    ask Codec {"text": "abc"}  →  {"codec": "1.2", "encoded": "cba"}        (conflict_py 1.0.0)
                               →  {"codec": "1.5", "encoded": "[1.5] ABC"}  (conflict_py 2.0.0)
    ask Codec {"metadata": true}  →  {"codec": "1.2", "dist": "1.2"}
        (dist: importlib.metadata's version of pycodec, from the wheel's
        pycodec-1.2.dist-info; imported only then, so a plain ask stays fast)

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
        if isinstance(request, dict) and request.get("metadata") is True:
            import importlib.metadata

            answer["dist"] = importlib.metadata.version("pycodec")
        ctx.reply(answer)
