"""Drive an interactive CLI command through a real pseudo-terminal, as a human at a terminal would."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = re.compile(rb"Type '([^']+)' to approve: ")


def run_in_pty(
    args: list[str],
    env: dict[str, str],
    answer: str | None = None,
    timeout: float = 60,
    argv: list[str] | None = None,
) -> tuple[int, str, str | None]:
    """Run `python -m interlock.server.cli ARGS` in a pty. When it prompts `Type 'WORD' to approve: `, type
    ``answer`` (or the WORD itself when answer is None). Returns (exit code, output, WORD)."""
    code, out, seen = converse(args, env, [(PROMPT.pattern, answer)], timeout, argv)
    return code, out, seen[0]


def _read_some(fd: int, buf: bytearray) -> bool:
    """Wait up to 0.1 s for output and append it. False once the terminal is closed."""
    ready, _, _ = select.select([fd], [], [], 0.1)
    if not ready:
        return True
    try:
        chunk = os.read(fd, 65536)
    except OSError:  # the child closed the terminal
        return False
    buf.extend(chunk)
    return bool(chunk)


def converse(
    args: list[str],
    env: dict[str, str],
    script: list[tuple[bytes, str | None]],
    timeout: float = 60,
    argv: list[str] | None = None,
) -> tuple[int, str, list[str]]:
    """Run `python -m interlock.server.cli ARGS` in a pty and answer each (regex, answer) in turn. An answer
    of None types the regex's first group. Returns (exit code, output, the groups seen). ``argv``
    replaces the whole command line (e.g. the CLI run as another user through setpriv)."""
    command = argv if argv is not None else [sys.executable, "-m", "interlock.server.cli", *args]
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(ROOT)
        os.execve(command[0], command, env)
    deadline = time.monotonic() + timeout
    buf = bytearray()
    seen: list[str] = []
    start = 0
    for pattern, answer in script:
        rx = re.compile(pattern)
        m = None
        while time.monotonic() < deadline:
            m = rx.search(bytes(buf), start)
            if m or not _read_some(fd, buf):
                break
        if not m:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(fd)
            raise AssertionError(f"no prompt matching {pattern!r} in:\n{buf.decode(errors='replace')}")
        start = m.end()
        group = m.group(1).decode() if m.groups() else ""
        seen.append(group)
        os.write(fd, ((answer if answer is not None else group) + "\n").encode())
    while time.monotonic() < deadline and _read_some(fd, buf):
        pass
    done, status = os.waitpid(pid, os.WNOHANG)
    if not done:  # still running at the deadline
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), buf.decode(errors="replace"), seen
