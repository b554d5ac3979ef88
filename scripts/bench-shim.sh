#!/usr/bin/env bash
# What the subprocess shim adds over a plain spawn of the same interpreter
# running the same script (host/crates/runtime/examples/shim_overhead.rs), written to
# docs/bench/shim.txt. Needs root, like the shim's pids cgroup and network
# namespace.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build --release --locked --quiet -p toka-runtime --example shim_overhead
mkdir -p docs/bench
"$root/target/release/examples/shim_overhead" "${ITERATIONS:-1000}" | tee docs/bench/shim.txt
