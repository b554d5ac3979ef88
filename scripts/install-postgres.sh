#!/usr/bin/env bash
# Installs Debian's PostgreSQL 15 server, which the run-store tests start as
# throwaway servers (toka-testkit's PgServer runs /usr/lib/postgresql/15/bin
# directly; no cluster is started or used by this script). Nothing to do when
# /usr/lib/postgresql/15/bin/initdb exists. The package creates the
# `postgres` system user the tests run the server as when they run as root.
#
# Usage: scripts/install-postgres.sh   (as root; prints the command otherwise)
set -euo pipefail

say() { echo "install-postgres: $*" >&2; }

if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
    exit 0
fi
pkgs=(postgresql-15)
if [[ $(id -u) -ne 0 ]]; then
    say "the run-store tests need PostgreSQL 15: sudo apt-get install -y --no-install-recommends ${pkgs[*]}"
    exit 1
fi
say "apt-get install ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: update and
# retry once when the first attempt fails.
apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null; }
if [[ ! -x /usr/lib/postgresql/15/bin/initdb ]]; then
    say "${pkgs[*]} is installed but /usr/lib/postgresql/15/bin/initdb is missing"
    exit 1
fi
