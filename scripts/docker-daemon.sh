#!/usr/bin/env bash
# Stops the dockerd (and the containerd it spawned) that scripts/docker-image.sh started, and nothing else: a
# daemon that was already running, or one started by hand or by systemd, has no pid file here and is left alone.
# usage: scripts/docker-daemon.sh stop      (prints what it did; exit 0 when there was nothing to stop)
#        scripts/docker-daemon.sh ours      (exit 0 when a dockerd started by docker-image.sh is running)
set -euo pipefail
pidfile=/run/sidecar-lab/dockerd.pid

ours() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  ours) ours ;;
  stop)
    if ! ours; then rm -f "$pidfile"; exit 0; fi
    pid=$(cat "$pidfile")
    echo "docker-daemon: stopping the dockerd (pid $pid) that scripts/docker-image.sh started" >&2
    kill -TERM "$pid"
    # dockerd stops its containerd child itself; give both up to 30 s, then force.
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "docker-daemon: dockerd $pid ignored SIGTERM for 30 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    pkill -TERM -f '^containerd --config /var/run/docker/containerd/containerd.toml' 2>/dev/null || true
    rm -f "$pidfile"
    ;;
  *) echo "usage: scripts/docker-daemon.sh stop|ours" >&2; exit 2 ;;
esac
