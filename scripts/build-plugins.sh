#!/usr/bin/env bash
# Builds the plugins from source into plugins/build/, installing the
# toolchain pieces each language needs first (scripts/install-toolchains.sh,
# into .toolchains/), so it works on a fresh machine:
#
#   rust     plugins/rust/*: tools, workflows and test programs (wasm32-wasip2;
#            `cli-echo` also as a wasm32-wasip1 core module, cli-echo.p1.wasm)
#   python   plugins/python/text-stats (componentize-py) and the interpreter
#            of `toka-host exec --lang python` (python-exec.wasm)
#   js       plugins/js/text-stats (jco componentize) and the engine of
#            `toka-host exec --lang js` (js-exec.wasm)
#   c        plugins/c/text-stats (clang + wasi-libc, wit-bindgen c,
#            wasm-tools component new with the preview1 reactor adapter)
#
# Usage: scripts/build-plugins.sh [rust] [python] [js] [c]   (default: all)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/plugins/build"
tc="$root/.toolchains"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
want=("$@")
[[ ${#want[@]} -eq 0 ]] && want=(rust python js c)
mkdir -p "$out"

"$root/scripts/install-toolchains.sh" "${want[@]}"

# The wasi:cli WIT of the wasmtime-wasi the host is built with: the worlds of
# the exec runtimes include wasi:cli/command from it.
wasi_wit() {
    local dir
    dir="$(cd "$root" && cargo metadata --locked --format-version 1 2>/dev/null \
        | python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="wasmtime-wasi"))' \
        | xargs dirname)/src/p2/wit/deps"
    [[ -d "$dir" ]] || { echo "cannot find wasmtime-wasi's WIT (cargo fetch first)" >&2; exit 1; }
    echo "$dir"
}

rust() {
    cd "$root/plugins/rust"
    cargo build --release --locked --target wasm32-wasip2 --quiet
    cargo build --release --locked --target wasm32-wasip1 --quiet -p test-programs --bin cli-echo
    local p2="$CARGO_TARGET_DIR/wasm32-wasip2/release"
    # Tool components: cargo names cdylibs with '_'; tools are named with '-'.
    for tool in hello file-reader date-validator misbehave noop summarize-file wf-script text-stats; do
        cp "$p2/${tool//-/_}.wasm" "$out/$tool.wasm"
    done
    for bin in "$root"/plugins/rust/test-programs/src/bin/*.rs; do
        local name
        name="$(basename "$bin" .rs)"
        cp "$p2/$name.wasm" "$out/$name.wasm"
    done
    cp "$CARGO_TARGET_DIR/wasm32-wasip1/release/cli-echo.wasm" "$out/cli-echo.p1.wasm"
}

# Builds `$3` from `$2` when a source in `$1` (a directory) is newer.
stale() {
    [[ ! -f "$2" ]] || [[ -n "$(find "$1" -newer "$2" -print -quit)" ]]
}

python() {
    local cpy="$tc/python/bin/componentize-py" work
    if stale "$root/plugins/python/text-stats" "$out/text-stats-py.wasm"; then
        (cd "$root/plugins/python/text-stats" \
            && "$cpy" -d "$root/wit/v0.1.0" -w toka:plugin/tool@0.1.0 componentize app -o "$out/text-stats-py.wasm" >/dev/null)
    fi
    if stale "$root/plugins/python/exec" "$out/python-exec.wasm"; then
        work="$(mktemp -d)"
        cp -r "$root/plugins/python/exec/." "$work/"
        mkdir -p "$work/wit/deps" && cp "$(wasi_wit)"/*.wit "$work/wit/deps/"
        (cd "$work" && "$cpy" -d wit -w toka:exec/python componentize app -o "$out/python-exec.wasm" >/dev/null)
        rm -rf "$work"
    fi
}

js() {
    local jco="$tc/node/node_modules/.bin/jco" work
    if stale "$root/plugins/js/text-stats" "$out/text-stats-js.wasm"; then
        # -d all: no wasi:http import (the host does not provide it).
        "$jco" componentize "$root/plugins/js/text-stats/text-stats.js" --wit "$root/wit/v0.1.0" \
            --world-name tool -d all -o "$out/text-stats-js.wasm" >/dev/null
    fi
    if stale "$root/plugins/js/exec" "$out/js-exec.wasm"; then
        work="$(mktemp -d)"
        cp -r "$root/plugins/js/exec/." "$work/"
        mkdir -p "$work/wit/deps" && cp "$(wasi_wit)"/*.wit "$work/wit/deps/"
        # Keeps stdio, clocks and random (console.log, Date, Math.random);
        # drops wasi:http.
        "$jco" componentize "$work/exec.js" --wit "$work/wit" --world-name js \
            -d http -d fetch-event -o "$out/js-exec.wasm" >/dev/null
        rm -rf "$work"
    fi
}

c() {
    local bin="$tc/cargo/bin" work
    [[ -f "$out/text-stats-c.wasm" && -f "$out/c-probe.wasm" ]] \
        && [[ -z "$(find "$root/plugins/c" -newer "$out/text-stats-c.wasm" -not -path '*/target/*' -print -quit)" ]] \
        && return
    work="$(mktemp -d)"
    local adapter=(cargo run --quiet --release --locked --manifest-path "$root/plugins/c/adapter/Cargo.toml" --)
    "${adapter[@]}" reactor "$work/reactor.wasm"
    "${adapter[@]}" command "$work/command.wasm"
    local cc=(clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra -Werror)
    # The tool: a library (reactor) exporting the bindings wit-bindgen made.
    "$bin/wit-bindgen" c "$root/wit/v0.1.0" --world tool --out-dir "$work" >/dev/null 2>&1
    "${cc[@]}" -mexec-model=reactor -I "$work" "$root/plugins/c/text-stats/text_stats.c" \
        "$work/tool.c" "$work/tool_component_type.o" -o "$work/text-stats-c.core.wasm"
    "$bin/wasm-tools" component new "$work/text-stats-c.core.wasm" \
        --adapt "wasi_snapshot_preview1=$work/reactor.wasm" -o "$out/text-stats-c.wasm"
    # The test probe: a program (command).
    "${cc[@]}" "$root/plugins/c/probe/probe.c" -o "$work/c-probe.core.wasm"
    "$bin/wasm-tools" component new "$work/c-probe.core.wasm" \
        --adapt "wasi_snapshot_preview1=$work/command.wasm" -o "$out/c-probe.wasm"
    rm -rf "$work"
}

for w in "${want[@]}"; do
    case "$w" in
        rust | python | js | c) "$w" ;;
        *) echo "unknown language '$w': use rust, python, js or c" >&2; exit 2 ;;
    esac
done
echo "plugins built into ${out#"$root"/}/: $(cd "$out" && ls | tr '\n' ' ')"
