#!/usr/bin/env python3
"""The README test (ctest readme): every ```sh block of README.md runs as written.

    run.py SOURCE_DIR BUILD_DIR

The blocks run in order in one bash session (set -euo pipefail), in a scratch
directory where `build` and `examples` lead to the build and the sources, so
a command copied from the README finds what it names. A block may be preceded
by one HTML comment the reader does not see:

    <!-- readme-test
    skip: why this block is not run here (another test runs it)
    before: a hidden command run before the block (a second host's address)
    replace: TEXT => shell text   (a placeholder the reader fills in)
    -->

Every block is either run or skipped with a reason; a block with no comment
runs. The session runs in its own pid and network namespaces (unshare, as
root or with a user namespace), so the README's fixed ports (1900, 10000,
2379...) are private to it and everything it started dies with it. Bounded by
`timeout` (ctest's TIMEOUT is above it).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"<!--\s*readme-test\s*(.*?)-->", re.S)


def blocks(readme):
    """(language, lines, directives, line number) of every fenced block."""
    lines = readme.splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        # The directive comment ends on the line before the fence.
        before = "\n".join(lines[max(0, start - 12):start])
        directives = []
        d = list(DIRECTIVE.finditer(before))
        if d and before[d[-1].end():].strip() == "":
            for line in d[-1].group(1).strip().splitlines():
                key, _, value = line.strip().partition(":")
                if not value.strip():
                    raise SystemExit(f"README.md:{start}: readme-test directive without a value: {line!r}")
                if key not in ("skip", "before", "replace"):
                    raise SystemExit(f"README.md:{start}: unknown readme-test directive {key!r}")
                directives.append((key, value.strip()))
        out.append((lang, body, directives, start + 1))
    return out


def script(source_dir):
    with open(os.path.join(source_dir, "README.md")) as f:
        readme = f.read()
    parts = ["set -euo pipefail", "ip link set lo up"]
    ran, skipped = 0, []
    for lang, body, directives, line in blocks(readme):
        if lang != "sh":
            continue
        skip = [v for k, v in directives if k == "skip"]
        if skip:
            skipped.append((line, skip[0]))
            continue
        text = "\n".join(body)
        for key, value in directives:
            if key == "replace":
                old, sep, new = value.partition("=>")
                if not sep or old.strip() not in text:
                    raise SystemExit(f"README.md:{line}: replace {old.strip()!r} is not in the block")
                text = text.replace(old.strip(), new.strip())
        parts.append(f"echo '::: README.md:{line}'")
        parts += [v for k, v in directives if k == "before"]
        parts.append(text)
        ran += 1
    return "\n".join(parts) + "\necho '::: all blocks ran'\n", ran, skipped


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source_dir, build_dir = map(os.path.abspath, sys.argv[1:])
    text, ran, skipped = script(source_dir)
    for line, why in skipped:
        print(f"readme test: README.md:{line} skipped: {why}")
    work = tempfile.mkdtemp(prefix="troupe-readme-test.")
    try:
        os.symlink(build_dir, os.path.join(work, "build"))
        os.symlink(os.path.join(source_dir, "examples"), os.path.join(work, "examples"))
        os.symlink(os.path.join(source_dir, "tests", "readme"), os.path.join(work, "readme-test"))
        with open(os.path.join(work, "readme.sh"), "w") as f:
            f.write(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TROUPE_")}
        env["TMPDIR"] = work  # mktemp -d of the blocks lands here, removed below
        ns = ["unshare", "--pid", "--fork", "--mount-proc", "--net"]
        if os.geteuid() != 0:
            ns.insert(1, "--map-root-user")
        cmd = ["timeout", "--kill-after=10", "400"] + ns + ["bash", "-x", "readme.sh"]
        r = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(r.stdout)
        if r.returncode != 0:
            print(f"readme test: FAILED (exit {r.returncode}); the last '::: README.md:N' above is the block",
                  file=sys.stderr)
            return 1
        print(f"readme test: {ran} blocks ran, {len(skipped)} skipped")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
