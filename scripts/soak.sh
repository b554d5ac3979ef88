#!/usr/bin/env bash
# Soak test of `toka-host serve` (not part of CI; docs/RELIABILITY.md).
#
#   scripts/soak.sh [MINUTES]          default 5
#   SOAK_NO_BUILD=1 scripts/soak.sh    use target/release/toka-host as built
#   SOAK_WRAP="heaptrack -o F" scripts/soak.sh
#                                      run the server under a profiler (RSS
#                                      and fds are still the server's own)
#
# Builds the release binary, starts `serve` on a free loopback port with a
# temporary manifests directory (the repo's hello plus hostile tools with
# short limits: misbehave.wasm spinning, growing memory, flooding output,
# recursing; spin-forever, grow-memory and flood-stdout as commands), and
# runs a mixed load for MINUTES from one Python process:
#
#   - valid calls of hello (4 concurrent clients, keep-alive);
#   - valid MCP calls of hello on /mcp (one client, keep-alive), rotating
#     the stateless 2026-07-28 form, the same through the SDK (a weighted
#     Accept list) and a 2025-11-25 session;
#   - schema-violating inputs and bodies that are not JSON;
#   - hostile tools (each must end in a limit error, never hang the server);
#   - a hot swap of a manifest (greeter.yaml, new version) every 3 s;
#   - workflow agents started and cancelled (POST then DELETE /v1/agents):
#     a spinning one must end `cancelled`, a finished one answers 409;
#   - half-open TCP connections (connect, send half a request, go quiet;
#     connect and never send), a few dozen at a time.
#
# Prints, every 15 s and at the end: calls, failed valid calls (goal 0; MCP
# calls at the end, goal 0 failed too),
# RSS (VmRSS of /proc/PID/status, and its RssAnon: heap and stacks) and
# open file descriptors (/proc/PID/fd)
# of the server, and the p50/p99 latency of valid calls. Exits 1 if any
# valid call failed, or if RSS or fds at the end are far above the level
# after warm-up.
#
# Everything runs under `nice -n 19`; the machine is shared.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
minutes="${1:-5}"
[[ "$minutes" =~ ^[0-9]+$ && "$minutes" -gt 0 ]] || { echo "usage: scripts/soak.sh [MINUTES]" >&2; exit 2; }

for p in hello misbehave spin-forever grow-memory flood-stdout summarize-file wf-script; do
    [[ -f "plugins/build/$p.wasm" ]] || { echo "soak: plugins/build/$p.wasm missing: run scripts/build-plugins.sh" >&2; exit 1; }
done
if [[ -z "${SOAK_NO_BUILD:-}" ]]; then
    nice -n 19 cargo build --release --locked -p toka-host
fi
bin="$root/target/release/toka-host"

