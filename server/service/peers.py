"""Who is on the other end: the kernel's peer credentials on a Unix socket, and the approver and
agent sets of the config resolved to uids. Identity is never what a client claims."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import socket
import struct
from dataclasses import dataclass

from ..config import Config, PrincipalsConfig
from ..errors import ConfigError, InterlockError

_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid


class PeerUnknown(InterlockError):
    pass


@dataclass(frozen=True)
class Peer:
    uid: int
    gid: int
    pid: int

    @property
    def user(self) -> str:
        return user_name(self.uid)

    def label(self) -> str:
        return f"{self.user} (uid {self.uid}, pid {self.pid})"


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def peer_of(sock: socket.socket) -> Peer:
    """SO_PEERCRED of a connected AF_UNIX socket; fails closed when the kernel does not say."""
    try:
        pid, uid, gid = _CREDS.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDS.size))
    except (OSError, AttributeError, struct.error) as exc:
        raise PeerUnknown(
            f"cannot read the peer credentials of a connection ({exc})",
            "interlock's service needs Linux Unix sockets (SO_PEERCRED); the connection was refused",
        ) from exc
    if uid < 0 or pid <= 0:
        raise PeerUnknown(
            "the kernel gave no peer credentials for a connection", "the connection was refused"
        )
    return Peer(uid, gid, pid)


def _groups_of(uid: int) -> set[str]:
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        return set()
    names = {g.gr_name for g in grp.getgrall() if pw.pw_name in g.gr_mem}
    with contextlib.suppress(KeyError):
        names.add(grp.getgrgid(pw.pw_gid).gr_name)
    return names


def is_member(uid: int, principals: PrincipalsConfig) -> bool:
    """Whether ``uid`` is one of ``principals``: by user name, or by a group (primary or supplementary)."""
    name = user_name(uid)
    if name in principals.users:
        return True
    return bool(principals.groups) and bool(_groups_of(uid) & set(principals.groups))


def check_principals(cfg: Config) -> None:
    """Fail closed at start on an approver or agent name this machine does not know."""
    for section, p in (("approvers", cfg.approvers), ("agents", cfg.agents)):
        for user in p.users:
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise ConfigError(
                    f"[{section}] users names {user!r}, which is not a user on this machine",
                    f"create the user or remove it from [{section}] in {cfg.source}",
                ) from None
        for group in p.groups:
            try:
                grp.getgrnam(group)
            except KeyError:
                raise ConfigError(
                    f"[{section}] groups names {group!r}, which is not a group on this machine",
                    f"create the group or remove it from [{section}] in {cfg.source}",
                ) from None


def drop_to(user: str) -> None:
    """Become ``user`` (from root): its groups, then its gid, then its uid. Irreversible."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(
            f"the service user {user!r} does not exist", "run `sudo interlock service install` first"
        ) from None
    os.setgroups(os.getgrouplist(pw.pw_name, pw.pw_gid))
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    os.environ["HOME"] = pw.pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = pw.pw_name
