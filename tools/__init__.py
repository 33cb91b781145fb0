"""Toolsets: one module per toolset; each declares frozen ToolSpecs and its Toolset (what the
approval screen and policy need to know about its resources). Knows nothing of the store or the CLI."""

import importlib
from typing import Any

from .spec import Toolset, ToolSpec

# One module per toolset, each with TOOLSET and SPECS; a new toolset is one line here.
MODULES = ("s3", "containers")

_loaded = [importlib.import_module(f"{__name__}.{m}") for m in MODULES]
TOOLSETS: tuple[Toolset, ...] = tuple(m.TOOLSET for m in _loaded)
ALL_SPECS: tuple[ToolSpec, ...] = tuple(s for m in _loaded for s in m.SPECS)

_names = [s.name for s in ALL_SPECS]
if len(_names) != len(set(_names)):  # pragma: no cover - a programming error caught at import
    raise RuntimeError("tool names must be unique across toolsets")

_BY_NAME = {t.name: t for t in TOOLSETS}
_SPECS = {s.name: s for s in ALL_SPECS}


def toolset_of(tool: str) -> Toolset | None:
    spec = _SPECS.get(tool)
    return _BY_NAME.get(spec.toolset) if spec else None


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    """The summary of a resource's state by the toolset its kind belongs to (None: no toolset knows it)."""
    for toolset in TOOLSETS:
        if toolset.summarize is not None:
            found = toolset.summarize(kind, state)
            if found is not None:
                return found
    return None
