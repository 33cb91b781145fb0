"""`interlock service run`: one engine, one store, one policy, served to agents on the agent
socket (MCP), to approvers on the approver socket (JSON lines), optionally to agents on other
hosts over Streamable HTTP with per-agent tokens, and optionally to approvers on other hosts over
the approver HTTP API (``remote.py``: every request SSH-signed; its own port).

It refuses to start (fail closed) when it is not the service user, when the state directory or
the store can be reached by anyone else, when the service key is unreadable or shared, when
``allowed_signers`` is unreadable or malformed, or when an approver or agent name is unknown.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import serve_dual_era_loop
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage

from ..config import Config, ServiceConfig
from ..errors import ConfigError, InterlockError
from ..pipeline import SESSION_ACTOR, Engine
from .approver import Approvers
from .keys import EventAuth, ServiceSeal, Signers, read_key
from .peers import Peer, PeerUnknown, check_principals, drop_to, peer_of

log = logging.getLogger("interlock.service")

MAX_LINE = 64 * 1024 * 1024  # one MCP message (a put body is at most a few MiB after base64)


def _check_private(path: Path, what: str, uid: int, directory: bool) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != uid:
        raise ConfigError(
            f"the {what} {path} is owned by uid {st.st_uid}, not the service user",
            f"chown {'-R ' if directory else ''}<service user> {path} (`sudo interlock service install` does it)",
        )
    if mode & 0o077:
        raise ConfigError(
            f"the {what} {path} can be reached by other users (mode {mode:04o})",
            f"chmod {'700' if directory else '600'} {path}; until then an agent's user may read or write it",
        )


def preflight(cfg: Config) -> ServiceConfig:
    """Become the service user (from root), then check everything hardened mode rests on."""
    if cfg.service is None:
        raise ConfigError(
            f"{cfg.source} has no [service] section, so it does not describe a hardened service",
            "run `sudo interlock service install` (it writes one), or add [service] to the config",
        )
    svc = cfg.service
    if os.geteuid() == 0:
        drop_to(svc.user)
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    if me != svc.user:
        raise ConfigError(
            f"`interlock service run` runs as the service user {svc.user!r}, not {me!r}",
            f"start it as that user: `sudo runuser -u {svc.user} -- interlock service run --config {cfg.source}`",
        )
    os.umask(0o077)
    uid = os.geteuid()
    state = Path(svc.state_dir)
    if not state.is_dir():
        raise ConfigError(
            f"the state directory {state} does not exist", "run `sudo interlock service install`"
        )
    _check_private(state, "state directory", uid, True)
    for suffix in ("", "-wal", "-shm", ".head", ".lock"):
        _check_private(Path(str(svc.store) + suffix), "store file", uid, False)
    source = Path(cfg.source)
    if source.exists():
        for path, fix in ((source, "600"), (source.resolve().parent, "700")):
            st = path.stat()
            if st.st_mode & 0o022 or st.st_uid not in (0, uid):
                raise ConfigError(
                    f"the config {'file' if path == source else 'directory'} {path} can be changed by users "
                    "other than root and the service user",
                    f"chown {svc.user} {path} && chmod {fix} {path}",
                )
    runtime = Path(svc.runtime_dir)
    if not runtime.is_dir():
        try:
            runtime.mkdir(mode=0o755)
            os.chmod(runtime, 0o755)
        except OSError as exc:
            raise ConfigError(
                f"the runtime directory {runtime} does not exist and cannot be made ({exc.strerror})",
                f"create it owned by {svc.user}, mode 0755 (`sudo interlock service install` does)",
            ) from exc
    rst = runtime.stat()
    if rst.st_uid != uid or stat.S_IMODE(rst.st_mode) & 0o022:
        raise ConfigError(
            f"the runtime directory {runtime} is not the service user's alone to write",
            f"chown {svc.user} {runtime} && chmod 755 {runtime}",
        )
    if cfg.store.path and Path(cfg.store.path).expanduser().resolve() != svc.store.resolve():
        raise ConfigError(
            f"{cfg.source} sets [store] path = {cfg.store.path!r}, but in hardened mode the store is "
            f"{svc.store} (inside the private state directory)",
            "remove [store] path from the service's config",
        )
    if svc.allowed_signers:
        # whoever can write allowed_signers can add a key and sign approvals: root's or ours alone
        signers = Path(svc.allowed_signers)
        for path, what in (
            (signers, "allowed_signers file"),
            (signers.parent, "directory of allowed_signers"),
        ):
            try:
                st = path.stat()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the {what} {path}: {exc.strerror}",
                    "create it (one `principal key` line per approver), owned by the service user, mode 0600",
                ) from exc
            if st.st_uid not in (0, uid) or stat.S_IMODE(st.st_mode) & 0o022:
                raise ConfigError(
                    f"the {what} {path} can be changed by users other than root and the service user "
                    "(anyone who can write it can add a key and sign approvals)",
                    f"chown {svc.user} {path} && chmod {'600' if path == signers else '700'} {path}",
                )
    if svc.approver_http_port:
        if not svc.allowed_signers:
            raise ConfigError(
                "[service] approver_http_port is set but allowed_signers is not: over HTTP an approver is "
                "only a signature by a listed key, so no request could ever be verified",
                "set [service] allowed_signers (one `principal key` line per approver), or remove approver_http_port",
            )
        if svc.approver_http_port == svc.http_port:
            raise ConfigError(
                f"[service] approver_http_port and http_port are both {svc.http_port}: the approver API "
                "and the agent API must be separate listeners",
                "give approver_http_port a port of its own",
            )
    check_principals(cfg)
    return svc


class Service:
    def __init__(self, config: Config) -> None:
        assert config.service is not None
        self.config = config
        self.svc = config.service
        self.auth = EventAuth(read_key(self.svc.key_path))
        self.signers = Signers(Path(self.svc.allowed_signers)) if self.svc.allowed_signers else None
        self._engine: Engine | None = None
        self.agent_sessions: dict[int, list[int]] = {}  # uid -> pids of open agent sessions
        self.approvers = Approvers(self)
        self.server: MCPServer | None = None

    @property
    def engine(self) -> Engine:
        assert self._engine is not None
        return self._engine

    async def attach(self, engine: Engine) -> None:
        """Called by the MCP app's lifespan once the engine exists: hardened mode seals events."""
        engine.store.authenticator = ServiceSeal(self.auth, self.signers)
        engine.actor = "interlock-service"
        self._engine = engine

    # ---------------------------------------------------------------- agent socket (MCP)

    async def serve_agent(self, stream: SocketStream, lifespan_state: Any) -> None:
        async with stream:
            try:
                peer = peer_of(stream.extra(SocketAttribute.raw_socket))
            except PeerUnknown:
                return
            self.agent_sessions.setdefault(peer.uid, []).append(peer.pid)
            SESSION_ACTOR.set(peer.label())
            try:
                await self.engine.store.audit(
                    peer.label(), "agent.connected", {"uid": peer.uid, "pid": peer.pid}
                )
                await _mcp_over(stream, self.server, lifespan_state)
            finally:
                pids = self.agent_sessions.get(peer.uid, [])
                with suppress(ValueError):
                    pids.remove(peer.pid)
                if not pids:
                    self.agent_sessions.pop(peer.uid, None)
                with anyio.CancelScope(shield=True), suppress(Exception):
                    await self.engine.store.audit(
                        peer.label(), "agent.disconnected", {"uid": peer.uid, "pid": peer.pid}
                    )

    # ---------------------------------------------------------------- approver socket (JSON lines)

    async def serve_approver(self, stream: SocketStream) -> None:
        async with stream:
            try:
                peer: Peer = peer_of(stream.extra(SocketAttribute.raw_socket))
            except PeerUnknown:
                return
            reader = BufferedByteReceiveStream(stream)
            while True:
                try:
                    line = await reader.receive_until(b"\n", MAX_LINE)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                    return
                except anyio.DelimiterNotFound:
                    await _send_json(
                        stream,
                        {
                            "ok": False,
                            "error": {
                                "type": "UsageError",
                                "message": "request too long",
                                "hint": "",
                                "exit_code": 2,
                            },
                        },
                    )
                    return
                try:
                    request = json.loads(line)
                except ValueError:
                    request = None
                answer = await self.approvers.handle(peer, request)
                try:
                    await _send_json(stream, answer)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return


