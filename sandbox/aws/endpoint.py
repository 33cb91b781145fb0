"""An AWS sandbox on an emulator of your own, reached by URL: LocalStack, or any S3-compatible
emulator (``[targets.NAME.sandbox] kind = "endpoint", url = "http://127.0.0.1:4566"``).

Such an emulator has no reset API that interlock can count on (LocalStack's open core has none
for S3 state), so a lease resets by deleting exactly the footprint's buckets there — every object
version and delete marker, then the bucket — before seeding them, and again on release.
Everything else in the emulator is left alone. The endpoint is leased to one rehearsal at a time.
Seeding goes over HTTP: one request per bucket setting and per object (a few milliseconds an
object on loopback), where the embedded moto sandbox seeds in-process.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..base import CannotRehearse, SandboxError
from ..diff import Snapshot
from .common import FAKE_CREDENTIALS, AwsSandbox, ClientCache, Seeded
from .s3 import buckets_with_policies, delete_buckets, footprint_buckets, seed_client


class EndpointSandbox(AwsSandbox):
    kind = "aws"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url.rstrip("/")
        self._describe: dict[str, Any] = {
            "kind": "endpoint",
            "url": self.url,
            "emulator": "unknown",
            "version": "",
        }
        self._admin: ClientCache | None = None

    def start(self) -> None:
        if self.clients is not None:
            return
        clients = ClientCache(self.url, FAKE_CREDENTIALS)
        try:
            clients.client("s3").list_buckets()
        except (BotoCoreError, ClientError) as exc:
            raise SandboxError(
                f"the sandbox emulator at {self.url} does not answer S3 ({exc}); start it, or fix "
                "[targets.NAME.sandbox] url"
            ) from exc
        self._describe.update(self._identify())
        self._admin = ClientCache(self.url, FAKE_CREDENTIALS)  # reset and seed: not the rehearsal's calls
        self.clients = clients

    def _identify(self) -> dict[str, str]:
        """LocalStack says who it is at /_localstack/health; anything else is "an S3-compatible emulator"."""
        try:
            with urllib.request.urlopen(f"{self.url}/_localstack/health", timeout=5) as resp:
                health = json.loads(resp.read())
            return {"emulator": "LocalStack", "version": str(health.get("version", ""))}
        except (urllib.error.URLError, OSError, ValueError):
            return {"emulator": "S3-compatible emulator", "version": ""}

    def stop(self) -> None:
        self.clients = self._admin = None

    def describe(self) -> dict[str, Any]:
        return dict(self._describe)

    def reset(self, call: Any) -> None:
        assert self._admin is not None
        if call.service != "s3":
            raise CannotRehearse(
                f"the endpoint sandbox at {self.url} rehearses S3 calls only; {call.tool} is {call.service}: "
                "rehearse it in the embedded moto sandbox (remove [targets.NAME.sandbox], or use another "
                "target for it)"
            )
        try:
            delete_buckets(self._admin.client("s3"), footprint_buckets(call.addresses, call.baseline))
        except (BotoCoreError, ClientError) as exc:
            raise SandboxError(f"could not reset the sandbox emulator at {self.url}: {exc}") from exc

    def differences(self, baseline: Snapshot) -> list[tuple[str, str]]:
        if self._describe.get("emulator") != "LocalStack":
            return []
        with_policy = buckets_with_policies(baseline)
        if not with_policy:
            return []
        return [
            (
                "sandbox-differs",
                "LocalStack's open core does not enforce bucket policies, so this rehearsal ignored the policy "
                f"of {', '.join(with_policy)}; production enforces it, and a call it denies fails at apply "
                "(nothing is changed then, and the plan ends failed)",
            )
        ]

    def seed(self, call: Any) -> Seeded:
        assert self._admin is not None
        try:
            return seed_client(self._admin.client("s3", call.region), call.baseline, call.region)
        except (BotoCoreError, ClientError) as exc:
            raise SandboxError(f"could not seed the sandbox emulator at {self.url}: {exc}") from exc
