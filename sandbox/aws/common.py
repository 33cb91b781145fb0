"""What every AWS sandbox shares: boto3 sessions and clients, S3 addresses, placeholders, the
call recorder, and ``AwsSandbox`` — the lease → reset → seed → execute → snapshot → release
shape that the moto and endpoint sandboxes fill in.

Objects read from production as a listing only (a large footprint) are seeded with a
placeholder body; when the sandbox still holds that placeholder after the rehearsal, the
object was not touched and its state is mapped back to the baseline's.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from botocore.utils import parse_timestamp

from ..base import CallRefused, CannotRehearse, Rehearsal, SandboxError
from ..diff import Snapshot, State

ACCOUNT_ID = "123456789012"
FAKE_CREDENTIALS = {"aws_access_key_id": "interlock-sandbox", "aws_secret_access_key": "interlock-sandbox"}


def fast_timestamp(value: Any) -> Any:
    """botocore's default timestamp parser runs dateutil on every value (~0.1 ms each); ISO 8601
    (every LastModified of a listing) parses with fromisoformat, anything else falls back."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return parse_timestamp(value)


def boto3_session(profile: str | None = None) -> boto3.session.Session:
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=fast_timestamp)
    return boto3.session.Session(botocore_session=core, profile_name=profile)


def make_client(session: boto3.session.Session, service: str, **kw: Any) -> Any:
    """The one place a boto3 client is made. Its service is a runtime string (a tool's ``service``),
    which the stubs' per-service overloads cannot pick; code that uses a client for one service
    annotates it with that service's type (``mypy_boto3_s3.S3Client``), so the calls are checked."""
    return session.client(service, **kw)  # type: ignore[call-overload]


def s3_bucket_address(bucket: str) -> str:
    return f"aws:s3:::{bucket}"


def s3_object_address(bucket: str, key: str) -> str:
    return f"aws:s3:::{bucket}/{key}"


def parse_s3_address(address: str) -> tuple[str, str | None]:
    rest = address.removeprefix("aws:s3:::")
    bucket, sep, key = rest.partition("/")
    return bucket, (key if sep else None)


def placeholder_body(address: str) -> bytes:
    return b"interlock-placeholder " + address.encode()


def placeholder_etag(address: str) -> str:
    return '"' + hashlib.md5(placeholder_body(address)).hexdigest() + '"'


class Recorder:
    """Records the mutating API calls a rehearsal made, to tell a replace from an update."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, params))

    def replaced_buckets(self) -> set[str]:
        deleted: set[str] = set()
        replaced: set[str] = set()
        for op, params in self.calls:
            bucket = params.get("Bucket")
            if op == "DeleteBucket" and bucket:
                deleted.add(bucket)
            elif op == "CreateBucket" and bucket in deleted:
                replaced.add(s3_bucket_address(bucket))
        return replaced


def restore_placeholders(snapshot: Snapshot, placeholders: dict[str, tuple[str, State]]) -> Snapshot:
    """Map objects that still hold their placeholder back to the baseline state."""
    if not placeholders:
        return snapshot
    states = dict(snapshot.states)
    for addr, (etag, baseline) in placeholders.items():
        st = states.get(addr)
        if st is not None and st.get("etag") == etag:
            states[addr] = baseline
    return Snapshot(states=states, blobs=snapshot.blobs, detail=snapshot.detail, context=snapshot.context)


class ClientCache:
    """boto3 clients on one endpoint, one per (service, region), each reporting its calls to the
    recorder of the current lease."""

    def __init__(self, endpoint_url: str, credentials: dict[str, str]) -> None:
        self.endpoint_url = endpoint_url
        self._credentials = credentials
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.recorder: Recorder | None = None

    def client(self, service: str, region: str = "us-east-1") -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = make_client(
                    boto3_session(),
                    service,
                    region_name=region,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 1}, max_pool_connections=32),
                    **self._credentials,
                )
                self._clients[key].meta.events.register(f"before-parameter-build.{service}", self._record)
            return self._clients[key]

    def _record(self, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        if self.recorder is not None:
            self.recorder(model, params)


def classify(exc: ClientError, tool: str) -> SandboxError:
    """A ClientError from the emulator: it cannot do the call (NotImplemented, 5xx), or the call
    itself is refused, as production would refuse it."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("NotImplemented", "InternalError") or status in (500, 501):
        return CannotRehearse(f"the sandbox emulator cannot rehearse {tool} ({code}): {exc}")
    return CallRefused(str(exc), exc)


