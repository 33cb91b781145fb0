"""Notifications: approvers hear about what waits for them (the ``[notify]`` config section).

Three moments send a notice, each once:

- ``plan.pending``  — a plan was stored and waits for a human (``interlock approve ID``);
- ``call.denied``   — policy or the kill switch refused a call (the ``call.denied`` audit event);
- ``plan.diverged`` — an apply ended with production not matching the rehearsal.

Each configured channel gets the notice:

- ``command``: an argv list run without a shell, stdin and stdout closed (so a stdio MCP server's
  protocol stream is never touched), the notice in ``INTERLOCK_*`` environment variables;
- ``webhook``: an HTTP(S) POST of a JSON body (``payload``) whose ``text`` is Slack-compatible,
  with the same facts as fields; redirects are not followed.

Never in the way. The engine's hooks (``plan_stored``, ``call_denied``, ``apply_ended``) only build
the notice and put it on a bounded queue: no I/O, no await, and they never raise. One worker
thread per distinct ``[notify]`` section delivers each notice, each channel bounded by
``timeout_seconds`` (a command that outlives it is killed with its process group). A failed
delivery is logged and recorded as a ``notify.failed`` audit event: the worker hands the append
to the event loop that sent the notice (the engine's own store connection, so the chain and its
head anchor have a single writer per process) and waits for it at most ``AUDIT_WAIT_SECONDS``.
When that loop has ended (a CLI ``interlock apply`` that diverged has returned), the failure is
logged only. A notice dropped because the queue was full is audited the same way, once the worker
catches up. The worker exits when idle; at interpreter exit, deliveries still running get at most
``timeout_seconds`` before the process goes (``close``).

Agent-controlled text (the reason, denial messages, resource addresses) is data:

- the JSON fields carry it exactly, JSON-escaped;
- ``text`` shows it through ``textsafety.visible`` (one line, control and invisible characters
  written as escapes) and then escapes ``&``, ``<`` and ``>`` as Slack requires, so it cannot
  mention ``@channel``, make a link or close our formatting;
- environment variables carry it through ``visible`` (one line, no NUL, safe to echo).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import Config, NotifyConfig
from .plans import Plan, Status
from .textsafety import visible, visible_json

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("interlock.notify")

PENDING = "plan.pending"
DENIED = "call.denied"
DIVERGED = "plan.diverged"
EVENTS = (PENDING, DENIED, DIVERGED)

MAX_QUEUED = 100  # notices waiting for the worker; more are dropped (and audited as dropped)
IDLE_SECONDS = 2.0  # the worker exits after this long with nothing to do; the next notice starts one
AUDIT_WAIT_SECONDS = 10.0  # how long the worker waits for the event loop to append notify.failed
REASON_IN_TEXT = 500  # characters of the reason in `text`; the `reason` field has all of it
ADDRESSES_IN_TEXT = 5


# ---------------------------------------------------------------- the notice and its message


@dataclass(frozen=True)
class Notice:
    """What happened, as data. Every string here may be agent-controlled except ``event``."""

    event: str
    target: str
    tool: str
    plan_id: int | None = None
    playground: bool = False
    summary: dict[str, int] | None = None
    risk: tuple[str, ...] = ()
    required_approvals: int | None = None
    reason: str | None = None
    error: str | None = None  # denial: why it was refused; divergence: what does not match
    rule: str | None = None  # denial: the rule that refused it
    addresses: tuple[str, ...] = ()  # divergence: where production differs

    @property
    def approve_command(self) -> str | None:
        return f"interlock approve {self.plan_id}" if self.event == PENDING and self.plan_id else None

    @property
    def show_command(self) -> str | None:
        return f"interlock show {self.plan_id}" if self.plan_id else None


def summary_text(summary: dict[str, int] | None) -> str:
    if summary is None:
        return ""
    return (
        f"+{summary.get('create', 0)} ~{summary.get('update', 0)} "
        f"-{summary.get('delete', 0)} -/+{summary.get('replace', 0)}"
    )


def slack_escape(text: str) -> str:
    """The three characters Slack's ``text`` treats as control characters, as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shown(value: str, limit: int | None = None) -> str:
    out = visible(value)
    if limit is not None and len(out) > limit:
        out = out[:limit] + f"… ({len(out) - limit} more characters)"
    return out


