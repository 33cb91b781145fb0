"""AWS sandboxes: the embedded moto server (``moto``), any emulator by URL (``endpoint``), and
what they share (``common``: clients, addresses, placeholders; ``s3``: seeding S3 state)."""

from ..base import SandboxError
from .common import (
    ACCOUNT_ID,
    FAKE_CREDENTIALS,
    AwsSandbox,
    Recorder,
    boto3_session,
    fast_timestamp,
    parse_s3_address,
    placeholder_body,
    placeholder_etag,
    s3_bucket_address,
    s3_object_address,
)
from .moto import MotoSandbox

__all__ = [
    "ACCOUNT_ID",
    "FAKE_CREDENTIALS",
    "AwsSandbox",
    "MotoSandbox",
    "Recorder",
    "SandboxError",
    "boto3_session",
    "fast_timestamp",
    "parse_s3_address",
    "placeholder_body",
    "placeholder_etag",
    "s3_bucket_address",
    "s3_object_address",
]