async def _send_json(stream: SocketStream, obj: dict[str, Any]) -> None:
    await stream.send(json.dumps(obj, default=str).encode() + b"\n")


async def _mcp_over(stream: SocketStream, server: Any, lifespan_state: Any) -> None:
    """One MCP session over a connected socket: newline-delimited JSON-RPC, as on stdio."""
    read_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, write_reader = create_context_streams[SessionMessage](0)
    reader = BufferedByteReceiveStream(stream)

    async def pump_in() -> None:
        async with read_writer:
            while True:
                try:
                    line = await reader.receive_until(b"\n", MAX_LINE)
                except (
                    anyio.EndOfStream,
                    anyio.IncompleteRead,
                    anyio.BrokenResourceError,
                    anyio.DelimiterNotFound,
                    anyio.ClosedResourceError,
                ):
                    return
                if not line.strip():
                    continue
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except Exception as exc:
                    await read_writer.send(exc)
                    continue
                await read_writer.send(SessionMessage(message))

    async def pump_out() -> None:
        async with write_reader:
            async for msg in write_reader:
                data = msg.message.model_dump_json(by_alias=True, exclude_unset=True)
                try:
                    await stream.send(data.encode() + b"\n")
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return

    low = server._lowlevel_server
    async with anyio.create_task_group() as tg:
        tg.start_soon(pump_in)
        tg.start_soon(pump_out)
        await serve_dual_era_loop(
            low,
            read_stream,
            write_stream,
            lifespan_state=lifespan_state,
            init_options=low.create_initialization_options(),
        )
        tg.cancel_scope.cancel()


