#!/usr/bin/env bash
# Agent runs through `serve` with each run store: POST /v1/agents of the
# example workflow `summarize-file` (two nested tool calls and one LLM request
# to the fake provider on loopback), RUNS runs per trial from CONC client
# threads, each posting a run and polling GET /v1/agents/{id} until it ends.
# Stores: `--state memory`, `--state sqlite:PATH` (a fresh file per trial) and
# `--state postgres://…` (a throwaway PostgreSQL 15 in a temp dir on a free
# port, one database for every trial). Trials alternate M S P for ROUNDS.
# Reports runs/s (RUNS over the wall time of the trial) and per-run latency:
# the server's `elapsed_ms` (start to finish) and the client's POST-to-seen-
# finished time. Written to docs/bench/agents-store.md.
#   scripts/bench-agents-store.sh      (RUNS=200 CONC=8 ROUNDS=2 by default)
# Env: NO_BUILD=1 skips cargo build; CARGO_TARGET_DIR is honoured; TREE_REV names
# the revision in the output when the tree is not a git checkout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
rev="${TREE_REV:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
runs="${RUNS:-200}"
conc="${CONC:-8}"
rounds="${ROUNDS:-2}"
pgbin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
[[ -n "${NO_BUILD:-}" ]] || cargo build --release --locked --quiet -p toka-host --bins
[[ -n "${NO_BUILD:-}" ]] || cargo build --release --locked --quiet -p toka-testkit --example fake_llm
toka="$target/release/toka-host"
work="$(mktemp -d /tmp/bench-agents-store.XXXXXX)"
pids=()
pgdir=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -n "$pgdir" ]]; then
        (cd / && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true)
        rm -rf "$pgdir"
    fi
}
trap cleanup EXIT
export TOKA_CACHE_DIR="$work/cache"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

"$target/release/examples/fake_llm" >"$work/fake.env" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/fake.env" ]] && break; sleep 0.05; done
# shellcheck disable=SC2046
export $(cat "$work/fake.env")

# A throwaway PostgreSQL (as the `postgres` user when run as root).
as_pg=()
pgdir="$(mktemp -d /tmp/bench-pg.XXXXXX)"
if [[ "$(id -u)" == 0 ]]; then as_pg=(runuser -u postgres --); chown postgres: "$pgdir"; fi
pgport="$(free_port)"
(cd "$pgdir" && "${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -A trust -U toka -E UTF8 --locale=C.UTF-8 --no-sync >"$pgdir/initdb.log" 2>&1)
(cd "$pgdir" && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w -t 30 \
    -o "-k $pgdir -h 127.0.0.1 -p $pgport -c max_connections=50" start >/dev/null)
pgurl="postgres://toka@127.0.0.1:$pgport/postgres"

cat >"$work/drive.py" <<'PY'
import json, sys, threading, time, urllib.request
base, runs, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = json.dumps({"workflow": "summarize-file",
                   "input": {"path": "notes.txt", "date": "2026-11-26"}}).encode()
lock = threading.Lock()
todo = list(range(runs))
server_ms, client_ms, bad = [], [], []
def worker():
    while True:
        with lock:
            if not todo:
                return
            todo.pop()
        t = time.perf_counter()
        req = urllib.request.Request(base + "/v1/agents", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            run = json.load(r)
        while run["state"] == "running":
            time.sleep(0.002)
            with urllib.request.urlopen(base + "/v1/agents/" + run["id"]) as r:
                run = json.load(r)
        c = (time.perf_counter() - t) * 1e3
        with lock:
            if run["state"] != "completed":
                bad.append(run)
            server_ms.append(run["elapsed_ms"]); client_ms.append(c)
t0 = time.perf_counter()
ts = [threading.Thread(target=worker) for _ in range(conc)]
for t in ts: t.start()
for t in ts: t.join()
wall = time.perf_counter() - t0
if bad:
    sys.exit(f"{len(bad)} runs did not complete, e.g. {bad[0]}")
def q(xs, f):
    xs = sorted(xs); return xs[int(f * (len(xs) - 1))]
print(f"{runs / wall:.1f} {q(server_ms, .5):.1f} {q(server_ms, .95):.1f} {q(client_ms, .5):.1f} {q(client_ms, .95):.1f} {wall:.2f}")
PY

# trial STORE PORT: one serve, one drive; prints the drive's line.
trial() {
    local store="$1" port="$2" state
    case $store in
        memory) state=memory ;;
        sqlite) state="sqlite:$work/runs-$port.db" ;;
        postgres) state="$pgurl" ;;
    esac
    "$toka" serve --addr "127.0.0.1:$port" --state "$state" --max-concurrent 64 \
        --grant tool-call --grant llm --grant filesystem-read >"$work/serve-$port.log" 2>&1 &
    local pid=$!
    for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.05; done
    python3 "$work/drive.py" "http://127.0.0.1:$port" 10 2 >/dev/null # warm-up: compile, first rows
    python3 "$work/drive.py" "http://127.0.0.1:$port" "$runs" "$conc"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

rows=()
port=18511
for r in $(seq "$rounds"); do
    for store in memory sqlite postgres; do
        port=$((port + 1))
        read -r rps s50 s95 c50 c95 wall < <(trial "$store" "$port")
        echo "round $r $store: $rps runs/s; server p50 $s50 ms p95 $s95 ms; client p50 $c50 ms p95 $c95 ms; wall $wall s"
        rows+=("| $r | $store | $rps | $s50 ms | $s95 ms | $c50 ms | $c95 ms | $wall s |")
    done
done

mkdir -p docs/bench
{
    echo "# Agent runs in serve: memory, SQLite, PostgreSQL"
    echo
    echo "Generated by \`scripts/bench-agents-store.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs,"
    echo "tree \`$rev\`; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)."
    echo "$runs runs of summarize-file per trial from $conc client threads (POST, then GET every 2 ms until it ends),"
    echo "after 10 warm-up runs; fake LLM on loopback; PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on loopback (fsync on, default settings)."
    echo
    echo "| round | store | runs/s | server p50 | server p95 | client p50 | client p95 | wall |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} >docs/bench/agents-store.md
cat docs/bench/agents-store.md
echo "raw output in $work"
