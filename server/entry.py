"""The `interlock` console script: `interlock guard` takes a fast path (it runs as a hook before
every shell command an agent makes); everything else is the CLI (server/cli.py)."""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["guard"] and not {"-h", "--help", "--debug"} & set(argv):
        from .guard import fast_main

        return fast_main(argv[1:])
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
