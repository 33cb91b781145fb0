"""interlock's server: MCP app, plan/apply pipeline, policy, store, audit and the human CLI."""

__version__ = "0.1.0"
