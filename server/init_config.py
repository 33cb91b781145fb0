"""`interlock init`: a cautious first config, linted (issue 15; in progress)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Registers nothing yet: `interlock init` is being built."""
