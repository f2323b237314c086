#!/usr/bin/env bash
# Installs what sidecar-lab needs and is missing: Debian packages (when root; python3, make and g++ are for
# node-gyp) and the npm dependencies, which also build the addon (node-gyp) and the TypeScript (dist/), quietly:
# the build's output goes to setup.log, shown when it fails. Safe to run again; does nothing when all is there.
# usage: scripts/setup.sh [--ci]   (--ci: always a clean `npm ci`)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg_bin in iptables:iptables-restore nftables:nft iproute2:ip conntrack:conntrack util-linux:setpriv \
               haproxy:haproxy curl:curl dnsmasq-base:dnsmasq bind9-dnsutils:dig wrk:wrk ipset:ipset tcpdump:tcpdump python3:python3 make:make g++:g++; do
  command -v "${pkg_bin#*:}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "${pkg_bin#*:}" >/dev/null 2>&1 \
    || need+=("${pkg_bin%%:*}")
done
# tcpdump: the HBONE test that checks the wire carries no clear bytes (test/ambient/ztunnel-hbone.test.ts)
# python3-h2 (no program of its own): the HBONE interop test's peer (test/helpers/apps/hbone-peer.py)
/usr/bin/python3 -c 'import h2' >/dev/null 2>&1 || need+=(python3-h2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: missing Debian packages (run as root to install them): ${need[*]}" >&2
  fi
fi

if [ "${1:-}" = "--ci" ] || [ ! -x node_modules/.bin/tap ] || [ ! -f build/Release/sockopt.node ] \
   || [ ! -f dist/cli.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # node-gyp's and tsc's output is for when the build fails: kept in setup.log, shown then.
  echo "setup: npm ci (builds the addon and dist/; its output in setup.log)" >&2
  status=0
  npm ci --no-audit --no-fund >setup.log 2>&1 || status=$?
  if [ "$status" != 0 ]; then
    cat setup.log >&2
    echo "setup: npm ci failed (exit $status); its output above is in $PWD/setup.log" >&2
    exit "$status"
  fi
fi
