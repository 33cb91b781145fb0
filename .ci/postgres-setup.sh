#!/usr/bin/env bash
# Make PostgreSQL's server binaries available for the team-mode store tests. Idempotent: when
# `initdb` is found (under /usr/lib/postgresql/*/bin, newest first, or on PATH) this only says which
# one and exits.
#
#   1. Debian's `postgresql` package (PostgreSQL 15 on bookworm), when no `initdb` is found;
#   2. no server is started, here or by the package: the tests start their own (tests/postgres.py:
#      initdb into a temp dir, 127.0.0.1 on a free port, as the `postgres` user when run as root).
#      Debian's postinst starts the cluster it creates unless /usr/sbin/policy-rc.d says no, so one
#      that refuses (exit 101) stands in for the install when the machine has none of its own.
set -euo pipefail

say() { echo "postgres-setup: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
        say "need root for: $*"; return 1
    fi
}

# The same search as tests/postgres.py: the newest /usr/lib/postgresql/<major>/bin, then PATH.
find_initdb() {
    local cand
    for cand in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        if [ -x "$cand/initdb" ]; then echo "$cand/initdb"; return 0; fi
    done
    command -v initdb 2>/dev/null
}

report() {
    local bin version
    bin="$(dirname "$1")"
    version="$("$bin/postgres" --version 2>/dev/null || echo "postgres: unknown version")"
    say "$2: $version (binaries: $bin)"
}

if initdb="$(find_initdb)"; then
    report "$initdb" "present"
    exit 0
fi

# 1. the package, with no service start during its install
say "installing: postgresql (no initdb under /usr/lib/postgresql/*/bin or on PATH)"
LOG="$(mktemp)"
POLICY=/usr/sbin/policy-rc.d
cleanup() {
    rm -f "$LOG"
    if [ -n "${OWN_POLICY:-}" ]; then as_root rm -f "$POLICY"; fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
    as_root sh -c "printf '#!/bin/sh\n# postgres-setup.sh: no service starts during its install\nexit 101\n' >'$POLICY' && chmod 755 '$POLICY'"
    OWN_POLICY=1
fi
apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >>"$LOG" 2>&1
}
if ! apt_install; then
    say "apt-get install failed; updating the package lists and trying once more"
    as_root apt-get update -q >>"$LOG" 2>&1 || true
    if ! apt_install; then
        say "apt-get install postgresql failed; the end of its output:"
        tail -n 30 "$LOG" >&2 || true
        exit 1
    fi
fi

if ! initdb="$(find_initdb)"; then
    say "the postgresql package installed, but no initdb is under /usr/lib/postgresql/*/bin or on PATH"
    exit 1
fi
report "$initdb" "installed"
