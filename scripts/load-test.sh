#!/usr/bin/env bash
# Load test of `toka-host serve` with wrk on loopback: throughput of `hello`
# with 1 and with 2 worker threads, errors, and the server's resident memory
# before and after at least 100 000 calls. Writes docs/bench/load.md.
# Installs wrk from Debian's packages when missing. Bounded: 3 runs of
# DURATION seconds each (default 15), loopback only.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
duration="${DURATION:-15}"
if ! command -v wrk >/dev/null; then
    apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
fi
scripts/build-plugins.sh rust
cargo build --release --locked --quiet -p toka-host
toka="$root/target/release/toka-host"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"name":"Ada"}'
wrk.headers["Content-Type"] = "application/json"
LUA

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# run WORKERS PORT: prints "requests_per_s non2xx total rss_start rss_end"
run() {
    local workers="$1" port="$2"
    TOKA_CACHE_DIR="$work/cache" "$toka" serve --addr "127.0.0.1:$port" --workers "$workers" \
        --max-concurrent 64 2>"$work/serve-$workers.log" &
    local pid=$!
    for _ in $(seq 100); do
        grep -q "serving" "$work/serve-$workers.log" 2>/dev/null && break
        sleep 0.1
    done
    # Warm up, then measure memory after warm-up and after the run.
    wrk -t2 -c16 -d2s -s "$work/post.lua" "http://127.0.0.1:$port/v1/tools/hello/invoke" >/dev/null
    local before; before="$(rss_kib "$pid")"
    wrk -t2 -c16 -d"${duration}s" -s "$work/post.lua" "http://127.0.0.1:$port/v1/tools/hello/invoke" > "$work/wrk-$workers.txt"
    local after; after="$(rss_kib "$pid")"
    kill -TERM "$pid"; wait "$pid" || true
    local rps total non2xx
    rps="$(awk '/Requests\/sec/ {print $2}' "$work/wrk-$workers.txt")"
    total="$(awk '/requests in/ {print $1}' "$work/wrk-$workers.txt")"
    non2xx="$(awk '/Non-2xx/ {print $5}' "$work/wrk-$workers.txt")"
    echo "$rps ${non2xx:-0} $total $before $after"
}

read -r rps1 err1 total1 before1 after1 < <(run 1 18481)
read -r rps2 err2 total2 before2 after2 < <(run 2 18482)
mkdir -p docs/bench
{
    echo "| workers | requests/s | calls | non-2xx | RSS after warm-up | RSS after the run |"
    echo "|---:|---:|---:|---:|---:|---:|"
    echo "| 1 | $rps1 | $total1 | $err1 | $((before1 / 1024)) MiB | $((after1 / 1024)) MiB |"
    echo "| 2 | $rps2 | $total2 | $err2 | $((before2 / 1024)) MiB | $((after2 / 1024)) MiB |"
} | tee docs/bench/load.md
awk -v a="$rps1" -v b="$rps2" 'BEGIN { exit !(b > a) }' || { echo "2 workers did not beat 1" >&2; exit 1; }
[ "$err1" = 0 ] && [ "$err2" = 0 ] || { echo "errors under load" >&2; exit 1; }
