"""`python -m interlock`: the same as the `interlock` command."""

import sys

from interlock.server.entry import main

if __name__ == "__main__":
    sys.exit(main())
