#!/usr/bin/env bash
# Start-up benchmark of one `run` from a fresh process, with a warm compile
# cache, written to docs/bench/run.md:
#   - toka-host run hello                  (manifest, policy, authenticated cache, limits)
#   - bare wasmtime embedder on hello       (host/crates/runtime/examples/bare_embedder.rs: the floor)
#   - toka-host run cli-echo.wasm vs `wasmtime run cli-echo.wasm`, when the
#     wasmtime CLI is on PATH (install it with `--install-wasmtime`).
# Needs hyperfine (installed from Debian's packages when missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
runs="${RUNS:-100}"

if [[ "${1:-}" == "--install-wasmtime" ]]; then
    cargo install --locked wasmtime-cli --version 48.0.8 --no-default-features \
        --features run,cache,config,cranelift,component-model,parallel-compilation,wat,pooling-allocator
fi
if ! command -v hyperfine >/dev/null; then
    apt-get install -y -q hyperfine >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q hyperfine >/dev/null; } \
        || cargo install --locked hyperfine
fi

scripts/build-plugins.sh rust
cargo build --release --locked --quiet -p toka-host --bins
cargo build --release --locked --quiet -p toka-runtime --example bare_embedder
toka="$root/target/release/toka-host"
bare="$root/target/release/examples/bare_embedder"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export TOKA_CACHE_DIR="$work/cache"
cp plugins/build/hello.wasm plugins/build/cli-echo.wasm "$work/"

# Warm every cache once.
"$toka" run hello --param name=Ada >/dev/null 2>&1
"$bare" "$work/hello.wasm" >/dev/null
"$toka" run "$work/cli-echo.wasm" -- a b >/dev/null

mkdir -p docs/bench
args=(-N --warmup 10 --runs "$runs" --export-markdown "$work/a.md")
hyperfine "${args[@]}" \
    -n "toka-host run hello (warm cache)" "$toka run hello --param name=Ada" \
    -n "bare wasmtime embedder, hello (precompiled)" "$bare $work/hello.wasm"
cat "$work/a.md" > docs/bench/run.md

if command -v wasmtime >/dev/null; then
    wasmtime run -C cache=y "$work/cli-echo.wasm" a b >/dev/null
    hyperfine -N --warmup 10 --runs "$runs" --export-markdown "$work/b.md" \
        -n "toka-host run cli-echo.wasm (warm cache)" "$toka run $work/cli-echo.wasm -- a b" \
        -n "wasmtime run cli-echo.wasm (warm cache, $(wasmtime --version))" "wasmtime run -C cache=y $work/cli-echo.wasm a b"
    { echo; cat "$work/b.md"; } >> docs/bench/run.md
else
    echo "wasmtime CLI not installed: skipping the comparison (scripts/bench-run.sh --install-wasmtime)" >&2
fi
echo "written to docs/bench/run.md"
