"""The embedded AWS sandbox: moto's threaded server on 127.0.0.1 (an ephemeral port), in this
process. Seeding goes through moto's in-process backend objects instead of HTTP; rehearsal calls
and snapshots still go over HTTP, through the same tool code as production.

We never use ``mock_aws``: it patches botocore process-wide and would capture the calls meant
for production (DESIGN.md §3, rule 4).
"""

from __future__ import annotations

import logging
from typing import Any

from ..base import CannotRehearse, SandboxError
from .common import ACCOUNT_ID, FAKE_CREDENTIALS, AwsSandbox, ClientCache, Recorder, Seeded
from .services import MotoService, service


class MotoSandbox(AwsSandbox):
    """The embedded emulator. ``start()`` once; one rehearsal at a time."""

    kind = "aws"

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__()
        self._host = host
        self._server: Any = None
        self._admin: ClientCache | None = None

    @property
    def endpoint_url(self) -> str:
        return self.clients.endpoint_url if self.clients else ""

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
        self.clients = ClientCache(f"http://{host}:{port}", FAKE_CREDENTIALS)
        self._admin = ClientCache(
            f"http://{host}:{port}", FAKE_CREDENTIALS
        )  # seeding: not the rehearsal's calls
        self.clients.client("s3").list_buckets()  # warm up: the first request loads moto's S3 backend

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
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
        self._service(call).reset(call.account or ACCOUNT_ID, call.region)

    def seed(self, call: Any) -> Seeded:
        if self._admin is None:
            raise SandboxError("the sandbox is not running")
        return self._service(call).seed(call.baseline, call.account or ACCOUNT_ID, call.region, self._admin)

    def replaced(self, call: Any, recorder: Recorder) -> set[str]:
        found = self._service(call)
        if found.replaced is None:
            return set()
        return found.replaced(recorder.of(found.name), call.account or ACCOUNT_ID, call.region)