work="$(mktemp -d -t toka-soak-XXXXXX)"
server_pid=""
measured_pid=""
cleanup() {
    if [[ -n "$measured_pid" && "$measured_pid" != "$server_pid" ]]; then kill "$measured_pid" 2>/dev/null || true; fi
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

dir="$work/manifests"
mkdir -p "$dir"
b="$root/plugins/build"
cat > "$dir/hello.yaml" <<YAML
metadata: { name: hello, version: 0.1.0, description: Greets someone by name. }
spec:
  executable: { type: component, path: $b/hello.wasm }
  parameters:
    type: object
    properties: { name: { type: string, maxLength: 64 } }
    required: [name]
    additionalProperties: false
  security:
    sandbox: { fuel: 100000000, memory_limit: 16MiB, timeout: 2s, output_limit: 64KiB }
YAML
cat > "$dir/misbehave.yaml" <<YAML
metadata: { name: misbehave, version: 1.0.0, description: Misbehaves on request. }
spec:
  executable: { type: component, path: $b/misbehave.wasm }
  security:
    sandbox: { timeout: 300ms, memory_limit: 32MiB, output_limit: 64KiB }
YAML
for t in spin-forever grow-memory flood-stdout; do
    cat > "$dir/$t.yaml" <<YAML
metadata: { name: $t, version: 1.0.0, description: A hostile program ($t). }
spec:
  executable: { type: command, path: $b/$t.wasm }
  security:
    sandbox: { timeout: 300ms, memory_limit: 32MiB, output_limit: 64KiB, fuel: 500000000 }
YAML
done
cat > "$dir/wf.yaml" <<YAML
metadata: { name: wf, version: 1.0.0, description: A scripted workflow (spins until cancelled). }
spec:
  executable: { type: workflow, path: $b/wf-script.wasm }
  security:
    sandbox: { timeout: 10s, fuel: 100000000000000 }
YAML
cp manifests/summarize-file.yaml "$dir/summarize-file.yaml"
sed -i "s#path: \.\./plugins/build/#path: $b/#" "$dir/summarize-file.yaml"
mkdir -p "$dir/data"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# shellcheck disable=SC2086 # SOAK_WRAP is a command line, split on purpose
nice -n 19 ${SOAK_WRAP:-} "$bin" serve --addr "127.0.0.1:$port" --manifests "$dir" --reload-interval 200ms \
    --cache-dir "$work/cache" --state "sqlite:$work/runs.db" \
    --header-timeout 5s --grant tool-call --grant llm --grant filesystem-read \
    > "$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { echo "soak: serve did not come up" >&2; cat "$work/serve.log" >&2; exit 1; }
# Under a wrapper the server is its child: measure that one.
measured_pid="$server_pid"
if [[ -n "${SOAK_WRAP:-}" ]]; then
    measured_pid="$(pgrep -n -f -- "$bin serve --addr 127.0.0.1:$port")"
fi
echo "soak: serve pid $measured_pid on 127.0.0.1:$port for $minutes min; log $work/serve.log" >&2

status=0
nice -n 19 python3 - "$port" "$measured_pid" "$minutes" "$dir" "$b" <<'PY' || status=$?
import http.client, json, os, random, socket, sys, threading, time

port, pid, minutes, mdir, build = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
deadline = time.monotonic() + minutes * 60
lock = threading.Lock()
stats = {"valid": 0, "valid_failed": 0, "invalid": 0, "invalid_wrong": 0, "hostile": 0,
         "hostile_wrong": 0, "swaps": 0, "agents": 0, "agents_cancelled": 0, "half_open": 0,
         "transport_errors": 0, "mcp": 0, "mcp_failed": 0, "agents_wrong": 0}
lat = []          # seconds, valid calls (whole run)
failures = []     # first few failed valid calls
agent_codes = {}  # "POST->DELETE" status pairs of the agents started and cancelled
agent_errors = {}  # why a POST /v1/agents was not answered 202, and how often

def bump(k, n=1):
    with lock:
        stats[k] += n

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)

def post(c, path, body):
    c.request("POST", path, body=body, headers={"content-type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()

def valid_client(seed):
    rnd = random.Random(seed)
    c = conn()
    while time.monotonic() < deadline:
        name = "n%d" % rnd.randrange(10**6)
        t0 = time.monotonic()
        try:
            code, body = post(c, "/v1/tools/hello/invoke", json.dumps({"name": name}))
            ok = code == 200 and name.encode() in body
        except Exception as e:   # a dropped keep-alive connection is a failure too
            code, body, ok = None, repr(e).encode(), False
            c.close(); c = conn()
        dt = time.monotonic() - t0
        with lock:
            stats["valid"] += 1
            if ok:
                lat.append(dt)
            else:
                stats["valid_failed"] += 1
                if len(failures) < 10:
                    failures.append((code, body[:300]))
        if code == 503:   # busy (Retry-After): counted as failed, back off
            time.sleep(0.05)

MCP_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "soak", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}
MCP_ACCEPT = "application/json, text/event-stream"

def mcp_session(c):
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "soak", "version": "1"}}}
    c.request("POST", "/mcp", body=json.dumps(init),
              headers={"content-type": "application/json", "accept": MCP_ACCEPT})
    r = c.getresponse(); r.read()
    sid = r.getheader("mcp-session-id")
    h = {"content-type": "application/json", "accept": MCP_ACCEPT, "mcp-session-id": sid,
         "mcp-protocol-version": "2025-11-25"}
    c.request("POST", "/mcp", body='{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=h)
    c.getresponse().read()
    return h

def mcp_client():
    c = conn()
    session = mcp_session(c)
    i = 0
    while time.monotonic() < deadline:
        i += 1
        name = "m%d" % i
        params = {"name": "hello", "arguments": {"name": name}}
        if i % 3 == 2:
            h = session
        else:
            params["_meta"] = MCP_META
            h = {"content-type": "application/json", "mcp-protocol-version": "2026-07-28",
                 "mcp-method": "tools/call", "mcp-name": "hello",
                 "accept": MCP_ACCEPT if i % 3 == 0 else "application/json;q=1, text/event-stream"}
        body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params})
        try:
            c.request("POST", "/mcp", body=body, headers=h)
            r = c.getresponse(); answer = r.read()
            ok = r.status == 200 and name.encode() in answer and b'"isError":false' in answer
        except Exception as e:
            answer, ok = repr(e).encode(), False
            c.close(); c = conn()
        with lock:
            stats["mcp"] += 1
            if not ok:
                stats["mcp_failed"] += 1
                if len(failures) < 10:
                    failures.append(("mcp", answer[:300]))

