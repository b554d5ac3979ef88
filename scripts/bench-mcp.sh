#!/usr/bin/env bash
# MCP: what a tools/call of `hello` costs over MCP against the plain API.
#   1. HTTP, one `serve`, wrk on loopback, rounds alternating between
#        v1         POST /v1/tools/hello/invoke {"name":"Ada"}
#        mcp        POST /mcp, tools/call, 2026-07-28 stateless form (_meta
#                   in the body, MCP-Protocol-Version/Mcp-Method/Mcp-Name):
#                   serve's fast path
#        mcp-sdk    the same request with a weighted Accept list, which
#                   serve leaves to the SDK (rmcp): the path before the fast one
#        mcp-session POST /mcp, tools/call, 2025-11-25 with an
#                   Mcp-Session-Id from one initialize: the fast path too
#        mcp-session-sdk the same with a weighted Accept list: the SDK's
#   2. stdio: `toka-host mcp`, N sequential tools/call round trips from a
#      Python client over a pipe (JSON lines), 2025-11-25 handshake first.
# Written to docs/bench/mcp.md. Loopback only; bounded.
#   scripts/bench-mcp.sh     (DURATION=10 ROUNDS=3 CONNS=16 CALLS=2000)
# Env: NO_BUILD=1 skips cargo build; CARGO_TARGET_DIR is honoured; TREE_REV names
# the revision in the output when the tree is not a git checkout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
rev="${TREE_REV:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
duration="${DURATION:-10}"
rounds="${ROUNDS:-3}"
conns="${CONNS:-16}"
calls="${CALLS:-2000}"
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }
[[ -n "${NO_BUILD:-}" ]] || cargo build --release --locked --quiet -p toka-host --bins
toka="$target/release/toka-host"
work="$(mktemp -d /tmp/bench-mcp.XXXXXX)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
export TOKA_CACHE_DIR="$work/cache"
port=18501
base="http://127.0.0.1:$port"

"$toka" serve --addr "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sf -o /dev/null "$base/health" && break; sleep 0.05; done

accept='application/json, text/event-stream'
meta='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}'
call_new='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hello","arguments":{"name":"Ada"},'"$meta"'}}'
call_old='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hello","arguments":{"name":"Ada"}}}'

# A 2025-11-25 session for the whole run.
curl -s -D "$work/init.headers" -o "$work/init.body" "$base/mcp" \
    -H 'Content-Type: application/json' -H "Accept: $accept" \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}'
session="$(awk 'tolower($1)=="mcp-session-id:" {print $2}' "$work/init.headers" | tr -d '\r')"
[[ -n "$session" ]] || { echo "no Mcp-Session-Id from initialize:"; cat "$work/init.headers" "$work/init.body"; exit 1; } >&2
curl -s -o /dev/null -w '%{http_code}\n' "$base/mcp" -H 'Content-Type: application/json' -H "Accept: $accept" \
    -H "Mcp-Session-Id: $session" -H 'MCP-Protocol-Version: 2025-11-25' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >"$work/initialized.code"

lua_escape() { sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" <<<"$1"; }
cat >"$work/v1.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"name":"Ada"}'
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$work/mcp.lua" <<LUA
wrk.method = "POST"
wrk.body = '$(lua_escape "$call_new")'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "$accept"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "hello"
LUA
sed 's/^wrk.headers\["Accept"\] = .*/wrk.headers["Accept"] = "application\/json;q=1, text\/event-stream"/' \
    "$work/mcp.lua" >"$work/mcp-sdk.lua"
cat >"$work/mcp-session.lua" <<LUA
wrk.method = "POST"
wrk.body = '$(lua_escape "$call_old")'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "$accept"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.headers["Mcp-Session-Id"] = "$session"
LUA
sed 's/^wrk.headers\["Accept"\] = .*/wrk.headers["Accept"] = "application\/json;q=1, text\/event-stream"/' \
    "$work/mcp-session.lua" >"$work/mcp-session-sdk.lua"
path_of() { [[ $1 == v1 ]] && echo /v1/tools/hello/invoke || echo /mcp; }

# Each form once with curl: the answer must be the greeting, not an error.
for mode in v1 mcp mcp-sdk mcp-session mcp-session-sdk; do
    hdrs=(); body='{"name":"Ada"}'
    case $mode in
        mcp) hdrs=(-H "Accept: $accept" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: hello'); body="$call_new" ;;
        mcp-sdk) hdrs=(-H 'Accept: application/json;q=1, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: hello'); body="$call_new" ;;
        mcp-session) hdrs=(-H "Accept: $accept" -H 'MCP-Protocol-Version: 2025-11-25' -H "Mcp-Session-Id: $session"); body="$call_old" ;;
        mcp-session-sdk) hdrs=(-H 'Accept: application/json;q=1, text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' -H "Mcp-Session-Id: $session"); body="$call_old" ;;
    esac
    curl -s "$base$(path_of $mode)" -H 'Content-Type: application/json' "${hdrs[@]}" -d "$body" >"$work/check-$mode.txt"
    grep -q 'Hello, Ada!' "$work/check-$mode.txt" || { echo "$mode did not answer the greeting:"; cat "$work/check-$mode.txt"; exit 1; } >&2
    grep -q '"isError":true' "$work/check-$mode.txt" && { echo "$mode answered an error"; exit 1; } >&2
