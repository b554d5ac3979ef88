#!/usr/bin/env bash
# Start-up and per-call cost of the same tool (`text-stats`) written in Rust,
# Python, JavaScript and C, and of `exec` for Python and JavaScript. Writes
# docs/bench/languages.md:
#   first run     `toka-host run` with an empty compile cache (compiles)
#   cached run    `toka-host run` with a warm cache (hyperfine, mean)
#   serve call    one call through `toka-host serve` (wrk, 1 connection, mean
#                 latency), fresh instance per call
# Then, side by side in the same run, each tool beside its native counterpart
# doing the same work (Debian's /usr/bin/python3 and node with the same
# imports; `run hello` as the floor for Rust and C), medians and ratios.
# Needs hyperfine and wrk (installed from Debian's packages when missing).
#   --side-by-side   only the side-by-side table (no cold compiles, no serve)
#   TOKA_BEFORE=BIN  add a column for another toka-host binary (an older build)
set -euo pipefail
only_side=false
[[ "${1:-}" == --side-by-side ]] && only_side=true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
for t in hyperfine wrk; do
    command -v "$t" >/dev/null || apt-get install -y -q "$t" >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q "$t" >/dev/null; }
done
if [[ -z "${TOKA_SKIP_BUILD:-}" ]]; then
    scripts/build-plugins.sh
    cargo build --release --locked --quiet -p toka-host
fi
toka="$root/target/release/toka-host"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
input='{"text":"The quick brown fox jumps over the lazy dog.\nThe dog sleeps.","top":3}'

# The same counting as plugins/*/text-stats, natively, with the same imports.
cat >"$work/text_stats.py" <<'PY'
import collections, json, re, sys
value = json.loads(sys.argv[1])
text, top = value["text"], value.get("top", 5)
words = [w.lower() for w in re.findall(r"[A-Za-z0-9]+", text)]
counts = collections.Counter(words)
ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
print(json.dumps({"bytes": len(text.encode("utf-8")), "characters": len(text),
    "lines": lines, "words": len(words), "unique_words": len(counts),
    "top_words": [{"word": w, "count": c} for w, c in ranked[:top]]},
    separators=(",", ":")))
PY
cat >"$work/text_stats.js" <<'JS'
const value = JSON.parse(process.argv[process.argv.length - 1]);
const text = value.text, top = value.top ?? 5;
const words = (text.match(/[A-Za-z0-9]+/g) || []).map((w) => w.toLowerCase());
const counts = new Map();
for (const w of words) counts.set(w, (counts.get(w) || 0) + 1);
const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
const lines = (text.match(/\n/g) || []).length + (text && !text.endsWith("\n") ? 1 : 0);
console.log(JSON.stringify({ bytes: Buffer.byteLength(text), characters: [...text].length,
  lines, words: words.length, unique_words: counts.size,
  top_words: ranked.slice(0, top).map(([word, count]) => ({ word, count })) }));
JS

# The cache trusts a record of a file only when it was taken >= 2 s after the
# file last changed (engine/record.rs, RACY): right after a compile every run
# re-hashes the 18 MB artifact and renews the record. A user's warm cache is
# older than that, so wait, then let one run write a record that holds.
settle() { # CMD
    sleep 3
    bash -c "$1" >/dev/null 2>&1
}

# One row: toka's command beside the native one (and TOKA_BEFORE's), medians
# of interleaved-as-possible runs in one hyperfine invocation.
side() { # NAME TOKA-ARGS NATIVE-CMD
    local name="$1" args="$2" native="$3" cmds=("$toka $2")
    [[ -n "${TOKA_BEFORE:-}" ]] && cmds+=("$TOKA_BEFORE $args")
    [[ "$native" != - ]] && cmds+=("$native")
    bash -c "$toka $args" >/dev/null 2>&1 # warm the cache
    [[ -n "${TOKA_BEFORE:-}" ]] && bash -c "$TOKA_BEFORE $args" >/dev/null 2>&1
    settle "$toka $args"
    hyperfine -N --warmup 5 --runs "${RUNS:-30}" --export-json "$work/s.json" "${cmds[@]}" >/dev/null
    python3 - "$work/s.json" "$name" "${TOKA_BEFORE:+before}" "$native" <<'PY'
import json, sys
results = [r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]]
name, before, native = sys.argv[2], sys.argv[3], sys.argv[4]
toka = results.pop(0)
cells = [f"{toka:.1f} ms"]
if before:
    b = results.pop(0)
    cells.append(f"{b:.1f} ms")
if native != "-":
    n = results.pop(0)
    cells += [f"{n:.1f} ms", f"{toka / n:.2f}×"]
else:
    cells += ["-", "-"]
print(f"| {name} | " + " | ".join(cells) + " |")
PY
}

