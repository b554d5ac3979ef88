#!/usr/bin/env bash
# toka:name        setup-toka-testing
# toka:description Prepares a scratch test workspace (src/, fixtures/, out/ and a README) inside its writable directory and reports what it created.
# toka:category    testing
# toka:output      json
# toka:writable    ./scratch
# toka:param       name string "Name of the workspace: lowercase letters, digits and '-'" required
set -euo pipefail

name=""
while [ $# -gt 0 ]; do
    case "$1" in
        --name) name="${2-}"; shift 2 ;;
        *) shift ;;
    esac
done
if [[ ! "$name" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]]; then
    echo "name must be lowercase letters, digits and '-' (got ${#name} characters)" >&2
    exit 2
fi
root="${TOKA_WRITABLE_DIRS%%:*}"
if [ -z "$root" ]; then
    echo "no writable directory: run with --grant filesystem-write" >&2
    exit 2
fi
ws="$root/$name"
mkdir -p "$ws/src" "$ws/fixtures" "$ws/out"
printf '# %s\n\nScratch workspace made by setup-toka-testing.\nsrc/: code under test; fixtures/: inputs; out/: results.\n' "$name" > "$ws/README.md"
printf '{"workspace":"%s","created":["src","fixtures","out","README.md"]}\n' "$ws"
