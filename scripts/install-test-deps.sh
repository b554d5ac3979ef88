#!/usr/bin/env bash
# Installs what the test suite needs besides the plugins' toolchains, each
# step skipped when already done:
#
#   mcp-python  the MCP project's Python SDK (`mcp` 2.3.0, PyPI) in a venv
#               at .toolchains/mcp-python: the MCP tests' Python client
#   mcp-js      the MCP project's TypeScript client
#               (@modelcontextprotocol/client 2.4.0, npm) at
#               .toolchains/mcp-js: the MCP tests' Node client
#   postgres    Debian's PostgreSQL 15 server (scripts/install-postgres.sh):
#               the run-store tests start throwaway servers
#   registry    Debian's docker-registry (scripts/install-registry.sh): the
#               OCI tests start their own registry
#
# Usage: scripts/install-test-deps.sh [mcp-python] [mcp-js] [postgres] [registry]   (default: all)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tc="$root/.toolchains"
mkdir -p "$tc"
want=("$@")
[[ ${#want[@]} -eq 0 ]] && want=(mcp-python mcp-js postgres registry)

MCP_PY=2.3.0
MCP_JS=2.4.0

say() { echo "test-deps: $*" >&2; }

mcp_python() {
    local py="$tc/mcp-python/bin/python"
    if [[ "$("$py" -m pip show mcp 2>/dev/null)" == *$'\nVersion: '"$MCP_PY"$'\n'* ]]; then
        return
    fi
    command -v python3 >/dev/null || { say "python3 (3.10 or newer) is needed"; exit 1; }
    say "mcp $MCP_PY (the MCP Python SDK) into .toolchains/mcp-python"
    python3 -m venv "$tc/mcp-python"
    "$py" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_PY"
}

mcp_js() {
    local pkg="$tc/mcp-js/node_modules/@modelcontextprotocol/client/package.json"
    if [[ -f "$pkg" ]] && grep -q "\"version\": \"$MCP_JS\"" "$pkg"; then
        return
    fi
    command -v npm >/dev/null || { say "node (20 or newer) and npm are needed"; exit 1; }
    say "@modelcontextprotocol/client $MCP_JS into .toolchains/mcp-js"
    mkdir -p "$tc/mcp-js"
    echo '{"private": true, "type": "module"}' >"$tc/mcp-js/package.json"
    (cd "$tc/mcp-js" && npm install --no-audit --no-fund --silent "@modelcontextprotocol/client@$MCP_JS")
}

for w in "${want[@]}"; do
    case "$w" in
        mcp-python) mcp_python ;;
        mcp-js) mcp_js ;;
        postgres) "$root/scripts/install-postgres.sh" ;;
        registry) "$root/scripts/install-registry.sh" ;;
        *) say "unknown component $w (mcp-python, mcp-js, postgres, registry)"; exit 2 ;;
    esac
done
