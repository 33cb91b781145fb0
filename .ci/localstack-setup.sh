#!/usr/bin/env bash
# Make LocalStack's open core available to the tests, without Docker and without an auth token.
# Idempotent: a venv whose marker file holds the same spec is left alone ("cached").
#
#   1. find a Python >= 3.12 (pyenv's 3.13, then 3.12, then python3.13/python3.12 on PATH); the
#      project itself stays on 3.11, LocalStack gets a venv of its own;
#   2. create the venv at ${INTERLOCK_LOCALSTACK_VENV:-$HOME/.cache/interlock/localstack-venv},
#      install the pinned spec below from PyPI, and build LocalStack's service catalog index once;
#   3. verify it: start `python -m localstack.runtime.main` on a free loopback port with a private
#      data dir, wait (bounded) until /_localstack/health reports S3 available or running, make one
#      bucket round trip, stop it;
#   4. write the marker, so that the next run with the same spec does nothing ("cached").
#
# No Python >= 3.12 on the machine is not an error: this says why and exits 0, and the tests that
# need LocalStack skip with that reason (tests/localstack.py).
set -euo pipefail

VENV="${INTERLOCK_LOCALSTACK_VENV:-$HOME/.cache/interlock/localstack-venv}"
WAIT_SECONDS="${INTERLOCK_LOCALSTACK_WAIT:-60}"
# localstack-core is pinned per Python (below), and so is moto-ext, which it only bounds from
# below. The other four keep its runtime importable: cbor2 6 drops the cbor2._decoder that its
# request parser imports, and without service_identity (which pip leaves out) twisted's TLS does not
# load; cryptography<44 and pyopenssl<24.3 come from an earlier measurement on 3.13 (not re-checked
# one by one).
PINS="moto-ext==5.1.54 cbor2<6 cryptography<44 pyopenssl<24.3 service_identity<25"
MARKER="$VENV/interlock-localstack.spec"            # verified: tests/localstack.py looks for it
INSTALLED="$VENV/interlock-localstack.installed"   # pip finished

say() { echo "localstack-setup: $*" >&2; }

# the venv's Python must not see the project's (3.11) path settings
unset PYTHONPATH PYTHONHOME

# 1. a Python >= 3.12 for the venv
is_usable() { "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
    local roots="" root cand
    if command -v pyenv >/dev/null 2>&1; then roots="$(pyenv root 2>/dev/null || true)"; fi
    roots="$roots ${PYENV_ROOT:-} $HOME/.pyenv"
    for minor in 13 12; do
        for root in $roots; do
            # newest patch release first
            for cand in $(ls -d "$root"/versions/3."$minor"* 2>/dev/null | sort -rV); do
                if is_usable "$cand/bin/python3.$minor"; then echo "$cand/bin/python3.$minor"; return 0; fi
            done
        done
        # pyenv shims answer only when that version is selected: is_usable runs them to find out
        if cand="$(command -v "python3.$minor" 2>/dev/null)" && is_usable "$cand"; then
            echo "$cand"; return 0
        fi
    done
    return 1
}

# tests/localstack.py shows this note as the reason it skips
UNAVAILABLE="$VENV.unavailable"
mkdir -p "$(dirname "$VENV")"
if ! BASE_PY="$(find_python)"; then
    why="no Python >= 3.12 found (looked in \$(pyenv root)/versions/3.13*, 3.12* and for python3.13, python3.12 on PATH), and LocalStack's runtime needs one"
    say "$why; not setting it up, the LocalStack tests will skip"
    echo "$why" >"$UNAVAILABLE"
    exit 0
fi
rm -f "$UNAVAILABLE"
PY_VERSION="$("$BASE_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$PY_VERSION" in
    # 4.14 and 2026.x import warnings.deprecated, which Python has only from 3.13 on
    3.12) SPEC="localstack-core[runtime]==4.13.1 $PINS" ;;
    *) SPEC="localstack-core[runtime]==2026.3.0 $PINS" ;;
esac
WANT="python=$PY_VERSION $SPEC"

# One setup at a time per venv (CI and an engineer may share a machine).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$VENV.lock"
    flock 9
fi

# 2. the venv: rebuilt when its install marker is not for this spec; a venv that installed but
#    failed verification is only verified again
if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT" ] && "$VENV/bin/python" -c 'import localstack' >/dev/null 2>&1; then
    say "cached: $VENV ($WANT)"
    exit 0
fi

start=$(date +%s)
if [ -f "$INSTALLED" ] && [ "$(cat "$INSTALLED")" = "$WANT" ] && "$VENV/bin/python" -c 'import localstack.runtime.main' >/dev/null 2>&1; then
    say "installed already, not verified yet: $VENV"