class AwsSandbox:
    """The shape every AWS emulator sandbox shares; subclasses say how to reset and seed."""

    kind = "aws"

    def __init__(self) -> None:
        self._lock = anyio.Lock()  # one rehearsal at a time: they share the emulator's state
        self.clients: ClientCache | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    # subclasses ------------------------------------------------------------------

    def reset(self, addresses: frozenset[str], baseline: Snapshot) -> None:
        """Remove what an earlier rehearsal left (all of it, or the footprint's resources)."""
        raise NotImplementedError

    def seed(self, baseline: Snapshot, region: str) -> dict[str, tuple[str, State]]:
        """Create every present resource of the baseline; return the placeholders it seeded."""
        raise NotImplementedError

    # the rehearsal ---------------------------------------------------------------

    @asynccontextmanager
    async def lease(self, addresses: frozenset[str], baseline: Snapshot) -> AsyncIterator[Recorder]:
        if self.clients is None:
            raise SandboxError("the sandbox is not running")
        async with self._lock:
            await anyio.to_thread.run_sync(self.reset, addresses, baseline)
            recorder = Recorder()
            self.clients.recorder = recorder
            try:
                yield recorder
            finally:
                self.clients.recorder = None
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.reset, addresses, baseline)

    async def rehearse(self, call: Any) -> Rehearsal:
        assert call.execute is not None and call.snapshot is not None
        timings: dict[str, float] = {}
        try:
            async with self.lease(call.addresses, call.baseline) as recorder:
                assert self.clients is not None
                t0 = time.perf_counter()
                placeholders = await anyio.to_thread.run_sync(self.seed, call.baseline, call.region)
                timings["seed_ms"] = (time.perf_counter() - t0) * 1000
                client = self.clients.client(call.service, call.region)
                t0 = time.perf_counter()
                try:
                    output = await anyio.to_thread.run_sync(call.execute, client, call.args, call.resolved)
                except ClientError as exc:
                    raise classify(exc, call.tool) from exc
                timings["execute_ms"] = (time.perf_counter() - t0) * 1000
                t0 = time.perf_counter()
                after = await anyio.to_thread.run_sync(call.snapshot, client, call.footprint, call.limits)
                after = restore_placeholders(after, placeholders)
                timings["snapshot_ms"] = (time.perf_counter() - t0) * 1000
                replaced = recorder.replaced_buckets()
        except (BotoCoreError, ClientError) as exc:
            raise SandboxError(f"the sandbox failed during the rehearsal: {exc}") from exc
        return Rehearsal(after=after, replaced=replaced, output=output or {}, timings=timings)


EMULATOR_CREDENTIALS = {
    "aws_access_key_id": "interlock-emulator",
    "aws_secret_access_key": "interlock-emulator",
}


def production_client(service: str, region: str, profile: str | None, endpoint_url: str | None) -> Any:
    """A target's boto3 client: the usual credential chain (profile, environment); an emulator
    standing in for AWS (endpoint_url) with no credentials configured gets dummy ones, never real."""
    kw: dict[str, Any] = {
        "region_name": region,
        "config": Config(retries={"max_attempts": 2}, max_pool_connections=32, connect_timeout=5),
    }
    if endpoint_url:
        kw["endpoint_url"] = endpoint_url
    session = boto3_session(profile)
    if endpoint_url and session.get_credentials() is None:
        kw.update(EMULATOR_CREDENTIALS)
    return make_client(session, service, **kw)


def describe_error(exc: BaseException) -> tuple[str, str] | None:
    """A botocore error as (code, message): the API's error code, or ``connect``, ``credentials``,
    ``client`` for failures before an answer. None for anything that is not botocore's."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return str(err.get("Code", "Unknown")), str(err.get("Message", "") or exc)
    if isinstance(exc, EndpointConnectionError):
        return "connect", str(exc)
    if isinstance(exc, NoCredentialsError):
        return "credentials", str(exc)
    if isinstance(exc, BotoCoreError):
        return "client", str(exc)
    return None
