"""Seeding Lambda functions (and the layer versions a call attaches) into the embedded moto sandbox,
through moto's in-process backend.

A function is built as a moto ``LambdaFunction`` from production's configuration and registered
under its name, so its ARN reads as production's. Its code is a placeholder zip (the tools never
read or run code); the server-computed fields are set back to production's (``CodeSha256``,
``CodeSize``; the version is ``$LATEST`` on both sides; ``LastModified`` and ``RevisionId`` are
volatile), so an untouched field never shows as changed. The function is registered directly
rather than through moto's ``create_function``: that one checks the execution role in moto's IAM
backend, which the configuration tools do not need (moto checks no role on an update either, see
the README). Environment values come from the snapshot's blobs (the real values; states hold
secret-looking ones as hashes), so the rehearsal's after-state hashes them as production's.

Its published versions (copies of it under their production numbers) and aliases (name ->
version) are registered too, so an update leaves them as production has them.

A layer version is built as a moto ``LayerVersion`` under its production ARN (name, version
number and account), so moto accepts a configuration that names it.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile
from typing import Any

from ..diff import Snapshot, State
from .common import ClientCache, Seeded, parse_arn
from .services import MotoService

ENV_BLOB = "#environment"  # the key tools.awslambda gives a function's real environment in a baseline


def _placeholder_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("interlock-placeholder.txt", "the code of this function was not copied into the sandbox\n")
    return base64.b64encode(buf.getvalue())  # as moto receives it from the wire


_ZIP = _placeholder_zip()


def _backend(account: str, region: str) -> Any:
    from moto.awslambda.models import lambda_backends

    return lambda_backends[account][region]


def _reset(account: str, region: str) -> None:
    _backend(account, region).reset()


def _seed_layer(backend: Any, address: str, st: State) -> None:
    from moto.awslambda.models import Layer, LayerVersion

    parsed = parse_arn(address)
    assert parsed is not None
    _, name, version = parsed.resource.split(":")
    lv = LayerVersion({"LayerName": name, "Content": {"ZipFile": _ZIP}}, parsed.account, parsed.region)  # type: ignore[abstract]
    lv.code_sha_256 = st.get("code_sha256") or ""  # production's, not the placeholder's
    lv.code_size = st.get("code_size") or 0
    storage = backend._layers
    if name not in storage._layers:
        storage._layers[name] = Layer(lv)
    layer = storage._layers[name]
    lv.attach(layer, int(version))
    layer.layer_versions[str(int(version))] = lv
    layer._latest_version = max(layer._latest_version, int(version))


def _seed_function(backend: Any, account: str, region: str, st: State, env: dict[str, str]) -> None:
    from moto.awslambda.models import LambdaAlias, LambdaFunction

    spec: dict[str, Any] = {
        "FunctionName": st["name"],
        "Role": st.get("role") or "",
        "Runtime": st.get("runtime"),
        "Handler": st.get("handler"),
        "Code": {"ZipFile": _ZIP},
        "Description": st.get("description") or "",
        "MemorySize": st.get("memory_size") or 128,
        "Timeout": st.get("timeout") or 3,
        "PackageType": st.get("package_type") or "Zip",
        "Architectures": list(st.get("architectures") or ["x86_64"]),
        "EphemeralStorage": {"Size": st.get("ephemeral_storage") or 512},
        "TracingConfig": {"Mode": st.get("tracing_mode") or "PassThrough"},
    }
    if env:
        spec["Environment"] = {"Variables": dict(env)}
    if st.get("subnet_ids") or st.get("security_group_ids"):
        spec["VpcConfig"] = {
            "SubnetIds": list(st.get("subnet_ids") or []),
            "SecurityGroupIds": list(st.get("security_group_ids") or []),
        }
    fn = LambdaFunction(account_id=account, spec=spec, region=region, version="$LATEST")  # type: ignore[abstract]
    # Production's server-computed fields, not the placeholder's.
    fn.code_sha_256 = st.get("code_sha256") or ""
    fn.code_size = st.get("code_size") or 0
    fn.layers = [{"Arn": arn, "CodeSize": 0} for arn in st.get("layers") or []]
    storage = backend._lambdas
    versions = []
    for number in st.get("published_versions") or []:
        if not str(number).isdigit():
            continue
        published = copy.copy(fn)
        published.set_version(int(number))
        versions.append(published)
    storage._functions[fn.function_name] = {"latest": fn, "versions": versions}
    storage._arns[fn.function_arn] = fn
    for published in versions:
        storage._arns[published.function_arn] = published
    for alias, version in (st.get("aliases") or {}).items():
        # routing_config None: what moto's own create_alias passes when none is given
        none: Any = None
        storage._aliases[fn.function_arn][alias] = LambdaAlias(
            account, region, alias, fn.function_name, version, "", none
        )


def seed(snapshot: Snapshot, account: str, region: str, clients: ClientCache) -> Seeded:
    backend = _backend(account, region)
    present = snapshot.present()
    for address, st in present.items():
        if ":layer:" in address:
            _seed_layer(backend, address, st)
    for address, st in present.items():
        if ":function:" not in address:
            continue
        blob = snapshot.blobs.get(address + ENV_BLOB)
        env = json.loads(blob) if blob is not None else dict(st.get("environment") or {})
        _seed_function(backend, account, region, st, env)
    return Seeded()


SERVICE = MotoService(name="lambda", reset=_reset, seed=seed, replaced=None)
