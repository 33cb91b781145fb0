#!/usr/bin/env bash
# Make a local dockerd and the test image available for the docker tests. Idempotent: every step
# checks first and does nothing when its work is already done (a running dockerd is left alone).
#
#   1. docker.io and busybox-static from Debian, when `docker` or /bin/busybox is missing;
#   2. `dockerd --iptables=false --bridge=none` in the background when `docker info` fails,
#      then wait (bounded) until it answers;
#   3. the interlock-busybox:test image, built with `docker import` (no registry is reachable).
#
# Containers in the tests run with network "none": there is no bridge network on this daemon.
set -euo pipefail

IMAGE="${INTERLOCK_TEST_IMAGE:-interlock-busybox:test}"
WAIT_SECONDS="${INTERLOCK_DOCKERD_WAIT:-60}"
LOG="${INTERLOCK_DOCKERD_LOG:-/tmp/interlock-dockerd.log}"
APPLETS="sh ls cat rm echo sleep mkdir touch env wc sed tail head"

say() { echo "docker-setup: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
        say "need root for: $*"; return 1
    fi
}

# 1. packages
missing=""
command -v docker >/dev/null 2>&1 || missing="$missing docker.io"
command -v dockerd >/dev/null 2>&1 || case "$missing" in *docker.io*) ;; *) missing="$missing docker.io" ;; esac
[ -x /bin/busybox ] || missing="$missing busybox-static"
if [ -n "$missing" ]; then
    say "installing:$missing"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; then
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
    fi
fi

# 2. the daemon
if docker info >/dev/null 2>&1; then
    say "dockerd already answers"
else
    say "starting dockerd --iptables=false --bridge=none (log: $LOG)"
    as_root sh -c "nohup dockerd --iptables=false --bridge=none >'$LOG' 2>&1 &"
    deadline=$(( $(date +%s) + WAIT_SECONDS ))
    until docker info >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "dockerd did not answer within ${WAIT_SECONDS}s; last lines of $LOG:"
            tail -n 20 "$LOG" >&2 || true
            exit 1
        fi
        sleep 0.5
    done
    say "dockerd answers"
fi

# 3. the test image
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "image $IMAGE present"
else
    say "building $IMAGE with docker import"
    root="$(mktemp -d)"
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/data" "$root/tmp" "$root/etc"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/"
    for c in $APPLETS; do ln -s busybox "$root/bin/$c"; done
    tar -C "$root" -c . | docker import - "$IMAGE" >/dev/null
    say "image $IMAGE built"
fi
