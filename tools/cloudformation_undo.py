"""Undo for the CloudFormation toolset: a stack's plan is undone stack first, then resource by resource.

A stack plan's changes are the stack's own (its address) and each resource's, in that resource's
toolset's address space (a bucket and its objects, a table and its items, a queue, a role, a
function, a parameter). Each resource address is undone by its own toolset's hooks
(``Toolset.undo``), found by address prefix as the stack's snapshot finds its reader:

- ``marks``: each toolset's marks of its own changes, plus the stack's: ``reversible`` (its
  template, parameters and tags are kept), or ``irreversible`` for what only the stack level loses
  (NoEcho parameter values, which CloudFormation never returns; a resource of a type interlock
  cannot read; a resource kept by ``DeletionPolicy: Retain``, whose name blocks creating the stack
  again). A resource whose toolset cannot undo yet is irreversible, said so.
- ``keep``: each toolset's pre-image of its own addresses (its ``keep``, or ``keep_states``),
  merged into one: blob names prefixed with the service (``s3|…``), each toolset's context and
  addresses in ``context["toolsets"][service]``; the stack's template as a blob
  (``cloudformation|template|<stack>``) and its parameters in ``context["stacks"]``. Every changed
  address's state is kept, so a rollback's footprint names everything the stack operation touches.
- ``restore``: the stack first — a deleted stack is created again from the kept template,
  parameters and tags; a stack whose template, parameters or tags differ is updated back to the
  kept ones; a stack the plan created is deleted, once what the plan put inside its resources
  (objects, items) is removed, as CloudFormation cannot delete a bucket that holds objects — then
  each toolset's ``restore`` on its own addresses, reading them again first when the stack
  operation made or changed resources. A recreated stack's fresh, empty resources get the kept
  data and drifted settings back.

A function whose code the kept template holds inline (``Code.ZipFile``) is made again by
CloudFormation from that code, zipped anew: a new sha256, the same file. Where its size is the
kept one it is handed to the lambda toolset as holding the kept code (which it refuses to restore
otherwise: it keeps no code), so its configuration is set back; and its delete with the stack is
reversible (unless it had published versions or aliases, each its own code).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from interlock.sandbox.aws.cloudformation import is_stack
from interlock.sandbox.aws.cloudformation import part as service_part
from interlock.sandbox.diff import Action, Change, Snapshot, State

from . import awslambda
from .spec import Footprint, Limits, Resolved, ToolFailure, Toolset
from .undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage, Undo, changed, default_marks, keep_states

TOOLSET_NAME = "cloudformation"
SEP = "|"
TEMPLATE_BLOB = f"{TOOLSET_NAME}{SEP}template{SEP}"
# The order resource toolsets restore in: a role before the function that runs as it.
ORDER = ("iam", "ssm", "dynamodb", "s3", "sqs", "lambda")


def _cfn() -> Any:
    from . import cloudformation

    return cloudformation


def _toolsets() -> dict[str, Toolset]:
    out: dict[str, Toolset] = _cfn()._TOOLSETS
    return out


def toolset_of(address: str) -> tuple[str, Toolset] | None:
    """The service and toolset whose address space ``address`` is in (None: the stack's, or none)."""
    if is_stack(address):
        return None
    for service, toolset in _toolsets().items():
        if toolset.address_prefix and address.startswith(toolset.address_prefix):
            return service, toolset
    return None


def _grouped(changes: Iterable[Change]) -> tuple[list[Change], dict[str, list[Change]], list[Change]]:
    """(stack changes, resource changes by service, changes no toolset reads)."""
    stacks: list[Change] = []
    by: dict[str, list[Change]] = {}
    orphans: list[Change] = []
    for c in changed(changes):
        if is_stack(c.address):
            stacks.append(c)
            continue
        found = toolset_of(c.address)
        if found is None:
            orphans.append(c)
        else:
            by.setdefault(found[0], []).append(c)
    return stacks, by, orphans


def _cannot_yet(toolset: Toolset) -> str:
    return f"not kept: the {toolset.name} toolset cannot undo yet"


def _client_for(clients: Any, toolset: Toolset) -> Any:
    return clients if toolset.services else clients(toolset.service)


def inline_functions(stack_state: State, template: str) -> set[str]:
    """The functions of a stack whose code its template holds (``Code.ZipFile``): CloudFormation
    makes their code again from the template, byte for byte the same file (zipped anew, so under
    another sha256 but of the same size)."""
    try:
        declared = _cfn().parse_template(template).get("Resources") or {}
    except ValueError:
        return set()
    out = set()
    for logical, res in (stack_state.get("resources") or {}).items():
        decl = declared.get(logical) or {}
        code = (decl.get("Properties") or {}).get("Code") if isinstance(decl, dict) else None
        inline = isinstance(code, dict) and isinstance(code.get("ZipFile"), str | dict)
        if res.get("type") == "AWS::Lambda::Function" and res.get("address") and inline:
            out.add(str(res["address"]))
    return out


def _inline_in(states: Mapping[str, State | None], templates: Mapping[str, str]) -> set[str]:
    out: set[str] = set()
    for stack, template in templates.items():
        st = states.get(stack)
        if st is not None:
            out |= inline_functions(st, template)
    return out


# ---------------------------------------------------------------- marks


def _stack_mark(c: Change, baseline: Snapshot) -> Mark:
    before = c.before
    if before is None:  # the plan made the stack: a rollback deletes it, with what it made
        return Mark(c.address, REVERSIBLE, 0, "the stack is deleted again, with the resources it made")
    name = before.get("name") or c.address
    extra = (baseline.context.get("stacks") or {}).get(c.address) or {}
    size = len(str(extra.get("template") or "").encode())
    lost: list[str] = []
    no_echo = list(before.get("no_echo") or [])
    if no_echo and c.action in (Action.DELETE, Action.UPDATE):
        lost.append(
            f"stack {name}'s NoEcho parameter(s) {', '.join(no_echo)}: CloudFormation never returns their "
            "values, so a rollback cannot give them back"
        )
    resources = before.get("resources") or {}
    unread = [f"{k} ({r.get('type')})" for k, r in sorted(resources.items()) if r.get("rehearsed") is False]
    if unread:
        lost.append(
            f"stack {name} holds {', '.join(unread)}, which interlock cannot read: what the call does to "
            "them is not kept"
        )
    retained = [k for k, r in sorted(resources.items()) if r.get("deletion_policy") == "Retain"]
    if retained and c.action is Action.DELETE:
        lost.append(
            f"stack {name}'s {', '.join(retained)} outlive(s) the delete (DeletionPolicy Retain): CloudFormation "
            "cannot create the stack again while a resource of that name exists"
        )
    if lost:
        return Mark(c.address, IRREVERSIBLE, 0, "; ".join(lost))
    why = (
        "created again from its kept template, parameters and tags (CloudFormation gives it a new stack id)"
        if c.action is Action.DELETE
        else "its kept template, parameters and tags are put back"
    )
    return Mark(c.address, REVERSIBLE, size, why)


def _remade_by_stack(m: Mark, mine: list[Change], inline: set[str], blobs: Mapping[str, bytes]) -> Mark:
    """A function the stack's template holds the code of, deleted with the stack (or by its
    update): the stack makes it again from the template, then its configuration is set back."""
    c = next((c for c in mine if c.address == m.address), None)
    if c is None or m.how != IRREVERSIBLE or c.action is not Action.DELETE or m.address not in inline:
        return m
    before = c.before or {}
    if before.get("published_versions") or before.get("aliases"):
        return m  # each version is its own code, not the template's: the lambda toolset's reason stands
    return Mark(
        m.address,
        REVERSIBLE,
        m.bytes or len(blobs.get(m.address + awslambda.ENV_BLOB, b"")),
        "made again by the stack from its template's inline code (refused if the code it ran was not the "
        "template's), then its configuration is set back",
    )


def marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    """Each resource change marked by its own toolset (irreversible where that toolset cannot undo
    yet), and the stack's (see ``_stack_mark``); in the order of ``changes``."""
    stacks, by, orphans = _grouped(changes)
    out: list[Mark] = [_stack_mark(c, baseline) for c in stacks]
    kept = {
        c.address: str(((baseline.context.get("stacks") or {}).get(c.address) or {}).get("template") or "")
        for c in stacks
        if c.before is not None
    }
    inline = _inline_in({c.address: c.before for c in stacks}, kept)
    toolsets = _toolsets()
    for service, mine in by.items():
        toolset = toolsets[service]
        undo: Undo | None = toolset.undo
        if undo is None:
            out += [Mark(c.address, IRREVERSIBLE, 0, _cannot_yet(toolset)) for c in mine]
            continue
        fn = undo.marks or default_marks
        got = fn(mine, service_part(baseline, service), limits)
        if service == "lambda":
            got = [_remade_by_stack(m, mine, inline, baseline.blobs) for m in got]
        seen = {m.address for m in got}
        out += got
        # a change its toolset left unmarked is not one interlock can say it keeps
        out += [
            Mark(c.address, IRREVERSIBLE, 0, f"not kept: the {toolset.name} toolset did not mark it")
            for c in mine
            if c.address not in seen
        ]
    out += [Mark(c.address, IRREVERSIBLE, 0, "not kept: no toolset of interlock reads it") for c in orphans]
    order = {c.address: i for i, c in enumerate(changes)}
    return sorted(out, key=lambda m: order.get(m.address, len(order)))


# ---------------------------------------------------------------- keep


def _template_blob(stack: str) -> str:
    return f"{TEMPLATE_BLOB}{stack}"


def keep(clients: Any, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    """Every resource toolset's pre-image of its own changes, merged, and each changed stack's
    template (a blob, checked against the sha256 its state holds), parameters and tags."""
    stacks, by, _ = _grouped(changes)
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    secret: set[str] = set()
    context: dict[str, Any] = {"stacks": {}, "toolsets": {}}
    toolsets = _toolsets()
    for service in sorted(by):
        toolset = toolsets[service]
        undo: Undo | None = toolset.undo
        if undo is None:
            continue
        fn = undo.keep or keep_states(toolset.name)
        sub = fn(_client_for(clients, toolset), by[service], service_part(current, service), limits)
        states.update(sub.states)
        for name, data in sub.blobs.items():
            blobs[f"{service}{SEP}{name}"] = data
        secret |= {f"{service}{SEP}{name}" for name in sub.secret}
        context["toolsets"][service] = {
            "toolset": toolset.name,
            "addresses": list(sub.states),
            "context": sub.context,
        }
    for c in stacks:
        st = current.states.get(c.address)
        states[c.address] = st
        if st is None:
            continue
        extra = (current.context.get("stacks") or {}).get(c.address) or {}
        template = extra.get("template")
        if not isinstance(template, str) or hashlib.sha256(template.encode()).hexdigest() != st.get(
            "template_sha256"
        ):
            raise ToolFailure(
                f"the template of stack {st.get('name')} was not read with its state, so it cannot be kept",
                "nothing was changed; plan the call again",
            )
        blobs[_template_blob(c.address)] = template.encode()
        context["stacks"][c.address] = {"parameters": dict(extra.get("parameters") or {})}
    # Every changed address keeps its state, so the rollback's footprint names what the stack
    # operation touches even where a toolset keeps nothing (marked irreversible).
    for c in changed(changes):
        states.setdefault(c.address, current.states.get(c.address))
    return PreImage(toolset=TOOLSET_NAME, states=states, blobs=blobs, secret=secret, context=context)


# ---------------------------------------------------------------- restore


def sub_preimage(pre: PreImage, service: str) -> PreImage | None:
    """The pre-image ``service``'s toolset kept, as it kept it (its own blob names and context)."""
    kept = (pre.context.get("toolsets") or {}).get(service)
    if not kept:
        return None
    head = f"{service}{SEP}"
    return PreImage(
        toolset=str(kept.get("toolset") or service),
        states={a: pre.states.get(a) for a in kept.get("addresses") or []},
        blobs={n.removeprefix(head): b for n, b in pre.blobs.items() if n.startswith(head)},
        secret={n.removeprefix(head) for n in pre.secret if n.startswith(head)},
        context=dict(kept.get("context") or {}),
    )


def _params(values: Mapping[str, str], no_echo: Iterable[str]) -> list[dict[str, Any]]:
    hidden = set(no_echo)
    return [
        {"ParameterKey": k, "UsePreviousValue": True}
        if k in hidden
        else {"ParameterKey": k, "ParameterValue": v}
        for k, v in sorted(values.items())
    ]


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _held_objects(bucket_address: str, pre: PreImage, current: Resolved) -> int:
    """Objects (or versions) the bucket holds now that the pre-image does not name."""
    heads = (bucket_address + "/", bucket_address + "?")
    return sum(
        1
        for a, st in current.baseline.items()
        if st is not None and a.startswith(heads) and a not in pre.states
    )


def _delete_made(cf: Any, stack: str, have: State, pre: PreImage, current: Resolved) -> dict[str, Any]:
    cfn = _cfn()
    name = str(have.get("name"))
    if have.get("termination_protection"):
        raise ToolFailure(
            f"stack {name} has termination protection: CloudFormation refuses to delete it",
            "an operator turns it off first (UpdateTerminationProtection), outside interlock",
        )
    for logical, res in sorted((have.get("resources") or {}).items()):
        if res.get("type") != "AWS::S3::Bucket" or not res.get("address") or res.get("deletion_policy"):
            continue
        held = _held_objects(str(res["address"]), pre, current)
        if held:
            raise ToolFailure(
                f"stack {name}'s bucket {str(res['address']).removeprefix('aws:s3:::')} ({logical}) holds {held} "
                "object(s) written after the plan was applied: CloudFormation cannot delete a bucket that is "
                "not empty, and a rollback touches only what the plan changed",
                "move or delete those objects with the S3 tools first, then plan the rollback again",
            )
    cf.delete_stack(StackName=have["stack_id"])
    cfn._wait(cf, "stack_delete_complete", name, f"delete stack {name}")
    return {"deleted": name}


def _create_again(
    cf: Any, stack: str, want: State, template: str, params: Mapping[str, str], current: Resolved
) -> dict[str, Any]:
    cfn = _cfn()
    name = str(want.get("name"))
    if want.get("no_echo"):
        raise ToolFailure(
            f"stack {name} has NoEcho parameter(s) {', '.join(want['no_echo'])}, whose values CloudFormation "
            "never returns, so it cannot be created again with them",
            "create it by hand with the parameter values in hand",
        )
    taken = [
        f"{k} ({r.get('address')})"
        for k, r in sorted((want.get("resources") or {}).items())
        if r.get("address") and current.planned(str(r["address"])) is not None
    ]
    if taken:
        raise ToolFailure(
            f"stack {name} cannot be created again: {', '.join(taken[:5])} exist(s) outside it (kept by "
            "DeletionPolicy Retain, or made since), and CloudFormation cannot create a resource of a name "
            "that is taken",
            "delete or rename them first, or import them into a stack by hand",
        )
    # what moto leaves out when it creates a resource is refused where no toolset puts it back after
    unkept = {
        k
        for k, r in (want.get("resources") or {}).items()
        if (found := toolset_of(str(r.get("address") or ""))) is None or found[1].undo is None
    }
    bad = cfn._unrehearsable_create(cfn.parse_template(template), unkept)
    if bad:
        raise ToolFailure(
            "the sandbox (moto) leaves out, when it creates them, properties that decide what these resources "
            "may do, so the rollback could not show it: " + "; ".join(bad),
            "create the stack again by hand",
        )
    made = cf.create_stack(
        StackName=name,
        TemplateBody=template,
        Parameters=_params(params, ()),
        Tags=_tags(want.get("tags") or {}),
        Capabilities=cfn.CAPABILITIES,
        EnableTerminationProtection=bool(want.get("termination_protection")),
    )
    cfn._wait(cf, "stack_create_complete", made["StackId"], f"create stack {name} again")
    return {"created": name, "stack_id": made["StackId"]}


def _update_back(
    cf: Any, want: State, have: State, template: str, params: Mapping[str, str]
) -> dict[str, Any] | None:
    cfn = _cfn()
    name = str(want.get("name"))
    same = (
        have.get("template_sha256") == want.get("template_sha256")
        and dict(have.get("parameters") or {}) == dict(params)
        and dict(have.get("tags") or {}) == dict(want.get("tags") or {})
    )
    out: dict[str, Any] | None = None
    if not same:
        now = cfn._template_body(cf, name)
        changed_params = {k for k, v in params.items() if (have.get("parameters") or {}).get(k) != v}
        old_t, new_t = cfn.parse_template(now), cfn.parse_template(template)
        bad = cfn._unrehearsable_update(old_t, new_t, changed_params)
        touched = {
            k for k, d in (new_t.get("Resources") or {}).items() if (old_t.get("Resources") or {}).get(k) != d
        }
        bad += cfn._unrehearsable_create(new_t, touched)
        if bad:
            raise ToolFailure(
                f"updating stack {name} back to its kept template is a change the sandbox (moto) cannot "
                "rehearse faithfully: " + "; ".join(bad),
                "put the stack back by hand (the kept template is the one get_cloudformation_template showed "
                "before the plan)",
            )
        try:
            cf.update_stack(
                StackName=have["stack_id"],
                TemplateBody=template,
                Parameters=_params(params, want.get("no_echo") or ()),
                Tags=_tags(want.get("tags") or {}),
                Capabilities=cfn.CAPABILITIES,
            )
        except ClientError as exc:
            if "No updates are to be performed" not in cfn._client_error(exc):
                raise
        else:
            cfn._wait(cf, "stack_update_complete", have["stack_id"], f"update stack {name} back")
        out = {"updated": name}
    want_tp = bool(want.get("termination_protection"))
    if bool(have.get("termination_protection")) != want_tp:
        cf.update_termination_protection(StackName=have["stack_id"], EnableTerminationProtection=want_tp)
        out = {**(out or {}), "termination_protection": want_tp}
    return out


def _restore_stack(clients: Any, stack: str, pre: PreImage, current: Resolved) -> dict[str, Any] | None:
    """The stack back to its kept template, parameters and tags; what was done (None: nothing)."""
    want, have = pre.states.get(stack), current.planned(stack)
    cf = clients("cloudformation")
    if want is None:
        return _delete_made(cf, stack, have, pre, current) if have is not None else None
    blob = pre.blobs.get(_template_blob(stack))
    extra = (pre.context.get("stacks") or {}).get(stack) or {}
    if blob is None:
        raise ToolFailure(
            f"the pre-image holds no template of stack {want.get('name')}", "put the stack back by hand"
        )
    template = blob.decode()
    if hashlib.sha256(blob).hexdigest() != want.get("template_sha256"):
        raise ToolFailure(
            f"the kept template of stack {want.get('name')} is not the one its kept state names",
            "put the stack back by hand",
        )
    params = {str(k): str(v) for k, v in (extra.get("parameters") or {}).items()}
    if have is None:
        return _create_again(cf, stack, want, template, params, current)
    return _update_back(cf, want, have, template, params)


def _read_again(clients: Any, service: str, toolset: Toolset, addresses: list[str]) -> dict[str, Any]:
    fp = Footprint(tuple(addresses))
    got = toolset.snapshot(_client_for(clients, toolset), fp, Limits(context=False))
    return {a: got.states.get(a) for a in addresses}


def _template_code(pre: PreImage, current: Resolved, acted: bool) -> set[str]:
    """The functions whose code is the kept template's own: declared with inline code by a stack
    that holds the kept template now (it was just put back, or never left)."""
    templates = {}
    for stack, want in pre.states.items():
        blob = pre.blobs.get(_template_blob(stack))
        if not is_stack(stack) or want is None or blob is None:
            continue
        have = current.planned(stack)
        if acted or (have is not None and have.get("template_sha256") == want.get("template_sha256")):
            templates[stack] = blob.decode()
    return _inline_in(pre.states, templates)


def _code(st: State | None) -> Any:
    return (st or {}).get("code_sha256")


def _as_template_code(address: str, now: State | None, want: State | None, inline: set[str]) -> State | None:
    """A function whose code the stack's kept template holds inline, made by CloudFormation from
    it (a recreate, or a rollback's create or update back), holds the code it held before when the
    file is the same size: CloudFormation zips it anew, so the sha256 differs and the bytes inside
    do not. It is read as holding the kept code, so the lambda toolset sets its configuration back.
    Another size is other code, which the lambda toolset refuses to restore."""
    if address not in inline or now is None or want is None:
        return now
    if now.get("code_size") != want.get("code_size") or _code(now) == _code(want):
        return now
    return {**now, "code_sha256": want.get("code_sha256")}


def _restore_toolsets(
    clients: Any, pre: PreImage, current: Resolved, only: set[str], acted: bool
) -> dict[str, Any]:
    """Each resource toolset's ``restore`` on its addresses among ``only``, in ``ORDER``; read again
    first when a stack operation (``acted``) made, changed or removed them."""
    out: dict[str, Any] = {}
    toolsets = _toolsets()
    kept = pre.context.get("toolsets") or {}
    inline = _template_code(pre, current, acted)
    for service in sorted(kept, key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), s)):
        toolset = toolsets.get(service)
        whole = sub_preimage(pre, service)
        if toolset is None or whole is None:
            continue
        addresses = [a for a in whole.states if a in only]
        if not addresses:
            continue
        sub = PreImage(
            toolset=whole.toolset,
            states={a: whole.states[a] for a in addresses},
            blobs=whole.blobs,
            secret=whole.secret,
            context=whole.context,
        )
        undo: Undo | None = toolset.undo
        if undo is None:
            raise ToolFailure(
                f"the {toolset.name} toolset kept part of this pre-image but cannot restore it now",
                "undo those changes by hand",
            )
        now = (
            _read_again(clients, service, toolset, addresses)
            if acted
            else {a: current.planned(a) for a in addresses}
        )
        if service == "lambda":
            now = {a: _as_template_code(a, st, sub.states.get(a), inline) for a, st in now.items()}
        resolved = Resolved(tuple(addresses), baseline={**current.baseline, **now})
        got = undo.restore(_client_for(clients, toolset), sub, resolved)
        if got:
            out[service] = got
    return out


