"""The Lambda toolset's undo, its pure parts: marks, the configuration a restore sets, what it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from interlock.sandbox.diff import Action, Change, Snapshot
from interlock.tools import awslambda as lam
from interlock.tools import lambda_undo
from interlock.tools.spec import Limits, Resolved, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, PreImage

FN = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
ENV = {"STAGE": "prod", "DB_PASSWORD": "hunter2"}
BLOB = json.dumps(ENV).encode()


def state(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "orders-api",
        "runtime": "python3.12",
        "handler": "h.main",
        "role": "arn:aws:iam::123456789012:role/a",
        "memory_size": 256,
        "timeout": 10,
        "description": "",
        "environment": {k: lam.shown_value(k, v) for k, v in sorted(ENV.items())},
        "layers": [],
        "architectures": ["x86_64"],
        "ephemeral_storage": 512,
        "package_type": "Zip",
        "tracing_mode": "PassThrough",
        "subnet_ids": [],
        "security_group_ids": [],
        "code_sha256": "abc",
        "code_size": 10,
        "version": "$LATEST",
        "published_versions": ["1"],
        "aliases": {"live": "1"},
    }
    return {**base, **kw}


def test_a_delete_is_irreversible_and_says_the_code_versions_and_aliases_go() -> None:
    (mark,) = lambda_undo.marks([Change(FN, Action.DELETE, state(), None)], Snapshot(states={}), Limits())
    assert mark.how == IRREVERSIBLE
    assert "never the code" in mark.why and "1 published version(s)" in mark.why and "live" in mark.why


def test_an_update_is_reversible_and_costs_the_environment_it_keeps() -> None:
    baseline = Snapshot(states={FN: state()}, blobs={FN + lam.ENV_BLOB: BLOB})
    (mark,) = lambda_undo.marks([Change(FN, Action.UPDATE, state(), state(timeout=3))], baseline, Limits())
    assert (mark.how, mark.bytes) == (REVERSIBLE, len(BLOB))


def test_a_restore_sets_back_every_configuration_field_that_differs_with_the_real_values() -> None:
    pre = PreImage("lambda", {FN: state()}, blobs={FN + lam.ENV_BLOB: BLOB})
    have = state(
        timeout=30, memory_size=1024, environment={"STAGE": "x"}, layers=["arn:l:1"], subnet_ids=["s"]
    )
    kw = lambda_undo._update(FN, state(), have, pre)
    assert kw == {
        "MemorySize": 256,
        "Timeout": 10,
        "Layers": [],
        "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []},
        "Environment": {"Variables": ENV},
    }


def test_a_restore_is_refused_when_the_code_changed_since() -> None:
    pre = PreImage("lambda", {FN: state()}, blobs={FN + lam.ENV_BLOB: BLOB})
    with pytest.raises(ToolFailure, match="its code: interlock keeps no code"):
        lambda_undo._update(FN, state(), state(code_sha256="other"), pre)


def test_a_restore_is_refused_when_the_sandbox_could_not_rehearse_it() -> None:
    pre = PreImage("lambda", {FN: state()}, blobs={FN + lam.ENV_BLOB: BLOB})
    with pytest.raises(ToolFailure, match="cannot rehearse setting tracing"):
        lambda_undo._update(FN, state(), state(tracing_mode="Active"), pre)


def test_kept_environment_values_that_do_not_match_the_state_are_refused() -> None:
    with pytest.raises(ToolFailure, match="not the ones its state names"):
        lambda_undo._environment(state(), json.dumps({"STAGE": "prod", "DB_PASSWORD": "other"}).encode(), FN)
    with pytest.raises(ToolFailure, match="were not read"):
        lambda_undo._environment(state(), None, FN)


def test_a_deleted_function_is_not_created_again() -> None:
    pre = PreImage("lambda", {FN: state()})
    with pytest.raises(ToolFailure, match="cannot be created again as it was"):
        lambda_undo.restore(None, pre, Resolved((FN,), baseline={}))  # type: ignore[arg-type]


def test_a_function_is_not_deleted_to_undo_its_creation() -> None:
    pre = PreImage("lambda", {FN: None})
    with pytest.raises(ToolFailure, match="would delete it and its code"):
        lambda_undo.restore(None, pre, Resolved((FN,), baseline={FN: state()}))  # type: ignore[arg-type]