else
    if [ -e "$VENV" ]; then
        if [ ! -f "$VENV/pyvenv.cfg" ]; then
            say "$VENV exists and is not a venv; refusing to replace it (set INTERLOCK_LOCALSTACK_VENV elsewhere)"
            exit 1
        fi
        say "replacing $VENV (its spec differs or it is incomplete)"
        rm -rf "$VENV"
    fi
    say "creating $VENV with $BASE_PY (Python $PY_VERSION)"
    "$BASE_PY" -m venv "$VENV"
    say "installing: $SPEC"
    PIP_LOG="$(mktemp)"
    trap 'rm -f "$PIP_LOG"' EXIT
    # shellcheck disable=SC2086  # SPEC is a list of requirement strings without spaces inside
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check $SPEC >"$PIP_LOG" 2>&1; then
        say "pip install failed; its output (less local-index warnings):"
        grep -v "is ignored: it is neither a file nor a directory" "$PIP_LOG" | tail -n 30 >&2 || true
        exit 1
    fi
    if ! "$VENV/bin/python" -c 'import localstack.runtime.main' >/dev/null 2>&1; then
        say "pip did not leave an importable localstack.runtime.main in $VENV"
        exit 1
    fi
    echo "$WANT" >"$INSTALLED"
    say "installed in $(( $(date +%s) - start ))s: $("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null \
        | grep -iE '^(localstack-core|moto-ext|boto3|cbor2|cryptography|pyopenssl|service.identity)==' | tr '\n' ' ')"
fi

# LocalStack's index of the AWS service specs, built once here (read-only from then on) instead of
# by each instance on its first request (~1.5 s): tests/localstack.py links it into every instance.
STATIC="$VENV/interlock-static"
if ! ls "$STATIC"/usr/lib/localstack/service-catalog-*.dill >/dev/null 2>&1; then
    say "building LocalStack's service catalog index into $STATIC"
    mkdir -p "$STATIC/usr/lib/localstack"
    if ! env OVERRIDE_IN_DOCKER=0 DISABLE_EVENTS=1 FILESYSTEM_ROOT="$STATIC" \
        "$VENV/bin/python" -m localstack.aws.spec >/dev/null 2>&1; then
        say "could not build it (each instance then builds its own on its first request)"
    fi
fi

# 3. verify: start it on a free loopback port, wait for S3 in /_localstack/health, stop it
say "verifying: starting localstack.runtime.main on 127.0.0.1 (bounded by ${WAIT_SECONDS}s)"
INTERLOCK_LAUNCH="$(pwd)/.ci/localstack_launch.py" WAIT_SECONDS="$WAIT_SECONDS" "$VENV/bin/python" - <<'EOF'
import json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request


def say(msg):
    print(f"localstack-setup: {msg}", file=sys.stderr, flush=True)


LAUNCH = open(os.environ["INTERLOCK_LAUNCH"]).read()  # .ci/localstack_launch.py, as the tests start it

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
with tempfile.TemporaryDirectory(prefix="interlock-localstack-setup-") as tmp:
    for d in ("fs", "tmp", "home"):
        os.mkdir(os.path.join(tmp, d))
    static = os.path.join(sys.prefix, "interlock-static", "usr", "lib", "localstack")
    if os.path.isdir(static):
        os.makedirs(os.path.join(tmp, "fs", "usr", "lib", "localstack"))
        for name in os.listdir(static):
            os.symlink(os.path.join(static, name), os.path.join(tmp, "fs", "usr", "lib", "localstack", name))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_", "PYTHON", "BOTO"))}
    env.update(
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        GATEWAY_SERVER="hypercorn",  # twisted, the default, binds 0.0.0.0 whatever GATEWAY_LISTEN says
        LOCALSTACK_HOST=f"127.0.0.1:{port}",
        SQS_ENDPOINT_STRATEGY="path",
        DNS_ADDRESS="0",
        DISABLE_EVENTS="1",
        SKIP_SSL_CERT_DOWNLOAD="1",
        OVERRIDE_IN_DOCKER="0",
        FILESYSTEM_ROOT=os.path.join(tmp, "fs"),
        TMPDIR=os.path.join(tmp, "tmp"),
        HOME=os.path.join(tmp, "home"),
    )
    log_path = os.path.join(tmp, "localstack.log")
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH],
            cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    health, error = None, None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never via a proxy
    deadline = t0 + float(os.environ["WAIT_SECONDS"])
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                error = f"it exited with {proc.returncode}"
                break
            try:
                with opener.open(f"http://127.0.0.1:{port}/_localstack/health", timeout=2) as r:
                    health = json.load(r)
                if health.get("services", {}).get("s3") in ("available", "running"):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            error = f"no healthy S3 within {os.environ['WAIT_SECONDS']}s (last health: {health})"
        elapsed = time.monotonic() - t0
        if not error:  # one S3 round trip, with the boto3 that LocalStack brings along
            import boto3

            s3 = boto3.client(
                "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                aws_access_key_id="test", aws_secret_access_key="test",
            )
            try:
                s3.create_bucket(Bucket="interlock-setup-check")
                s3.put_object(Bucket="interlock-setup-check", Key="k", Body=b"ok")
                if s3.get_object(Bucket="interlock-setup-check", Key="k")["Body"].read() != b"ok":
                    error = "S3 returned another body than it was given"
            except Exception as e:  # noqa: BLE001 - reported below
                error = f"S3 round trip failed: {e}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if error:
        say(f"LocalStack did not come up: {error}; last lines of its log:")
        with open(log_path, errors="replace") as f:
            sys.stderr.write("".join(f.readlines()[-30:]))
        sys.exit(1)
    say(f"LocalStack {health.get('version')} answered on port {port} after {elapsed:.1f}s "
        f"(s3: {health['services']['s3']}, a bucket round trip worked); stopped")
EOF

# 4. the marker, last: a venv without it is verified again (or rebuilt) by the next run
echo "$WANT" >"$MARKER"
say "ready: $VENV (setup took $(( $(date +%s) - start ))s)"
