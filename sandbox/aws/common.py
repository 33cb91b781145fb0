"""What every AWS sandbox shares: boto3 sessions and clients, S3 addresses, placeholders, the
call recorder, and ``AwsSandbox`` — the lease → reset → seed → execute → snapshot → release
shape that the moto and endpoint sandboxes fill in.

Objects read from production as a listing only (a large footprint) are seeded with a
placeholder body; when the sandbox still holds that placeholder after the rehearsal, the
object was not touched and its state is mapped back to the baseline's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import boto3
import botocore
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from botocore.parsers import ResponseParserError
from botocore.utils import parse_timestamp

from interlock import __version__

from ..base import CallRefused, CannotRehearse, Rehearsal, SandboxError
from ..diff import Snapshot, State

ACCOUNT_ID = "123456789012"
FAKE_CREDENTIALS = {"aws_access_key_id": "interlock-sandbox", "aws_secret_access_key": "interlock-sandbox"}


def fast_timestamp(value: Any) -> Any:
    """botocore's default timestamp parser runs dateutil on every value (~0.05-0.2 ms each). ISO
    8601 (every LastModified of a listing) parses with fromisoformat, an HTTP date (a HEAD or GET's
    Last-Modified header) with the email module's parser; anything else, or a value either reads
    without a time zone, falls back to botocore's."""
    if isinstance(value, str):
        parsed: datetime | None = None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            if value[:3].isalpha() and value.endswith("GMT"):
                try:
                    parsed = parsedate_to_datetime(value)
                except (TypeError, ValueError, IndexError):
                    parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return parse_timestamp(value)


# The User-Agent of every client interlock makes: fixed, so botocore does not build its default
# one (some 30 components) on every request, and naming interlock in what CloudTrail records.
USER_AGENT = f"interlock/{__version__} Boto3/{boto3.__version__} Botocore/{botocore.__version__}"


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


VERSION_MARK = "?version="  # bucket names cannot hold '?', so no object address contains it there


def s3_version_address(bucket: str, key: str, version_id: str) -> str:
    """One noncurrent version or delete marker: the bucket, then [key, version id] as canonical JSON
    (keys and version ids may hold any character, so neither is split on one)."""
    return f"aws:s3:::{bucket}{VERSION_MARK}" + json.dumps([key, version_id], separators=(",", ":"))


def parse_s3_version(address: str) -> tuple[str, str, str] | None:
    """(bucket, key, version id) of a version address; None for any other address."""
    rest = address.removeprefix("aws:s3:::")
    bucket, sep, tail = rest.partition(VERSION_MARK)
    if not sep or "/" in bucket:
        return None
    try:
        key, version_id = json.loads(tail)
    except (ValueError, TypeError):
        return None
    return bucket, str(key), str(version_id)


def parse_s3_address(address: str) -> tuple[str, str | None]:
    """(bucket, key) of an object, (bucket, None) of a bucket; a version address is its bucket's."""
    rest = address.removeprefix("aws:s3:::")
    version = parse_s3_version(address)
    if version is not None:
        return version[0], None
    bucket, sep, key = rest.partition("/")
    return bucket, (key if sep else None)


def placeholder_body(address: str, nonce: str) -> bytes:
    """The body seeded for an object too large to read. ``nonce`` is fresh for every seed, so no
    body a call writes can pass for a placeholder (and so for the large object it stands for)."""
    return b"interlock-placeholder " + nonce.encode() + b" " + address.encode()


def placeholder_etag(body: bytes) -> str:
    return '"' + hashlib.md5(body).hexdigest() + '"'


def arn(service: str, region: str, account: str, resource: str) -> str:
    """``arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE``; IAM's have no region (``region=""``)."""
    return f"arn:aws:{service}:{region}:{account}:{resource}"


@dataclass(frozen=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return arn(self.service, self.region, self.account, self.resource)


def parse_arn(address: str) -> Arn | None:
    """The parts of ``arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`` (the resource may hold ':');
    None for anything else."""
    parts = address.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] != "aws" or not parts[2]:
        return None
    return Arn(service=parts[2], region=parts[3], account=parts[4], resource=parts[5])


# One mutating API call a rehearsal made: (service, operation, parameters).
RecordedCall = tuple[str, str, dict[str, Any]]


