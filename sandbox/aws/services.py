"""The AWS services the embedded moto sandbox can hold, one ``MotoService`` each.

A service (by its botocore name, a tool's ``service``) says how to empty its backend between
rehearsals, how to seed a baseline straight into moto's in-process backend objects (tens of
microseconds a resource, where HTTP costs milliseconds), and which resources a rehearsal's
recorded calls deleted and created again (a replace, ``-/+``). A call belongs to one toolset, so
its baseline holds one service's addresses.

Adding an AWS toolset adds its seeder module here (``sandbox/aws/<service>.py`` defines
``SERVICE``) and one line in ``SERVICES``. Nothing else in the sandbox knows a service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..diff import Snapshot
from .common import ClientCache, Seeded

# (the baseline, account, region, admin clients: calls that are not the rehearsal's) -> identities
SeedFn = Callable[[Snapshot, str, str, ClientCache], Seeded]
# (account, region)
ResetFn = Callable[[str, str], None]
# ([(operation, parameters)] of this service, account, region) -> replaced addresses
ReplacedFn = Callable[[list[tuple[str, dict[str, Any]]], str, str], set[str]]


@dataclass(frozen=True)
class MotoService:
    name: str  # the botocore service name ("dynamodb"); recorded calls are filtered by it
    reset: ResetFn
    seed: SeedFn
    replaced: ReplacedFn | None = None
    # A service whose calls span other services (CloudFormation: a stack's tables, buckets...)
    # resets, seeds and tells replaces from the whole call (``sandbox.base.Call``) instead.
    reset_call: Callable[[Any], None] | None = None
    seed_call: Callable[[Any, ClientCache], Seeded] | None = None
    replaced_call: Callable[[list[tuple[str, dict[str, Any]]], Any], set[str]] | None = None
    # (the after-state, the call) -> the after-state with what the rehearsal could not predict
    # marked ``unpredicted`` (a function's code hash when the call made the function anew)
    unpredicted: Callable[[Snapshot, Any], Snapshot] | None = None
    # (the call) -> [(flag, note)], right after the call ran: what AWS does that moto does not,
    # applied to what the call just made (a bucket's versioning from a stack template), and what
    # could not be, named for the approver
    settle: Callable[[Any], list[tuple[str, str]]] | None = None


def services() -> Mapping[str, MotoService]:
    """Every service the moto sandbox seeds, by name (imported on first use: moto's models load
    slowly, and a server that rehearses only S3 never loads the others)."""
    from . import awslambda, cloudformation, dynamodb, ec2, iam, s3, sqs, ssm

    return {
        s.name: s
        for s in (
            s3.SERVICE,
            dynamodb.SERVICE,
            sqs.SERVICE,
            iam.SERVICE,
            ec2.SERVICE,
            ssm.SERVICE,
            awslambda.SERVICE,
            cloudformation.SERVICE,
        )
    }


def service(name: str) -> MotoService | None:
    return services().get(name)
