"""The EC2 security-group toolset: reads that go to production, writes that return a plan.

Addresses are ARNs; every rule is its own address under its group, so a rule added or removed is
one change (and limits, policy globs and diffs count rules one by one):

- a group ``arn:aws:ec2:REGION:ACCOUNT:security-group/sg-0123abcd``;
- a rule: the group's ARN, the separator ``/rule/``, then
  ``DIRECTION/PROTOCOL/PORTS/PEER-KIND/PEER``, e.g.
  ``arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123abcd/rule/ingress/tcp/22-22/cidr/10.0.0.0/8``.
  DIRECTION is ``ingress`` or ``egress``; PROTOCOL ``tcp``, ``udp``, ``icmp``, ``icmpv6``, ``-1``
  (all traffic) or an IP protocol number; PORTS ``FROM-TO`` (ICMP: ``TYPE-CODE``; ``all`` for -1,
  so ``all-all`` is every ICMP type), or ``all`` where the protocol has no ports; PEER-KIND/PEER
  one of ``cidr/10.0.0.0/8``, ``ipv6/::/0``, ``pl/pl-0123``, ``sg/sg-0456`` (a group of another
  account: ``sg/ACCOUNT/sg-0456``). The peer is last, so a CIDR's own '/' needs no escaping.
- a group that ``create_ec2_security_group`` will create has no id until it exists, and the
  sandbox gives it another id than production will; its plan names it by VPC and name instead:
  ``arn:aws:ec2:REGION:ACCOUNT:security-group/vpc-0abc/NAME`` (its rules under it as above).
  Such a state carries no group id at all: what the rehearsal predicts, and what apply verifies
  against production, is the name, VPC, description, tags and rules. The new group's id is
  learnt after apply with ``get_ec2_security_group`` by name.

State shapes (the sandbox seeds from these; the diff compares them):

- group: ``{name, vpc_id, description, tags}``, plus, when read as a baseline, what keeps AWS
  from deleting it (``network_interfaces``: how many network interfaces use it;
  ``referenced_by``: other groups whose rules name it). Those two are volatile: the sandbox
  holds no network interfaces, and they decide a delete (refused when either is non-empty, as
  AWS refuses it) rather than being compared.
- rule: ``{direction, protocol, from_port, to_port, <peer>, description}`` where <peer> is one of
  ``cidr``, ``ipv6_cidr``, ``prefix_list_id``, or ``referenced_group`` and ``referenced_account``.

The rest of a group's rules (not in the footprint) are carried as context, so the sandbox holds
the whole group (duplicates and the rules-per-group limit decide as in production) and a change
to any of them makes a plan stale.

Undo (``tools.ec2_undo``): rules are put back exactly; a deleted group is created again with its
rules and tags under a new id (its rollback plan names it by VPC and name).
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from interlock.sandbox.aws.common import parse_arn
from interlock.sandbox.diff import Action, Change, Snapshot, State

from .ec2_undo import UNDO
from .spec import (
    Footprint,
    FootprintTooLarge,
    Limits,
    Place,
    Resolved,
    ToolFailure,
    Toolset,
    ToolSpec,
    judged_as_parent,
)

if TYPE_CHECKING:  # boto3-stubs: every EC2 call below is type-checked
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import IpPermissionTypeDef

RULE_SEP = "/rule/"
_GROUP_RES = "security-group/"
GROUP_ID_RE = re.compile(r"sg-[0-9a-f]{8,17}")
VPC_ID_RE = re.compile(r"vpc-[0-9a-f]{8,17}")
PREFIX_LIST_RE = re.compile(r"pl-[0-9a-f]{8,17}")
ACCOUNT_RE = re.compile(r"[0-9]{12}")
# AWS: VPC security group names and descriptions are up to 255 characters of
# a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*
_SG_TEXT = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*")
SG_TEXT_RULE = "letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*"
VOLATILE = frozenset({"network_interfaces", "referenced_by"})
PORTED = ("tcp", "udp")
ICMP = ("icmp", "icmpv6")
_PROTOCOL_NAMES = {"all": "-1", "-1": "-1", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
WEB_PORTS = ((80, 80), (443, 443))


# ---------------------------------------------------------------- addresses


def kind_of(address: str) -> str:
    return "ec2.security-group-rule" if RULE_SEP in address else "ec2.security-group"


def group_address(place: Place, group_id: str) -> str:
    return place.arn("ec2", _GROUP_RES + group_id)


def named_address(place: Place, vpc_id: str, name: str) -> str:
    """The address of a group that does not exist yet: by VPC and name (see the module docstring)."""
    return place.arn("ec2", f"{_GROUP_RES}{vpc_id}/{name}")


def _ports(protocol: str, from_port: int | None, to_port: int | None) -> str:
    if protocol in PORTED:
        return f"{from_port}-{to_port}"
    if protocol in ICMP:
        show = lambda p: "all" if p is None or p == -1 else str(p)  # noqa: E731
        return f"{show(from_port)}-{show(to_port)}"
    return "all"


def rule_key(state: State, account: str) -> str:
    """The canonical suffix of a rule (direction, protocol, ports, one peer) from its state."""
    head = f"{state['direction']}/{state['protocol']}/{_ports(state['protocol'], state.get('from_port'), state.get('to_port'))}"
    if state.get("cidr"):
        return f"{head}/cidr/{state['cidr']}"
    if state.get("ipv6_cidr"):
        return f"{head}/ipv6/{state['ipv6_cidr']}"
    if state.get("prefix_list_id"):
        return f"{head}/pl/{state['prefix_list_id']}"
    other = state.get("referenced_account")
    if other and other != account:
        return f"{head}/sg/{other}/{state['referenced_group']}"
    return f"{head}/sg/{state['referenced_group']}"


def rule_address(group: str, state: State) -> str:
    arn = parse_arn(group)
    return group + RULE_SEP + rule_key(state, arn.account if arn else "")


def _parse_group(address: str) -> tuple[str, str, str | None, str | None]:
    """(region, account, group id, None) of a group address, or (region, account, None, VPC/NAME)
    of one named by VPC and name."""
    arn = parse_arn(address)
    if arn is None or arn.service != "ec2" or not arn.resource.startswith(_GROUP_RES):
        raise ToolFailure(f"{address} is not an EC2 security group address", "")
    rest = arn.resource.removeprefix(_GROUP_RES)
    if GROUP_ID_RE.fullmatch(rest):
        return arn.region, arn.account, rest, None
    return arn.region, arn.account, None, rest


def _peer_group_in_key(key: str) -> str | None:
    """The referenced group id of a rule suffix (same account), if its peer is a group."""
    parts = key.split("/")
    if len(parts) == 5 and parts[3] == "sg" and GROUP_ID_RE.fullmatch(parts[4]):
        return parts[4]
    return None


# ---------------------------------------------------------------- arguments


class Arguments(BaseModel):
    """A tool's arguments: exactly the fields declared, never an unknown one."""

    model_config = ConfigDict(extra="forbid")


