#!/usr/bin/env bash
# What the hardened-mode tests need from the OS: useradd/userdel/groupadd (Debian's passwd),
# setpriv (util-linux) and ssh-keygen (openssh-client, for SSHSIG signed approvals).
# Idempotent: installs only what is missing.
set -euo pipefail
say() { echo "hardened-setup: $*" >&2; }
missing=""
command -v useradd >/dev/null 2>&1 || missing="$missing passwd"
command -v setpriv >/dev/null 2>&1 || missing="$missing util-linux"
command -v ssh-keygen >/dev/null 2>&1 || missing="$missing openssh-client"
command -v pkill >/dev/null 2>&1 || missing="$missing procps"
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "missing:$missing (not root: the hardened-mode tests will skip)"
        exit 0
    fi
    say "installing:$missing"
    if ! env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; then
        apt-get update -q
        env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
    fi
fi
say "useradd, setpriv and ssh-keygen present"
