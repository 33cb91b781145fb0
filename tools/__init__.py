"""Toolsets: one module per toolset; each declares frozen ToolSpecs and its Toolset (what the
approval screen and policy need to know about its resources). Knows nothing of the store or the CLI."""

import importlib
from typing import Any

from .spec import Toolset, ToolSpec

# One module per toolset, each with TOOLSET and SPECS; a new toolset is one line here.
MODULES = ("s3", "containers", "iam", "sqs", "ec2", "dynamodb", "ssm", "awslambda", "cloudformation")

_loaded = [importlib.import_module(f"{__name__}.{m}") for m in MODULES]
TOOLSETS: tuple[Toolset, ...] = tuple(m.TOOLSET for m in _loaded)
ALL_SPECS: tuple[ToolSpec, ...] = tuple(s for m in _loaded for s in m.SPECS)

_names = [s.name for s in ALL_SPECS]
if len(_names) != len(set(_names)):  # pragma: no cover - a programming error caught at import
    raise RuntimeError("tool names must be unique across toolsets")

_BY_NAME = {t.name: t for t in TOOLSETS}
_SPECS = {s.name: s for s in ALL_SPECS}


def _rollback_specs() -> dict[str, ToolSpec]:
    from .undo import rollback_spec

    out: dict[str, ToolSpec] = {}
    for toolset in TOOLSETS:
        like = next((s for s in ALL_SPECS if s.toolset == toolset.name and not s.read_only), None)
        if toolset.undo is not None and like is not None:
            spec = rollback_spec(toolset.name, like, toolset.undo)
            out[spec.name] = spec
    return out


# ``rollback_<toolset>``: the tools of rollback plans (``tools.undo``), one per toolset that can
# undo. They are not MCP tools: the engine plans them for ``plan_rollback`` and applies them.
ROLLBACK_SPECS: dict[str, ToolSpec] = _rollback_specs()
_SPECS.update(ROLLBACK_SPECS)


def toolset_of(tool: str) -> Toolset | None:
    spec = _SPECS.get(tool)
    return _BY_NAME.get(spec.toolset) if spec else None


def shown_args(tool: str, args: Any) -> Any:
    """A call's arguments as the approval screen, the agent's plan view and the audit trail show
    them: a tool may hide a secret it carries (a SecureString's value becomes its sha256)."""
    spec = _SPECS.get(tool)
    if spec is None or spec.shown is None or not isinstance(args, dict):
        return args
    try:
        return spec.shown(dict(args))
    except Exception:  # an edited plan's arguments: hide nothing the tool did not know how to read
        return args


DEFAULT_HIDDEN = frozenset({"last_modified", "created", "detail"})


def hidden_attributes(address: str) -> frozenset[str]:
    """The state fields the approval screen leaves out for ``address`` (its toolset's say)."""
    for toolset in TOOLSETS:
        if toolset.address_prefix and address.startswith(toolset.address_prefix):
            return toolset.hidden_attributes
    return DEFAULT_HIDDEN


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    """The summary of a resource's state by the toolset its kind belongs to (None: no toolset knows it)."""
    for toolset in TOOLSETS:
        if toolset.summarize is not None:
            found = toolset.summarize(kind, state)
            if found is not None:
                return found
    return None