def _sg_text(value: str) -> str:
    if not _SG_TEXT.fullmatch(value):
        bad = next(c for c in value if not _SG_TEXT.fullmatch(c))
        raise ValueError(f"holds {bad!r}; AWS allows only {SG_TEXT_RULE} here: remove it")
    return value


def _group_name(value: str) -> str:
    _sg_text(value)
    if value.lower().startswith("sg-"):
        raise ValueError("starts with 'sg-', which AWS reserves for group ids: choose another name")
    if value == "default":
        raise ValueError("'default' is the name AWS gives every VPC's own default group: choose another name")
    if RULE_SEP in value:
        raise ValueError(
            f"holds '{RULE_SEP}', which separates a group from its rules in interlock's addresses"
        )
    return value


GroupName = Annotated[str, AfterValidator(_group_name)]
SgText = Annotated[str, AfterValidator(_sg_text)]

GROUP_REF = (
    "The security group: its id ('sg-0123abcd'), its ARN "
    "('arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123abcd') or its name (then give vpc_id "
    "when several VPCs hold a group of that name). It is resolved to its ARN before anything else."
)
VPC_REF = (
    "The VPC id ('vpc-0abc1234'); only used to find a group given by name (dropped once the group is "
    "resolved to its ARN)."
)


def _cidr4(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 CIDR block such as '10.0.0.0/8' ({exc})") from None
    return str(net)


def _cidr6(value: str) -> str:
    try:
        net = ipaddress.IPv6Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv6 CIDR block such as '2001:db8::/32' ({exc})") from None
    return net.compressed


def canonical_protocol(value: str) -> str:
    """AWS's protocol names: tcp, udp, icmp, icmpv6, -1 (all), or an IP protocol number 0-255."""
    v = str(value).strip().lower()
    v = _PROTOCOL_NAMES.get(v, v)
    if v in (*PORTED, *ICMP, "-1"):
        return v
    if v.isdigit() and 0 <= int(v) <= 255:
        return str(int(v))
    raise ValueError(
        f"{value!r} is not a protocol: use tcp, udp, icmp, icmpv6, -1 (all traffic) or a number 0-255"
    )


class Rule(Arguments):
    protocol: str = Field(
        description=(
            "'tcp', 'udp', 'icmp', 'icmpv6', '-1' (all traffic, all ports) or an IP protocol number "
            "('50'). Other protocols than tcp/udp/icmp/icmpv6 have no ports."
        ),
        max_length=8,
    )
    from_port: int | None = Field(
        None,
        ge=-1,
        le=65535,
        description="tcp/udp: the first port (0-65535); icmp: the ICMP type (-1: every type). Omit otherwise.",
    )
    to_port: int | None = Field(
        None,
        ge=-1,
        le=65535,
        description="tcp/udp: the last port (0-65535, >= from_port); icmp: the ICMP code (-1: every code).",
    )
    cidr: Annotated[str, AfterValidator(_cidr4)] | None = Field(
        None, description="An IPv4 CIDR block ('10.0.0.0/8', '0.0.0.0/0' is anyone). Give exactly one peer."
    )
    ipv6_cidr: Annotated[str, AfterValidator(_cidr6)] | None = Field(
        None, description="An IPv6 CIDR block ('2001:db8::/32', '::/0' is anyone). Give exactly one peer."
    )
    prefix_list_id: str | None = Field(
        None,
        description="A managed prefix list id ('pl-0123abcd'). Give exactly one peer.",
        pattern=f"^{PREFIX_LIST_RE.pattern}$",
    )
    group: str | None = Field(
        None,
        description=(
            "A security group of the same account as peer: its id, ARN or name (a name is looked up in the "
            "VPC of the group the rule is added to). Give exactly one peer."
        ),
        max_length=300,
    )
    description: SgText | None = Field(
        None,
        description=f"A description of the rule (up to 255 characters of {SG_TEXT_RULE}).",
        max_length=255,
    )

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        self.protocol = canonical_protocol(self.protocol)
        peers = [p for p in (self.cidr, self.ipv6_cidr, self.prefix_list_id, self.group) if p is not None]
        if len(peers) != 1:
            raise ValueError("give exactly one of 'cidr', 'ipv6_cidr', 'prefix_list_id' or 'group' per rule")
        if self.protocol in PORTED:
            if self.from_port is None or self.to_port is None or self.from_port < 0 or self.to_port < 0:
                raise ValueError(f"a {self.protocol} rule needs from_port and to_port (0-65535)")
            if self.from_port > self.to_port:
                raise ValueError(f"from_port {self.from_port} is above to_port {self.to_port}: swap them")
        elif self.protocol in ICMP:
            self.from_port = -1 if self.from_port is None else self.from_port
            self.to_port = -1 if self.to_port is None else self.to_port
            if self.from_port > 255 or self.to_port > 255:
                raise ValueError("an ICMP type and code are -1 to 255")
            if self.from_port == -1 and self.to_port != -1:
                raise ValueError("every ICMP type (from_port -1) means every code: set to_port to -1")
        else:
            if self.from_port not in (None, -1) or self.to_port not in (None, -1):
                raise ValueError(
                    f"protocol {self.protocol} has no ports (AWS opens every port for it): omit from_port and to_port"
                )
            self.from_port = self.to_port = None
        return self

    def state(self, direction: str, account: str) -> State:
        """The rule's state as a snapshot reads it (a group peer must already be resolved to an ARN)."""
        st: State = {
            "direction": direction,
            "protocol": self.protocol,
            "from_port": self.from_port,
            "to_port": self.to_port,
        }
        if self.cidr:
            st["cidr"] = self.cidr
        elif self.ipv6_cidr:
            st["ipv6_cidr"] = self.ipv6_cidr
        elif self.prefix_list_id:
            st["prefix_list_id"] = self.prefix_list_id
        else:
            assert self.group is not None
            arn = parse_arn(self.group)
            gid = arn.resource.removeprefix(_GROUP_RES) if arn else self.group
            st["referenced_group"] = gid
            st["referenced_account"] = arn.account if arn else account
        st["description"] = self.description or None
        return st


class ListGroups(Arguments):
    vpc_id: str | None = Field(
        None, description="Only the groups of this VPC ('vpc-0abc1234').", pattern=f"^{VPC_ID_RE.pattern}$"
    )
    name: str | None = Field(None, description="Only groups of this exact name.", max_length=255)
    max_results: int = Field(100, ge=5, le=1000, description="At most this many groups in one page (5-1000).")
    next_token: str | None = Field(
        None, description="The next_token of the previous page, to read the next page."
    )


class GroupRef(Arguments):
    group: str = Field(description=GROUP_REF, min_length=1, max_length=300)
    vpc_id: str | None = Field(None, description=VPC_REF, pattern=f"^{VPC_ID_RE.pattern}$")


class CreateGroup(Arguments):
    name: GroupName = Field(
        description=f"The group's name: 1-255 characters of {SG_TEXT_RULE}, not starting with 'sg-'.",
        min_length=1,
        max_length=255,
    )
    description: SgText = Field(
        description=f"The group's description (1-255 characters of {SG_TEXT_RULE}); AWS cannot change it later.",
        min_length=1,
        max_length=255,
    )
    vpc_id: str | None = Field(
        None,
        description=(
            "The VPC to create the group in: its id ('vpc-0abc1234') or ARN "
            "('arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0abc1234'); omitted: the region's default VPC. "
            "It is resolved to its ARN before anything else."
        ),
        pattern=r"^(vpc-[0-9a-f]{8,17}|arn:aws:ec2:[a-z0-9-]+:[0-9]{12}:vpc/vpc-[0-9a-f]{8,17})$",
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Tags for the group (at most 50; keys 1-128 characters not starting with 'aws:', values up to 256).",
        max_length=50,
    )

    @model_validator(mode="after")
    def _tags(self) -> CreateGroup:
        for k, v in self.tags.items():
            if not 1 <= len(k) <= 128 or k.lower().startswith("aws:") or len(v) > 256:
                raise ValueError(
                    f"tag {k!r}: keys are 1-128 characters not starting with 'aws:', values at most 256 characters"
                )
            bad = next((c for c in k + v if not _xml_char(c)), None)
            if bad is not None:
                raise ValueError(f"tag {k!r} holds {bad!r}: EC2 tags cannot hold control characters")
        return self


def _xml_char(c: str) -> bool:
    """A character EC2's XML answers can carry (XML 1.0's Char; moto sends others back as is, in XML
    no parser reads)."""
    n = ord(c)
    return (
        c in "\t\n\r"
        or (0x20 <= n <= 0xD7FF and not 0x7F <= n <= 0x9F)
        or 0xE000 <= n <= 0xFFFD
        or 0x10000 <= n <= 0x10FFFF
    )


class DeleteGroup(GroupRef):
    pass


class ChangeRules(GroupRef):
    rules: list[Rule] = Field(
        description="The rules, each one protocol, one port range and exactly one peer (a CIDR, an IPv6 CIDR, a prefix list or a group).",
        min_length=1,
        max_length=60,
    )

    @model_validator(mode="after")
    def _distinct(self) -> ChangeRules:
        keys = [rule_key(r.state("ingress", ""), "") for r in self.rules]
        if len(keys) != len(set(keys)):
            raise ValueError("the same rule is listed twice: list each rule once")
        return self


class AuthorizeIngress(ChangeRules):
    pass


class RevokeIngress(ChangeRules):
    pass


class AuthorizeEgress(ChangeRules):
    pass


class RevokeEgress(ChangeRules):
    pass


def _direction(args: Any) -> Literal["ingress", "egress"]:
    return "egress" if isinstance(args, AuthorizeEgress | RevokeEgress) else "ingress"


# ---------------------------------------------------------------- canonical names


def _arn_group(ref: str, place: Place) -> str:
    arn = parse_arn(ref)
    if arn is None or arn.service != "ec2" or not arn.resource.startswith(_GROUP_RES):
        raise ToolFailure(
            f"{ref!r} is not a security group ARN (arn:aws:ec2:REGION:ACCOUNT:security-group/sg-...)",
            "pass the group's id, ARN or name",
        )
    gid = arn.resource.removeprefix(_GROUP_RES)
    if not GROUP_ID_RE.fullmatch(gid):
        raise ToolFailure(f"{ref!r} does not name a group id (sg-...)", "pass the group's id, ARN or name")
    place.own(arn, "security groups")
    return group_address(place, gid)


def resolve_group(client: EC2Client, ref: str, vpc_id: str | None, place: Place) -> str:
    """A group given by id, ARN or name, as its ARN in the target's account and region."""
    if ref.startswith("arn:"):
        return _arn_group(ref, place)
    if GROUP_ID_RE.fullmatch(ref):
        return group_address(place, ref)
    filters: list[Any] = [{"Name": "group-name", "Values": [ref]}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    found = client.describe_security_groups(Filters=filters).get("SecurityGroups", [])
    if not found:
        where = f" in {vpc_id}" if vpc_id else ""
        raise ToolFailure(
            f"no security group named {ref!r}{where} in target {place.target!r}",
            "check the name with list_ec2_security_groups",
        )
    if len(found) > 1:
        vpcs = ", ".join(sorted(str(g.get("VpcId")) for g in found))
        raise ToolFailure(
            f"{len(found)} security groups are named {ref!r} (in {vpcs})",
            "pass vpc_id, or the group's id or ARN",
        )
    return group_address(place, str(found[0]["GroupId"]))


def default_vpc(client: EC2Client, place: Place) -> str:
    vpcs = client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}]).get("Vpcs", [])
    if not vpcs:
        raise ToolFailure(
            f"region {place.region} of target {place.target!r} has no default VPC", "pass vpc_id"
        )
    return str(vpcs[0]["VpcId"])


