"""Seeding EC2 security groups into the embedded moto sandbox, through moto's in-process backend.

Everything keeps production's identities, so the ARNs read the same on both sides: each VPC a
group lives in is registered under production's VPC id (with its CIDR, and an IPv6 block when
production's has one: moto's egress rules depend on it), each group under production's group id
(moto's ``SecurityGroup`` takes its id as an argument; the default egress rule its constructor adds
is dropped, the group gets exactly production's rules), and each rule as production has it. The
groups that rules reference are seeded too (without rules), so moto accepts a rule naming them.

Rule states carry no group id: a rule's group is read from its address (the group ARN before
``/rule/``). A group addressed by VPC and name (one a create will make) is absent in any baseline,
so it is never seeded.
"""

from __future__ import annotations

from typing import Any

from ..diff import Snapshot, State
from .common import ClientCache, Seeded, parse_arn
from .services import MotoService

RULE_SEP = "/rule/"
_GROUP_RES = "security-group/"


def _group_id(address: str) -> str | None:
    arn = parse_arn(address.partition(RULE_SEP)[0])
    if arn is None or not arn.resource.startswith(_GROUP_RES):
        return None
    gid = arn.resource.removeprefix(_GROUP_RES)
    return gid if gid.startswith("sg-") and "/" not in gid else None


def _backend(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def _reset(account: str, region: str) -> None:
    """Remove every security group and VPC but the sandbox's own default VPC and its default group,
    with their tags. A full ``reset()`` of moto's EC2 backend reloads its AMI catalogue (about 40 ms,
    twice a rehearsal); security groups and the VPCs seeded for them are all a rehearsal of this
    toolset creates."""
    backend = _backend(account, region)
    default = backend.default_vpc.id if getattr(backend, "default_vpc", None) is not None else None
    for vpc_id, groups in list(backend.groups.items()):
        for gid, group in list(groups.items()):
            if vpc_id == default and group.is_default:
                continue
            for rule in [*group.ingress_rules, *group.egress_rules]:
                backend.tags.pop(rule.id, None)
            backend.tags.pop(gid, None)
            del groups[gid]
        if not groups and vpc_id != default:
            del backend.groups[vpc_id]
    for vpc_id in list(backend.vpcs):
        if vpc_id != default:
            backend.tags.pop(vpc_id, None)
            del backend.vpcs[vpc_id]


def _seed_vpc(backend: Any, vpc_id: str, known: dict[str, Any]) -> None:
    from moto.ec2.models.vpcs import VPC

    if vpc_id in backend.vpcs:
        return
    vpc = VPC(  # type: ignore[abstract]
        backend,
        vpc_id,
        known.get("cidr") or "10.0.0.0/16",
        is_default=False,
        amazon_provided_ipv6_cidr_block=bool(known.get("ipv6")),
    )
    backend.vpcs[vpc_id] = vpc


def _seed_group(backend: Any, gid: str, st: State) -> Any:
    from moto.ec2.models.security_groups import SecurityGroup

    vpc_id = st.get("vpc_id") or backend.default_vpc.id
    backend.tags.pop(gid, None)
    group = SecurityGroup(  # type: ignore[abstract]
        backend,
        gid,
        st.get("name") or gid,
        st.get("description") or "",
        vpc_id=vpc_id,
        tags=dict(st.get("tags") or {}),
    )
    group.egress_rules = []  # exactly production's rules, not the constructor's default
    group.ingress_rules = []
    backend.groups[vpc_id][gid] = group
    return group


def _seed_rule(backend: Any, group: Any, st: State) -> None:
    from moto.ec2.models.security_groups import SecurityGroupRule

    desc = {"Description": st["description"]} if st.get("description") else {}
    ip_range: dict[str, str] | None = None
    source: dict[str, str] | None = None
    prefix: dict[str, str] | None = None
    if st.get("cidr"):
        ip_range = {"CidrIp": st["cidr"], **desc}
    elif st.get("ipv6_cidr"):
        ip_range = {"CidrIpv6": st["ipv6_cidr"], **desc}
    elif st.get("prefix_list_id"):
        prefix = {"PrefixListId": st["prefix_list_id"], **desc}
    else:
        source = {
            "GroupId": st["referenced_group"],
            "UserId": st.get("referenced_account") or backend.account_id,
            **desc,
        }
    ported = st.get("from_port") is not None
    rule = SecurityGroupRule(
        backend,
        st["protocol"],
        group.id,
        str(st["from_port"]) if ported else None,
        str(st["to_port"]) if ported else None,
        ip_range,
        source,
        prefix,
        is_egress=st.get("direction") == "egress",
    )
    (group.egress_rules if st.get("direction") == "egress" else group.ingress_rules).append(rule)


def seed(snapshot: Snapshot, account: str, region: str, clients: ClientCache) -> Seeded:
    backend = _backend(account, region)
    for vpc_id, known in (snapshot.context.get("vpcs") or {}).items():
        _seed_vpc(backend, vpc_id, known or {})
    groups: dict[str, Any] = {}
    rules: list[tuple[str, State]] = []
    for address, st in snapshot.present().items():
        gid = _group_id(address)
        if gid is None:
            continue
        if RULE_SEP in address:
            rules.append((gid, st))
        else:
            groups[gid] = _seed_group(backend, gid, st)
    for gid, st in (snapshot.context.get("groups") or {}).items():
        if gid not in groups and backend.get_security_group_from_id(gid) is None:
            groups[gid] = _seed_group(backend, gid, st)
    for address, st in (snapshot.context.get("rules") or {}).items():
        gid = _group_id(address)
        if gid is not None:
            rules.append((gid, st))
    for gid, st in rules:
        if gid in groups:
            _seed_rule(backend, groups[gid], st)
    return Seeded()


SERVICE = MotoService(name="ec2", reset=_reset, seed=seed, replaced=None)
