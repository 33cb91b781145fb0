"""Undo for the EC2 security-group toolset: rules are put back exactly; a deleted group comes back
under a new id.

- A rule a plan authorized is revoked; a rule a plan revoked is authorized again, with its
  description (AWS gives it a new security group rule id, ``sgr-…``; nothing of interlock's names
  rules by that id). A rule's description changed since is set back.
- A group a plan created (addressed by VPC and name) is deleted; refused, as AWS refuses it, while
  network interfaces use it or other groups' rules name it, and refused when it holds rules added
  since (deleting it would remove them too, and the rollback touches only what the plan changed).
- A group a plan deleted is created again in its VPC with its name, description, tags and every
  rule it had. AWS gives it a **new group id**: whatever named the old id (instances and network
  interfaces, launch templates, other groups' rules, templates and scripts) does not reach the new
  group. So ``keep`` adds the group and its rules to the pre-image a second time, under the
  address of a group named by VPC and name (as a create's plan names one), and the rollback plan
  shows them created there; the old id's addresses stay absent. A rule of the group that named the
  group itself cannot come back as it was (the id it names is gone): irreversible, said so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlock.sandbox.diff import Action, Change, Snapshot, State

from . import ec2 as g
from .spec import Limits, Place, Resolved, ToolFailure
from .undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage, Undo, changed, keep_states

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

GROUP = "ec2.security-group"
RULE = "ec2.security-group-rule"
GROUP_FIELDS = ("name", "vpc_id", "description", "tags")


def _group_of(address: str) -> str:
    return address.partition(g.RULE_SEP)[0]


def _names_itself(group: str, rule: State) -> bool:
    """Whether a rule of ``group`` (an address by id) names the group itself as its peer."""
    _, account, gid, _ = g._parse_group(group)
    other = rule.get("referenced_account")
    return gid is not None and rule.get("referenced_group") == gid and other in (None, "", account)


def _named(group: str, state: State) -> str:
    region, account, _, _ = g._parse_group(group)
    return g.named_address(
        Place(target="", region=region, account=account), str(state["vpc_id"]), str(state["name"])
    )


# ---------------------------------------------------------------- marks


def marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    """Every change reversible from its state, with what a rollback changes said: a deleted group's
    new id; a rule of a deleted group that names the group itself is irreversible."""
    todo = changed(changes)
    deleted = {c.address for c in todo if g.kind_of(c.address) == GROUP and c.action is Action.DELETE}
    out: list[Mark] = []
    for c in todo:
        if g.kind_of(c.address) == GROUP:
            gid = g._parse_group(c.address)[2]
            if c.before is None:
                why = (
                    "deleted again; refused then while network interfaces use it, other groups' rules name it, "
                    "or it holds rules added since"
                )
            elif c.after is None and gid is not None:
                why = (
                    f"created again with its name, description, VPC, tags and rules, but under a new group id: "
                    f"whatever names {gid} by id (instances, network interfaces, launch templates, other groups' "
                    "rules, templates and scripts) does not reach the new group"
                )
            elif c.after is None:
                why = "created again with its name, description, VPC, tags and rules (AWS gives it a new group id)"
            else:
                why = "its tags are set back"
            out.append(Mark(c.address, REVERSIBLE, 0, why))
            continue
        group = _group_of(c.address)
        if c.before is None:
            out.append(Mark(c.address, REVERSIBLE, 0, "revoked again"))
        elif c.after is None and group in deleted and _names_itself(group, c.before):
            gid = g._parse_group(group)[2]
            out.append(
                Mark(
                    c.address,
                    IRREVERSIBLE,
                    0,
                    f"a rule naming its own group {gid} cannot be created again: the group comes back under a new id",
                )
            )
        elif c.after is None:
            where = " in the group created again" if group in deleted else ""
            out.append(Mark(c.address, REVERSIBLE, 0, f"authorized again{where}, with its description"))
        else:
            out.append(Mark(c.address, REVERSIBLE, 0, "its description is set back"))
    return out


# ---------------------------------------------------------------- keep


def keep(client: EC2Client, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    """The changed addresses' states, and for each group deleted by id its state and rules again
    under the address of a group named by VPC and name (where a rollback creates it); which old
    address each stands for is ``context["recreated"]``. And the group of each changed rule, as it is
    now, in ``context["referenced"]``: read and seeded, never restored."""
    pre = keep_states("ec2")(client, changes, current, limits)
    recreated: dict[str, str] = {}
    for c in changed(changes):
        if g.kind_of(c.address) != GROUP or c.action is not Action.DELETE:
            continue
        state = pre.states.get(c.address)
        if state is None or g._parse_group(c.address)[2] is None:
            continue  # a group named by VPC and name is created again at its own address
        named = _named(c.address, state)
        if named in pre.states:
            continue
        pre.states[named] = {k: state.get(k) for k in GROUP_FIELDS}
        head = c.address + g.RULE_SEP
        for address, rule in list(pre.states.items()):
            if address.startswith(head) and rule is not None and not _names_itself(c.address, rule):
                pre.states[g.rule_address(named, rule)] = dict(rule)
        recreated[c.address] = named
    if recreated:
        pre.context["recreated"] = recreated
    # The group of each changed rule, as it is now, so that a rollback reads it and the sandbox
    # holds it (with its other rules); never restored: a rule's plan did not change its group.
    referenced = sorted(
        {_group_of(a) for a in pre.states if g.kind_of(a) == RULE} - set(pre.states) - set(recreated.values())
    )
    for group in referenced:
        pre.states[group] = current.states.get(group)
    if referenced:
        pre.context["referenced"] = referenced
    return pre


# ---------------------------------------------------------------- restore


def _id_now(client: EC2Client, group: str) -> str | None:
    """The id the group of ``group``'s address has now (None: no such group)."""
    _, _, gid, rest = g._parse_group(group)
    if gid is not None:
        found = g._describe(client, [{"Name": "group-id", "Values": [gid]}])
    else:
        vpc, _, name = (rest or "").partition("/")
        found = g._describe(
            client, [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": [name]}]
        )
    return str(found[0]["GroupId"]) if found else None


def _rules_now(client: EC2Client, group: str, gid: str) -> dict[str, State]:
    account = g._parse_group(group)[1]
    found = g._describe(client, [{"Name": "group-id", "Values": [gid]}])
    return {g.rule_address(group, st): st for d in found for st in g._rule_states(d, account)}


def _permission(group: str, rule: State) -> Any:
    perm: Any = g._permission(rule)
    account = g._parse_group(group)[1]
    other = rule.get("referenced_account")
    if rule.get("referenced_group") and other and other != account:
        perm["UserIdGroupPairs"][0]["UserId"] = other  # a group of another account
    return perm


def _rule_ids(client: EC2Client, gid: str, group: str) -> dict[str, str]:
    """Each rule of the group by its address, as its security group rule id (``sgr-…``)."""
    account = g._parse_group(group)[1]
    out: dict[str, str] = {}
    paginator = client.get_paginator("describe_security_group_rules")
    for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": [gid]}]):
        for r in page.get("SecurityGroupRules", []):
            if r.get("GroupId") not in (None, gid):
                continue
            protocol = g.canonical_protocol(str(r.get("IpProtocol", "-1")))
            ported = protocol in (*g.PORTED, *g.ICMP)
            st: State = {
                "direction": "egress" if r.get("IsEgress") else "ingress",
                "protocol": protocol,
                "from_port": r.get("FromPort") if ported else None,
                "to_port": r.get("ToPort") if ported else None,
            }
            ref = r.get("ReferencedGroupInfo") or {}
            if r.get("CidrIpv4"):
                st["cidr"] = r["CidrIpv4"]
            elif r.get("CidrIpv6"):
                st["ipv6_cidr"] = r["CidrIpv6"]
            elif r.get("PrefixListId"):
                st["prefix_list_id"] = r["PrefixListId"]
            elif ref.get("GroupId"):
                st["referenced_group"] = ref["GroupId"]
                st["referenced_account"] = ref.get("UserId") or account
            else:
                continue
            if r.get("SecurityGroupRuleId"):
                out[g.rule_address(group, st)] = str(r["SecurityGroupRuleId"])
    return out


def _revoke(client: EC2Client, gid: str, group: str, rules: list[State]) -> None:
    """Revoke these rules, by their rule ids where the group's rules name them (a rule matched by
    its fields must match them all, its peer's description too, in some implementations)."""
    ids = _rule_ids(client, gid, group)
    for direction in ("ingress", "egress"):
        mine = [r for r in rules if r["direction"] == direction]
        by_id = [ids[a] for a in (g.rule_address(group, r) for r in mine) if a in ids]
        perms = [
            _permission(group, {**r, "description": None})
            for r in mine
            if g.rule_address(group, r) not in ids
        ]
        if direction == "ingress":
            if by_id:
                client.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=by_id)
            if perms:
                client.revoke_security_group_ingress(GroupId=gid, IpPermissions=perms)
        else:
            if by_id:
                client.revoke_security_group_egress(GroupId=gid, SecurityGroupRuleIds=by_id)
            if perms:
                client.revoke_security_group_egress(GroupId=gid, IpPermissions=perms)