def _inside(address: str, resources: set[str]) -> bool:
    """``address`` is held by one of ``resources`` (an object of a bucket, an item of a table, a
    queue's messages, a role's policy)."""
    return address not in resources and any(
        address.startswith(r) and address[len(r) : len(r) + 1] in ("/", "?", "#") for r in resources
    )


def restore(clients: Any, pre: PreImage, current: Resolved) -> dict[str, Any]:
    """Each stack of the pre-image back first, then each resource toolset's addresses by its own
    ``restore`` (read again when a stack operation made, changed or removed them). A stack the plan
    made is deleted again, and CloudFormation cannot delete a bucket that holds objects: what the
    plan's rollback removes from inside its resources (objects, items) is removed before it."""
    out: dict[str, Any] = {}
    stacks = sorted(a for a in pre.states if is_stack(a))
    going: set[str] = set()
    for stack in stacks:
        have = current.planned(stack)
        if pre.states.get(stack) is None and have is not None:
            going |= {str(r["address"]) for r in (have.get("resources") or {}).values() if r.get("address")}
    first = {a for a in pre.states if not is_stack(a) and _inside(a, going)}
    if first:
        out["before_stacks"] = _restore_toolsets(clients, pre, current, first, acted=False)
    acted = False
    for stack in stacks:
        done = _restore_stack(clients, stack, pre, current)
        if done:
            out.setdefault("stacks", {})[stack] = done
            acted = acted or any(k in done for k in ("created", "updated", "deleted"))
    rest = {a for a in pre.states if not is_stack(a)} - first
    out.update(_restore_toolsets(clients, pre, current, rest, acted or bool(first)))
    return out


UNDO = Undo(restore=restore, marks=marks, keep=keep)
