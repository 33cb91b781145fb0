"""Tool functions the sandbox-pool tests send to worker processes, and the ``Call`` that carries them.

They are module-level, so a ``Call`` holding them pickles by reference and a spawned worker
imports them from here (workers get the parent's ``sys.path``). Arguments are plain dicts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from interlock.sandbox.aws.common import s3_bucket_address, s3_object_address
from interlock.sandbox.base import Call, SandboxError
from interlock.sandbox.diff import Snapshot
from interlock.tools.spec import Footprint, FootprintTooLarge, Limits, ToolFailure

DEADLINE = 20.0  # seconds a tool waits for a condition before it gives up


def call(execute: Any, args: dict[str, Any], service: str = "s3", snapshot: Any = None) -> Call:
    """A Call as the engine builds one, for a call whose production footprint is empty."""
    fp = Footprint(addresses=tuple(s3_bucket_address(b) for b in args.get("buckets", ())))
    return Call(
        tool=execute.__name__,
        service=service,
        region="us-east-1",
        args=args,
        footprint=fp,
        resolved=fp.resolve({}),
        baseline=Snapshot(states={}),
        limits=Limits(),
        execute=execute,
        snapshot=snapshot or every_bucket,
    )


def _wait_for(paths: list[Path], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline:
            raise ToolFailure(f"timed out after {DEADLINE:.0f} s waiting for {what}")
        time.sleep(0.01)


def write_then_wait(client: Any, args: dict[str, Any], resolved: Any) -> dict[str, Any]:
    """Create bucket ``args["bucket"]`` holding one object, then mark it written (a file named
    after the bucket in ``args["dir"]``) and wait until every bucket in ``args["buckets"]`` is
    marked: a barrier that only concurrent rehearsals pass."""
    bucket = args["bucket"]
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=f"{bucket}.txt", Body=bucket.encode())
    marks = Path(args["dir"])
    (marks / bucket).touch()
    _wait_for([marks / b for b in args["buckets"]], f"the rehearsals of {args['buckets']} to write")
    return {"pid": os.getpid()}


def every_bucket(client: Any, footprint: Any, limits: Any) -> Snapshot:
    """Every bucket in the sandbox and every object in them, not only the footprint's: whatever
    another rehearsal wrote shows here too."""
    states: dict[str, Any] = {}
    for b in client.list_buckets().get("Buckets", []):
        name = b["Name"]
        states[s3_bucket_address(name)] = {"name": name}
        for o in client.list_objects_v2(Bucket=name).get("Contents", []):
            body = client.get_object(Bucket=name, Key=o["Key"])["Body"].read()
            states[s3_object_address(name, o["Key"])] = {"body": body.decode()}
    return Snapshot(states=states)


def announce_then_hang(client: Any, args: dict[str, Any], resolved: Any) -> dict[str, Any]:
    """Write this worker's pid to ``args["pidfile"]``, then wait for ``args["never"]``, a file no
    one writes: the test kills this process meanwhile."""
    tmp = Path(args["pidfile"] + ".tmp")
    tmp.write_text(str(os.getpid()))
    tmp.rename(args["pidfile"])
    _wait_for([Path(args["never"])], "a file that never appears")
    return {}


def create_bucket(client: Any, args: dict[str, Any], resolved: Any) -> dict[str, Any]:
    client.create_bucket(Bucket=args["bucket"])
    return {"pid": os.getpid()}


def read_missing_bucket(client: Any, args: dict[str, Any], resolved: Any) -> None:
    """Fails in the sandbox as production would: NoSuchBucket (the sandbox's ``CallRefused``)."""
    client.get_object(Bucket="no-such-bucket", Key="k")


def fail_with_hint(client: Any, args: dict[str, Any], resolved: Any) -> None:
    raise ToolFailure("the tool could not do it", "do it another way")


def too_large(client: Any, args: dict[str, Any], resolved: Any) -> None:
    raise FootprintTooLarge("the footprint holds 30000 objects", "name fewer objects")


def sandbox_fails(client: Any, args: dict[str, Any], resolved: Any) -> None:
    raise SandboxError("the sandbox broke")
