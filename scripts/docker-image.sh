#!/usr/bin/env bash
# Builds the lab's Docker images from what this machine has, since no image registry is reachable:
#   sidecar-lab/base:bookworm  a debootstrap'd Debian (minbase + the lab's network tools) plus the host's node
#   sidecar-lab:latest         the top-level Dockerfile on that base: dist/, the addon, production node_modules
# Installs docker.io and debootstrap when missing and starts dockerd when none answers. Idempotent: each step
# is skipped when its result is already there, so a second run takes seconds.
# usage: scripts/docker-image.sh   (as root; after `npm ci`, which builds dist/ and the addon)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/sbin:/sbin"

base=sidecar-lab/base:bookworm
image=${SIDECAR_LAB_IMAGE:-sidecar-lab:latest}   # the lab reads the same variable (src/lab/docker.ts)
cache=/var/cache/sidecar-lab
rootfs=$cache/rootfs-bookworm
dockerd_log=/var/log/sidecar-lab-dockerd.log
started_by_us=/run/sidecar-lab/dockerd.pid
start=$SECONDS
step() { echo "docker-image: $* (+$((SECONDS - start))s)" >&2; }

[ "$(id -u)" = 0 ] || { echo "docker-image: needs root (apt-get, dockerd, debootstrap)" >&2; exit 1; }
for f in dist/cli.js build/Release/sockopt.node; do
  [ -f "$f" ] || { echo "docker-image: $f is missing: run 'npm ci' (or scripts/setup.sh) first" >&2; exit 1; }
done

# 1. Packages. policy-rc.d keeps the package from starting a dockerd of its own with default flags, which
#    would add a docker0 bridge and iptables rules to the host.
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

# 2. The engine. The lab gives every pod --network none and its own veth, so dockerd needs no bridge and
#    must leave the host's iptables and forwarding alone.
if ! docker info >/dev/null 2>&1; then
  step "starting dockerd (log: $dockerd_log)"
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then rm -f /var/run/docker.pid; fi
  # Started from a test run, the daemon is not one of the run's processes (scripts/test.mjs stops it, gracefully,
  # after the run): without the run's variables the run's sweep does not kill it, and its TMPDIR outlives the run.
  setsid env -u SIDECAR_LAB_RUN -u SIDECAR_LAB_LEDGER -u TMPDIR \
    dockerd --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false --bridge=none \
    >>"$dockerd_log" 2>&1 </dev/null &
  # Ours to stop: scripts/docker-daemon.sh stop ends only a dockerd whose pid is recorded here.
  mkdir -p "$(dirname "$started_by_us")" && echo $! >"$started_by_us"
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "docker-image: dockerd did not come up; its log:" >&2; tail -30 "$dockerd_log" >&2; exit 1; }
fi

# The first bookworm deb mirror in the apt sources (deb822 .sources or one-line .list), read at run time.
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = "" } {
      types = ""; uris = ""; suites = ""
      n = split($0, lines, "\n")
      for (i = 1; i <= n; i++) {
        if (lines[i] ~ /^#/) continue
        if (lines[i] ~ /^Types:/) types = lines[i]
        if (lines[i] ~ /^URIs:/) { uris = lines[i]; sub(/^URIs:[ \t]*/, "", uris); sub(/[ \t].*/, "", uris) }
        if (lines[i] ~ /^Suites:/) suites = lines[i] " "
      }
      if (types ~ /[ \t]deb([ \t]|$)/ && suites ~ /[ \t]bookworm[ \t]/ && uris != "") { print uris; exit }
    }' "$f"
  done
  awk '$1 == "deb" && $0 ~ /[ \t]bookworm[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
}

# 3. The base image, labelled with the node it carries: the addon is built against the host's node.
node_version=$(node --version)
if [ "$(docker image inspect -f '{{index .Config.Labels "sidecar-lab.node"}}' "$base" 2>/dev/null)" != "$node_version" ]; then
  if [ ! -f "$rootfs/.complete" ]; then
    url=$(mirror | head -1 || true)  # head may close the pipe early: not a failure
    [ -n "$url" ] || { echo "docker-image: no bookworm deb mirror in /etc/apt/sources.list*" >&2; exit 1; }
    step "debootstrap bookworm into $rootfs"
    rm -rf "$rootfs" && mkdir -p "$cache"
    debootstrap --variant=minbase --include=iptables,iproute2,nftables,conntrack,curl,util-linux,ca-certificates \
      bookworm "$rootfs" "$url" >"$cache/debootstrap.log" 2>&1 || { tail -30 "$cache/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    touch "$rootfs/.complete"
  fi
  # The host is bookworm too, so its node links against the same glibc and libstdc++.
  install -m 0755 "$(readlink -f "$(command -v node)")" "$rootfs/usr/local/bin/node"
  chroot "$rootfs" /usr/local/bin/node --version >/dev/null || { echo "docker-image: node does not run in the rootfs" >&2; exit 1; }
  step "importing $base"
  tar -C "$rootfs" --exclude=./.complete -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL sidecar-lab.node=$node_version" --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  docker rmi "$image" >/dev/null 2>&1 || true
fi
inside=$(docker run --rm --network none "$base" node --version)
[ "$inside" = "$node_version" ] || { echo "docker-image: node in $base says '$inside', host has $node_version" >&2; exit 1; }

# 4. The lab's image. The context is what the Dockerfile copies, with node_modules cut to the production
#    dependencies (the tree's own has tap, typescript and clinic: hundreds of MB the image never runs).
context_hash=$(cat Dockerfile .dockerignore package.json package-lock.json build/Release/sockopt.node \
  $(find dist -type f | LC_ALL=C sort) | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "sidecar-lab.context"}}' "$image" 2>/dev/null)" != "$context_hash" ]; then
  ctx=$(mktemp -d /var/tmp/sidecar-lab-context.XXXXXX)
  trap 'rm -rf "$ctx"' EXIT
  step "staging the build context in $ctx (npm ci --omit=dev)"
  mkdir -p "$ctx/build/Release"
  cp -a Dockerfile .dockerignore package.json package-lock.json dist "$ctx/"
  cp -a build/Release/sockopt.node "$ctx/build/Release/"
  # --ignore-scripts: the package's own install script is the addon build, already done above.
  (cd "$ctx" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund >/dev/null 2>"$ctx/npm.log") \
    || { cat "$ctx/npm.log" >&2; exit 1; }
  step "docker build -t $image"
  # The legacy builder: BuildKit is a separate package here, and the Dockerfile needs nothing of it.
  DOCKER_BUILDKIT=0 docker build -q --label "sidecar-lab.context=$context_hash" -t "$image" "$ctx" >/dev/null 2>"$ctx/build.log" \
    || { cat "$ctx/build.log" >&2; exit 1; }
fi
docker run --rm --network none "$image" iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' --dry-run | grep -q ISTIO_REDIRECT \
  || { echo "docker-image: $image does not run the CLI" >&2; exit 1; }
step "ready: $base, $image"
