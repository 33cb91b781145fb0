"""The AWS sandbox: an embedded moto server reached over HTTP through ``endpoint_url``.

One ``MotoSandbox`` per process. It runs moto's threaded server on 127.0.0.1 (an ephemeral
port) and hands out *leases*: a lease resets the emulator, seeds it with a production
baseline, and yields boto3 clients pointed at it. Leases are exclusive (an asyncio lock), so
two rehearsals never share the emulator's state.

Seeding goes through moto's in-process backend objects (about 30 µs an object) instead of
HTTP (about 3 ms an object): the server runs in this process, so both see the same state.
Rehearsal calls and snapshots still go over HTTP, through the same tool code as production.

We never use ``mock_aws``: it patches botocore process-wide and would capture the calls meant
for production (DESIGN.md §3, rule 4).

Objects read from production as a listing only (a large footprint) are seeded with a
placeholder body; when the sandbox still holds that placeholder after the rehearsal, the
object was not touched and its state is mapped back to the baseline's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import boto3
import botocore.session
from botocore.config import Config
from botocore.utils import parse_timestamp

from .diff import Snapshot, State

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


class SandboxError(Exception):
    """The sandbox could not be started, reset or seeded."""


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


class Lease:
    """Exclusive use of the sandbox for one rehearsal."""

    def __init__(self, sandbox: MotoSandbox) -> None:
        self._sandbox = sandbox
        self.recorder = Recorder()
        self._placeholders: dict[str, tuple[str, State]] = {}

    @property
    def endpoint_url(self) -> str:
        return self._sandbox.endpoint_url

    def client(self, service: str, region: str = "us-east-1") -> Any:
        """A boto3 client on the sandbox; calls made through it are recorded for this lease."""
        return self._sandbox.client(service, region)

    def seed(self, snapshot: Snapshot, region: str = "us-east-1") -> None:
        """Create every present resource of the baseline in the emulator, in-process."""
        from moto.s3.models import s3_backends

        backend = s3_backends[ACCOUNT_ID]["aws"]
        states = snapshot.present()
        for name, bucket_region in (snapshot.context.get("buckets") or {}).items():
            if bucket_region and name not in backend.buckets:
                backend.create_bucket(name, bucket_region)
        buckets = {a: s for a, s in states.items() if parse_s3_address(a)[1] is None}
        for addr, st in buckets.items():
            name, _ = parse_s3_address(addr)
            if name not in backend.buckets:
                backend.create_bucket(name, st.get("region") or region)
            if st.get("versioning"):
                backend.put_bucket_versioning(name, st["versioning"])
            if st.get("policy") is not None:
                backend.put_bucket_policy(name, json.dumps(st["policy"]).encode())
            if st.get("tags"):
                backend.put_bucket_tagging(name, dict(st["tags"]))
        for addr, st in states.items():
            bucket, key = parse_s3_address(addr)
            if key is None:
                continue
            if bucket not in backend.buckets:
                backend.create_bucket(bucket, region)  # a present object implies its bucket
            body = snapshot.blobs.get(addr)
            if body is None:
                body = placeholder_body(addr)
                self._placeholders[addr] = (placeholder_etag(addr), st)
            fake = backend.put_object(bucket, key, body)
            meta: dict[str, str] = {}
            if st.get("content_type"):
                meta["Content-Type"] = st["content_type"]
            for mk, mv in (st.get("metadata") or {}).items():
                meta[f"x-amz-meta-{mk}"] = mv
            if meta:
                fake.set_metadata(meta)
            if st.get("tags"):
                backend.put_object_tagging(fake, dict(st["tags"]))

    def restore_placeholders(self, snapshot: Snapshot) -> Snapshot:
        """Map objects that still hold their placeholder back to the baseline state."""
        if not self._placeholders:
            return snapshot
        states = dict(snapshot.states)
        for addr, (etag, baseline) in self._placeholders.items():
            st = states.get(addr)
            if st is not None and st.get("etag") == etag:
                states[addr] = baseline
        return Snapshot(states=states, blobs=snapshot.blobs, detail=snapshot.detail, context=snapshot.context)


class MotoSandbox:
    """The embedded emulator. ``start()`` once; ``lease()`` per rehearsal."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._server: Any = None
        self._lock = anyio.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self.endpoint_url = ""
        self._recorder: Recorder | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        try:
            from moto.moto_server.threaded_moto_server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            server = ThreadedMotoServer(ip_address=self._host, port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
        except Exception as exc:  # pragma: no cover - environment failure
            raise SandboxError(f"could not start the embedded moto sandbox: {exc}") from exc
        self._server = server
        self.endpoint_url = f"http://{host}:{port}"
        # Warm up: the first request loads moto's S3 backend.
        self.client("s3").list_buckets()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self, service: str, region: str = "us-east-1") -> Any:
        with self._clients_lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = boto3_session().client(
                    service,
                    region_name=region,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 1}, max_pool_connections=32),
                    **FAKE_CREDENTIALS,
                )
                self._clients[key].meta.events.register(f"before-parameter-build.{service}", self._record)
            return self._clients[key]

    def _record(self, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        if self._recorder is not None:
            self._recorder(model, params)

    def reset(self) -> None:
        from moto.s3.models import s3_backends

        s3_backends[ACCOUNT_ID]["aws"].reset()
        s3_backends.bucket_accounts.clear()

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Lease]:
        if self._server is None:
            raise SandboxError("the sandbox is not running")
        async with self._lock:
            await anyio.to_thread.run_sync(self.reset)
            lease = Lease(self)
            self._recorder = lease.recorder
            try:
                yield lease
            finally:
                self._recorder = None
                await anyio.to_thread.run_sync(self.reset)
