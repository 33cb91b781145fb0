"""The embedded AWS sandbox: moto, in this process, reached without a socket.

Every sandbox client carries a ``before-send`` handler, registered on that client alone, that
hands the request to moto's own dispatcher (the one ``mock_aws`` uses) and returns its answer;
seeding goes straight into moto's in-process backend objects. Nothing listens on a port.

We never use ``mock_aws``: it patches botocore process-wide and would capture the calls meant
for production (DESIGN.md §3, rule 4). A production client has no such handler, so it cannot
reach this sandbox, and a sandbox client cannot reach anything else: its endpoint is a closed
loopback port, and the handler answers every request itself (an unmatched one as
``NotImplemented``), so a request never leaves the process.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
from typing import Any

from ..base import CannotRehearse, SandboxError
from .common import ACCOUNT_ID, FAKE_CREDENTIALS, AwsSandbox, ClientCache, Clients, Recorder, Seeded
from .services import MotoService, service

# Where sandbox clients point. Port 9 (discard) on loopback: never an AWS endpoint, and if a
# request ever got past the handler it would find nothing listening.
SANDBOX_ENDPOINT = "http://127.0.0.1:9"
# An account no target has: a toolset's drift check builds resources fresh there (``drift``).
SCRATCH_ACCOUNT = "000000000000"

NOT_IMPLEMENTED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code>'
    b"<Message>the embedded moto sandbox has no handler for this request</Message></Error>"
)


class InProcess:
    """A ``before-send`` handler for one sandbox client: moto answers the request in-process.

    The request's URL is rewritten from the sandbox endpoint to the AWS hostname moto's URL
    patterns expect (``https://{endpoint prefix}.{region}.amazonaws.com`` + the same path and
    query); the account header and everything else pass through as botocore signed them."""

    def __init__(self, client: Any) -> None:
        meta = client.meta
        self._local = meta.endpoint_url.rstrip("/")
        self._aws = f"https://{meta.service_model.endpoint_prefix}.{meta.region_name}.amazonaws.com"
        self._dispatch = _dispatch

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        if not request.url.startswith(self._local):
            raise SandboxError(f"a sandbox client was asked to reach {request.url!r}: refused")
        request.url = self._aws + request.url[len(self._local) :]
        try:
            answer = self._dispatch(request)
        except Exception as exc:  # moto itself crashed on the request: it cannot rehearse it
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>'
                + f"the embedded moto sandbox failed on this request ({type(exc).__name__}: {exc})"[:300]
                .replace("&", "&amp;")
                .replace("<", "&lt;")
                .encode()
                + b"</Message></Error>"
            )
            return AWSResponse(request.url, 500, {}, MockRawResponse(body))  # type: ignore[arg-type]
        if answer is None:  # no service of moto's has it: answer it here, never over the network
            return AWSResponse(request.url, 501, {}, MockRawResponse(NOT_IMPLEMENTED))  # type: ignore[arg-type]
        status, headers, body = answer
        return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


# moto's own dispatcher (``BotocoreStubber.process_request``, what ``mock_aws`` uses) rebuilds a
# service's URL table and compiles its patterns on every request, about half of an in-process
# call's time. The same matching, with each host's table built once: the host's service by
# moto's index of URL patterns, then the first of that service's URL patterns the URL matches,
# whose handler answers. Handlers are module functions, so a table never goes out of date.
_routes_lock = threading.Lock()
_ROUTES: dict[str, tuple[re.Pattern[str] | None, list[tuple[re.Pattern[str], Any]]]] = {}


def _routes_for(clean_url: str, host: str) -> list[tuple[re.Pattern[str], Any]]:
    known = _ROUTES.get(host)
    # moto's service patterns name hosts; the service's own pattern is checked again all the same
    if known is not None and (known[0] is None or known[0].match(clean_url)):
        return known[1]
    import moto.backends as backends
    from moto.backend_index import backend_url_patterns
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict

    found: tuple[re.Pattern[str] | None, list[tuple[re.Pattern[str], Any]]] = (None, [])
    for name, pattern in backend_url_patterns:
        if pattern.match(clean_url):
            backend_dict = backends.get_backend(name)  # type: ignore[call-overload]
            if isinstance(backend_dict, BackendDict):
                regions = backend_dict[DEFAULT_ACCOUNT_ID]
                backend = regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
            else:
                backend = backend_dict["global"]
            found = (pattern, [(re.compile(url), _quiet(handler)) for url, handler in backend.urls.items()])
            break
    if known is None:
        with _routes_lock:
            _ROUTES[host] = found
    return found[1]


_QUIET = re.compile(rb"<Quiet>\s*true\s*</Quiet>", re.IGNORECASE)


@functools.cache
def _quiet_deletes() -> type | None:
    """moto's S3 responses, answering a quiet ``DeleteObjects`` as S3 does: with its errors only.

    moto lists every deleted key whatever ``Quiet`` says, and serialising then parsing 1,000
    ``Deleted`` entries a batch was most of a 10,000-object delete's rehearsal. Used by this
    dispatcher alone (never patched into moto's own classes). None when the installed moto
    answers S3 some other way: its handlers are then used as they are."""
    from moto.s3.responses import S3Response

    if not all(hasattr(S3Response, a) for a in ("serialized", "is_delete_keys")):
        return None
    from moto.core.responses import ActionResult

    class QuietDeletes(S3Response):
        def serialized(self, action_result: Any) -> Any:
            result = action_result.result
            if isinstance(result, dict) and result.get("Deleted") and self.is_delete_keys():
                raw = getattr(self, "body", b"")
                body = raw if isinstance(raw, bytes) else str(raw or "").encode()
                if _QUIET.search(body):
                    action_result = ActionResult({**result, "Deleted": []})
            return super().serialized(action_result)

    return QuietDeletes


def _quiet(handler: Any) -> Any:
    """``handler``, bound to ``_quiet_deletes()`` when it is one of S3's (a classmethod of moto's
    ``S3Response``, which makes an instance of its class per request)."""
    from moto.s3.responses import S3Response

    if getattr(handler, "__self__", None) is not S3Response:
        return handler
    quiet = _quiet_deletes()
    return handler if quiet is None else getattr(quiet, handler.__name__)


def _normalizer() -> Any:
    """moto's own request normaliser, when its dispatcher uses one (moto >= 5.2.5), else None:
    a handler gets the request in the form the installed moto's dispatcher would give it."""
    import moto.core.botocore_stubber as stubber

    return getattr(stubber, "normalize_request", None)


