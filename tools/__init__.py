"""Toolsets: one module per toolset; each declares frozen ToolSpecs. Knows nothing of the store or the CLI."""

from .containers import SPECS as CONTAINER_SPECS
from .s3 import SPECS as S3_SPECS
from .spec import ToolSpec

ALL_SPECS: tuple[ToolSpec, ...] = (*S3_SPECS, *CONTAINER_SPECS)

_names = [s.name for s in ALL_SPECS]
if len(_names) != len(set(_names)):  # pragma: no cover - a programming error caught at import
    raise RuntimeError("tool names must be unique across toolsets")