side_by_side() {
    echo "## Side by side: cached \`toka-host run\` and the native interpreter"
    echo
    echo "Medians of ${RUNS:-30} runs each in one hyperfine invocation, same input;"
    echo "the native side does the same counting with json, re and collections"
    echo "(Python) or the same regex and Map (JavaScript)."
    echo
    if [[ -n "${TOKA_BEFORE:-}" ]]; then
        echo "| tool | toka-host run | before ($TOKA_BEFORE) | native | toka / native |"
        echo "|---|---:|---:|---:|---:|"
    else
        echo "| tool | toka-host run | native | toka / native |"
        echo "|---|---:|---:|---:|"
    fi
    side "text-stats-py vs /usr/bin/python3" "run text-stats-py --input '$input'" \
        "/usr/bin/python3 $work/text_stats.py '$input'"
    side "text-stats-js vs node" "run text-stats-js --input '$input'" \
        "$(command -v node || echo node) $work/text_stats.js '$input'"
    side "text-stats (Rust)" "run text-stats --input '$input'" -
    side "text-stats-c (C)" "run text-stats-c --input '$input'" -
    side "hello (Rust)" "run hello --param name=Ada" -
}

export TOKA_CACHE_DIR="$work/warm"
if $only_side; then
    side_by_side
    exit 0
fi
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = [[$input]]
wrk.headers["Content-Type"] = "application/json"
LUA

export TOKA_CACHE_DIR="$work/warm"
TOKA_CACHE_DIR="$work/warm" "$toka" serve --addr 127.0.0.1:18491 --max-concurrent 8 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 600); do grep -q serving "$work/serve.log" 2>/dev/null && break; sleep 0.1; done

row() { # NAME RUN-ARGS... (via a bash -c string) ; SERVE-TOOL or -
    local name="$1" cmd="$2" tool="$3" first cached call="-" size
    rm -rf "$work/cold"
    local t0 t1
    t0=$(date +%s.%N)
    TOKA_CACHE_DIR="$work/cold" bash -c "$cmd" >/dev/null 2>&1
    t1=$(date +%s.%N)
    first=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f s", b - a }')
    bash -c "$cmd" >/dev/null 2>&1 # warm
    settle "$cmd"
    hyperfine -N --warmup 3 --runs 20 --export-json "$work/h.json" "$cmd" >/dev/null 2>&1 \
        || hyperfine --warmup 3 --runs 20 --export-json "$work/h.json" "$cmd" >/dev/null
    cached=$(python3 -c 'import json,sys; print("%.1f ms" % (1000*json.load(open(sys.argv[1]))["results"][0]["mean"]))' "$work/h.json")
    if [[ "$tool" != - ]]; then
        wrk -t1 -c1 -d1s -s "$work/post.lua" "http://127.0.0.1:18491/v1/tools/$tool/invoke" >/dev/null
        wrk -t1 -c1 -d5s --latency -s "$work/post.lua" "http://127.0.0.1:18491/v1/tools/$tool/invoke" >"$work/wrk.txt"
        if grep -q "Non-2xx" "$work/wrk.txt"; then
            echo "$tool: calls failed under serve:" >&2; cat "$work/wrk.txt" >&2; exit 1
        fi
        call=$(awk '/^    Latency/ {print $2}' "$work/wrk.txt" | sed 's/us$/ µs/; s/ms$/ ms/')
    fi
    size=$(awk -v s="$4" 'BEGIN { printf "%.1f MB", s / 1e6 }')
    echo "| $name | $size | $first | $cached | $call |"
}

size_of() { stat -c %s "plugins/build/$1.wasm"; }
{
    echo "# One tool in four languages: start-up and per-call cost"
    echo
    echo "Generated by \`scripts/bench-languages.sh\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, release"
    echo "build. \`text-stats\` on a two-line text; \`exec\` prints one line."
    echo
    echo "Call in \`serve\`: mean latency seen by wrk over HTTP on loopback (one connection),"
    echo "a fresh instance per call; most of it is HTTP and JSON, not the guest."
    echo
    echo "| plugin | component | first run (compile) | cached run | call in \`serve\` |"
    echo "|---|---:|---:|---:|---:|"
    row "text-stats (Rust)" "$toka run text-stats --input '$input'" text-stats "$(size_of text-stats)"
    row "text-stats-py (Python, componentize-py)" "$toka run text-stats-py --input '$input'" text-stats-py "$(size_of text-stats-py)"
    row "text-stats-js (JavaScript, componentize-js)" "$toka run text-stats-js --input '$input'" text-stats-js "$(size_of text-stats-js)"
    row "text-stats-c (C, clang + adapter)" "$toka run text-stats-c --input '$input'" text-stats-c "$(size_of text-stats-c)"
    row "exec --lang python" "$toka exec --lang python 'print(1)'" - "$(size_of python-exec)"
    row "exec --lang js" "$toka exec --lang js 'console.log(1)'" - "$(size_of js-exec)"
    echo
    side_by_side
} | tee "$work/table.md"
kill "$serve_pid"
mkdir -p docs/bench
cp "$work/table.md" docs/bench/languages.md
echo "written to docs/bench/languages.md"