INVALID = [
    ("/v1/tools/hello/invoke", b'{}'),
    ("/v1/tools/hello/invoke", b'{"name": 42}'),
    ("/v1/tools/hello/invoke", b'{"name": "x", "extra": true}'),
    ("/v1/tools/hello/invoke", json.dumps({"name": "x" * 1000}).encode()),
    ("/v1/tools/hello/invoke", b'{"name": '),
    ("/v1/tools/hello/invoke", b'\xff\xfe not json'),
    ("/v1/tools/hello/invoke", b'[' * 5000),
    ("/v1/tools/no-such-tool/invoke", b'{}'),
]
HOSTILE = [
    ("misbehave", b'{"do":"spin"}'), ("misbehave", b'{"do":"grow"}'),
    ("misbehave", b'{"do":"flood"}'), ("misbehave", b'{"do":"recurse"}'),
    ("misbehave", b'{"do":"trap"}'), ("misbehave", b'{"do":"big-result"}'),
    ("spin-forever", b'{}'), ("grow-memory", b'{}'), ("flood-stdout", b'{}'),
]

def invalid_client():
    c = conn()
    i = 0
    while time.monotonic() < deadline:
        path, body = INVALID[i % len(INVALID)]; i += 1
        try:
            code, _ = post(c, path, body)
            bump("invalid")
            if not (400 <= code < 500):
                bump("invalid_wrong")
        except Exception:
            bump("transport_errors"); c.close(); c = conn()
        time.sleep(0.02)

def hostile_client():
    c = conn()
    i = 0
    while time.monotonic() < deadline:
        tool, body = HOSTILE[i % len(HOSTILE)]; i += 1
        try:
            t0 = time.monotonic()
            code, _ = post(c, "/v1/tools/%s/invoke" % tool, body)
            bump("hostile")
            # A limit or a trap is an error answer, never a 200 and never slow.
            if code == 200 or time.monotonic() - t0 > 10:
                bump("hostile_wrong")
        except Exception:
            bump("transport_errors"); c.close(); c = conn()
        time.sleep(0.05)

def swapper():
    v = 0
    while time.monotonic() < deadline:
        v += 1
        text = ("metadata: { name: greeter, version: 1.0.%d, description: greets }\n"
                "spec:\n  executable: { type: component, path: %s/hello.wasm }\n"
                "  parameters: { type: object, properties: { name: { type: string } }, required: [name] }\n") % (v, build)
        tmp = os.path.join(mdir, ".greeter.yaml.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(mdir, "greeter.yaml"))
        bump("swaps")
        # Also a call of the swapped tool, which may see either version.
        try:
            c = conn(); code, _ = post(c, "/v1/tools/greeter/invoke", b'{"name":"swap"}'); c.close()
        except Exception:
            bump("transport_errors")
        time.sleep(3)

def agents():
    # A failing run (summarize-file of a missing file) and a spinning one
    # (wf), each cancelled 0.2 s after it starts: the spinning one must end
    # `cancelled` within 5 s; the failing one answers 409 and stays
    # `failed`, or ends `cancelled` if it had not failed yet.
    i = 0
    while time.monotonic() < deadline:
        i += 1
        spin = i % 2 == 0
        start = ({"workflow": "wf", "input": {"steps": [{"progress": 0.1}, {"spin": True}]}} if spin else
                 {"workflow": "summarize-file", "input": {"path": "nope.txt"}, "limits": {"timeout": "5s"}})
        try:
            c = conn()
            code, body = post(c, "/v1/agents", json.dumps(start))
            bump("agents")
            pair = ("wf " if spin else "summarize ") + str(code)
            if code != 202:
                # Why (a 503 when the replica runs its most agents is
                # right; anything else is told at the end).
                try:
                    e = json.loads(body).get("error", {})
                    why = "%s %s: %s" % (code, e.get("kind"), str(e.get("message"))[:160])
                except Exception:
                    why = "%s %s" % (code, body[:160])
                with lock:
                    agent_errors[why] = agent_errors.get(why, 0) + 1
                if code != 503:
                    bump("agents_wrong")
            if code == 202:
                aid = json.loads(body).get("id")
                time.sleep(0.2)
                c.request("DELETE", "/v1/agents/%s" % aid); r = c.getresponse(); r.read()
                pair += "->%d" % r.status
                state = None
                until = time.monotonic() + 5
                while time.monotonic() < until:
                    c.request("GET", "/v1/agents/%s" % aid); g = c.getresponse()
                    state = json.loads(g.read()).get("state")
                    if state not in ("running", "queued", "pending"):
                        break
                    time.sleep(0.05)
                pair += "->%s" % state
                # A failing run may not have failed yet when the DELETE
                # comes (a loaded machine): then it is cancelled, also right.
                if r.status < 300 and state == "cancelled":
                    bump("agents_cancelled")
                elif spin or r.status != 409 or state != "failed":
                    bump("agents_wrong")
            with lock:
                agent_codes[pair] = agent_codes.get(pair, 0) + 1
            c.close()
        except Exception:
            bump("transport_errors")
        time.sleep(0.5)

def half_open():
    while time.monotonic() < deadline:
        socks = []
        for i in range(30):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                if i % 2 == 0:
                    s.sendall(b"POST /v1/tools/hello/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n")
                socks.append(s)
                bump("half_open")
            except Exception:
                bump("transport_errors")
        time.sleep(8)   # past --header-timeout: the server must have closed them
        for s in socks:
            s.close()

def proc():
    # RssAnon is the heap and stacks; the rest of VmRSS is mapped files
    # (the binary, compiled artifacts) and shared memory (wasm memories).
    rss = anon = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1]) // 1024
    return rss, anon, len(os.listdir("/proc/%d/fd" % pid))