def message_text(n: Notice, slack: bool = False) -> str:
    """One paragraph a human reads. Agent text goes through ``visible`` (and ``slack_escape``)."""
    esc: Callable[[str], str] = slack_escape if slack else (lambda s: s)

    def code(s: str) -> str:  # our own command text: no agent characters in it
        return f"`{s}`" if slack else s

    where = esc(_shown(n.target)) + (" (PLAYGROUND)" if n.playground else "")
    tool = esc(_shown(n.tool))
    if n.event == PENDING:
        parts = [
            f"interlock: plan {n.plan_id} on {where} waits for approval: {tool} {summary_text(n.summary)}"
        ]
        if n.risk:
            parts.append("risk: " + esc(_shown(", ".join(n.risk))))
        if n.required_approvals is not None:
            parts.append(f"needs {n.required_approvals} approval{'s' if n.required_approvals != 1 else ''}")
        text = "; ".join(parts) + "."
        if n.reason:
            reason = esc(_shown(n.reason, REASON_IN_TEXT))
            text += " Reason: " + reason + ("" if reason.endswith((".", "!", "?")) else ".")
        if n.approve_command:
            text += f" Approve: {code(n.approve_command)}"
        return text
    if n.event == DENIED:
        text = f"interlock: denied {tool} on {where}"
        if n.plan_id:
            text += f" (plan {n.plan_id})"
        if n.rule:
            text += " by rule " + esc(_shown(n.rule))
        if n.error:
            text += ": " + esc(_shown(n.error, REASON_IN_TEXT))
        return text
    text = f"interlock: plan {n.plan_id} on {where} DIVERGED: {tool} was applied but production does not match the rehearsal"
    if n.addresses:
        shown = ", ".join(esc(_shown(a)) for a in n.addresses[:ADDRESSES_IN_TEXT])
        more = len(n.addresses) - ADDRESSES_IN_TEXT
        text += f" at {shown}" + (f" and {more} more" if more > 0 else "")
    if n.error:
        text += " (" + esc(_shown(n.error, REASON_IN_TEXT)) + ")"
    if n.show_command:
        text += f". Inspect it: {code(n.show_command)}"
    return text


def payload(n: Notice) -> dict[str, Any]:
    """The webhook's JSON body: Slack-compatible ``text``, the facts as fields (exact, as data)."""
    return {
        "text": message_text(n, slack=True),
        "event": n.event,
        "plan_id": n.plan_id,
        "target": n.target,
        "playground": n.playground,
        "tool": n.tool,
        "summary": n.summary,
        "risk": list(n.risk),
        "required_approvals": n.required_approvals,
        "reason": n.reason,
        "error": n.error,
        "rule": n.rule,
        "addresses": list(n.addresses),
        "approve_command": n.approve_command,
        "show_command": n.show_command,
        # Slack would otherwise fetch and preview a URL an agent put in its reason.
        "unfurl_links": False,
        "unfurl_media": False,
    }


def environment(n: Notice, base: dict[str, str] | None = None) -> dict[str, str]:
    """The command's environment: ``base`` (default: ours) plus the notice, every value one visible line."""
    body = payload(n)
    body["text"] = message_text(n)
    ours = {
        "INTERLOCK_EVENT": n.event,
        "INTERLOCK_PLAN_ID": "" if n.plan_id is None else str(n.plan_id),
        "INTERLOCK_TARGET": visible(n.target),
        "INTERLOCK_PLAYGROUND": "1" if n.playground else "0",
        "INTERLOCK_TOOL": visible(n.tool),
        "INTERLOCK_SUMMARY": summary_text(n.summary),
        "INTERLOCK_RISK": visible(",".join(n.risk)),
        "INTERLOCK_REQUIRED_APPROVALS": "" if n.required_approvals is None else str(n.required_approvals),
        "INTERLOCK_REASON": visible(n.reason or ""),
        "INTERLOCK_ERROR": visible(n.error or ""),
        "INTERLOCK_RULE": visible(n.rule or ""),
        "INTERLOCK_APPROVE_COMMAND": n.approve_command or "",
        "INTERLOCK_SHOW_COMMAND": n.show_command or "",
        "INTERLOCK_TEXT": message_text(n),
        "INTERLOCK_JSON": visible_json(body),
    }
    return {**(os.environ if base is None else base), **ours}


def _plan_notice(event: str, plan: Plan, **extra: Any) -> Notice:
    return Notice(
        event=event,
        target=plan.target,
        tool=plan.tool,
        plan_id=plan.id,
        playground=plan.playground,
        summary=plan.summary,
        risk=tuple(plan.risk),
        required_approvals=plan.required_approvals,
        reason=plan.reason,
        **extra,
    )


def pending_notice(plan: Plan) -> Notice:
    return _plan_notice(PENDING, plan)


