#!/usr/bin/env python3
"""Writes a Toka manifest for every shell/Python tool under scripts/tools/.

Each tool script carries a header of `# toka:KEY VALUE` lines:

    # toka:name        validate-env                  (required)
    # toka:description Checks that ...               (required)
    # toka:category    operations
    # toka:version     0.1.0
    # toka:output      json | text
    # toka:timeout     10s
    # toka:env         PATH LANG                     (host variables passed through)
    # toka:readonly    ./data                        (relative to manifests/)
    # toka:writable    ./scratch
    # toka:host        api.example.com:443
    # toka:param       NAME TYPE "description" [required]

Capabilities are inferred from what the script does: writing files ->
filesystem-write, reading files -> filesystem-read, running other programs
(cargo, python, git, mkdir, ...) -> process-execution, curl/wget/sockets ->
network-access. The script's SHA-256 is pinned.

    scripts/generate-tool-manifests.py          write manifests/<name>.yaml
    scripts/generate-tool-manifests.py --check  exit 1 if one is missing or stale (CI)
"""

import argparse
import hashlib
import json
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "scripts" / "tools"
MANIFESTS = ROOT / "manifests"

HEADER = re.compile(r"^#\s*toka:(\w+)\s+(.*?)\s*$")
# A word in command position: at the start of a line or after |, ;, &, $(,
# a backquote, then, do or else.
COMMAND_WORD = re.compile(r"(?:^|[|;&]|\$\(|`|\bthen\b|\bdo\b|\belse\b)[ \t]*([A-Za-z_][\w.+-]*)", re.M)

# Programs whose use means the tool starts other processes. Under Toka's
# Landlock rules a tool may execute nothing but its interpreter unless it is
# granted process-execution, so every external command counts.
EXTERNAL = (
    "cargo rustc rustup python python3 pip pip3 node npm npx git make gcc cc clang "
    "mkdir touch cp mv rm rmdir ln chmod chown install tee cat head tail grep egrep sed "
    "awk sort uniq wc tr cut find ls stat date uname id env sleep xargs jq tar gzip "
    "curl wget nc ssh scp docker kubectl"
).split()
NETWORK_SH = ("curl", "wget", "nc", "ssh", "scp", "/dev/tcp/", "/dev/udp/")
NETWORK_PY = ("requests", "urllib", "http.client", "socket", "httpx", "aiohttp")
WRITE_SH = re.compile(
    r"(?<![0-9&])>>?\s*(?!&|/dev/null)[\"'$\w./]|\b(mkdir|touch|cp|mv|rm|rmdir|ln|tee|install|chmod)\b"
)
READ_SH = re.compile(r"(?<!<)<\s*[\"'$\w./]|\b(cat|head|tail|grep|sed|awk|wc|find|ls|sort|source)\b")
WRITE_PY = re.compile(r"open\([^)]*['\"][wax]b?\+?['\"]|\.write_(text|bytes)\(|\bmkdir\(|shutil\.(copy|move|rmtree)|os\.remove")
READ_PY = re.compile(r"\bopen\(|\.read_(text|bytes)\(|os\.listdir|\bglob\(")
PROC_PY = re.compile(r"\bsubprocess\b|os\.system|os\.exec|os\.spawn")


def code_lines(text: str) -> str:
    """The script without comment lines (headers and prose)."""
    return "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))


def infer(kind: str, text: str) -> list[str]:
    code = code_lines(text)
    caps = set()
    if kind == "shell":
        words = set(COMMAND_WORD.findall(code))
        if WRITE_SH.search(code):
            caps.add("filesystem-write")
        if READ_SH.search(code):
            caps.add("filesystem-read")
        if any(w in words for w in EXTERNAL):
            caps.add("process-execution")
        if any(n in code for n in NETWORK_SH):
            caps.add("network-access")
    else:
        if WRITE_PY.search(code):
            caps.add("filesystem-write")
        if READ_PY.search(code):
            caps.add("filesystem-read")
        if PROC_PY.search(code):
            caps.add("process-execution")
        if any(re.search(rf"\b{re.escape(n)}\b", code) for n in NETWORK_PY):
            caps.add("network-access")
    order = ["filesystem-read", "filesystem-write", "network-access", "process-execution"]
    return [c for c in order if c in caps]


