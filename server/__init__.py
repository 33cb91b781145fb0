"""interlock's server: MCP app, plan/apply pipeline, policy, store, audit and the human CLI."""

from interlock import __version__

__all__ = ["__version__"]