done

for mode in v1 mcp mcp-sdk mcp-session mcp-session-sdk; do
    wrk -t2 -c"$conns" -d2s -s "$work/$mode.lua" "$base$(path_of $mode)" >/dev/null
done
rows=()
for r in $(seq "$rounds"); do
    for mode in v1 mcp mcp-sdk mcp-session mcp-session-sdk; do
        wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$work/$mode.lua" "$base$(path_of $mode)" >"$work/wrk-$mode-$r.txt"
        rps="$(awk '/Requests\/sec/ {print $2}' "$work/wrk-$mode-$r.txt")"
        p50="$(awk '$1=="50%" {print $2}' "$work/wrk-$mode-$r.txt")"
        p99="$(awk '$1=="99%" {print $2}' "$work/wrk-$mode-$r.txt")"
        non2xx="$(awk '/Non-2xx/ {print $5}' "$work/wrk-$mode-$r.txt")"
        echo "round $r $mode: $rps req/s p50 $p50 p99 $p99 non-2xx ${non2xx:-0}"
        rows+=("| $r | $mode | $rps | $p50 | $p99 | ${non2xx:-0} |")
    done
done
kill "${pids[@]}" 2>/dev/null || true

# stdio: sequential round trips over a pipe.
cat >"$work/stdio.py" <<'PY'
import json, subprocess, sys, time
toka, calls = sys.argv[1], int(sys.argv[2])
p = subprocess.Popen([toka, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
def send(msg):
    p.stdin.write(json.dumps(msg) + "\n"); p.stdin.flush()
def answer(id_):
    while True:
        line = p.stdout.readline()
        if not line:
            sys.exit("toka-host mcp closed stdout")
        m = json.loads(line)
        if m.get("id") == id_:
            return m
t0 = time.perf_counter()
send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
      "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
answer(0)
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
ready = time.perf_counter() - t0
times = []
for i in range(1, calls + 1):
    t = time.perf_counter()
    send({"jsonrpc": "2.0", "id": i, "method": "tools/call",
          "params": {"name": "hello", "arguments": {"name": "Ada"}}})
    m = answer(i)
    times.append(time.perf_counter() - t)
    if "error" in m or m["result"].get("isError"):
        sys.exit(f"call {i} failed: {m}")
p.stdin.close(); p.wait()
warm = sorted(times[10:])  # the first calls compile/load
q = lambda f: warm[int(f * (len(warm) - 1))] * 1e6
print(f"{calls} {ready*1e3:.1f} {times[0]*1e6:.0f} {sum(warm)/len(warm)*1e6:.0f} {q(0.5):.0f} {q(0.99):.0f} {len(warm)/sum(warm):.0f}")
PY
py="python3"
[[ -x "$root/.toolchains/mcp-python/bin/python" ]] && py="$root/.toolchains/mcp-python/bin/python"
read -r n ready first mean p50 p99 per_s < <("$py" "$work/stdio.py" "$toka" "$calls")

mkdir -p docs/bench
{
    echo "# MCP: tools/call of hello over HTTP and stdio"
    echo
    echo "Generated by \`scripts/bench-mcp.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs,"
    echo "tree \`$rev\`; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)."
    echo "HTTP: one \`serve\`, wrk -t2 -c$conns -d${duration}s per row, rounds alternate the five forms."
    echo
    echo "| round | form | requests/s | p50 | p99 | non-2xx |"
    echo "|---:|---|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "stdio (\`toka-host mcp\`, $n sequential tools/call round trips from one Python client; the first 10 left out of the statistics):"
    echo
    echo "| start + initialize | first call | mean | p50 | p99 | calls/s |"
    echo "|---:|---:|---:|---:|---:|---:|"
    echo "| $ready ms | $first µs | $mean µs | $p50 µs | $p99 µs | $per_s |"
} >docs/bench/mcp.md
cat docs/bench/mcp.md
echo "raw output in $work"