def parse_header(path: Path, text: str) -> dict:
    h = {"env": [], "readonly": [], "writable": [], "host": [], "param": []}
    for line in text.splitlines()[:60]:
        m = HEADER.match(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if key in ("env",):
            h["env"].extend(value.split())
        elif key in ("readonly", "writable", "host"):
            h[key].append(value)
        elif key == "param":
            parts = shlex.split(value)
            if len(parts) < 3:
                sys.exit(f"{path}: `toka:param {value}`: write NAME TYPE \"description\" [required]")
            h["param"].append(parts)
        else:
            h[key] = value
    for required in ("name", "description"):
        if required not in h:
            sys.exit(f"{path}: no `# toka:{required}` header line")
    return h


def q(s: str) -> str:
    """A YAML scalar, quoted as JSON (JSON strings are valid YAML)."""
    return json.dumps(s)


def manifest(path: Path) -> tuple[str, str]:
    text = path.read_text()
    kind = "python" if path.suffix == ".py" else "shell"
    h = parse_header(path, text)
    caps = infer(kind, text)
    if h["readonly"] and "filesystem-read" not in caps:
        caps.insert(0, "filesystem-read")
    if h["writable"] and "filesystem-write" not in caps:
        caps.append("filesystem-write")
    if h["host"] and "network-access" not in caps:
        caps.append("network-access")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    level = "high" if {"network-access", "filesystem-write"} & set(caps) else ("medium" if caps else "low")
    rel = path.relative_to(ROOT)
    props, required = {}, []
    for p in h["param"]:
        props[p[0]] = {"type": p[1], "description": p[2]}
        if len(p) > 3 and p[3] == "required":
            required.append(p[0])
    params = {"type": "object", "properties": props}
    if required:
        params["required"] = required
    out = [
        f"# Generated by scripts/generate-tool-manifests.py from {rel}.",
        "# Edit the script's `# toka:` header and rerun the generator; do not edit this file.",
        "metadata:",
        f"  name: {h['name']}",
        f"  version: {h.get('version', '0.1.0')}",
        f"  category: {h.get('category', 'tooling')}",
        f"  description: {q(h['description'])}",
        "  author: toka",
        "spec:",
        "  executable:",
        f"    type: {kind}",
        f"    path: ../{rel}",
        f"    interpreter: {'python3' if kind == 'python' else 'bash'}",
        f"    sha256: {digest}",
        f"    output: {h.get('output', 'text')}",
        "  capabilities:",
        f"    required: [{', '.join(caps)}]",
        f"  parameters: {json.dumps(params)}",
        "  security:",
        f"    level: {level}",
        "    sandbox:",
    ]
    if h["readonly"]:
        out.append(f"      readonly_paths: [{', '.join(q(p) for p in h['readonly'])}]")
    if h["writable"]:
        out.append(f"      writable_paths: [{', '.join(q(p) for p in h['writable'])}]")
    if h["host"]:
        out.append("      allow_network: true")
        out.append(f"      allowed_hosts: [{', '.join(q(p) for p in h['host'])}]")
    if h["env"]:
        out.append(f"      env: [{', '.join(h['env'])}]")
    out += [
        f"      timeout: {h.get('timeout', '10s')}",
        "      memory_limit: 256MiB",
        "      output_limit: 1MiB",
    ]
    return h["name"], "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a manifest is missing or stale; write nothing")
    args = ap.parse_args()
    scripts = sorted(p for p in TOOLS.iterdir() if p.suffix in (".sh", ".py") and p.is_file())
    stale = []
    for path in scripts:
        name, text = manifest(path)
        target = MANIFESTS / f"{name}.yaml"
        current = target.read_text() if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(f"{target.relative_to(ROOT)} is {'stale' if current else 'missing'} (from {path.relative_to(ROOT)})")
        else:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print("\n".join(stale), file=sys.stderr)
        print("run scripts/generate-tool-manifests.py and commit the result", file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(scripts)} tool manifests are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