def _group_vpc(client: EC2Client, arn: str) -> str | None:
    gid = _parse_group(arn)[2]
    found = client.describe_security_groups(Filters=[{"Name": "group-id", "Values": [gid or ""]}])
    groups = found.get("SecurityGroups", [])
    return str(groups[0].get("VpcId")) if groups else None


def canonical(client: EC2Client, args: Any, place: Place) -> Any:
    """Every group named by its ARN (a name is looked up in production); a create's VPC is set
    (the default VPC when omitted) and must exist. Idempotent on its own output."""
    if isinstance(args, CreateGroup):
        vpc = args.vpc_id or default_vpc(client, place)
        if vpc.startswith("arn:"):
            vplace, vpc = _vpc_of(vpc)
            if (vplace.account, vplace.region) != (place.account, place.region):
                raise ToolFailure(
                    f"{args.vpc_id} is in account {vplace.account} region {vplace.region}, but target "
                    f"{place.target!r} is account {place.account} region {place.region}",
                    "name a VPC of the target's own account and region",
                )
        client.describe_vpcs(VpcIds=[vpc])  # InvalidVpcID.NotFound: refused before anything is planned
        return args.model_copy(update={"vpc_id": place.arn("ec2", f"vpc/{vpc}")})
    if not isinstance(args, GroupRef):
        return args
    arn = resolve_group(client, args.group, args.vpc_id, place)
    update: dict[str, Any] = {"group": arn, "vpc_id": None}
    if isinstance(args, ChangeRules):
        home: str | None = None
        rules = []
        for rule in args.rules:
            if (
                rule.group is not None
                and not rule.group.startswith("arn:")
                and not GROUP_ID_RE.fullmatch(rule.group)
            ):
                home = home or _group_vpc(client, arn)
                rule = rule.model_copy(update={"group": resolve_group(client, rule.group, home, place)})
            elif rule.group is not None:
                rule = rule.model_copy(update={"group": resolve_group(client, rule.group, None, place)})
            rules.append(rule)
        update["rules"] = rules
    return args.model_copy(update=update)