def _authorize(client: EC2Client, gid: str, group: str, rules: list[State]) -> None:
    for direction in ("ingress", "egress"):
        perms = [_permission(group, r) for r in rules if r["direction"] == direction]
        if not perms:
            continue
        if direction == "ingress":
            client.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
        else:
            client.authorize_security_group_egress(GroupId=gid, IpPermissions=perms)


def _describe_again(client: EC2Client, gid: str, group: str, rules: list[State]) -> None:
    """Set each rule's description back: updated in place when it has one; a description removed
    is a revoke and an authorize (AWS has no call that removes only a description)."""
    for direction in ("ingress", "egress"):
        mine = [r for r in rules if r["direction"] == direction]
        kept = [_permission(group, r) for r in mine if r.get("description")]
        if kept and direction == "ingress":
            client.update_security_group_rule_descriptions_ingress(GroupId=gid, IpPermissions=kept)
        elif kept:
            client.update_security_group_rule_descriptions_egress(GroupId=gid, IpPermissions=kept)
    bare = [r for r in rules if not r.get("description")]
    if bare:
        _revoke(client, gid, group, bare)
        _authorize(client, gid, group, bare)


def _retag(client: EC2Client, gid: str, want: dict[str, str], have: dict[str, str]) -> None:
    gone = sorted(set(have) - set(want))
    if gone:
        client.delete_tags(Resources=[gid], Tags=[{"Key": k} for k in gone])
    put = [{"Key": k, "Value": v} for k, v in sorted(want.items()) if have.get(k) != v]
    if put:
        client.create_tags(Resources=[gid], Tags=put)  # type: ignore[arg-type]


