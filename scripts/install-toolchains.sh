#!/usr/bin/env bash
# Installs what scripts/build-plugins.sh needs to build plugins in every
# language, on a fresh machine, into project-local folders (.toolchains/,
# gitignored), each step skipped when already done:
#
#   rust        the wasm32-wasip2 and wasm32-wasip1 targets (rustup)
#   python      a venv with componentize-py 0.25.1 (PyPI)
#   js          @bytecodealliance/jco 1.34.0 with componentize-js (npm)
#   c           Debian's clang, lld, wasi-libc and the wasm32 compiler-rt
#               (apt, as root: the only system-wide step), wit-bindgen-cli
#               0.63.0 and wasm-tools 1.263.0 (cargo install, a few minutes
#               the first time)
#
# Usage: scripts/install-toolchains.sh [rust] [python] [js] [c]   (default: all)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tc="$root/.toolchains"
mkdir -p "$tc"
want=("$@")
[[ ${#want[@]} -eq 0 ]] && want=(rust python js c)

COMPONENTIZE_PY=0.25.1
JCO=1.34.0
WIT_BINDGEN=0.63.0
WASM_TOOLS=1.263.0

say() { echo "toolchains: $*" >&2; }

rust() {
    local installed
    installed="$(rustup target list --installed)"
    for t in wasm32-wasip2 wasm32-wasip1; do
        grep -qx "$t" <<<"$installed" || rustup target add "$t"
    done
}

python() {
    local py="$tc/python/bin/python"
    if [[ -x "$tc/python/bin/componentize-py" ]] \
        && [[ "$("$py" -m pip show componentize-py 2>/dev/null)" == *$'\nVersion: '"$COMPONENTIZE_PY"$'\n'* ]]; then
        return
    fi
    command -v python3 >/dev/null || { say "python3 is needed (apt-get install python3 python3-venv)"; exit 1; }
    say "componentize-py $COMPONENTIZE_PY into .toolchains/python"
    python3 -m venv "$tc/python"
    "$py" -m pip install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY"
}

js() {
    local pkg="$tc/node/node_modules/@bytecodealliance/jco/package.json"
    if [[ -f "$pkg" ]] && grep -q "\"version\": \"$JCO\"" "$pkg"; then
        return
    fi
    command -v npm >/dev/null || { say "node and npm are needed (apt-get install nodejs npm)"; exit 1; }
    say "jco $JCO (with componentize-js) into .toolchains/node"
    mkdir -p "$tc/node"
    echo '{"private": true}' >"$tc/node/package.json"
    # jco 1.35.0 fails with "failed to get path metadata"; 1.34.0 works.
    (cd "$tc/node" && npm install --no-audit --no-fund --silent "@bytecodealliance/jco@$JCO")
}

c() {
    if ! command -v clang >/dev/null || ! command -v wasm-ld >/dev/null \
        || [[ ! -f /usr/lib/wasm32-wasi/libc.a ]] \
        || ! ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1; then
        local pkgs=(clang lld wasi-libc libclang-rt-dev-wasm32)
        if [[ $(id -u) -ne 0 ]]; then
            say "the C plugins need Debian packages: sudo apt-get install ${pkgs[*]}"
            exit 1
        fi
        say "apt-get install ${pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "${pkgs[@]}" >/dev/null \
            || { apt-get update -q >/dev/null && apt-get install -y -q "${pkgs[@]}" >/dev/null; }
    fi
    local bin="$tc/cargo/bin"
    if [[ "$("$bin/wit-bindgen" --version 2>/dev/null)" != *" $WIT_BINDGEN"* ]]; then
        say "wit-bindgen-cli $WIT_BINDGEN into .toolchains/cargo (cargo install, a few minutes)"
        cargo install --quiet --locked --root "$tc/cargo" "wit-bindgen-cli@$WIT_BINDGEN"
    fi
    if [[ "$("$bin/wasm-tools" --version 2>/dev/null)" != *" $WASM_TOOLS"* ]]; then
        say "wasm-tools $WASM_TOOLS into .toolchains/cargo (cargo install, a few minutes)"
        cargo install --quiet --locked --root "$tc/cargo" "wasm-tools@$WASM_TOOLS" \
            --no-default-features --features component,validate,print,parse,metadata
    fi
}

for w in "${want[@]}"; do
    case "$w" in
        rust | python | js | c) "$w" ;;
        *) say "unknown toolchain '$w': use rust, python, js or c"; exit 2 ;;
    esac
done
