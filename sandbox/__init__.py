"""Sandbox backends behind one small interface, and the diff. Knows nothing of MCP or the store."""