def _dispatch(request: Any) -> tuple[int, dict[str, Any], Any] | None:
    """moto's answer to a request for an AWS URL, as (status, headers, body); None when no
    service of moto's has it."""
    from moto.core.botocore_stubber import get_equivalent_url_in_aws_domain
    from moto.core.exceptions import HTTPException

    parsed, _ = get_equivalent_url_in_aws_domain(request.url)
    clean_url = f"{parsed.scheme}://{parsed.netloc}{parsed.path}"
    for header, value in request.headers.items():
        if isinstance(value, bytes):
            request.headers[header] = value.decode("utf-8")
    for pattern, handler in _routes_for(clean_url, parsed.netloc):
        if pattern.match(clean_url):
            normalize = _normalizer()
            try:
                if normalize is not None:  # moto >= 5.2.5 hands its handlers a request of its own
                    req = normalize(request)
                    status, headers, body = handler(req, req.raw_url, req.headers)
                else:
                    status, headers, body = handler(request, request.url, request.headers)
            except HTTPException as exc:
                status, headers, body = exc.code, exc.get_headers(), exc.get_body()
            return status, headers, body
    return None


@dataclasses.dataclass(frozen=True)
class Where:
    """An account and region of the sandbox, as a service's hooks read them off a call."""

    account: str
    region: str


