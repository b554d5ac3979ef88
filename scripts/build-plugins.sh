#!/usr/bin/env bash
# Builds every Rust plugin in plugins/rust from source into plugins/build/.
#
# Installs what it needs first (the wasm32-wasip2 and wasm32-wasip1 targets of
# the active Rust toolchain), so it works on a fresh machine. Components for
# wasm32-wasip2; `cli-echo` is also built for wasm32-wasip1 as a plain WASI
# preview1 core module (`cli-echo.p1.wasm`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/plugins/build"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

installed="$(rustup target list --installed)"
for t in wasm32-wasip2 wasm32-wasip1; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

cd "$root/plugins/rust"
cargo build --release --locked --target wasm32-wasip2 --quiet
cargo build --release --locked --target wasm32-wasip1 --quiet -p test-programs --bin cli-echo

mkdir -p "$out"
p2="$CARGO_TARGET_DIR/wasm32-wasip2/release"
# Tool components: cargo names cdylibs with '_'; tools are named with '-'.
for tool in hello file-reader date-validator misbehave noop summarize-file wf-script; do
    cp "$p2/${tool//-/_}.wasm" "$out/$tool.wasm"
done
for bin in "$root"/plugins/rust/test-programs/src/bin/*.rs; do
    name="$(basename "$bin" .rs)"
    cp "$p2/$name.wasm" "$out/$name.wasm"
done
cp "$CARGO_TARGET_DIR/wasm32-wasip1/release/cli-echo.wasm" "$out/cli-echo.p1.wasm"
echo "plugins built into ${out#"$root"/}/: $(cd "$out" && ls | tr '\n' ' ')"
