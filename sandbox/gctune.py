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
"""

from __future__ import annotations

import gc

_enabled = False


def enable() -> None:
    """This process is a long-running server: ``settle`` acts from now on."""
    global _enabled
    _enabled = True


def settle() -> bool:
    """After start-up work (a sandbox started): collect, then freeze the survivors. False when the
    process is not a server (nothing done)."""
    if not _enabled:
        return False
    gc.collect()
    gc.freeze()
    return True