class MotoSandbox(AwsSandbox):
    """The embedded emulator. ``start()`` once; one rehearsal at a time."""

    kind = "aws"

    def __init__(self) -> None:
        super().__init__()
        self._admin: ClientCache | None = None
        self._starting = threading.Lock()

    def start(self) -> None:
        with self._starting:
            self._start()

    def _start(self) -> None:
        if self.clients is not None:
            return
        try:
            # moto's packages import each other in cycles; imported from two threads at once they
            # fail ("partially initialized module"), so everything a rehearsal reaches is imported
            # here, once, under the lock.
            import moto.backends  # noqa: F401
            import moto.core.botocore_stubber  # noqa: F401

            self.clients = ClientCache(SANDBOX_ENDPOINT, FAKE_CREDENTIALS, dispatch=InProcess)
            # seeding: not the rehearsal's calls, so not recorded
            self._admin = ClientCache(SANDBOX_ENDPOINT, FAKE_CREDENTIALS, dispatch=InProcess)
            self.clients.client("s3").list_buckets()  # warm up: the first request loads moto's S3 backend
        except Exception as exc:  # pragma: no cover - environment failure
            self.clients = self._admin = None
            raise SandboxError(f"could not start the embedded moto sandbox: {exc}") from exc

    def stop(self) -> None:
        self.clients = self._admin = None

    def describe(self) -> dict[str, Any]:
        import moto

        return {"kind": "moto", "emulator": "moto (embedded)", "version": moto.__version__}

    def client(self, service: str, region: str = "us-east-1") -> Any:
        if self.clients is None:
            raise SandboxError("the sandbox is not running")
        return self.clients.client(service, region)

    def _service(self, call: Any) -> MotoService:
        found = service(call.service)
        if found is None:
            raise CannotRehearse(
                f"the embedded sandbox cannot hold {call.service} resources, so {call.tool} cannot be rehearsed"
            )
        return found

    def reset(self, call: Any) -> None:
        from moto.core.model_instances import reset_model_data

        found = self._service(call)
        if found.reset_call is not None:
            found.reset_call(call)
        else:
            found.reset(call.account or ACCOUNT_ID, call.region)
        # moto keeps every model object it ever made (FakeKey, FakeBucket, ...) in a list per class
        # for its dashboard, so a backend's reset frees nothing: without this, each rehearsal's
        # objects stay (about 15 KB a plan: 10,000 plans grew the server by 150 MB).
        reset_model_data()

    def seed(self, call: Any) -> Seeded:
        if self._admin is None:
            raise SandboxError("the sandbox is not running")
        found = self._service(call)
        if found.seed_call is not None:
            return found.seed_call(call, self._admin)
        return found.seed(call.baseline, call.account or ACCOUNT_ID, call.region, self._admin)

    def drift(self, call: Any) -> list[tuple[str, str]]:
        """Run the toolset's drift check in an empty account of this sandbox (``SCRATCH_ACCOUNT``),
        reset before and after: nothing of it reaches the rehearsal's account."""
        admin = self._admin
        if admin is None or call.drift is None:
            return []
        account = SCRATCH_ACCOUNT

        found = self._service(call)

        def clients(service: str) -> Any:
            made = admin.client(service, call.region, account)
            if (
                found.settle is not None
                and service == found.name
                and not getattr(made, "_interlock_settles", False)
            ):
                # the check's own stack calls get what AWS applies and moto does not, as the rehearsal's do
                made.meta.events.register(
                    f"after-call.{service}",
                    lambda **_: found.settle(Where(account, call.region)),  # type: ignore[misc]
                )
                made._interlock_settles = True
            return made

        scratch = dataclasses.replace(call, account=account)
        self.reset(scratch)
        try:
            return list(call.drift(Clients(clients), account, call.baseline, call.limits))
        finally:
            self.reset(scratch)

    def settle(self, call: Any) -> list[tuple[str, str]]:
        found = self._service(call)
        return found.settle(call) if found.settle is not None else []

    def unpredicted(self, call: Any, after: Any) -> Any:
        found = self._service(call)
        return found.unpredicted(after, call) if found.unpredicted is not None else after

    def replaced(self, call: Any, recorder: Recorder) -> set[str]:
        found = self._service(call)
        if found.replaced_call is not None:
            return found.replaced_call(recorder.of(found.name), call)
        if found.replaced is None:
            return set()
        return found.replaced(recorder.of(found.name), call.account or ACCOUNT_ID, call.region)
