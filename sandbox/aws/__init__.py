"""AWS sandboxes: the embedded moto server (``moto``), any emulator by URL (``endpoint``), and
what they share (``common``: clients, addresses, placeholders; ``s3``: seeding S3 state)."""

from ..base import SandboxError
from .common import (
    ACCOUNT_ID,
    FAKE_CREDENTIALS,
    VERSION_MARK,
    AwsSandbox,
    Recorder,
    boto3_session,
    fast_timestamp,
    parse_s3_address,
    parse_s3_version,
    placeholder_body,
    placeholder_etag,
    s3_bucket_address,
    s3_object_address,
    s3_version_address,
)
from .moto import MotoSandbox

__all__ = [
    "ACCOUNT_ID",
    "VERSION_MARK",
    "FAKE_CREDENTIALS",
    "AwsSandbox",
    "MotoSandbox",
    "Recorder",
    "SandboxError",
    "boto3_session",
    "fast_timestamp",
    "parse_s3_address",
    "parse_s3_version",
    "placeholder_body",
    "placeholder_etag",
    "s3_bucket_address",
    "s3_object_address",
    "s3_version_address",
]