class Recorder:
    """Records the mutating API calls a rehearsal made, to tell a replace from an update."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name, params))

    def of(self, service: str) -> list[tuple[str, dict[str, Any]]]:
        """The (operation, parameters) of the calls made to ``service``."""
        return [(op, params) for svc, op, params in self.calls if svc == service]

    def replaced_buckets(self) -> set[str]:
        return replaced_pairs(
            self.of("s3"), "DeleteBucket", "CreateBucket", lambda p: p.get("Bucket"), s3_bucket_address
        )


def replaced_pairs(
    calls: list[tuple[str, dict[str, Any]]],
    delete_op: str,
    create_op: str,
    name: Any,
    address: Any,
) -> set[str]:
    """The addresses of resources a rehearsal deleted and then created again (``delete_op`` then
    ``create_op`` on the same ``name(params)``): each is a replace, ``-/+``, not an update."""
    deleted: set[str] = set()
    replaced: set[str] = set()
    for op, params in calls:
        key = name(params)
        if not key:
            continue
        if op == delete_op:
            deleted.add(key)
        elif op == create_op and key in deleted:
            replaced.add(address(key))
    return replaced


@dataclass
class Seeded:
    """What a seed put in the sandbox in place of production's own identities, so the rehearsal's
    after-state can be read back in production's terms.

    - ``objects``: address -> (the ETag the sandbox gave it, production's state). An object still
      holding that ETag after the call was not touched: it is production's state, exactly (a
      multipart ``-N`` ETag or a placeholder body never shows up as a change).
    - ``placeholders``: placeholder ETag -> the address whose body it stands for (an object above
      the read cap). An object elsewhere holding it was copied from there: it has that object's
      size, ETag and content hash, never the placeholder's.
    - ``versions``: the sandbox's address of a seeded noncurrent version or delete marker ->
      production's address of it.
    """

    objects: dict[str, tuple[str, State]] = field(default_factory=dict)
    placeholders: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def translate(self, resolved: Any) -> Any:
        """The resolved footprint (``tools.spec.Resolved``) in the sandbox's terms, for the call run
        there: its version addresses are the sandbox's, and each planned object has the ETag the
        sandbox gave it, so "exactly what was planned" means the same thing on both sides."""
        if not (self.versions or self.objects) or not hasattr(resolved, "baseline"):
            return resolved
        inverse = {prod: sandbox for sandbox, prod in self.versions.items()}
        baseline: dict[str, Any] = {}
        for addr, st in resolved.baseline.items():
            if addr in inverse:
                baseline[inverse[addr]] = st
            elif st is not None and addr in self.objects:
                baseline[addr] = {**st, "etag": self.objects[addr][0]}
            else:
                baseline[addr] = st
        addresses = tuple(inverse.get(a, a) for a in resolved.addresses)
        return dataclasses.replace(resolved, addresses=addresses, baseline=baseline)


CONTENT_FIELDS = ("size", "etag", "sha256")
# A state may name fields the rehearsal could not predict; they are left out of the comparison
# with production after apply (and shown as unknown), never guessed.
UNPREDICTED = "unpredicted"


def restore_identities(snapshot: Snapshot, seeded: Seeded, baseline: Snapshot) -> Snapshot:
    """The sandbox's after-state in production's terms (see ``Seeded``)."""
    states: dict[str, State | None] = {}
    current = _seeded_currents(seeded)
    for addr, st in snapshot.states.items():
        if addr in seeded.versions:
            prod = seeded.versions[addr]
            if st is None:
                states[prod] = None
            elif prod in baseline.states:
                states[prod] = baseline.states[prod]
            else:  # the current version the seed wrote, made noncurrent by the call
                states[prod] = _noncurrent(st, prod, baseline)
            continue
        if st is not None and "version_id" in st:
            st = _version_identity(st, addr, current)
        if st is not None and addr in seeded.objects and st.get("etag") == seeded.objects[addr][0]:
            # The body seeded is the body it has: production's content fields. The rest (type,
            # metadata, tags) was seeded as production's and is read as the rehearsal left it.
            prod_state = seeded.objects[addr][1]
            states[addr] = {**st, **{f: prod_state.get(f) for f in CONTENT_FIELDS if f in prod_state}}
        elif st is not None and st.get("etag") in seeded.placeholders:
            origin = seeded.objects[seeded.placeholders[st["etag"]]][1]
            derived = {**st, **{f: origin.get(f) for f in CONTENT_FIELDS if f in origin}}
            if "-" in str(origin.get("etag", "")):
                # A copy of a multipart object gets an ETag of its own (the MD5 of bytes the
                # rehearsal never read): the plan cannot predict it, and says so.
                derived["etag"] = None
                derived[UNPREDICTED] = sorted({*derived.get(UNPREDICTED, []), "etag"})
            states[addr] = derived
        else:
            states[addr] = st
    for prod in seeded.versions.values():
        if prod in baseline.states:
            states.setdefault(prod, None)  # not there after the call: it was deleted
    return Snapshot(states=states, blobs=snapshot.blobs, detail=snapshot.detail, context=snapshot.context)


def _seeded_currents(seeded: Seeded) -> dict[str, tuple[str, str]]:
    """object address -> (the sandbox's id of its seeded current version, production's id)."""
    out: dict[str, tuple[str, str]] = {}
    for sandbox, prod in seeded.versions.items():
        s, p = parse_s3_version(sandbox), parse_s3_version(prod)
        if s is not None and p is not None:
            out.setdefault(s3_object_address(s[0], s[1]) + "\x00" + s[2], (s[2], p[2]))
    return out


def _version_identity(st: State, addr: str, current: dict[str, tuple[str, str]]) -> State:
    """An object's current version id in production's terms: the seeded one maps back; one the
    call wrote is new, and its id cannot be predicted (S3 makes it up at apply)."""
    if st.get("version_id") == "null":
        return st  # a suspended bucket's (or a pre-versioning) object: S3 names it null too
    found = current.get(addr + "\x00" + str(st.get("version_id")))
    if found is not None:
        return {**st, "version_id": found[1]}
    return {**st, "version_id": None, UNPREDICTED: sorted({*st.get(UNPREDICTED, []), "version_id"})}


def _noncurrent(st: State, prod: str, baseline: Snapshot) -> State:
    """The state of a version that was current when seeded: its id and content are production's."""
    parsed = parse_s3_version(prod)
    assert parsed is not None
    obj = baseline.states.get(s3_object_address(parsed[0], parsed[1])) or {}
    out = {**st, "version_id": parsed[2]}
    for f in ("size", "etag"):
        if f in obj:
            out[f] = obj[f]
    return out


