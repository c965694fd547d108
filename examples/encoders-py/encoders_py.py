"""The encoders of examples/encoders in Python: three actor types that answer
an ask carrying a JSON string with that string encoded, byte for byte as the
C++ package answers (same types, group encoders_py).

    ask  Morse  "SOS"      → "... --- ..."
    ask  Base64 "foo"      → "Zm9v"
    ask  Rot13  "Hello"    → "Uryyb"
    ask  any    42         → {"error": "expected a JSON string"}

Relay asks another actor (any runtime) and answers with its reply, as the
relay fixture of the integration tests does:

    ask  Relay  {"via": "@3fa9c012.17" or "morse", "payload": "SOS"}
                → {"answer": <the reply>, "from_version": "py"}
                  or {"error": <why the ask failed>, "from_version": "py"}

A tell is logged and otherwise ignored.
"""

import base64
import json

import troupe

# International Morse code (ITU-R M.1677-1) plus ! ; _ $ &, as encoders.cpp.
MORSE = {
    "A": ".-", "B": "-...", "C": "-.-.", "D": "-..", "E": ".", "F": "..-.", "G": "--.", "H": "....",
    "I": "..", "J": ".---", "K": "-.-", "L": ".-..", "M": "--", "N": "-.", "O": "---", "P": ".--.",
    "Q": "--.-", "R": ".-.", "S": "...", "T": "-", "U": "..-", "V": "...-", "W": ".--", "X": "-..-",
    "Y": "-.--", "Z": "--..", "0": "-----", "1": ".----", "2": "..---", "3": "...--", "4": "....-",
    "5": ".....", "6": "-....", "7": "--...", "8": "---..", "9": "----.", ".": ".-.-.-", ",": "--..--",
    "?": "..--..", "'": ".----.", "!": "-.-.--", "/": "-..-.", "(": "-.--.", ")": "-.--.-", "&": ".-...",
    ":": "---...", ";": "-.-.-.", "=": "-...-", "+": ".-.-.", "-": "-....-", "_": "..--.-", '"': ".-..-.",
    "$": "...-..-", "@": ".--.-.",
}
ASCII_SPACE = " \t\n\r\v\f"  # not str.isspace(): the C++ code knows ASCII only


def to_morse(text):
    out = []
    word_break = False
    for c in text:
        if c in ASCII_SPACE:
            word_break = True
            continue
        code = MORSE.get(c.upper() if "a" <= c <= "z" else c)
        if code is None:
            continue
        if out:
            out.append(" / " if word_break else " ")
        word_break = False
        out.append(code)
    return "".join(out)


def to_base64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def to_rot13(text):
    out = []
    for c in text:
        if "a" <= c <= "z":
            c = chr(ord("a") + (ord(c) - ord("a") + 13) % 26)
        elif "A" <= c <= "Z":
            c = chr(ord("A") + (ord(c) - ord("A") + 13) % 26)
        out.append(c)
    return "".join(out)


class Encoder(troupe.Actor):
    encode = None

    def receive(self, ctx, msg):
        if msg.kind == troupe.ASK:
            try:
                value = msg.json()
            except ValueError:
                value = None
            if not isinstance(value, str):
                ctx.reply({"error": "expected a JSON string"})
            else:
                ctx.reply(type(self).encode(value))
        elif msg.kind == troupe.TELL:
            ctx.log_info("ignoring tell '%s': %s" % (msg.type, msg.text))


class Morse(Encoder):
    encode = staticmethod(to_morse)


class Base64(Encoder):
    encode = staticmethod(to_base64)


class Rot13(Encoder):
    encode = staticmethod(to_rot13)


class Relay(troupe.Actor):
    def receive(self, ctx, msg):
        if msg.kind != troupe.ASK:
            return
        try:
            request = msg.json()
        except ValueError:
            request = None
        if not isinstance(request, dict) or "via" not in request:
            return ctx.reply({"error": "expected {\"via\": address or name, \"payload\": value}"})
        via = request["via"]
        target = troupe.Address.parse(via) if via.startswith("@") else ctx.lookup(via)
        if target is None:
            return ctx.reply({"error": "no actor is named %s" % via, "from_version": "py"})
        handle = msg.reply_handle

        def answered(ctx, result):
            if result.ok:
                ctx.reply_later(handle, {"answer": result.json(), "from_version": "py"})
            else:
                ctx.reply_later(handle, {"error": result.error, "from_version": "py"})

        ctx.ask(target, "json", troupe.to_json(request.get("payload")), answered)
