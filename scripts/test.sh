#!/usr/bin/env bash
# Builds everything (the plugins in Rust, Python, JavaScript and C, the
# interpreters of `exec`, the host) and runs the whole test suite. On a fresh
# machine, build-plugins.sh installs the toolchains it needs first (see
# scripts/install-toolchains.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build-plugins.sh
cargo test --workspace --locked "$@"
