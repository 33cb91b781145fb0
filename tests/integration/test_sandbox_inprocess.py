"""The embedded sandbox answers in-process: its clients open no socket, reach nothing outside the
process, and a production client in the same process is never answered by it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from botocore.exceptions import ClientError

from interlock.sandbox.aws import MotoSandbox
from interlock.sandbox.aws.moto import SANDBOX_ENDPOINT, InProcess
from interlock.sandbox.base import SandboxError
from tests.conftest import Production

_watching = threading.local()
_connects: list[tuple[object, ...]] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect" and getattr(_watching, "on", False):
        _connects.append(args[1:])


_hooked: list[bool] = []


@contextmanager
def connects() -> Iterator[list[tuple[object, ...]]]:
    """The sockets this thread connects inside the block: the interpreter's own record of every
    connect (sys.audit's socket.connect events). The hook is added on first use (it cannot be
    removed) and counts only inside these blocks."""
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked.append(True)
    _connects.clear()
    _watching.on = True
    try:
        yield _connects
    finally:
        _watching.on = False


def test_the_embedded_sandbox_answers_every_service_without_opening_a_socket(
    moto_sandbox: MotoSandbox,
) -> None:
    s3 = moto_sandbox.client("s3")
    sqs = moto_sandbox.client("sqs")
    with connects() as seen:
        s3.create_bucket(Bucket="inprocess-check")
        s3.put_object(Bucket="inprocess-check", Key="a.txt", Body=b"hello")
        assert s3.get_object(Bucket="inprocess-check", Key="a.txt")["Body"].read() == b"hello"
        url = sqs.create_queue(QueueName="inprocess-check")["QueueUrl"]
        sqs.delete_queue(QueueUrl=url)
        s3.delete_object(Bucket="inprocess-check", Key="a.txt")
        s3.delete_bucket(Bucket="inprocess-check")
    assert seen == []


def test_a_production_client_in_the_same_process_reaches_production_and_never_the_sandbox(
    moto_sandbox: MotoSandbox, production: Production
) -> None:
    production.s3.create_bucket(Bucket="only-in-production")
    with connects() as seen:
        production.s3.list_buckets()
    assert seen, "the production client went over the network, to its own endpoint"
    sandbox = moto_sandbox.client("s3")
    assert "only-in-production" not in {b["Name"] for b in sandbox.list_buckets()["Buckets"]}
    sandbox.create_bucket(Bucket="only-in-sandbox")
    try:
        assert "only-in-sandbox" not in {b["Name"] for b in production.s3.list_buckets()["Buckets"]}
    finally:
        sandbox.delete_bucket(Bucket="only-in-sandbox")


def test_a_sandbox_client_points_at_a_closed_loopback_port(moto_sandbox: MotoSandbox) -> None:
    assert moto_sandbox.client("s3").meta.endpoint_url == SANDBOX_ENDPOINT
    assert SANDBOX_ENDPOINT.startswith("http://127.0.0.1:")


def test_the_in_process_handler_refuses_a_request_for_any_other_endpoint(moto_sandbox: MotoSandbox) -> None:
    handler = InProcess(moto_sandbox.client("s3"))

    class Request:
        url = "https://s3.amazonaws.com/elsewhere"
        headers: dict[str, str] = {}

    with pytest.raises(SandboxError, match="refused"):
        handler(Request())


def test_a_service_moto_does_not_emulate_is_refused_in_process_never_sent(moto_sandbox: MotoSandbox) -> None:
    client = moto_sandbox.client("accessanalyzer")  # moto has no backend for it
    with connects() as seen, pytest.raises(ClientError) as caught:
        client.list_analyzers()
    assert seen == []
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] in (404, 501)


def test_a_reset_frees_what_the_rehearsal_made(moto_sandbox: MotoSandbox) -> None:
    """moto keeps every model object in a list per class (for its dashboard); the sandbox's reset
    empties those lists too, or every rehearsal's buckets and objects would stay in memory."""
    import gc
    import weakref
    from types import SimpleNamespace

    from moto.s3.models import s3_backends

    s3 = moto_sandbox.client("s3")
    s3.create_bucket(Bucket="freed-after-reset")
    s3.put_object(Bucket="freed-after-reset", Key="a.txt", Body=b"x" * 1000)
    key = weakref.ref(s3_backends["123456789012"]["aws"].buckets["freed-after-reset"].keys["a.txt"])
    moto_sandbox.reset(SimpleNamespace(service="s3", tool="test", account=None, region="us-east-1"))
    gc.collect()
    assert key() is None


def test_a_request_moto_crashes_on_is_answered_as_an_internal_error_the_sandbox_cannot_rehearse(
    moto_sandbox: MotoSandbox,
) -> None:
    """moto raising inside its dispatcher (a bug of the emulator, not the call) comes back as a 500
    InternalError, which the rehearsal refuses as "cannot rehearse", never an internal error of
    interlock's."""
    from interlock.sandbox.aws.common import classify
    from interlock.sandbox.base import CannotRehearse

    handler = InProcess(moto_sandbox.client("s3"))

    def crash(request: object) -> None:
        raise ValueError("Invalid base64-encoded string")

    handler._dispatch = crash  # type: ignore[assignment]

    class Request:
        url = SANDBOX_ENDPOINT + "/"
        headers: dict[str, str] = {}

    response = handler(Request())
    assert response.status_code == 500
    assert b"InternalError" in response.content and b"Invalid base64" in response.content
    error = ClientError(
        {"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "X"
    )
    assert isinstance(classify(error, "update_cloudformation_stack"), CannotRehearse)


def test_a_quiet_delete_is_answered_with_its_errors_only_as_s3_answers_it(moto_sandbox: MotoSandbox) -> None:
    from moto.s3.responses import S3Response

    s3 = moto_sandbox.client("s3")
    s3.create_bucket(Bucket="quiet-check", ObjectLockEnabledForBucket=True)
    for key in ("a", "b", "c", "d"):
        s3.put_object(Bucket="quiet-check", Key=key, Body=b"x")
    locked = s3.put_object(
        Bucket="quiet-check",
        Key="locked",
        Body=b"x",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate="2099-01-01T00:00:00Z",
    )["VersionId"]
    quiet = s3.delete_objects(
        Bucket="quiet-check",
        Delete={
            "Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "locked", "VersionId": locked}],
            "Quiet": True,
        },
    )
    assert "Deleted" not in quiet
    assert [e["Key"] for e in quiet["Errors"]] == ["locked"]
    loud = s3.delete_objects(Bucket="quiet-check", Delete={"Objects": [{"Key": "c"}, {"Key": "d"}]})
    assert sorted(d["Key"] for d in loud["Deleted"]) == ["c", "d"]
    current = s3.list_objects_v2(Bucket="quiet-check").get("Contents", [])
    assert [o["Key"] for o in current] == ["locked"]
    # moto's own class is untouched: a moto elsewhere in this process (mock_aws) answers as it did
    assert S3Response.serialized.__module__.startswith("moto.")