def _create(client: EC2Client, group: str, want: State) -> str:
    kw: dict[str, Any] = {
        "GroupName": want["name"],
        "Description": want.get("description") or "",
        "VpcId": want["vpc_id"],
    }
    tags = dict(want.get("tags") or {})
    if tags:
        kw["TagSpecifications"] = [
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            }
        ]
    return str(client.create_security_group(**kw)["GroupId"])


def _delete(client: EC2Client, group: str, have: State, pre: PreImage) -> bool:
    """Delete a group the plan created; False when it is gone already."""
    if have.get("network_interfaces"):
        raise ToolFailure(
            f"{group} is in use by {have['network_interfaces']} network interface(s); AWS refuses to delete it",
            "move the instances or interfaces to another group first, then plan the rollback again",
        )
    if have.get("referenced_by"):
        raise ToolFailure(
            f"{group} is named by the rules of {', '.join(have['referenced_by'])}; AWS refuses to delete it",
            "revoke those rules first, then plan the rollback again",
        )
    gid = _id_now(client, group)
    if gid is None:
        return False
    added = sorted(a for a in _rules_now(client, group, gid) if a not in pre.states)
    if added:
        raise ToolFailure(
            f"{group} holds rules added after the plan was applied ({', '.join(added[:3])}"
            + (f" and {len(added) - 3} more" if len(added) > 3 else "")
            + "): deleting it would remove them too, and a rollback touches only what the plan changed",
            "revoke them first, or delete the group with delete_ec2_security_group, which plans it",
        )
    client.delete_security_group(GroupId=gid)
    return True


