"""Peer credentials and principal sets (server/service/peers.py), on real sockets and this
machine's own users and groups."""

from __future__ import annotations

import grp
import os
import pwd
import socket

import pytest

from interlock.server.config import Config, PrincipalsConfig
from interlock.server.errors import ConfigError
from interlock.server.service.peers import check_principals, is_member, peer_of


def test_peer_credentials_come_from_the_kernel_not_the_client() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        peer = peer_of(a)
    assert (peer.uid, peer.gid, peer.pid) == (os.geteuid(), os.getegid(), os.getpid())
    assert peer.user == pwd.getpwuid(os.geteuid()).pw_name
    assert f"uid {peer.uid}, pid {peer.pid}" in peer.label()


def test_a_socket_that_is_not_unix_has_no_peer_and_is_refused() -> None:
    from interlock.server.service.peers import PeerUnknown

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(PeerUnknown):
        peer_of(s)


def test_membership_is_by_user_name_or_by_group() -> None:
    me = os.geteuid()
    name = pwd.getpwuid(me).pw_name
    primary = grp.getgrgid(pwd.getpwuid(me).pw_gid).gr_name
    assert is_member(me, PrincipalsConfig(users=[name]))
    assert is_member(me, PrincipalsConfig(groups=[primary]))
    assert not is_member(me, PrincipalsConfig(users=["no-such-user-xyz"], groups=["no-such-group-xyz"]))
    assert not is_member(me, PrincipalsConfig())


def test_an_approver_or_agent_name_this_machine_does_not_know_fails_closed() -> None:
    with pytest.raises(ConfigError, match="no-such-user-xyz"):
        check_principals(Config(approvers=PrincipalsConfig(users=["no-such-user-xyz"])))
    with pytest.raises(ConfigError, match=r"\[agents\] groups"):
        check_principals(Config(agents=PrincipalsConfig(groups=["no-such-group-xyz"])))
