"""`interlock guard`: the client-side hook that turns raw aws/docker calls away (issue 15; in progress)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Registers nothing yet: `interlock guard` is being built."""