def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000

threads = [threading.Thread(target=valid_client, args=(i,)) for i in range(4)]
threads += [threading.Thread(target=f) for f in (mcp_client, invalid_client, hostile_client, swapper, agents, half_open)]
for t in threads:
    t.daemon = True
    t.start()

start = time.monotonic()
rows = []
print("| t (s) | calls | valid | failed valid | invalid | hostile | swaps | half-open | RSS MiB | anon MiB | fds | p99 valid ms |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
def row():
    rss, anon, fds = proc()
    with lock:
        s = dict(stats); l = list(lat)
    calls = s["valid"] + s["invalid"] + s["hostile"]
    r = (int(time.monotonic() - start), calls, s["valid"], s["valid_failed"], s["invalid"], s["hostile"],
         s["swaps"], s["half_open"], rss, anon, fds, pct(l, 0.99))
    rows.append(r)
    print("| %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %.1f |" % r, flush=True)
while time.monotonic() < deadline:
    time.sleep(min(15, max(0.1, deadline - time.monotonic())))
    row()
for t in threads:
    t.join(timeout=40)
row()
with lock:
    s = dict(stats); l = list(lat)
print()
print("calls %d (valid %d, invalid %d, hostile %d), failed valid calls %d, invalid not refused with 4xx %d, "
      "hostile not refused %d, swaps %d, agents %d (cancelled %d), half-open connections %d, transport errors %d"
      % (s["valid"] + s["invalid"] + s["hostile"], s["valid"], s["invalid"], s["hostile"], s["valid_failed"],
         s["invalid_wrong"], s["hostile_wrong"], s["swaps"], s["agents"], s["agents_cancelled"], s["half_open"],
         s["transport_errors"]))
print("MCP calls %d, failed %d" % (s["mcp"], s["mcp_failed"]))
print("agents (POST->DELETE->final state):", dict(sorted(agent_codes.items())),
      "not ended as expected:", s["agents_wrong"])
for why, n in sorted(agent_errors.items()):
    print("agent not started (%d): %s" % (n, why))
print("valid latency: p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (pct(l, 0.5), pct(l, 0.99), pct(l, 1.0)))
for f in failures:
    print("failed valid call:", f)
# Flat: compare the end with the level after warm-up (the second sample).
base = rows[1] if len(rows) > 2 else rows[0]
end = rows[-1]
print("RSS after warm-up %d MiB (anon %d), at the end %d MiB (anon %d); fds after warm-up %d, at the end %d"
      % (base[8], base[9], end[8], end[9], base[10], end[10]))
bad = s["valid_failed"] > 0 or s["mcp_failed"] > 0 or s["agents_wrong"] > 0 or end[8] > base[8] * 1.5 + 32 or end[10] > base[10] + 32
sys.exit(1 if bad else 0)
PY
if ! kill -0 "$measured_pid" 2>/dev/null; then
    echo "soak: the server died" >&2; tail -20 "$work/serve.log" >&2; status=1
fi
exit $status
