"""A pool of embedded moto sandboxes, one per worker process, so one server rehearses in parallel.

moto keeps its backends process-global, keyed by (account, region), and a sandbox acts as
production's own account id: two sandboxes cannot share a process, so each ``MotoSandbox`` of the
pool lives in a worker process of its own. Workers are spawned, never forked (the server has
threads, and a fork copies their locks mid-use). Each rehearses one call at a time; the pool hands
a call to an idle worker and waits for one when all are busy.

Over each worker's pipe, everything is pickled::

  worker → parent   ("ready", None) once its sandbox started, or ("raised", exc)
  parent → worker   a Call                           (its callables pickle by reference)
  worker → parent   ("done", Rehearsal) or ("raised", exc)

Exceptions cross with every field they carry (``CallRefused.cause``, ``ToolFailure.hint``):
``dumps`` pickles an exception as its type, ``args`` and ``__dict__`` and rebuilds it without
running its ``__init__``, whose signature default pickling would otherwise have to guess.

A call that does not pickle (a closure for a callable) is rehearsed in this process, in the one
``MotoSandbox`` the pool keeps for that. A worker that dies (killed, crashed) fails the rehearsal
it was running with ``SandboxError`` and is replaced; one found dead while idle is replaced before
it is used. ``stop()`` ends every worker; a worker whose parent is gone sees its pipe close and
exits, so none is left behind. As with any spawned process, a worker imports the parent's main
script first: a script that builds a pool keeps its work under ``if __name__ == "__main__"``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import anyio

from ..base import Call, Rehearsal, SandboxError
from .moto import MotoSandbox

log = logging.getLogger("interlock.sandbox.pool")

START_TIMEOUT = 120.0  # a worker imports moto; several at once on a small machine take a while
STOP_TIMEOUT = 5.0


# ------------------------------------------------------------------ the wire


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def _importable(cls: type) -> bool:
    """Whether ``cls`` pickles by reference: its module holds it under its qualified name."""
    found: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is cls


class _Pickler(pickle.Pickler):
    """Pickles every exception in the payload (a ``CallRefused``'s ``ClientError`` cause too) as
    type, args and fields, so it is rebuilt with all of them. A class made at run time (botocore's
    modeled errors: ``NoSuchBucket``) crosses as its nearest importable base (``ClientError``),
    which keeps the response, and so the error code, the engine reads."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, BaseException):
            cls = next(c for c in type(obj).__mro__ if _importable(c))
            return _rebuild, (cls, obj.args, dict(vars(obj)))
        return NotImplemented


def dumps(obj: Any) -> bytes:
    """What a worker sends: ``obj`` pickled, every exception in it with its fields (``_Pickler``)."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    return pickle.loads(data)


# ------------------------------------------------------------------ the worker process


def _serve(conn: Connection) -> None:
    """A worker's whole life: start its sandbox, say so, then rehearse each call it is sent until
    the parent closes the pipe (or goes away)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the parent's to handle
    os.dup2(2, 1)  # under `serve` over stdio, stdout is the MCP stream: nothing here may write to it
    sandbox = MotoSandbox()
    try:
        sandbox.start()
    except Exception as exc:
        conn.send_bytes(dumps(("raised", exc)))
        return
    # A worker is a server process of its own: what the start loaded stays out of the collector's way.
    from .. import gctune

    gctune.enable()
    gctune.settle()
    conn.send_bytes(dumps(("ready", None)))
    _loop(conn, sandbox)


def _loop(conn: Connection, sandbox: MotoSandbox) -> None:
    """One call at a time, in this thread: no event loop, nothing to hop between."""
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        reply = _answer(sandbox, data)
        try:
            conn.send_bytes(reply)
        except OSError:  # the parent is gone
            return


def _answer(sandbox: MotoSandbox, data: bytes) -> bytes:
    try:
        call: Call = loads(data)
    except Exception as exc:
        failure = SandboxError(f"a sandbox worker could not read the call: {type(exc).__name__}: {exc}")
        return dumps(("raised", failure))
    try:
        reply: tuple[str, Any] = ("done", sandbox.rehearse_now(call))
    except Exception as exc:  # every failure is the parent's to raise, as the in-process sandbox would
        reply = ("raised", exc)
    try:
        return dumps(reply)
    except Exception as exc:
        failure = SandboxError(
            f"a sandbox worker could not send back the result of {call.tool}: {type(exc).__name__}: {exc}"
        )
        return dumps(("raised", failure))


# ------------------------------------------------------------------ the parent's side


class _Worker:
    """One slot of the pool: a worker process and the parent's end of its pipe. Used by one
    rehearsal at a time; ``renew()`` puts a fresh process in the slot when the last one died."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self.process: Any = None
        self.conn: Connection | None = None
        self.ready = False
        self.ended = False  # stop() ended it: never renewed again
        self.renew()

    def renew(self) -> None:
        if self.ended:
            raise SandboxError("the sandbox pool has stopped")
        self._close_pipe()
        if self.process is not None:
            self.process.join(STOP_TIMEOUT)
            self.process.close()
            self.process = None
        parent_end, child_end = self._ctx.Pipe()
        process = self._ctx.Process(target=_serve, args=(child_end,), name="interlock-sandbox", daemon=True)
        try:
            process.start()
        except OSError as exc:
            parent_end.close()
            raise SandboxError(f"could not start a sandbox worker process: {exc}") from exc
        finally:
            child_end.close()  # the worker holds its end now: when it dies, recv sees the pipe close
        self.process, self.conn, self.ready = process, parent_end, False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        if self.ready:
            return
        assert self.conn is not None
        if not self.conn.poll(timeout):
            raise SandboxError(
                f"a sandbox worker (pid {self.process.pid}) did not start within {timeout:.0f} s"
            )
        reply = self._receive()
        if reply is None:
            raise SandboxError(
                f"a sandbox worker (pid {self.process.pid}) stopped while starting ({self._how()}); "
                "its error is in the server's log"
            )
        kind, value = reply
        if kind == "raised":
            raise value
        self.ready = True

    def rehearse(self, payload: bytes, tool: str) -> Any:
        if self.conn is None or self.process is None or self.process.exitcode is not None:
            # it died while idle (or could not be replaced last time): this call was not sent yet
            log.warning("a sandbox worker had stopped; starting another")
            self.renew()
        self.wait_ready()
        assert self.conn is not None
        with contextlib.suppress(OSError):  # it died: the receive below says so
            self.conn.send_bytes(payload)
        reply = self._receive()
        if reply is None and self.ended:
            raise SandboxError(f"the sandbox pool stopped during the rehearsal of {tool}")
        if reply is None:
            pid, how = self.process.pid, self._how()
            try:
                self.renew()
            except SandboxError as failed:  # tried again on the slot's next use
                log.warning("could not replace sandbox worker pid %s: %s", pid, failed)
            raise SandboxError(
                f"the sandbox worker (pid {pid}) stopped during the rehearsal of {tool} ({how}); "
                "it has been replaced, so the call can be planned again"
            )
        kind, value = reply
        if kind == "raised":
            raise value
        return value

    def _receive(self) -> tuple[str, Any] | None:
        """The worker's next answer; None when it died first (its exit code is known then)."""
        assert self.conn is not None
        try:
            data = self.conn.recv_bytes()
        except (EOFError, OSError):
            self.process.join(STOP_TIMEOUT)
            return None
        try:
            reply: tuple[str, Any] = loads(data)
        except Exception as exc:
            raise SandboxError(
                f"could not read a sandbox worker's answer: {type(exc).__name__}: {exc}"
            ) from exc
        return reply

    def _how(self) -> str:
        code = self.process.exitcode
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def end(self) -> None:
        """Close the pipe for good: the worker's loop ends and the process exits (``join`` waits)."""
        self.ended = True
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def join(self, deadline: float) -> None:
        if self.process is None:
            return
        self.process.join(max(0.0, deadline - time.monotonic()))
        if self.process.exitcode is None:
            log.warning("sandbox worker pid %s did not stop; killing it", self.process.pid)
            self.process.kill()
            self.process.join(STOP_TIMEOUT)
        self.process.close()
        self.process = None


class MotoPool:
    """``size`` embedded moto sandboxes in worker processes: up to ``size`` rehearsals at once,
    each in a sandbox of its own. ``start()`` once (it spawns them all, then waits for each)."""

    kind = "aws"

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a sandbox pool needs at least one worker, not {size}")
        self.size = size
        self._ctx = multiprocessing.get_context("spawn")  # never fork: the server has threads
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._free = anyio.Semaphore(size)
        self._local: MotoSandbox | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._workers:
                return
            workers: list[_Worker] = []
            try:
                for _ in range(self.size):  # spawned together, so they start in parallel
                    workers.append(_Worker(self._ctx))
                for w in workers:
                    w.wait_ready()
            except BaseException:
                _end(workers)
                raise
            self._workers, self._idle = workers, list(workers)

    def stop(self) -> None:
        with self._lock:
            workers, self._workers, self._idle = self._workers, [], []
            local, self._local = self._local, None
        _end(workers)
        if local is not None:
            local.stop()

    def describe(self) -> dict[str, Any]:
        return {**self._in_process().describe(), "pool": self.size}

    def pids(self) -> list[int]:
        """The worker processes' ids (what a test kills, or checks are gone after ``stop()``)."""
        return [w.process.pid for w in self._workers if w.process is not None]

    async def rehearse(self, call: Call) -> Rehearsal:
        try:
            payload = pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            # A call whose callables are not module-level functions (a closure, a lambda) cannot
            # reach a worker. It is rehearsed in this process instead, in the one sandbox the pool
            # keeps for that, rather than refused: the result is the same, only not in parallel.
            log.debug("rehearsing %s in process: its call does not pickle (%s)", call.tool, exc)
            local = self._in_process()
            await anyio.to_thread.run_sync(local.start)
            return await local.rehearse(call)
        async with self._free:
            if not self._idle:
                raise SandboxError("the sandbox pool is not running")
            worker = self._idle.pop()
            try:
                result: Rehearsal = await anyio.to_thread.run_sync(worker.rehearse, payload, call.tool)
            finally:
                if worker in self._workers:  # not a worker that stop() ended meanwhile
                    self._idle.append(worker)
        return result

    def _in_process(self) -> MotoSandbox:
        if self._local is None:
            self._local = MotoSandbox()
        return self._local


def _end(workers: list[_Worker]) -> None:
    """Close every pipe first, so the workers stop together; then wait for each, killing a late one."""
    for w in workers:
        w.end()
    deadline = time.monotonic() + STOP_TIMEOUT
    for w in workers:
        w.join(deadline)
