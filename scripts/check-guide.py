#!/usr/bin/env python3
"""Follows a guide (docs/plugins/*.md) step by step in a clean directory, the
way a new user would, so a guide that goes stale breaks the build.

The steps run in one shell session, as a reader types them: a `cd` or an
`export` in one step holds for the next ones (bash with -euo pipefail; a
failing command ends the session). Each step's stdin is /dev/null.

In the guide:
  ```sh                  commands, run in order in that one session
  ```LANG file=PATH      a file to write (PATH relative to the guide's
                         directory, wherever the session has gone)
  ```text expect         every non-empty line must appear in the output of
                         the commands block just before it

Usage: scripts/check-guide.py GUIDE.md [--keep]
Environment: TOKA, the Toka checkout the guide refers to as "$TOKA"
(default: this repository); toka-host must be on PATH.
"""

import os
import re
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```(\S*)(.*)$")


def blocks(text):
    lang, attrs, body = None, "", []
    for line in text.splitlines():
        m = FENCE.match(line)
        if m and lang is None:
            lang, attrs, body = m.group(1), m.group(2).strip(), []
        elif line.startswith("```") and lang is not None:
            yield lang, attrs, "\n".join(body) + "\n"
            lang = None
        elif lang is not None:
            body.append(line)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    guide = sys.argv[1]
    keep = "--keep" in sys.argv
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TOKA=os.environ.get("TOKA", root))
    work = tempfile.mkdtemp(prefix="toka-guide-")
    # The step scripts live outside the guide's directory, which stays as
    # the reader's would be.
    scripts = tempfile.mkdtemp(prefix="toka-guide-steps-")
    session = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=work, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    session.stdin.write("set -euo pipefail\n")
    last_output, steps = None, 0
    with open(guide, encoding="utf-8") as f:
        text = f.read()
    for lang, attrs, body in blocks(text):
        if lang == "sh":
            steps += 1
            print(f"--- {guide}: step {steps}\n{body}", end="", flush=True)
            script = os.path.join(scripts, f"step-{steps}.sh")
            with open(script, "w", encoding="utf-8") as f:
                f.write(body)
            marker = f"--- toka-guide step {steps} done ---"
            session.stdin.write(f"source {script} </dev/null\nprintf '\\n%s\\n' '{marker}'\n")
            session.stdin.flush()
            out, done = [], False
            for line in session.stdout:
                if line.rstrip("\n") == marker:
                    done = True
                    break
                out.append(line)
            # The blank line printed before the marker.
            if out and out[-1] == "\n":
                out.pop()
            last_output = "".join(out)
            print(last_output, end="", flush=True)
            if not done:
                code = session.wait()
                sys.exit(f"{guide}: step {steps} failed with exit code {code} (in {work})")
        elif attrs.startswith("file="):
            path = os.path.join(work, attrs[len("file="):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(body)
        elif lang == "text" and attrs == "expect":
            if last_output is None:
                sys.exit(f"{guide}: an `expect` block before any command")
            for line in body.splitlines():
                if line.strip() and line.strip() not in last_output:
                    sys.exit(f"{guide}: after step {steps}, expected output line not found: {line.strip()!r}")
    session.stdin.close()
    session.wait()
    subprocess.run(["rm", "-rf", scripts])
    if steps == 0:
        sys.exit(f"{guide}: no ```sh steps")
    print(f"--- {guide}: all {steps} steps passed")
    if not keep:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