@asynccontextmanager
async def _listener(path: Path) -> AsyncIterator[Any]:
    with suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()  # a socket left by a service that stopped
    listener = await anyio.create_unix_listener(path)
    os.chmod(path, 0o666)  # anyone may connect; who they are is the kernel's answer, checked per request
    try:
        yield listener
    finally:
        await listener.aclose()
        with suppress(OSError):
            path.unlink()


async def run(cfg: Config, ready: Any = None) -> None:
    from ..app import build_server

    preflight(cfg)
    service = Service(cfg)
    server = build_server(cfg, on_engine=service.attach)
    service.server = server
    low = server._lowlevel_server
    async with low.lifespan(low) as lifespan_state:
        svc = service.svc
        await service.engine.store.audit(
            service.engine.actor,
            "service.started",
            {
                "pid": os.getpid(),
                "agent_socket": str(svc.agent_socket),
                "approver_socket": str(svc.approver_socket),
                **(
                    {"approver_http": f"{svc.approver_http_host}:{svc.approver_http_port}"}
                    if svc.approver_http_port
                    else {}
                ),
            },
        )
        async with (
            _listener(svc.agent_socket) as agents,
            _listener(svc.approver_socket) as approvers,
            anyio.create_task_group() as tg,
        ):

            async def on_agent(stream: SocketStream) -> None:
                with _logged("agent session"):
                    await service.serve_agent(stream, lifespan_state)

            async def on_approver(stream: SocketStream) -> None:
                with _logged("approver connection"):
                    await service.serve_approver(stream)

            tg.start_soon(agents.serve, on_agent)
            tg.start_soon(approvers.serve, on_approver)
            if svc.http_port:
                tg.start_soon(_serve_http, service, server, svc)
            if svc.approver_http_port:
                from . import remote

                tg.start_soon(remote.serve, service, svc)
            tg.start_soon(_stop_on_signal, tg.cancel_scope)
            import sys

            print(
                f"interlock service: agents on {svc.agent_socket}, approvers on {svc.approver_socket}"
                + (f", HTTP on http://{svc.http_host}:{svc.http_port}/mcp (tokens)" if svc.http_port else "")
                + (
                    f", approvers over HTTP on http://{svc.approver_http_host}:{svc.approver_http_port}/v1/approver "
                    "(signed)"
                    if svc.approver_http_port
                    else ""
                ),
                file=sys.stderr,
                flush=True,
            )
            if ready is not None:
                ready()


@contextmanager
def _logged(what: str) -> Iterator[None]:
    """One connection's failure is logged and ends that connection only, never the service."""
    try:
        yield
    except Exception:
        log.exception("%s failed", what)


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _serve_http(service: Service, server: MCPServer, svc: ServiceConfig) -> None:
    import uvicorn

    from .tokens import RequireToken

    app = server.streamable_http_app(host=svc.http_host)
    guarded = RequireToken(app, service.engine.store, service.auth)
    config = uvicorn.Config(guarded, host=svc.http_host, port=svc.http_port or 0, log_level="warning")
    await uvicorn.Server(config).serve()


def serve(cfg: Config) -> int:
    with suppress(KeyboardInterrupt):
        anyio.run(run, cfg)
    return 0


__all__ = ["InterlockError", "Service", "preflight", "run", "serve", "socket"]
