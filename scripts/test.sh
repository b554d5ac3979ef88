#!/usr/bin/env bash
# Builds everything (the Rust plugins for wasm32-wasip2/wasip1, the host) and
# runs the whole test suite. Works on a fresh machine with only a Rust
# toolchain: build-plugins.sh installs the wasm targets it needs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build-plugins.sh
cargo test --workspace --locked "$@"
