"""What crosses a sandbox pool's pipes (sandbox/aws/pool.py): the tools' callables by reference, and
every exception a rehearsal raises with all of its fields. No processes: the wire format alone."""

from __future__ import annotations

import pickle

import boto3
import pytest
from botocore.exceptions import ClientError

from interlock.sandbox.aws.pool import dumps, loads
from interlock.sandbox.base import CallRefused, CannotRehearse, Rehearsal, SandboxError
from interlock.sandbox.diff import Snapshot
from interlock.tools import ALL_SPECS
from interlock.tools.spec import FootprintTooLarge, ToolFailure, ToolSpec

WRITE_SPECS = [s for s in ALL_SPECS if s.execute is not None]
AWS_WRITE_SPECS = [s for s in WRITE_SPECS if s.target_kind == "aws"]


class Coded(Exception):
    """An exception whose ``__init__`` takes other arguments than its ``args`` hold."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


def no_such_bucket() -> ClientError:
    """The error a real boto3 client raises: botocore's modeled class, made at run time."""
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    response = {"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}}
    return client.exceptions.NoSuchBucket(response, "GetObject")  # type: ignore[no-any-return]


@pytest.mark.parametrize("spec", WRITE_SPECS, ids=lambda s: s.name)
def test_every_write_tools_execute_and_snapshot_pickle_by_reference(spec: ToolSpec) -> None:
    for fn in (spec.execute, spec.snapshot):
        assert pickle.loads(pickle.dumps(fn)) is fn


@pytest.mark.parametrize("spec", AWS_WRITE_SPECS, ids=lambda s: s.name)
def test_every_aws_write_tools_arguments_pickle_and_it_needs_no_clone(spec: ToolSpec) -> None:
    """A pooled call carries the arguments' model and no clone function (containers' clones are
    closures, but Docker calls are never pooled)."""
    assert pickle.loads(pickle.dumps(spec.args)) is spec.args
    assert spec.clone is None


def test_a_refused_call_crosses_with_its_aws_error_and_code() -> None:
    exc = loads(dumps(CallRefused("the bucket is gone", no_such_bucket())))
    assert type(exc) is CallRefused and str(exc) == "the bucket is gone"
    assert isinstance(exc.cause, ClientError)
    assert exc.cause.response["Error"]["Code"] == "NoSuchBucket"
    assert exc.cause.operation_name == "GetObject"


@pytest.mark.parametrize(
    "exc",
    [
        ToolFailure("the tool could not do it", "do it another way"),
        FootprintTooLarge("the footprint holds 30000 objects", "name fewer objects"),
        CannotRehearse("the emulator cannot rehearse it"),
        SandboxError("the sandbox broke"),
        Coded("E42", "the answer"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_exception_crosses_with_its_type_message_and_fields(exc: Exception) -> None:
    back = loads(dumps(exc))
    assert type(back) is type(exc)
    assert back.args == exc.args
    assert vars(back) == vars(exc)


def test_a_rehearsal_crosses_whole() -> None:
    r = Rehearsal(
        after=Snapshot(states={"aws:s3:::a/k": {"size": 1}}, blobs={"aws:s3:::a/k": b"x"}),
        replaced={"aws:s3:::a"},
        output={"ok": True},
        notes=["a note"],
        risk=["lower-fidelity"],
    )
    assert loads(dumps(("done", r))) == ("done", r)
