"""`interlock service install` and `interlock service status` (being written)."""

from __future__ import annotations

import argparse


def add_install_args(p: argparse.ArgumentParser) -> None:
    pass


def add_status_args(p: argparse.ArgumentParser) -> None:
    pass


def cmd_install(args: argparse.Namespace) -> int:
    raise NotImplementedError


def cmd_status(args: argparse.Namespace) -> int:
    raise NotImplementedError