def restore(client: EC2Client, pre: PreImage, current: Resolved) -> dict[str, Any] | None:
    """Groups first (created again, or their tags set back), then each group's rules (revoked,
    authorized again, descriptions set back), then the groups a plan created (deleted)."""
    recreated: dict[str, str] = dict(pre.context.get("recreated") or {})
    referenced = set(pre.context.get("referenced") or [])
    groups = {a: st for a, st in pre.states.items() if g.kind_of(a) == GROUP and a not in referenced}
    rules: dict[str, dict[str, State | None]] = {}
    for a, st in pre.states.items():
        if g.kind_of(a) == RULE:
            rules.setdefault(_group_of(a), {})[a] = st
    done: dict[str, list[str]] = {}
    ids: dict[str, str] = {}
    created: set[str] = set()
    for group, want in groups.items():
        have = current.planned(group)
        if want is None or (have is None and group in recreated):
            continue
        if have is None:
            if g._parse_group(group)[2] is not None:
                raise ToolFailure(
                    f"{group} was deleted, and a security group cannot come back under its id",
                    "create it again by name with create_ec2_security_group",
                )
            ids[group] = _create(client, group, want)
            created.add(group)
            done.setdefault("created", []).append(group)
            continue
        if (want.get("description") or "") != (have.get("description") or ""):
            raise ToolFailure(
                f"{group} is another group now (its description is {have.get('description')!r}, not "
                f"{want.get('description')!r}), and AWS cannot change a group's description",
                "put it back by hand",
            )
        want_tags, have_tags = dict(want.get("tags") or {}), dict(have.get("tags") or {})
        if want_tags != have_tags:
            gid = _id_now(client, group)
            if gid is None:
                raise ToolFailure(f"{group} does not exist now", "plan the rollback again")
            _retag(client, gid, want_tags, have_tags)
            done.setdefault("retagged", []).append(group)
    for group, wanted in rules.items():
        if group in groups and groups[group] is None:
            continue  # a group the plan made: its rules go with it
        if group in recreated and current.planned(group) is None:
            continue  # its rules are put back in the group created again by name
        gid = ids.get(group) or _id_now(client, group)
        if gid is None:
            if all(w is None for w in wanted.values()):
                continue
            raise ToolFailure(
                f"{group} does not exist now, so its rules cannot be put back", "plan the rollback again"
            )
        have_rules = _rules_now(client, group, gid)
        revoke = [have_rules[a] for a, w in wanted.items() if w is None and a in have_rules]
        if group in created:  # exactly the kept rules: AWS gives a new group its default egress rule
            revoke += [st for a, st in have_rules.items() if a not in wanted]
        add = [w for a, w in wanted.items() if w is not None and a not in have_rules]
        relabel = [
            w
            for a, w in wanted.items()
            if w is not None
            and a in have_rules
            and (have_rules[a].get("description") or None) != (w.get("description") or None)
        ]
        if revoke:
            _revoke(client, gid, group, revoke)
            done.setdefault("revoked", []).extend(g.rule_address(group, r) for r in revoke)
        if add:
            _authorize(client, gid, group, add)
            done.setdefault("authorized", []).extend(g.rule_address(group, r) for r in add)
        if relabel:
            _describe_again(client, gid, group, relabel)
            done.setdefault("described", []).extend(g.rule_address(group, r) for r in relabel)
    for group, want in groups.items():
        have = current.planned(group)
        if want is None and have is not None and _delete(client, group, have, pre):
            done.setdefault("deleted", []).append(group)
    return done or None


UNDO = Undo(restore=restore, marks=marks, keep=keep)
