"""`interlock bridge`: the agent-side relay. An MCP client starts it over stdio (as it would
start `interlock serve`); it passes bytes both ways between that stdio and the service's agent
socket, and holds no credentials and no store. The service identifies the agent by the kernel's
peer credentials of this process's connection."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from pathlib import Path

from ..errors import InterlockError

DEFAULT_AGENT_SOCKET = Path("/run/interlock/agent.sock")
AGENT_SOCKET_ENV = "INTERLOCK_AGENT_SOCKET"


class BridgeError(InterlockError):
    pass


def agent_socket(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get(AGENT_SOCKET_ENV) or DEFAULT_AGENT_SOCKET)


def run_bridge(path: Path) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise BridgeError(
            f"cannot reach the interlock service's agent socket {path}: {exc.strerror or exc}",
            "check that the service runs (`interlock service status`); "
            f"--socket or ${AGENT_SOCKET_ENV} names another socket",
        ) from exc
    stdin = sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer
    out_fd = sys.stdout.fileno()

    def upstream() -> None:  # the client's requests to the service
        try:
            while True:
                chunk = os.read(stdin.fileno(), 65536)
                if not chunk:
                    break
                sock.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)  # the client is done: the service ends the session

    threading.Thread(target=upstream, daemon=True).start()
    try:
        while True:  # the service's answers to the client
            chunk = sock.recv(65536)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                n = os.write(out_fd, view)
                view = view[n:]
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return 0
