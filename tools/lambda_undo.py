"""Undo for the Lambda toolset: a function's configuration is put back; a deleted function is not.

- ``update_lambda_function_configuration``: reversible. The pre-image is the function's state and
  its environment's real values (the snapshot's ``#environment`` blob: a state holds a
  secret-looking variable only as ``sha256:…``), checked against the state and kept encrypted
  (``PreImage.secret``). ``restore`` puts back, in one ``UpdateFunctionConfiguration``, every
  configuration field that differs: environment, memory, timeout, role, layers, handler, runtime,
  description, VPC subnets and security groups (and tracing and ephemeral storage, which the
  sandbox, moto, does not rehearse: a restore that needs them is refused). The layer versions
  the kept configuration names are added to the pre-image as they are now, in
  ``context["referenced"]``: read and seeded (Lambda and the sandbox refuse a layer that does
  not exist), never changed. What a configuration does not hold is not put back: a function whose code,
  architectures, package type, published versions or aliases changed since is refused, with
  what changed (interlock keeps no code).
- ``delete_lambda_function``: irreversible. A function is created from its code, and interlock
  reads only the code's sha256 and size, never the code itself; its published versions (each its
  own code) and aliases go with it. The mark says so, with the versions and aliases lost.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from interlock.sandbox.diff import Action, Change, Snapshot, State

from . import awslambda as fn
from .spec import Limits, Resolved, ToolFailure
from .undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage, Undo, changed, keep_states

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

# state field -> UpdateFunctionConfiguration argument (a function of the kept state)
CONFIGURATION = ("runtime", "handler", "role", "memory_size", "timeout", "description", "layers")
VPC = ("subnet_ids", "security_group_ids")
# Configuration the sandbox (moto) ignores on an update: a restore of it could not be rehearsed.
UNREHEARSED = ("tracing_mode", "ephemeral_storage")
# What no configuration call puts back.
NOT_CONFIGURATION = (
    "code_sha256",
    "code_size",
    "architectures",
    "package_type",
    "published_versions",
    "aliases",
)
WHY_FIELD = {
    "code_sha256": "its code",
    "code_size": "its code",
    "architectures": "its architectures",
    "package_type": "its package type",
    "published_versions": "its published versions",
    "aliases": "its aliases",
    "tracing_mode": "its tracing mode",
    "ephemeral_storage": "its ephemeral storage",
}


def env_blob(address: str) -> str:
    return address + fn.ENV_BLOB


def _lost_with(before: State) -> str:
    versions = list(before.get("published_versions") or [])
    aliases = sorted(before.get("aliases") or {})
    bits = [f"{len(versions)} published version(s)"]
    if aliases:
        bits.append("alias(es) " + ", ".join(aliases))
    return " and ".join(bits)


def marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    """An update is reversible (its bytes: the environment's real values kept); a delete is not."""
    out: list[Mark] = []
    for c in changed(changes):
        if fn.kind_of(c.address) != "lambda.function":
            out.append(Mark(c.address, REVERSIBLE))
        elif c.action is Action.DELETE:
            before = c.before or {}
            out.append(
                Mark(
                    c.address,
                    IRREVERSIBLE,
                    0,
                    f"a deleted function cannot be created again as it was: interlock reads only its code's "
                    f"sha256, never the code, and {_lost_with(before)} go with it",
                )
            )
        elif c.before is None:
            out.append(Mark(c.address, REVERSIBLE, 0, "deleted again"))
        else:
            size = len(baseline.blobs.get(env_blob(c.address), b""))
            out.append(
                Mark(
                    c.address,
                    REVERSIBLE,
                    size,
                    "its configuration is set back (environment values kept encrypted); the code is not kept, "
                    "so a rollback is refused if the code changed since",
                )
            )
    return out


# ---------------------------------------------------------------- keep


def _environment(pre: State, blob: bytes | None, address: str) -> dict[str, str]:
    """The real values of a kept environment, checked against the state that names them."""
    if blob is None:
        raise ToolFailure(
            f"the environment values of {address} were not read with its state, so they cannot be kept",
            "nothing was changed; plan the call again",
        )
    try:
        env = json.loads(blob)
    except ValueError:
        env = None
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ToolFailure(f"the environment values read for {address} are not a variable map", "report it")
    shown = {k: fn.shown_value(k, v) for k, v in sorted(env.items())}
    if shown != dict(pre.get("environment") or {}):
        raise ToolFailure(
            f"the environment values read for {address} are not the ones its state names",
            "nothing was changed; plan the call again",
        )
    return env


def keep(client: LambdaClient, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    """The changed functions' states and their environments' real values (checked against the
    states; a value missing from the read is read now), kept secret; and the layer versions a kept
    configuration names, as they are now (``context["referenced"]``)."""
    pre = keep_states("lambda")(client, changes, current, limits)
    for address, state in list(pre.states.items()):
        if state is None or fn.kind_of(address) != "lambda.function":
            continue
        name = env_blob(address)
        if name not in pre.blobs:
            config = client.get_function_configuration(FunctionName=fn.function_name(address))
            _, env = fn.configuration_state(config)
            pre.blobs[name] = json.dumps(env).encode()
        _environment(state, pre.blobs[name], address)
    pre.secret = set(pre.blobs)
    referenced: list[str] = []
    for state in [s for a, s in pre.states.items() if s is not None and fn.kind_of(a) == "lambda.function"]:
        for layer in state.get("layers") or []:
            if isinstance(layer, str) and layer not in pre.states:
                pre.states[layer] = fn._layer_state(client, layer)
                referenced.append(layer)
    if referenced:
        pre.context["referenced"] = sorted(set(referenced))
    return pre


# ---------------------------------------------------------------- restore


def _differs(want: State, have: State, field: str) -> bool:
    a, b = want.get(field), have.get(field)
    if isinstance(a, list) and isinstance(b, list) and field in VPC:
        return sorted(a) != sorted(b)
    return bool(a != b)


def _update(address: str, want: State, have: State, pre: PreImage) -> dict[str, Any]:
    """The UpdateFunctionConfiguration arguments that make ``have`` hold ``want``'s configuration."""
    kept = [f for f in (*NOT_CONFIGURATION, *UNREHEARSED) if _differs(want, have, f)]
    if kept:
        what = sorted({WHY_FIELD[f] for f in kept})
        raise ToolFailure(
            f"{address} changed since in what a configuration update cannot put back ({', '.join(what)}"
            + (": interlock keeps no code" if "its code" in what else "")
            + (
                ", and the sandbox (moto) cannot rehearse setting tracing or ephemeral storage"
                if set(kept) & set(UNREHEARSED)
                else ""
            )
            + ")",
            "put it back by hand, or change its configuration with update_lambda_function_configuration",
        )
    kw: dict[str, Any] = {}
    names = {
        "runtime": "Runtime",
        "handler": "Handler",
        "role": "Role",
        "memory_size": "MemorySize",
        "timeout": "Timeout",
        "description": "Description",
        "layers": "Layers",
    }
    for field in CONFIGURATION:
        if _differs(want, have, field):
            value = want.get(field)
            kw[names[field]] = list(value or []) if field == "layers" else value
    if any(_differs(want, have, f) for f in VPC):
        kw["VpcConfig"] = {
            "SubnetIds": list(want.get("subnet_ids") or []),
            "SecurityGroupIds": list(want.get("security_group_ids") or []),
        }
    if _differs(want, have, "environment"):
        env = _environment(want, pre.blobs.get(env_blob(address)), address)
        kw["Environment"] = {"Variables": env}
    return kw


def restore(client: LambdaClient, pre: PreImage, current: Resolved) -> dict[str, Any] | None:
    """Each function of the pre-image back to its kept configuration. A function the plan deleted
    cannot be created again (its code is not kept), nor is one deleted to undo its creation (that
    would lose its code): both are refused with the reason."""
    referenced = set(pre.context.get("referenced") or [])
    done: dict[str, list[str]] = {}
    for address, want in pre.states.items():
        if address in referenced or fn.kind_of(address) != "lambda.function":
            continue
        have = current.planned(address)
        if want is None:
            if have is not None:
                raise ToolFailure(
                    f"undoing the creation of {address} would delete it and its code, which interlock cannot give back",
                    "delete it with delete_lambda_function, which plans and shows what it loses",
                )
            continue
        if have is None:
            raise ToolFailure(
                f"{address} was deleted and cannot be created again as it was: interlock reads only its code's "
                "sha256, never the code",
                "deploy it again from its source (its kept configuration is in the rollback's pre-image)",
            )
        for layer in want.get("layers") or []:
            if layer not in referenced and layer not in pre.states:
                continue
            if current.planned(layer) is None:
                raise ToolFailure(
                    f"{address} ran with layer version {layer}, which does not exist now",
                    "put it back by hand",
                )
        kw = _update(address, want, have, pre)
        if kw:
            client.update_function_configuration(FunctionName=fn.function_name(address), **kw)
            done.setdefault("updated", []).append(address)
    return done or None


UNDO = Undo(restore=restore, marks=marks, keep=keep)
