"""Why troupe gives each package version of runtime python its own worker:
two releases of one pure-Python library under one import name cannot share
an interpreter. Each site-packages alone imports its own release; in one
interpreter the second import silently returns the first one's module, since
sys.modules holds one module per name and putting the other directory first
on sys.path changes nothing. No error, no warning, wrong answers.

Run by ctest (conflict_py_one_interpreter) with the build's two site-packages
directories as arguments; each case runs in a fresh `python3 -I` child.
"""

import json
import subprocess
import sys

PROBE = r"""
import json, sys
out = {}
for i, site in enumerate(sys.argv[1:]):
    sys.path.insert(0, site)
    import pycodec
    out[str(i)] = {"version": pycodec.VERSION, "encoded": pycodec.encode("abc"), "file": pycodec.__file__}
print(json.dumps(out))
"""


def run(*sites):
    r = subprocess.run([sys.executable, "-I", "-c", PROBE, *sites], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def main():
    site_1_2, site_1_5 = sys.argv[1], sys.argv[2]
    alone_1 = run(site_1_2)["0"]
    alone_2 = run(site_1_5)["0"]
    assert alone_1["version"] == "1.2" and alone_1["encoded"] == "cba", alone_1
    assert alone_2["version"] == "1.5" and alone_2["encoded"] == "[1.5] ABC", alone_2
    both = run(site_1_2, site_1_5)
    # The point of the example: the second package bundles 1.5, yet gets 1.2.
    assert both["1"]["version"] == "1.2", both
    assert both["1"]["encoded"] == "cba", both
    assert both["1"]["file"] == alone_1["file"], both
    print("alone: 1.2 and 1.5; in one interpreter the second import gave", both["1"]["version"])


if __name__ == "__main__":
    main()
