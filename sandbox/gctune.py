"""The garbage collector in a long-running server.

Once a sandbox has started, the server holds a few hundred thousand objects that live as long as
it does: botocore's service models, moto's backends and its URL tables, the tool models. Python's
cyclic collector walks every one of them on each full collection, and a full collection comes
along every few plans of a large footprint (a 10,000-object delete allocates millions of objects):
100–300 ms in the middle of a plan, at random. ``settle`` collects once and moves what survives
into the collector's permanent generation (``gc.freeze``), so later collections walk only what
was made after it. Nothing is kept alive that would otherwise be freed: the collection comes
first, and frozen objects are still freed by reference counting when the last reference goes.

Only a process that is a server does this (``enable``: ``interlock serve`` and a sandbox pool's
workers); a library user, the test suite among them, keeps Python's default behaviour.

Start-up itself (``paused``) is the same story told earlier: importing the CLI, the MCP SDK and
the toolsets, then building a tool model per exposed tool, allocates those long-lived objects by
the hundred thousand, and the collector walks the growing heap again and again while nothing in it
is garbage yet — about 100 ms of a ~1 s cold start, and as much again in the first requests after
it. So a command starts with the collector paused; at the end of its start-up what it made is
frozen without a walk, and the first ``settle`` unfreezes it to collect it with the rest, so
start-up's own garbage (a few thousand objects) is freed there too. A command that never settles
(a one-shot CLI command) keeps that garbage until it exits.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_enabled = False
_startup_frozen = False  # ``paused`` froze start-up's objects uncollected; the next ``settle`` collects them


def enable() -> None:
    """This process is a long-running server: ``settle`` acts from now on."""
    global _enabled
    _enabled = True


def settle() -> bool:
    """After start-up work (a sandbox started): collect, then freeze the survivors. False when the
    process is not a server (nothing done)."""
    global _startup_frozen
    if not _enabled:
        return False
    if _startup_frozen:
        gc.unfreeze()
        _startup_frozen = False
    gc.collect()
    gc.freeze()
    return True


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection while the block runs (start-up: imports and tool models). After it,
    what the block made is frozen, unwalked, until the next ``settle`` collects it; the collector's
    own setting comes back, even when the block raises."""
    global _startup_frozen
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        _startup_frozen = True
        if was:
            gc.enable()