class Clients:
    """One client per AWS service, made on first use: what a toolset whose calls span services (a
    CloudFormation stack holds tables, buckets, queues...) gets in place of one client. The same
    toolset code runs against production and the sandbox: only ``make`` differs."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        self._make = make
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:
            if service not in self._made:
                self._made[service] = self._make(service)
            return self._made[service]


class ClientCache:
    """boto3 clients on one endpoint, one per (service, region), each reporting its calls to the
    recorder of the current lease."""

    def __init__(
        self,
        endpoint_url: str,
        credentials: dict[str, str],
        dispatch: Callable[[Any], Callable[..., Any]] | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self._credentials = credentials
        # client -> a ``before-send`` handler answering that client's requests in-process;
        # registered on each client this cache makes, and on no other
        self._dispatch = dispatch
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self._lock = threading.Lock()
        self.recorder: Recorder | None = None

    def client(self, service: str, region: str = "us-east-1", account: str | None = None) -> Any:
        """A client on the emulator; with ``account``, one that acts as that AWS account (moto's
        ``x-moto-account-id``), so the ARNs the sandbox reports name production's account."""
        with self._lock:
            key = (service, region, account)
            if key not in self._clients:
                made = make_client(
                    boto3_session(),
                    service,
                    region_name=region,
                    endpoint_url=self.endpoint_url,
                    config=Config(
                        retries={"max_attempts": 1}, max_pool_connections=32, user_agent=USER_AGENT
                    ),
                    **self._credentials,
                )
                made.meta.events.register(f"before-parameter-build.{service}", self._record)
                if account is not None:
                    made.meta.events.register(f"before-sign.{service}", _as_account(account))
                if self._dispatch is not None:
                    made.meta.events.register("before-send", self._dispatch(made))
                self._clients[key] = made
            return self._clients[key]

    def _record(self, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        if self.recorder is not None:
            self.recorder(model, params)


def _as_account(account: str) -> Any:
    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    return add_header


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

    def reset(self, call: Any) -> None:
        """Remove what an earlier rehearsal left (all of it, or the call's resources)."""
        raise NotImplementedError

    def differences(self, baseline: Snapshot) -> list[tuple[str, str]]:
        """Where this sandbox is known to decide differently from AWS for this baseline, as
        (risk flag, note for the approver). None known by default."""
        return []

    def seed(self, call: Any) -> Seeded:
        """Create every present resource of the call's baseline; say which identities the sandbox
        gave them."""
        raise NotImplementedError

    def replaced(self, call: Any, recorder: Recorder) -> set[str]:
        """The addresses the rehearsal deleted and created again."""
        return recorder.replaced_buckets()

    def settle(self, call: Any) -> list[tuple[str, str]]:
        """Right after the call ran: what AWS does that this emulator does not, applied, and what
        could not be, as (flag, note) (nothing by default)."""
        return []

    def drift(self, call: Any) -> list[tuple[str, str]]:
        """The toolset's drift check (``call.drift``), where this sandbox can run it (none here)."""
        return []

    def unpredicted(self, call: Any, after: Snapshot) -> Snapshot:
        """The after-state with what the rehearsal could not predict marked (nothing by default)."""
        return after

    def call_client(self, call: Any) -> Any:
        """The client the call's functions get: one service's, or a ``Clients`` when the call's
        toolset spans services (``call.services``)."""
        clients = self.clients
        assert clients is not None
        if getattr(call, "services", ()):
            return Clients(lambda service: clients.client(service, call.region, call.account))
        return clients.client(call.service, call.region, call.account)

    # the rehearsal ---------------------------------------------------------------

    async def rehearse(self, call: Any) -> Rehearsal:
        """The rehearsal, leased exclusively: one thread hop for all of it (``rehearse_now``)."""
        async with self._lock:
            return await anyio.to_thread.run_sync(self.rehearse_now, call)

    def rehearse_now(self, call: Any) -> Rehearsal:
        """Reset, seed, run the call, settle, read the after-state and reset again, in the calling
        thread. The caller holds the sandbox exclusively (``rehearse``'s lock, or a pool worker's
        one call at a time). One step, not six hops between the event loop and a thread: each
        hop cost the loop ~75 µs of CPU, ~0.45 ms of a single-object rehearsal's ~6."""
        assert call.execute is not None and call.snapshot is not None
        if self.clients is None:
            raise SandboxError("the sandbox is not running")
        clients = self.clients
        timings: dict[str, float] = {}
        try:
            self.reset(call)
            recorder = Recorder()
            clients.recorder = recorder
            try:
                sandbox_notes: list[tuple[str, str]] = []
                if getattr(call, "drift", None) is not None:
                    # before seeding: S3 bucket names are one namespace across the sandbox's accounts
                    t0 = time.perf_counter()
                    sandbox_notes = self.drift(call)
                    timings["drift_ms"] = (time.perf_counter() - t0) * 1000
                t0 = time.perf_counter()
                seeded = self.seed(call)
                timings["seed_ms"] = (time.perf_counter() - t0) * 1000
                client = self.call_client(call)
                t0 = time.perf_counter()
                try:
                    resolved = seeded.translate(call.resolved)
                    output = call.execute(client, call.args, resolved)
                except ClientError as exc:
                    raise classify(exc, call.tool) from exc
                except ResponseParserError as exc:  # the emulator answered what botocore cannot read
                    raise CannotRehearse(
                        f"the sandbox emulator answered {call.tool} with a response botocore cannot read, so it "
                        f"cannot rehearse it: {str(exc)[:300]}"
                    ) from exc
                sandbox_notes += self.settle(call)
                timings["execute_ms"] = (time.perf_counter() - t0) * 1000
                t0 = time.perf_counter()
                light = dataclasses.replace(call.limits, context=False)  # states are compared, not context
                after = call.snapshot(client, call.footprint, light)
                after = self.unpredicted(call, restore_identities(after, seeded, call.baseline))
                timings["snapshot_ms"] = (time.perf_counter() - t0) * 1000
                replaced = self.replaced(call, recorder)
            finally:
                clients.recorder = None
                self.reset(call)
        except (BotoCoreError, ClientError, ResponseParserError) as exc:
            raise SandboxError(f"the sandbox failed during the rehearsal: {str(exc)[:500]}") from exc
        found = [*self.differences(call.baseline), *sandbox_notes]
        return Rehearsal(
            after=after,
            replaced=replaced,
            output=output or {},
            timings=timings,
            notes=[f"{flag}: {note}" for flag, note in found],
            risk=list(dict.fromkeys(flag for flag, _ in found)),
        )


EMULATOR_CREDENTIALS = {
    "aws_access_key_id": "interlock-emulator",
    "aws_secret_access_key": "interlock-emulator",
}


def production_client(service: str, region: str, profile: str | None, endpoint_url: str | None) -> Any:
    """A target's boto3 client: the usual credential chain (profile, environment); an emulator
    standing in for AWS (endpoint_url) with no credentials configured gets dummy ones, never real."""
    kw: dict[str, Any] = {
        "region_name": region,
        "config": Config(
            retries={"max_attempts": 2}, max_pool_connections=64, connect_timeout=5, user_agent=USER_AGENT
        ),
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
