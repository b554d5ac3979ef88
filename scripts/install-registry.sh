#!/usr/bin/env bash
# Installs what toka-oci's registry tests need: Debian's docker-registry
# (distribution 2.8, /usr/bin/docker-registry; the tests start their own
# instance on a free loopback port and ignore the package's service) and
# apache2-utils' htpasswd (for the registry with Basic auth). Nothing to do
# when both are there.
#
# Usage: scripts/install-registry.sh      (as root, or it says what to run)
set -euo pipefail

say() { echo "install-registry: $*" >&2; }

pkgs=()
[[ -x /usr/bin/docker-registry ]] || pkgs+=(docker-registry)
[[ -x /usr/bin/htpasswd ]] || pkgs+=(apache2-utils)
if [[ ${#pkgs[@]} -eq 0 ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    say "the registry tests need Debian packages: sudo apt-get install ${pkgs[*]}"
    exit 1
fi
say "apt-get install ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
# The package's postinst may try to start its service; in a container
# policy-rc.d denies that, which is fine: tests run their own registry.
apt-get install -y -q "${pkgs[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${pkgs[@]}" >/dev/null; }
[[ -x /usr/bin/docker-registry ]] || { say "docker-registry is still missing after apt-get"; exit 1; }
