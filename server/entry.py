"""The `interlock` console script: `interlock guard` and `interlock bridge` take a fast path (it runs as a hook before
every shell command an agent makes); everything else is the CLI (server/cli.py)."""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["guard"] and not {"-h", "--help", "--debug"} & set(argv):
        from .guard import fast_main

        return fast_main(argv[1:])
    if argv[:1] == ["bridge"] and not {"-h", "--help"} & set(argv):
        return bridge_main(argv[1:])
    from interlock.sandbox import gctune

    with gctune.paused():  # importing the CLI: see sandbox/gctune.py
        from .cli import main as cli_main

    return cli_main(argv)


def bridge_main(argv: list[str]) -> int:
    """`interlock bridge [--socket PATH]` without loading the CLI: a client starts it per session."""
    from .errors import InterlockError
    from .service.bridge import agent_socket, run_bridge

    if argv and argv[0] == "--socket" and len(argv) == 2:
        path = argv[1]
    elif len(argv) == 1 and argv[0].startswith("--socket="):
        path = argv[0].split("=", 1)[1]
    elif not argv:
        path = None
    else:
        from .cli import main as cli_main

        return cli_main(["bridge", *argv])  # argparse explains the usage error
    try:
        return run_bridge(agent_socket(path))
    except InterlockError as exc:
        sys.stderr.write(f"interlock bridge: error: {exc.message}\nhint: {exc.hint}\n")
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
