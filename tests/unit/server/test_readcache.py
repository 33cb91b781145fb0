"""``server.readcache.ReadCache`` on a botocore client whose requests are answered by a handler of
the test's (no network): what is kept, for how long, and what never is."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from interlock.server.readcache import ReadCache

VERSIONING = b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>'


def error(code: str, status: int) -> bytes:
    return f"<Error><Code>{code}</Code><Message>m</Message></Error>".encode()


class Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class Server:
    """Answers the client's requests from a table, counting what reaches it."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.sent: list[str] = []

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        query = request.url.split("?", 1)[1] if "?" in request.url else ""
        self.sent.append(query)
        status, body = self.answers[query]
        return AWSResponse(request.url, status, {}, Raw(body))  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def s3_client(server: Server) -> Any:
    """An S3 client whose every request ``server`` answers."""
    client = boto3.session.Session().client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )
    client.meta.events.register("before-send", server)
    return client


@pytest.fixture
def setup() -> tuple[Any, Server, ReadCache, Clock]:
    server = Server()
    client = s3_client(server)
    clock = Clock()
    cache = ReadCache(10.0, clock=clock)
    cache.attach(client, "s3", {"GetBucketVersioning", "GetBucketPolicy", "GetBucketLocation"})
    return client, server, cache, clock


def test_an_answer_is_kept_for_its_lifetime_then_read_again(setup: Any) -> None:
    client, server, cache, clock = setup
    server.answers["versioning"] = (200, VERSIONING)
    assert client.get_bucket_versioning(Bucket="b")["Status"] == "Enabled"
    clock.now += 9.9
    assert client.get_bucket_versioning(Bucket="b")["Status"] == "Enabled"
    assert server.sent == ["versioning"] and cache.hits == 1
    clock.now += 0.2
    client.get_bucket_versioning(Bucket="b")
    assert server.sent == ["versioning", "versioning"]


def test_answers_are_per_bucket(setup: Any) -> None:
    client, server, _, _ = setup
    server.answers["versioning"] = (200, VERSIONING)
    client.get_bucket_versioning(Bucket="a")
    client.get_bucket_versioning(Bucket="b")
    assert len(server.sent) == 2


def test_a_not_configured_error_is_kept_and_raised_again(setup: Any) -> None:
    client, server, _, _ = setup
    server.answers["policy"] = (404, error("NoSuchBucketPolicy", 404))
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            client.get_bucket_policy(Bucket="b")
        assert exc.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    assert server.sent == ["policy"]


@pytest.mark.parametrize(
    ("code", "status"), [("NoSuchBucket", 404), ("AccessDenied", 403), ("InternalError", 500)]
)
def test_a_missing_bucket_a_denial_or_a_failure_is_never_kept(setup: Any, code: str, status: int) -> None:
    client, server, _, _ = setup
    server.answers["policy"] = (status, error(code, status))
    with pytest.raises(ClientError):
        client.get_bucket_policy(Bucket="b")
    first = len(server.sent)  # a 500 may be retried
    with pytest.raises(ClientError):
        client.get_bucket_policy(Bucket="b")
    assert len(server.sent) == 2 * first


def test_a_caller_changing_an_answer_does_not_change_the_kept_one(setup: Any) -> None:
    client, server, _, _ = setup
    server.answers["versioning"] = (200, VERSIONING)
    client.get_bucket_versioning(Bucket="b")["Status"] = "changed"
    assert client.get_bucket_versioning(Bucket="b")["Status"] == "Enabled"


def test_the_region_is_parsed_again_from_a_kept_answer(setup: Any) -> None:
    client, server, _, _ = setup
    server.answers["location"] = (
        200,
        b'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-1</LocationConstraint>',
    )
    assert client.get_bucket_location(Bucket="b")["LocationConstraint"] == "eu-west-1"
    assert client.get_bucket_location(Bucket="b")["LocationConstraint"] == "eu-west-1"
    assert server.sent == ["location"]


def test_clear_forgets_everything(setup: Any) -> None:
    client, server, cache, _ = setup
    server.answers["versioning"] = (200, VERSIONING)
    client.get_bucket_versioning(Bucket="b")
    cache.clear()
    client.get_bucket_versioning(Bucket="b")
    assert len(server.sent) == 2


def test_operations_not_named_are_never_kept(setup: Any) -> None:
    client, server, _, _ = setup
    server.answers["tagging"] = (200, b"<Tagging><TagSet></TagSet></Tagging>")
    client.get_bucket_tagging(Bucket="b")
    client.get_bucket_tagging(Bucket="b")
    assert server.sent == ["tagging", "tagging"]


def test_a_client_without_the_cache_is_never_answered_from_it(setup: Any) -> None:
    client, server, _, _ = setup
    server.answers["versioning"] = (200, VERSIONING)
    client.get_bucket_versioning(Bucket="b")
    other = s3_client(server)
    other.get_bucket_versioning(Bucket="b")
    assert server.sent == ["versioning", "versioning"]
