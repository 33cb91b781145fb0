"""interlock: infrastructure tools for coding agents that cannot change production on their own.

One import package with three layers, each a top-level folder of the source tree mapped here
(``package-dir`` in pyproject.toml; in the source tree ``interlock/server`` and the others are
links to those folders):

  interlock.sandbox   the bottom layer: plan model, diff, sandboxes (moto, an emulator by URL, Docker)
  interlock.tools     toolsets as data; imports sandbox only
  interlock.server    composition, policy, store, MCP, the CLI and hardened mode
"""

__version__ = "0.1.0"