def diverged_notice(plan: Plan) -> Notice:
    out = plan.outcome or {}
    addresses = [*out.get("mismatched", []), *out.get("unplanned", [])]
    return _plan_notice(
        DIVERGED,
        plan,
        error=str(out["error"]) if out.get("error") else None,
        addresses=tuple(str(a) for a in addresses),
    )


def denied_notice(data: dict[str, Any], target: str, plan_id: int | None) -> Notice:
    return Notice(
        event=DENIED,
        target=target,
        tool=str(data.get("tool", "")),
        plan_id=plan_id,
        error=str(data.get("error", "")) or None,
        rule=str(data.get("rule", "")) or None,
    )


# ---------------------------------------------------------------- delivery


class DeliveryFailed(Exception):
    """One channel could not deliver a notice; the message says why (never the webhook's URL)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is then an HTTPError: a webhook that moved is a failure to see


_OPENER = urllib.request.build_opener(_NoRedirect)


def send_webhook(url: str, n: Notice, timeout: float) -> None:
    body = json.dumps(payload(n), ensure_ascii=True).encode()
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"interlock/{__version__}"},
    )
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            resp.read(65536)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"the webhook answered HTTP {exc.code} {visible(str(exc.reason))}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise DeliveryFailed(f"the webhook did not answer within {timeout:g} s") from exc
        raise DeliveryFailed(f"cannot reach the webhook: {visible(str(exc.reason))}") from exc
    except TimeoutError as exc:
        raise DeliveryFailed(f"the webhook did not answer within {timeout:g} s") from exc
    except OSError as exc:
        raise DeliveryFailed(f"the webhook failed: {visible(str(exc))}") from exc


def run_command(argv: list[str], n: Notice, timeout: float) -> None:
    name = visible(argv[0])
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                argv,
                env=environment(n),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,  # a file, not a pipe: a grandchild holding it cannot make us wait
                start_new_session=True,
            )
        except OSError as exc:
            raise DeliveryFailed(f"cannot run command {name}: {visible(exc.strerror or str(exc))}") from exc
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            with suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise DeliveryFailed(
                f"command {name} did not finish within {timeout:g} s and was killed"
            ) from exc
        if code != 0:
            err.seek(0)
            tail = err.read()[-300:].decode(errors="replace").strip()
            raise DeliveryFailed(
                f"command {name} exited with status {code}" + (f": {visible(tail)}" if tail else "")
            )


@dataclass
class _Job:
    notice: Notice
    store: Store | None
    loop: asyncio.AbstractEventLoop | None


@dataclass
class Notifier:
    """Delivers notices for one ``[notify]`` section on a worker thread (see the module docstring)."""

    settings: NotifyConfig
    _queue: queue.Queue[_Job] = field(default_factory=lambda: queue.Queue(MAX_QUEUED))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _worker: threading.Thread | None = None
    _dropped: list[_Job] = field(default_factory=list)
    _closing: bool = False
    _in_flight: int = 0  # queued or being delivered

    def channels(self) -> list[tuple[str, Callable[[Notice], None]]]:
        s, out = self.settings, []
        if s.command:
            argv = list(s.command)
            out.append(("command", lambda n: run_command(argv, n, s.timeout_seconds)))
        if s.webhook:
            url = s.webhook
            out.append(("webhook", lambda n: send_webhook(url, n, s.timeout_seconds)))
        return out

    def submit(self, notice: Notice, store: Store | None) -> bool:
        """Queue a notice; returns at once. False when it was dropped (closing, or the queue is full)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        job = _Job(notice, store, loop)
        with self._lock:
            if self._closing:
                log.warning("interlock is shutting down: %s notice not sent", notice.event)
                return False
            try:
                self._queue.put_nowait(job)
                self._in_flight += 1
            except queue.Full:
                log.warning("notify queue full: %s notice for plan %s dropped", notice.event, notice.plan_id)
                self._dropped.append(job)
                return False
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="interlock-notify", daemon=True)
                self._worker.start()
        return True

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            try:
                self._deliver(job)
                with self._lock:
                    dropped, self._dropped = self._dropped, []
                if dropped:
                    self._record(
                        dropped[-1],
                        "queue",
                        f"{len(dropped)} notice(s) dropped: more than {MAX_QUEUED} were waiting",
                    )
            except Exception:  # pragma: no cover - the worker must outlive any one notice
                log.exception("notify worker: unexpected failure")
            finally:
                with self._lock:
                    self._in_flight -= 1

    def _deliver(self, job: _Job) -> None:
        for channel, send in self.channels():
            try:
                send(job.notice)
            except DeliveryFailed as exc:
                self._record(job, channel, str(exc))
            except Exception as exc:
                self._record(job, channel, f"unexpected failure: {visible(repr(exc))}")

    def _record(self, job: _Job, channel: str, error: str) -> None:
        n = job.notice
        log.warning("notify %s failed for %s (plan %s): %s", channel, n.event, n.plan_id, error)
        data = {"channel": channel, "event": n.event, "error": error}
        loop, store = job.loop, job.store
        if loop is None or store is None or loop.is_closed():
            return
        coro = store.audit("interlock", "notify.failed", data, n.plan_id, n.target)
        try:
            fut = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop closed in between
            coro.close()
            return
        try:
            fut.result(timeout=AUDIT_WAIT_SECONDS)
        except Exception as exc:
            fut.cancel()
            log.warning("could not audit notify.failed: %r", exc)

    def close(self, grace: float | None = None) -> None:
        """Stop taking notices; wait at most ``grace`` (default: the timeout) for the worker."""
        with self._lock:
            self._closing = True
            worker = self._worker
        if worker is not None:
            worker.join(self.settings.timeout_seconds if grace is None else grace)

    def idle(self, timeout: float) -> bool:
        """Wait at most ``timeout`` until every queued notice was handled; True if it was."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._in_flight == 0:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


_NOTIFIERS: dict[str, Notifier] = {}
_NOTIFIERS_LOCK = threading.Lock()


def notifier_for(config: Config) -> Notifier | None:
    """The process's notifier for this config's ``[notify]`` section, or None when it has none."""
    if config.notify is None:
        return None
    key = config.notify.model_dump_json()
    with _NOTIFIERS_LOCK:
        n = _NOTIFIERS.get(key)
        if n is None or n._closing:
            n = _NOTIFIERS[key] = Notifier(config.notify)
        return n


@atexit.register
def close_all(grace: float | None = None) -> None:
    """At exit (or when a server shuts down): every notifier gets at most its timeout."""
    with _NOTIFIERS_LOCK:
        notifiers = list(_NOTIFIERS.values())
        _NOTIFIERS.clear()
    for n in notifiers:
        n.close(grace)


# ---------------------------------------------------------------- the engine's hooks (never raise)


def _submit(config: Config, store: Store | None, make: Callable[[], Notice]) -> None:
    try:
        notifier = notifier_for(config)
        if notifier is not None:
            notifier.submit(make(), store)
    except Exception:  # a notification never fails a plan
        log.exception("could not queue a notification")


def plan_stored(config: Config, store: Store, plan: Plan) -> None:
    """After a plan is stored: tell the approvers when it waits for one."""
    if plan.status is Status.PENDING:
        _submit(config, store, lambda: pending_notice(plan))


def call_denied(config: Config, store: Store, data: dict[str, Any], target: str, plan_id: int | None) -> None:
    """After a ``call.denied`` audit event (``data`` is its data)."""
    _submit(config, store, lambda: denied_notice(data, target, plan_id))


def apply_ended(config: Config, store: Store, plan: Plan) -> Plan:
    """After an apply returned a plan: tell the approvers when it diverged. Returns ``plan``."""
    if plan.status is Status.DIVERGED:
        _submit(config, store, lambda: diverged_notice(plan))
    return plan


# ---------------------------------------------------------------- the approver's terminal


def desktop_text(plans: list[Plan]) -> tuple[str, str]:
    """Title and body of a desktop notification for newly pending plans (body markup-escaped)."""
    if len(plans) == 1:
        p = plans[0]
        title = f"interlock: plan {p.id} waits for approval"
        body = (
            f"{visible(p.tool)} on {visible(p.target)}{' (PLAYGROUND)' if p.playground else ''}: "
            f"{summary_text(p.summary)}\n{_shown(p.reason, 200)}"
        )
    else:
        title = f"interlock: {len(plans)} plans wait for approval"
        body = ", ".join(f"{p.id} ({visible(p.tool)} on {visible(p.target)})" for p in plans[:10])
    # notify-send bodies may hold markup: the three characters that make it are entities.
    return title, body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def desktop_notify(plans: list[Plan]) -> bool:
    """A desktop notification through ``notify-send`` when it is on PATH; never waits for it."""
    exe = shutil.which("notify-send")
    if exe is None or not plans:
        return False
    title, body = desktop_text(plans)
    try:
        subprocess.Popen(
            [exe, "--app-name=interlock", "--", title, body],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return False
    return True


__all__ = [
    "DENIED",
    "DIVERGED",
    "EVENTS",
    "PENDING",
    "Notice",
    "Notifier",
    "apply_ended",
    "call_denied",
    "close_all",
    "desktop_notify",
    "desktop_text",
    "environment",
    "message_text",
    "notifier_for",
    "payload",
    "plan_stored",
    "slack_escape",
]
