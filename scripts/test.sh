#!/usr/bin/env bash
# Builds everything (the plugins in Rust, Python, JavaScript and C, the
# interpreters of `exec`, the host) and runs the whole test suite. On a fresh
# machine, build-plugins.sh installs the toolchains it needs first (see
# scripts/install-toolchains.sh), and install-test-deps.sh what the tests
# drive: the MCP project's Python and TypeScript clients, PostgreSQL and an
# OCI registry.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build-plugins.sh
scripts/install-test-deps.sh
cargo test --workspace --locked "$@"