# ---------------------------------------------------------------- footprints


def _place_of(arn: str) -> Place:
    region, account, _, _ = _parse_group(arn)
    return Place(target="", region=region, account=account)


def group_fp(arn: str, rules: bool) -> Footprint:
    return Footprint((arn,), (arn + RULE_SEP,) if rules else ())


def rules_fp(args: ChangeRules) -> Footprint:
    account = _place_of(args.group).account or ""
    direction = _direction(args)
    return Footprint(
        (args.group, *(rule_address(args.group, r.state(direction, account)) for r in args.rules))
    )


def _vpc_of(vpc_arn: str) -> tuple[Place, str]:
    arn = parse_arn(vpc_arn)
    if arn is None or not arn.resource.startswith("vpc/"):
        raise ToolFailure(f"{vpc_arn!r} is not a VPC ARN", "pass the VPC's id or ARN")
    return Place(target="", region=arn.region, account=arn.account), arn.resource.removeprefix("vpc/")


def create_fp(args: CreateGroup) -> Footprint:
    """A group to create, by VPC and name (its ARN cannot hold the id it does not have yet), and
    every rule it will have (AWS gives a new group its default egress rule)."""
    assert args.vpc_id is not None
    place, vpc = _vpc_of(args.vpc_id)
    return group_fp(named_address(place, vpc, args.name), rules=True)


# ---------------------------------------------------------------- snapshots


def _rule_states(group: Any, account: str) -> list[State]:
    """Every rule of a described group, one peer each."""
    out: list[State] = []
    for direction, perms in (
        ("ingress", group.get("IpPermissions", [])),
        ("egress", group.get("IpPermissionsEgress", [])),
    ):
        for perm in perms:
            protocol = canonical_protocol(str(perm.get("IpProtocol", "-1")))
            if protocol in PORTED or protocol in ICMP:
                from_port, to_port = perm.get("FromPort"), perm.get("ToPort")
                if protocol in ICMP:
                    from_port = -1 if from_port is None else from_port
                    to_port = -1 if to_port is None else to_port
            else:
                from_port = to_port = None
            base: State = {
                "direction": direction,
                "protocol": protocol,
                "from_port": from_port,
                "to_port": to_port,
            }
            peers: list[State] = []
            peers += [
                {"cidr": r["CidrIp"], "description": r.get("Description")} for r in perm.get("IpRanges", [])
            ]
            peers += [
                {"ipv6_cidr": r["CidrIpv6"], "description": r.get("Description")}
                for r in perm.get("Ipv6Ranges", [])
            ]
            peers += [
                {"prefix_list_id": r["PrefixListId"], "description": r.get("Description")}
                for r in perm.get("PrefixListIds", [])
            ]
            peers += [
                {
                    "referenced_group": p.get("GroupId"),
                    "referenced_account": p.get("UserId") or account,
                    "description": p.get("Description"),
                }
                for p in perm.get("UserIdGroupPairs", [])
            ]
            for peer in peers:
                st = {**base, **peer}
                st["description"] = st.get("description") or None
                out.append(st)
    return out


