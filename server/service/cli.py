"""`interlock service install|run|status|token` and `interlock bridge`: hardened mode's commands."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    from . import install

    svc = sub.add_parser(
        "service",
        help="hardened mode: run interlock as its own user, with the credentials and the store",
        description="Hardened mode: a service user alone holds the production credentials and the store; "
        "agents reach it through `interlock bridge`, approvers through the approver socket.",
    )
    actions = svc.add_subparsers(dest="service_action", metavar="ACTION")

    s = actions.add_parser(
        "install",
        parents=[common],
        help="create the service user, its directories, config and key, and a systemd unit (as root)",
    )
    install.add_install_args(s)
    s.set_defaults(fn=install.cmd_install)

    s = actions.add_parser(
        "status",
        parents=[common],
        help="whether each threat-model promise holds on this machine as configured (exit 1 if one does not)",
    )
    install.add_status_args(s)
    s.set_defaults(fn=install.cmd_status)

    def no_action(args: argparse.Namespace) -> int:
        svc.print_help()
        return 2

    svc.set_defaults(fn=no_action)
