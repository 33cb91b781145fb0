"""Toolsets: one module per toolset; each declares frozen ToolSpecs and its Toolset (what the
approval screen and policy need to know about its resources). Knows nothing of the store or the CLI."""

from typing import Any

from . import containers, s3
from .spec import Toolset, ToolSpec

TOOLSETS: tuple[Toolset, ...] = (s3.TOOLSET, containers.TOOLSET)
ALL_SPECS: tuple[ToolSpec, ...] = (*s3.SPECS, *containers.SPECS)

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