def _group_state(group: Any) -> State:
    return {
        "name": group.get("GroupName"),
        "vpc_id": group.get("VpcId"),
        "description": group.get("Description"),
        "tags": {t["Key"]: t.get("Value", "") for t in group.get("Tags", [])},
    }


def _describe(client: EC2Client, filters: list[Any]) -> list[Any]:
    out: list[Any] = []
    for page in client.get_paginator("describe_security_groups").paginate(Filters=filters):
        out += page.get("SecurityGroups", [])
    return out


def _dependents(client: EC2Client, ids: list[str]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """What keeps AWS from deleting these groups: network interfaces using them, and other groups
    whose rules reference them."""
    enis: dict[str, int] = {g: 0 for g in ids}
    paginator = client.get_paginator("describe_network_interfaces")
    for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": ids}]):
        for eni in page.get("NetworkInterfaces", []):
            for g in eni.get("Groups", []):
                if g.get("GroupId") in enis:
                    enis[str(g["GroupId"])] += 1
    refs: dict[str, set[str]] = {g: set() for g in ids}
    for name in ("ip-permission.group-id", "egress.ip-permission.group-id"):
        for other in _describe(client, [{"Name": name, "Values": ids}]):
            for perm in [*other.get("IpPermissions", []), *other.get("IpPermissionsEgress", [])]:
                for pair in perm.get("UserIdGroupPairs", []):
                    gid = pair.get("GroupId")
                    if gid in refs and gid != other.get("GroupId"):
                        refs[str(gid)].add(str(other["GroupId"]))
    return enis, {g: sorted(r) for g, r in refs.items()}


def snapshot(client: EC2Client, fp: Footprint, limits: Limits) -> Snapshot:
    states: dict[str, State | None] = {}
    context_rules: dict[str, State] = {}
    with_rules = {p.removesuffix(RULE_SEP) for p in fp.prefixes}
    groups: dict[str, str] = {}  # group address -> group id (None: named)
    named: dict[str, tuple[str, str]] = {}  # group address -> (vpc, name)
    exact_rules: dict[str, str] = {}  # rule address -> its group's address
    for address in (*fp.addresses, *with_rules):
        group, sep, _ = address.partition(RULE_SEP)
        _, _, gid, rest = _parse_group(group)
        if sep:
            exact_rules[address] = group
        if gid is not None:
            groups[group] = gid
        elif rest is not None:
            vpc, _, name = rest.partition("/")
            named[group] = (vpc, name)
    found: dict[str, Any] = {}  # group address -> described group
    if groups:
        by_id = {
            g["GroupId"]: g
            for g in _describe(client, [{"Name": "group-id", "Values": sorted(set(groups.values()))}])
        }
        found.update({a: by_id[gid] for a, gid in groups.items() if gid in by_id})
    for address, (vpc, name) in named.items():
        hits = _describe(
            client, [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": [name]}]
        )
        if hits:
            found[address] = hits[0]
    total = 0
    for address in (*groups, *named):
        described = found.get(address)
        if address in fp.addresses or address in with_rules:
            states[address] = _group_state(described) if described is not None else None
        if described is None:
            continue
        account = _place_of(address).account or ""
        for st in _rule_states(described, account):
            addr = rule_address(address, st)
            if address in with_rules or addr in exact_rules:
                states[addr] = st
            elif limits.context and address in groups:
                context_rules[addr] = st
            total += 1
        if total > limits.max_objects:
            raise FootprintTooLarge(
                f"the security groups of this call hold more than {limits.max_objects} rules, the rehearsal limit",
                "split the call into several plans",
            )
    for addr in exact_rules:
        states.setdefault(addr, None)
    context: dict[str, Any] = {}
    if limits.context:
        present = {a: gid for a, gid in groups.items() if states.get(a) is not None}
        # A group named by VPC and name that exists (a rollback deleting the group a create made)
        # is judged as any other: AWS refuses to delete it while it is in use.
        present |= {a: str(found[a]["GroupId"]) for a in named if states.get(a) is not None and a in found}
        if present:
            enis, refs = _dependents(client, sorted(set(present.values())))
            for a, gid in present.items():
                group_state = states[a]
                assert group_state is not None
                group_state["network_interfaces"] = enis.get(gid, 0)
                group_state["referenced_by"] = refs.get(gid, [])
        context = _context(client, states, context_rules, found, groups, named)
    return Snapshot(states=states, context=context)


def _context(
    client: EC2Client,
    states: dict[str, State | None],
    context_rules: dict[str, State],
    found: dict[str, Any],
    groups: dict[str, str],
    named: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    """What the sandbox needs to decide the call as production would: the VPCs (id, CIDR, IPv6),
    the other rules of the footprint's groups, and the groups their rules reference."""
    vpc_ids = {str(g.get("VpcId")) for g in found.values() if g.get("VpcId")}
    vpc_ids |= {vpc for vpc, _ in named.values()}
    own = set(groups.values())
    referenced: set[str] = set()
    for addr, st in [*states.items(), *context_rules.items()]:
        if st is not None and st.get("referenced_group") and kind_of(addr).endswith("rule"):
            referenced.add(str(st["referenced_group"]))
    for addr in states:
        group, sep, key = addr.partition(RULE_SEP)
        if sep and (peer := _peer_group_in_key(key)):
            referenced.add(peer)
    others: dict[str, Any] = {}
    missing = sorted(referenced - own)
    if missing:
        for g in _describe(client, [{"Name": "group-id", "Values": missing}]):
            others[str(g["GroupId"])] = {**_group_state(g), "vpc_id": g.get("VpcId")}
            if g.get("VpcId"):
                vpc_ids.add(str(g["VpcId"]))
    vpcs: dict[str, Any] = {}
    if vpc_ids:
        try:
            described = client.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": sorted(vpc_ids)}]).get(
                "Vpcs", []
            )
        except Exception:  # pragma: no cover - a VPC deleted meanwhile: the rehearsal refuses
            described = []
        for v in described:
            vpcs[str(v["VpcId"])] = {
                "cidr": v.get("CidrBlock"),
                "ipv6": sorted(
                    a.get("Ipv6CidrBlock", "")
                    for a in v.get("Ipv6CidrBlockAssociationSet", [])
                    if (a.get("Ipv6CidrBlockState") or {}).get("State") in (None, "associated", "associating")
                ),
            }
    out: dict[str, Any] = {"vpcs": vpcs}
    if context_rules:
        out["rules"] = dict(sorted(context_rules.items()))
    if others:
        out["groups"] = others
    return out


# ---------------------------------------------------------------- execute


def _permission(rule: State) -> IpPermissionTypeDef:
    perm: dict[str, Any] = {"IpProtocol": rule["protocol"]}
    if rule.get("from_port") is not None:
        perm["FromPort"] = rule["from_port"]
        perm["ToPort"] = rule["to_port"]
    desc = {"Description": rule["description"]} if rule.get("description") else {}
    if rule.get("cidr"):
        perm["IpRanges"] = [{"CidrIp": rule["cidr"], **desc}]
    elif rule.get("ipv6_cidr"):
        perm["Ipv6Ranges"] = [{"CidrIpv6": rule["ipv6_cidr"], **desc}]
    elif rule.get("prefix_list_id"):
        perm["PrefixListIds"] = [{"PrefixListId": rule["prefix_list_id"], **desc}]
    else:
        perm["UserIdGroupPairs"] = [{"GroupId": rule["referenced_group"], **desc}]
    return perm  # type: ignore[return-value]


def _group_id(arn: str) -> str:
    gid = _parse_group(arn)[2]
    assert gid is not None
    return gid


def _current_rules(client: EC2Client, arn: str) -> dict[str, State]:
    groups = _describe(client, [{"Name": "group-id", "Values": [_group_id(arn)]}])
    account = _place_of(arn).account or ""
    return {rule_address(arn, st): st for g in groups for st in _rule_states(g, account)}


def _planned_rules(args: ChangeRules) -> dict[str, State]:
    account = _place_of(args.group).account or ""
    direction = _direction(args)
    return {rule_address(args.group, st): st for st in (r.state(direction, account) for r in args.rules)}


def _check_rules(client: EC2Client, args: ChangeRules, present: bool) -> None:
    """After the call, every planned rule is there as asked (authorize) or gone (revoke). An
    emulator that accepted the call without doing it (moto drops prefix-list rule descriptions,
    and ignores an IPv6 egress revoke in a VPC without IPv6) is refused here, never shown as
    "no changes"."""
    now = _current_rules(client, args.group)
    for addr, want in _planned_rules(args).items():
        got = now.get(addr)
        if present and (got is None or got.get("description") != want.get("description")):
            raise ToolFailure(
                f"authorizing {addr} did not leave the rule as asked (the service answered success but "
                f"holds {got!r}); the emulator does not implement this rule faithfully",
                "interlock refuses rather than guess; add the rule without a description, or another way",
            )
        if not present and got is not None:
            raise ToolFailure(
                f"revoking {addr} left the rule in place although the service answered success; the emulator "
                "does not implement this revoke",
                "interlock refuses rather than guess; revoke it another way",
            )


def exec_authorize(client: EC2Client, args: ChangeRules, resolved: Resolved) -> dict[str, Any]:
    perms = [_permission(st) for st in _planned_rules(args).values()]
    if isinstance(args, AuthorizeEgress):
        client.authorize_security_group_egress(GroupId=_group_id(args.group), IpPermissions=perms)
    else:
        client.authorize_security_group_ingress(GroupId=_group_id(args.group), IpPermissions=perms)
    _check_rules(client, args, present=True)
    return {"authorized": len(perms)}


def exec_revoke(client: EC2Client, args: ChangeRules, resolved: Resolved) -> dict[str, Any]:
    planned = _planned_rules(args)
    perms = [_permission({**st, "description": None}) for st in planned.values()]
    if isinstance(args, RevokeEgress):
        resp: Any = client.revoke_security_group_egress(GroupId=_group_id(args.group), IpPermissions=perms)
    else:
        resp = client.revoke_security_group_ingress(GroupId=_group_id(args.group), IpPermissions=perms)
    if resp.get("UnknownIpPermissions"):
        raise ToolFailure(
            f"{args.group} holds no rule like {resp['UnknownIpPermissions'][:3]}",
            "check the rules with get_ec2_security_group",
        )
    _check_rules(client, args, present=False)
    return {"revoked": len(perms)}


def exec_create(client: EC2Client, args: CreateGroup, resolved: Resolved) -> dict[str, Any]:
    assert args.vpc_id is not None
    kw: dict[str, Any] = {
        "GroupName": args.name,
        "Description": args.description,
        "VpcId": _vpc_of(args.vpc_id)[1],
    }
    if args.tags:
        kw["TagSpecifications"] = [
            {"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in args.tags.items()]}
        ]
    client.create_security_group(**kw)
    return {}


def exec_delete(client: EC2Client, args: DeleteGroup, resolved: Resolved) -> dict[str, Any]:
    planned = resolved.planned(args.group) or {}
    # What AWS refuses and moto does not: a VPC's default group, a group in use by network
    # interfaces, a group other groups' rules reference (DependencyViolation). Decided on the
    # baseline read from production, so the plan is refused instead of rehearsing a delete AWS
    # would not do.
    if planned.get("name") == "default":
        raise ToolFailure(
            f"{args.group} is its VPC's default security group, which AWS does not delete",
            "revoke its rules instead",
        )
    if planned.get("network_interfaces"):
        raise ToolFailure(
            f"{args.group} is in use by {planned['network_interfaces']} network interface(s); AWS refuses to "
            "delete it (DependencyViolation)",
            "move the instances or interfaces to another group first",
        )
    if planned.get("referenced_by"):
        raise ToolFailure(
            f"{args.group} is referenced by the rules of {', '.join(planned['referenced_by'])}; AWS refuses to "
            "delete it (DependencyViolation)",
            "revoke those rules first",
        )
    client.delete_security_group(GroupId=_group_id(args.group))
    return {}


# ---------------------------------------------------------------- reads


def _rule_view(arn: str, st: State) -> dict[str, Any]:
    return {"address": rule_address(arn, st), **{k: v for k, v in st.items() if v is not None}}


def read_list(client: EC2Client, a: ListGroups, limits: Limits) -> dict[str, Any]:
    kw: dict[str, Any] = {"MaxResults": a.max_results}
    filters: list[Any] = []
    if a.vpc_id:
        filters.append({"Name": "vpc-id", "Values": [a.vpc_id]})
    if a.name:
        filters.append({"Name": "group-name", "Values": [a.name]})
    if filters:
        kw["Filters"] = filters
    if a.next_token:
        kw["NextToken"] = a.next_token
    resp = client.describe_security_groups(**kw)
    out = []
    for g in resp.get("SecurityGroups", []):
        out.append(
            {
                "arn": g.get("SecurityGroupArn")
                or f"arn:aws:ec2:{client.meta.region_name}:{g.get('OwnerId')}:security-group/{g.get('GroupId')}",
                "group_id": g.get("GroupId"),
                **_group_state(g),
                "ingress_rules": len([s for s in _rule_states(g, "") if s["direction"] == "ingress"]),
                "egress_rules": len([s for s in _rule_states(g, "") if s["direction"] == "egress"]),
            }
        )
    return {"groups": out, "next_token": resp.get("NextToken")}


def read_group(client: EC2Client, a: GroupRef, limits: Limits) -> dict[str, Any]:
    groups = _describe(client, [{"Name": "group-id", "Values": [_group_id(a.group)]}])
    if not groups:
        raise ToolFailure(f"{a.group} does not exist", "check the group with list_ec2_security_groups")
    g = groups[0]
    account = _place_of(a.group).account or ""
    rules = [_rule_view(a.group, st) for st in _rule_states(g, account)]
    return {
        "arn": a.group,
        "group_id": g.get("GroupId"),
        **_group_state(g),
        "ingress": [r for r in rules if r["direction"] == "ingress"],
        "egress": [r for r in rules if r["direction"] == "egress"],
    }


# ---------------------------------------------------------------- risks


# A public (non-private) block at least this large is "anyone": 0.0.0.0/1 + 128.0.0.0/1 is the
# internet in two rules, and covering it with blocks smaller than these takes hundreds of rules.
WORLD_PREFIX_V4 = 8
WORLD_PREFIX_V6 = 16
# A tcp/udp range missing fewer ports than this (1-65535, 0-65534) is every port.
ALL_PORTS_SPAN = 65536 - 1024


def _world(st: State) -> bool:
    """Whether a rule's peer is anyone: 0.0.0.0/0 or ::/0, or a public block so large that it is
    most of the internet (IPv4 /8 or wider, IPv6 /16 or wider, not a private range)."""
    for key, widest in (("cidr", WORLD_PREFIX_V4), ("ipv6_cidr", WORLD_PREFIX_V6)):
        value = st.get(key)
        if not value:
            continue
        try:
            net = ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            return True  # unreadable: judged as the widest
        if net.prefixlen == 0 or (net.prefixlen <= widest and not net.is_private):
            return True
    return False


def _all_ports(st: State) -> bool:
    if st.get("protocol") == "-1":
        return True
    if st.get("protocol") not in PORTED:
        return False
    low, high = st.get("from_port"), st.get("to_port")
    return isinstance(low, int) and isinstance(high, int) and high - low + 1 >= ALL_PORTS_SPAN


def rule_risks(st: State) -> list[str]:
    """The flags one ingress rule that is opened raises: ``public-exposure`` (anyone, 0.0.0.0/0 or
    ::/0 or a public block of most of the internet such as 0.0.0.0/1, on a port other than 80 or
    443: another tcp/udp port or range, all traffic, or a protocol without ports; ICMP is not a
    port and is not flagged), ``all-ports`` (protocol -1 or a tcp/udp range of every port, or of
    all but fewer than 1024 such as 1-65535, whoever the peer). Egress rules raise neither: every new group's default egress rule
    is all traffic to 0.0.0.0/0."""
    if st.get("direction") != "ingress":
        return []
    out = []
    protocol = st.get("protocol")
    if _world(st) and protocol not in ICMP:
        ported = protocol in PORTED and (st.get("from_port"), st.get("to_port")) in WEB_PORTS
        if not ported:
            out.append("public-exposure")
    if _all_ports(st):
        out.append("all-ports")
    return out


def risks(changes: list[Change]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for c in changes:
        if c.kind != "ec2.security-group-rule" or c.action not in (
            Action.CREATE,
            Action.REPLACE,
            Action.UPDATE,
        ):
            continue
        for flag in rule_risks(c.after or {}):
            what = "is opened to anyone on the internet" if flag == "public-exposure" else "opens every port"
            out.append((flag, f"{c.address} {what}"))
    return out


# ---------------------------------------------------------------- approval screen


def describe_rule(st: State) -> str:
    """A rule in one line: 'ingress tcp 22-22 from 0.0.0.0/0'."""
    protocol = st.get("protocol")
    ports = "all ports" if protocol == "-1" else _ports(str(protocol), st.get("from_port"), st.get("to_port"))
    peer = st.get("cidr") or st.get("ipv6_cidr") or st.get("prefix_list_id") or st.get("referenced_group")
    way = "from" if st.get("direction") == "ingress" else "to"
    return f"{st.get('direction')} {'all traffic' if protocol == '-1' else protocol} {ports} {way} {peer}"


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    if kind == "ec2.security-group-rule":
        bits = [describe_rule(state)]
        if state.get("description"):
            bits.append(str(state["description"]))
        return bits, frozenset(
            {
                "direction",
                "protocol",
                "from_port",
                "to_port",
                "cidr",
                "ipv6_cidr",
                "prefix_list_id",
                "referenced_group",
                "referenced_account",
                "description",
            }
        )
    if kind == "ec2.security-group":
        bits = [str(state.get("name")), str(state.get("vpc_id"))]
        if state.get("tags"):
            bits.append(f"{len(state['tags'])} tag(s)")
        if state.get("network_interfaces"):
            bits.append(f"used by {state['network_interfaces']} network interface(s)")
        if state.get("referenced_by"):
            bits.append("referenced by " + ", ".join(state["referenced_by"]))
        return bits, frozenset({"name", "vpc_id", "network_interfaces", "referenced_by"})
    return None


def confirm_name(fp: Footprint) -> str | None:
    """What the approver types for a destructive or novel plan: the group's id (or the name of a
    group to be created)."""
    for address in (*fp.addresses, *fp.prefixes):
        try:
            _, _, gid, rest = _parse_group(address.partition(RULE_SEP)[0].removesuffix("/rule"))
        except ToolFailure:
            continue
        return gid or (rest or "").partition("/")[2] or None
    return None


def read_addresses(a: Any) -> list[str]:
    group = getattr(a, "group", None)
    if group and group.startswith("arn:"):
        return [group, group + RULE_SEP + "*"]
    return ["arn:aws:ec2:*"]


TOOLSET = Toolset(
    name="ec2",
    target_kind="aws",
    service="ec2",
    snapshot=snapshot,
    volatile=VOLATILE,
    kind_of=kind_of,
    canonical=canonical,
    risks=risks,
    summarize=summarize,
    confirm_name=confirm_name,
    address_prefix="arn:aws:ec2:",
    risk_flags=("public-exposure", "all-ports"),
    child_separator=RULE_SEP,
    judged_as=judged_as_parent(RULE_SEP),
    read_addresses=read_addresses,
    account_scoped=True,
    undo=UNDO,
    error_hints={
        "InvalidGroup.NotFound": "check the group with list_ec2_security_groups",
        "InvalidGroupId.Malformed": "a group id looks like 'sg-0123abcd'",
        "InvalidGroup.Duplicate": "a group of that name exists in the VPC already; use it, or choose another name",
        "InvalidPermission.Duplicate": "the rule exists already; nothing to add",
        "InvalidPermission.NotFound": "the group has no such rule; check its rules with get_ec2_security_group",
        "InvalidVpcID.NotFound": "check the VPC id",
        "DependencyViolation": "the group is still in use (network interfaces, or other groups' rules)",
        "RulesPerSecurityGroupLimitExceeded": "the group holds as many rules as AWS allows; remove some first",
        "CannotDelete": "a VPC's default group cannot be deleted",
    },
)
_read = TOOLSET.read
_write = TOOLSET.write


SPECS: tuple[ToolSpec, ...] = (
    _read(
        "list_ec2_security_groups",
        "List EC2 security groups",
        "List the security groups of the target's region (optionally of one VPC, or of one name), one page "
        "at a time, with their ARNs and rule counts.",
        ListGroups,
        read_list,
        listed=lambda a, r: ("groups", [g["arn"] for g in r.get("groups", [])]),
    ),
    _read(
        "get_ec2_security_group",
        "Get an EC2 security group",
        "Read one security group and every rule of it (ingress and egress), each rule with its address.",
        GroupRef,
        read_group,
    ),
    _write(
        "create_ec2_security_group",
        "Create an EC2 security group",
        "Create a security group in a VPC (AWS gives it the default egress rule: all traffic to 0.0.0.0/0). "
        "Its id is known once applied: read it with get_ec2_security_group by name.",
        CreateGroup,
        create_fp,
        exec_create,
    ),
    _write(
        "delete_ec2_security_group",
        "Delete an EC2 security group",
        "Delete a security group with all its rules. Refused while network interfaces use it or other "
        "groups' rules reference it, and for a VPC's default group (as AWS refuses them).",
        DeleteGroup,
        lambda a: group_fp(a.group, rules=True),
        exec_delete,
        destructive=True,
    ),
    _write(
        "authorize_ec2_security_group_ingress",
        "Authorize security group ingress",
        "Add inbound rules to a security group; each rule is one protocol, one port range and one peer.",
        AuthorizeIngress,
        rules_fp,
        exec_authorize,
    ),
    _write(
        "revoke_ec2_security_group_ingress",
        "Revoke security group ingress",
        "Remove inbound rules from a security group (each named as it was added: protocol, ports, peer).",
        RevokeIngress,
        rules_fp,
        exec_revoke,
        destructive=True,
    ),
    _write(
        "authorize_ec2_security_group_egress",
        "Authorize security group egress",
        "Add outbound rules to a security group; each rule is one protocol, one port range and one peer.",
        AuthorizeEgress,
        rules_fp,
        exec_authorize,
    ),
    _write(
        "revoke_ec2_security_group_egress",
        "Revoke security group egress",
        "Remove outbound rules from a security group (each named as it was added: protocol, ports, peer).",
        RevokeEgress,
        rules_fp,
        exec_revoke,
        destructive=True,
    ),
)
