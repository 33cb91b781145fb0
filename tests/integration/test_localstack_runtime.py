"""LocalStack's open core runs for real here (tests/localstack.py): S3 with versioning, metadata, tags,
bucket policies and delete markers, a few other services, and a context manager that leaves nothing
behind. Skipped, with the reason, until `bash .ci/localstack-setup.sh` has been run."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.localstack import LocalStack, require_localstack, run_localstack


@pytest.fixture
def bucket(localstack: LocalStack) -> Iterator[str]:
    """A fresh bucket on the shared instance, deleted with all its versions afterwards."""
    name = f"interlock-ls-{uuid.uuid4().hex[:12]}"
    localstack.client("s3").create_bucket(Bucket=name)
    try:
        yield name
    finally:
        localstack.delete_bucket(name)


def test_health_reports_s3_and_the_pinned_version(localstack: LocalStack) -> None:
    health = localstack.health()
    assert health["services"]["s3"] in ("available", "running")
    assert localstack.version == health["version"]
    assert localstack.version[:1].isdigit()
    assert localstack.endpoint == f"http://127.0.0.1:{localstack.port}"


def test_versioned_object_with_metadata_and_tags(localstack: LocalStack, bucket: str) -> None:
    s3 = localstack.client("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    put = s3.put_object(
        Bucket=bucket,
        Key="reports/a.txt",
        Body=b"hello",
        ContentType="text/plain",
        Metadata={"owner": "platform", "review": "2026-12"},
        Tagging="team=data&empty=",
    )
    assert put["VersionId"] and put["VersionId"] != "null"

    got = s3.get_object(Bucket=bucket, Key="reports/a.txt")
    assert got["Body"].read() == b"hello"
    assert got["VersionId"] == put["VersionId"]
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"owner": "platform", "review": "2026-12"}
    # Known quirk of LocalStack 2026.3.0: in a versioned bucket GetObject without a VersionId leaves
    # out x-amz-tagging-count (AWS and moto send it); with the VersionId, and on HEAD, it is there.
    assert "TagCount" not in got
    assert s3.get_object(Bucket=bucket, Key="reports/a.txt", VersionId=put["VersionId"])["TagCount"] == 2
    assert s3.head_object(Bucket=bucket, Key="reports/a.txt")["TagCount"] == 2

    tags = s3.get_object_tagging(Bucket=bucket, Key="reports/a.txt")
    assert tags["VersionId"] == put["VersionId"]
    assert sorted((t["Key"], t["Value"]) for t in tags["TagSet"]) == [("empty", ""), ("team", "data")]


def test_bucket_policy_round_trip(localstack: LocalStack, bucket: str) -> None:
    s3 = localstack.client("s3")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecure",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert e.value.response["Error"]["Code"] == "NoSuchBucketPolicy"


def test_list_object_versions_with_delete_markers(localstack: LocalStack, bucket: str) -> None:
    s3 = localstack.client("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True

    listed = s3.list_object_versions(Bucket=bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [(v2, False), (v1, False)]
    assert [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [(marker["VersionId"], True)]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"

    # removing the marker brings the newest version back
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    assert "DeleteMarkers" not in s3.list_object_versions(Bucket=bucket)


def test_other_services_answer_offline(localstack: LocalStack) -> None:
    suffix = uuid.uuid4().hex[:8]
    sqs = localstack.client("sqs")
    url = sqs.create_queue(QueueName=f"interlock-{suffix}")["QueueUrl"]
    assert url.startswith(f"{localstack.endpoint}/")  # loopback URLs, not localhost.localstack.cloud
    sqs.delete_queue(QueueUrl=url)

    ssm = localstack.client("ssm")
    ssm.put_parameter(Name=f"/interlock/{suffix}", Value="v", Type="String")
    assert ssm.get_parameter(Name=f"/interlock/{suffix}")["Parameter"]["Value"] == "v"
    ssm.delete_parameter(Name=f"/interlock/{suffix}")

    iam = localstack.client("iam")
    role = iam.create_role(RoleName=f"interlock-{suffix}", AssumeRolePolicyDocument="{}")["Role"]
    assert role["Arn"] == f"arn:aws:iam::000000000000:role/interlock-{suffix}"
    iam.delete_role(RoleName=f"interlock-{suffix}")


def test_open_core_has_no_state_reset(localstack: LocalStack) -> None:
    """Why LocalStack.delete_all_buckets exists: /_localstack/state/reset is LocalStack Pro's."""
    req = urllib.request.Request(f"{localstack.endpoint}/_localstack/state/reset", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)  # noqa: S310 - loopback
    assert e.value.code == 404


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_run_localstack_cleans_up_and_leaves_nothing_behind() -> None:
    python = require_localstack()
    with run_localstack(python) as ls:
        pid, port, data_dir = ls.pid, ls.port, ls.data_dir
        assert os.getpgid(pid) == pid  # its own process group
        assert data_dir.is_dir()

        s3 = ls.client("s3")
        for name in ("interlock-ls-plain", "interlock-ls-versioned"):
            s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(
            Bucket="interlock-ls-versioned", VersioningConfiguration={"Status": "Enabled"}
        )
        for body in (b"1", b"2"):
            s3.put_object(Bucket="interlock-ls-versioned", Key="k", Body=body)
        s3.delete_object(Bucket="interlock-ls-versioned", Key="k")
        s3.put_object(Bucket="interlock-ls-plain", Key="k", Body=b"x")
        s3.create_multipart_upload(Bucket="interlock-ls-plain", Key="big")

        ls.delete_all_buckets()
        assert s3.list_buckets()["Buckets"] == []

    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # neither it nor anything it started
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie
    assert not _answers(port)
    assert not data_dir.exists()
