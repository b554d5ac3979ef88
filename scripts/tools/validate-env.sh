#!/usr/bin/env bash
# toka:name        validate-env
# toka:description Checks that the programs a Toka deployment needs are installed and prints a JSON report.
# toka:category    operations
# toka:output      json
# toka:env         PATH
# toka:param       require string "Extra programs to check, separated by commas (letters, digits, '.', '_', '+', '-')"
#
# Uses shell builtins only (command -v, printf): it needs no capability.
set -u

programs=(bash sh python3 cargo rustc git)
require=""
while [ $# -gt 0 ]; do
    case "$1" in
        --require) require="${2-}"; shift 2 ;;
        *) shift ;;
    esac
done
if [ -n "$require" ]; then
    IFS=, read -r -a extra <<< "$require"
    programs+=("${extra[@]}")
fi

found="" missing="" invalid="" ok=true
for p in "${programs[@]}"; do
    [ -z "$p" ] && continue
    if [[ ! "$p" =~ ^[A-Za-z0-9._+-]+$ ]]; then
        invalid+="${invalid:+,}\"${#p} characters\""
        ok=false
        continue
    fi
    if path="$(command -v -- "$p")" && [[ "$path" == /* ]]; then
        found+="${found:+,}\"$p\":\"$path\""
    else
        missing+="${missing:+,}\"$p\""
        ok=false
    fi
done
printf '{"ok":%s,"found":{%s},"missing":[%s],"invalid":[%s]}\n' "$ok" "$found" "$missing" "$invalid"
