#!/usr/bin/env bash
# From a fresh clone: builds what is needed and runs the `hello` tool end to
# end in its sandbox, then shows a limit tripping.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build-plugins.sh rust
cargo build --locked --quiet -p toka-host
toka="$root/target/debug/toka-host"
echo "\$ toka-host run hello --param name=Ada"
"$toka" run hello --param name=Ada
echo
echo "\$ toka-host run hello --param name=Ada --json"
"$toka" run hello --param name=Ada --json
echo
echo "\$ toka-host run plugins/build/spin-forever.wasm --timeout 500ms   # an infinite loop"
code=0
"$toka" run plugins/build/spin-forever.wasm --timeout 500ms || code=$?
echo "(exit code $code: a limit was exceeded; the host is fine)"
