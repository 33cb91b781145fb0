"""The pre-image store: content-addressed, secrets encrypted at rest, edits refused, expiry removes
what no manifest names any more."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from interlock.server.errors import StoreError
from interlock.server.preimages import PreImageStore
from interlock.tools.undo import PreImage


def pre(body: bytes = b"report body", secret: bytes | None = None) -> PreImage:
    blobs = {"aws:s3:::b/k": body}
    names: set[str] = set()
    if secret is not None:
        blobs["arn:aws:ssm:us-east-1:1:parameter/db#value"] = secret
        names.add("arn:aws:ssm:us-east-1:1:parameter/db#value")
    return PreImage(
        toolset="s3", states={"aws:s3:::b/k": {"etag": '"x"', "size": len(body)}}, blobs=blobs, secret=names
    )


def test_a_kept_pre_image_loads_back_the_same(tmp_path: Path) -> None:
    store = PreImageStore(tmp_path)
    kept = store.put(7, "prod", pre(secret=b"hunter2"), 3600)
    back = store.load(kept.digest)
    assert back.states == {"aws:s3:::b/k": {"etag": '"x"', "size": 11}}
    assert back.blobs == pre(secret=b"hunter2").blobs and back.secret == {
        "arn:aws:ssm:us-east-1:1:parameter/db#value"
    }
    assert (kept.plan_id, kept.bytes, kept.addresses) == (7, 11 + 7, 1)


def test_an_object_kept_by_two_plans_is_stored_once(tmp_path: Path) -> None:
    store = PreImageStore(tmp_path)
    a, b = store.put(1, "prod", pre(), 3600), store.put(2, "prod", pre(), 3600)
    assert a.digest != b.digest  # two manifests
    assert len(list((tmp_path / "blobs").glob("*/*"))) == 1


def test_a_secret_is_encrypted_at_rest_and_its_key_is_private(tmp_path: Path) -> None:
    store = PreImageStore(tmp_path)
    kept = store.put(1, "prod", pre(secret=b"s3cr3t-password-value"), 3600)
    for path in [*tmp_path.rglob("*")]:
        if path.is_file() and path.name != "key":
            assert b"s3cr3t-password-value" not in path.read_bytes(), path
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    manifest = json.loads(next((tmp_path / "manifests").glob("*.json")).read_text())
    refs = {b["ref"] for b in manifest["blobs"].values() if b["secret"]}
    import hashlib

    assert hashlib.sha256(b"s3cr3t-password-value").hexdigest() not in refs  # not named by its hash
    assert (
        store.load(kept.digest).blobs["arn:aws:ssm:us-east-1:1:parameter/db#value"]
        == b"s3cr3t-password-value"
    )


def test_an_edited_manifest_or_blob_is_refused(tmp_path: Path) -> None:
    store = PreImageStore(tmp_path)
    kept = store.put(1, "prod", pre(), 3600)
    blob = next((tmp_path / "blobs").glob("*/*"))
    blob.write_bytes(b"something else")
    with pytest.raises(StoreError, match="changed after it was kept"):
        store.load(kept.digest)
    manifest = next((tmp_path / "manifests").glob("*.json"))
    manifest.write_text(manifest.read_text().replace('"size":11', '"size":12'))
    with pytest.raises(StoreError, match="edited after it was kept"):
        store.load(kept.digest)


def test_a_missing_pre_image_says_it_is_gone(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no longer kept"):
        PreImageStore(tmp_path).load("0" * 64)


def test_removing_an_expired_manifest_frees_only_blobs_nobody_names(tmp_path: Path) -> None:
    store = PreImageStore(tmp_path)
    old = store.put(1, "prod", PreImage("s3", {"a": None}, {"a": b"only-old"}), 1)
    new = store.put(2, "prod", PreImage("s3", {"a": None}, {"a": b"shared", "b": b"only-new"}), 3600)
    store.put(3, "prod", PreImage("s3", {"a": None}, {"a": b"shared"}), 1)
    expired = store.expired(time.time() + 10)
    assert {k.plan_id for k in expired} == {1, 3}
    freed = store.remove([k.digest for k in expired])
    assert freed == len(b"only-old")
    assert store.load(new.digest).blobs == {"a": b"shared", "b": b"only-new"}
    assert not store.exists(old.digest)
