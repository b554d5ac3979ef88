#!/usr/bin/env bash
# Runs the fuzz targets of host/fuzz (docs/RELIABILITY.md) with cargo fuzz
# (libFuzzer) on the stable toolchain, without sanitizers: the code under
# test is safe Rust, so what we look for is panics and broken invariants.
#
#   scripts/fuzz.sh --smoke            every target for 30 s (CI; sets
#                                      TOKA_FUZZ_SMOKE=1, which leaves
#                                      serve_request's echo check, still
#                                      prone to false positives, to the
#                                      longer runs)
#   scripts/fuzz.sh --all SECONDS      every target for SECONDS
#   scripts/fuzz.sh TARGET SECONDS     one target
#   scripts/fuzz.sh --list             the targets
#
# Seeds are read from host/fuzz/corpus/TARGET (kept small, in the repo);
# what the fuzzer learns goes to host/fuzz/target/corpus/TARGET (ignored).
# A crash stops the run; its input is in host/fuzz/artifacts/TARGET/ and
# `cargo fuzz run -s none TARGET FILE` (in host/fuzz) replays it. Turn it
# into a regression test in the crate's own tests before fixing it.
#
# Everything runs under `nice -n 19`: a fuzzer takes a whole core.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/host/fuzz"

targets=(manifest input_schema agents_file token oci mcp_message serve_request cache_entry)
usage() {
    echo "usage: scripts/fuzz.sh --smoke | --all SECONDS | TARGET SECONDS | --list" >&2
    echo "targets: ${targets[*]}" >&2
    exit 2
}

case "${1:-}" in
--smoke) run=("${targets[@]}"); seconds=30; export TOKA_FUZZ_SMOKE=1 ;;
--all) [[ $# -eq 2 ]] || usage; run=("${targets[@]}"); seconds=$2 ;;
--list) printf '%s\n' "${targets[@]}"; exit 0 ;;
"" | -*) usage ;;
*)
    [[ $# -eq 2 ]] || usage
    [[ " ${targets[*]} " == *" $1 "* ]] || { echo "unknown target $1" >&2; usage; }
    run=("$1"); seconds=$2 ;;
esac
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || usage

# libfuzzer-sys compiles libFuzzer (C++) from source.
if ! command -v c++ >/dev/null; then
    echo "fuzz: libFuzzer needs a C++ compiler (apt-get install g++)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    nice -n 19 cargo install cargo-fuzz --locked
fi

# One build for every target; `run` below then finds it up to date.
nice -n 19 cargo fuzz build -s none

status=0
for t in "${run[@]}"; do
    mkdir -p "target/corpus/$t"
    echo "fuzz: $t for ${seconds}s" >&2
    # -timeout: an input that takes 10 s is a finding (a parser that can be
    # made to spin); -rss_limit_mb: so is one that takes 2 GiB.
    if ! nice -n 19 cargo fuzz run -s none "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 2> "target/$t.log"; then
        echo "fuzz: $t FAILED; the log is host/fuzz/target/$t.log, the input in host/fuzz/artifacts/$t/" >&2
        grep -E "panicked|ERROR|Test unit written|SUMMARY" "target/$t.log" | head -20 >&2 || true
        status=1
        continue
    fi
    grep -E "stat::number_of_executed_units|stat::new_units_added" "target/$t.log" |
        sed "s/^/fuzz: $t: /" >&2 || true
done
exit $status
