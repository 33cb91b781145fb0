"""Seeding SSM parameters into the embedded moto sandbox, through moto's in-process backend
(``moto.ssm.models.ssm_backends[account][region]``), never one HTTP call per parameter.

What is seeded, for every parameter of the baseline: its name, type, data type, tier, description,
KMS key id, allowed pattern and tags, and its **version number as production has it** (moto's
next put then makes it n+1, as SSM does). Its older versions are seeded too: every version SSM
still keeps (``oldest_version`` up to the current one), under its own number and with its labels,
so a label names or moves the versions SSM would.

What is not seeded: the values of older versions (a placeholder: no state compares them), and the
plaintext of a SecureString. The baseline never holds it (only ``value_sha256``), so the sandbox
holds a token that stands for that hash (``seeded_value``); the snapshot maps it back to the hash
(``seeded_hash``), so an untouched SecureString reads the same in the sandbox as in production,
and one the call writes reads as the hash of what was written. The token carries a nonce made
fresh for this process, so no value an agent writes can pass for it. Parameter policies
(Advanced tier) are seeded as text; moto does not run them.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from ..base import CannotRehearse
from ..diff import Snapshot
from .common import ClientCache, Seeded, parse_arn, replaced_pairs
from .services import MotoService

_NONCE = secrets.token_hex(16)
_TOKEN = f"interlock-seeded-securestring {_NONCE} "


def seeded_value(value_sha256: str) -> str:
    """The value the sandbox holds for a SecureString whose production value hashes to ``value_sha256``."""
    return _TOKEN + value_sha256


def seeded_hash(plaintext: str) -> str | None:
    """The production hash a seeded SecureString stands for; None for any other value."""
    if plaintext.startswith(_TOKEN):
        return plaintext[len(_TOKEN) :]
    return None


def _name(arn: str) -> str:
    parsed = parse_arn(arn)
    if parsed is None or not parsed.resource.startswith("parameter/"):
        raise CannotRehearse(f"{arn!r} is not a parameter ARN the sandbox can hold")
    rest = parsed.resource.removeprefix("parameter/")
    return "/" + rest if "/" in rest else rest


def seed(snapshot: Snapshot, account: str, region: str, clients: ClientCache) -> Seeded:
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ssm_backends

    backend = ssm_backends[account][region]
    for arn, st in snapshot.present().items():
        # Production's own spelling: SSM keeps a one-level '/flag' as written while 'flag' names it
        # too, and a sandbox holding 'flag' would show a rename that production never makes.
        # moto keys a parameter by its normalised name (``key``) and reports the name its versions carry.
        key = name = _name(arn)
        spelled = st.get("name")
        if isinstance(spelled, str) and spelled.lstrip("/") == name.lstrip("/"):
            name = spelled
        secure = st.get("type") == "SecureString"
        if secure and not str(st.get("value_sha256", "")).startswith("sha256:"):
            raise CannotRehearse(f"the SecureString {name} was read without its hash; it cannot be seeded")
        value = seeded_value(st["value_sha256"]) if secure else str(st.get("value", ""))
        labels: dict[int, list[str]] = {}
        for label, version in (st.get("labels") or {}).items():
            labels.setdefault(int(version), []).append(label)
        current = int(st["version"])
        versions: list[Any] = []
        oldest = int(st.get("oldest_version") or current)
        if any(v < oldest or v > current for v in labels):
            raise CannotRehearse(f"{name} has a label on a version SSM does not keep; it cannot be seeded")
        for version in range(oldest, current):
            versions.append(
                _parameter(
                    Parameter,
                    account,
                    name,
                    st,
                    "interlock placeholder: an older version",
                    version,
                    labels.get(version, []),
                    utcnow(),
                )
            )
        versions.append(
            _parameter(Parameter, account, name, st, value, current, labels.get(current, []), utcnow())
        )
        backend._parameters[key] = versions
        if st.get("tags"):
            backend._resource_tags["Parameter"][key] = dict(st["tags"])
    return Seeded()


def _parameter(
    cls: Any, account: str, name: str, st: Any, value: str, version: int, labels: list[str], when: Any
) -> Any:
    return cls(
        account_id=account,
        name=name,
        value=value,
        parameter_type=st.get("type"),
        description=st.get("description"),
        allowed_pattern=st.get("allowed_pattern"),
        keyid=st.get("key_id"),
        last_modified_date=when,
        version=version,
        data_type=st.get("data_type") or "text",
        labels=list(labels),
        tier=st.get("tier"),
        policies=json.dumps(st["policies"]) if st.get("policies") else None,
    )


def reset(account: str, region: str) -> None:
    from moto.ssm.models import ssm_backends

    ssm_backends[account][region].reset()


def replaced(calls: list[tuple[str, dict[str, Any]]], account: str, region: str) -> set[str]:
    """A parameter deleted and put again in one rehearsal is a replace."""
    flat: list[tuple[str, dict[str, Any]]] = []
    for op, params in calls:
        if op == "DeleteParameters":
            flat += [("DeleteParameter", {"Name": n}) for n in params.get("Names", [])]
        else:
            flat.append((op, params))
    return replaced_pairs(
        flat,
        "DeleteParameter",
        "PutParameter",
        lambda p: str(p["Name"]).lstrip("/") if p.get("Name") else None,  # '/flag' and 'flag' are one
        lambda n: f"arn:aws:ssm:{region}:{account}:parameter/{n}",
    )


SERVICE = MotoService(name="ssm", reset=reset, seed=seed, replaced=replaced)
