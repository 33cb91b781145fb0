"""The S3 toolset's argument models: what an agent may pass, checked before anything runs.

Every rule S3 itself enforces on an argument is enforced here first, with S3's rule named, so a bad
argument is the agent's error to fix and never blamed on the sandbox or production.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

# S3's naming rules: 3-63 lowercase letters, digits, dots and hyphens. A bucket has exactly one
# name, so policy never meets 'Cost-Reports' standing for 'cost-reports'.
BUCKET_RE = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
BucketName = Field(
    description="The S3 bucket name, e.g. 'app-logs' (lowercase letters, digits, dots and hyphens).",
    min_length=3,
    max_length=63,
    pattern=BUCKET_RE,
)


class ListBuckets(BaseModel):
    pass


class ListObjects(BaseModel):
    bucket: str = BucketName
    prefix: str = Field("", description="Only keys that start with this prefix.")
    max_keys: int = Field(100, ge=1, le=1000, description="At most this many keys in one page (1-1000).")
    continuation_token: str | None = Field(
        None, description="The next_token of the previous page, to read the next page."
    )


class GetObject(BaseModel):
    bucket: str = BucketName
    key: str = Field(description="The object key.", min_length=1)


class BucketOnly(BaseModel):
    bucket: str = BucketName


class PutObject(BaseModel):
    bucket: str = BucketName
    key: str = Field(description="The object key to write.", min_length=1, max_length=1024)
    body: str = Field(description="The object's content, as UTF-8 text.")
    content_type: str = Field("text/plain", description="The Content-Type to store with the object.")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="User metadata (x-amz-meta-*) as a string-to-string map."
    )


class CopyObject(BaseModel):
    source_bucket: str = Field(
        description="The bucket to copy from.", min_length=3, max_length=63, pattern=BUCKET_RE
    )
    source_key: str = Field(description="The key to copy from.", min_length=1)
    bucket: str = Field(description="The destination bucket.", min_length=3, max_length=63, pattern=BUCKET_RE)
    key: str = Field(description="The destination key.", min_length=1, max_length=1024)


class DeleteObjects(BaseModel):
    bucket: str = BucketName
    keys: list[str] | None = Field(
        None, description="Exact keys to delete. Give either keys or prefix, not both.", max_length=10_000
    )
    prefix: str | None = Field(
        None, description="Delete every object whose key starts with this prefix. Give either keys or prefix."
    )

    @model_validator(mode="after")
    def _one_of(self) -> DeleteObjects:
        if (self.keys is None) == (self.prefix is None):
            raise ValueError("give exactly one of 'keys' (a list of exact keys) or 'prefix'")
        if self.keys is not None and not self.keys:
            raise ValueError("'keys' is empty: name at least one key")
        if self.prefix is not None and self.prefix == "":
            raise ValueError(
                "an empty prefix would delete the whole bucket: use delete_s3_bucket with force=true, "
                "or name a prefix"
            )
        return self


class CreateBucket(BaseModel):
    bucket: str = BucketName
    region: str = Field("us-east-1", description="The region to create the bucket in.")


class DeleteBucket(BaseModel):
    bucket: str = BucketName
    force: bool = Field(
        False,
        description="Empty the bucket first (deletes every object). Without it a non-empty bucket fails.",
    )


class PutPolicy(BaseModel):
    bucket: str = BucketName
    policy: str = Field(description="The bucket policy as a JSON document (a string).")

    @field_validator("policy")
    @classmethod
    def _json(cls, v: str) -> str:
        try:
            doc = json.loads(v)
        except json.JSONDecodeError as exc:
            raise ValueError(f"policy is not valid JSON ({exc.msg} at position {exc.pos})") from exc
        if not isinstance(doc, dict):
            raise ValueError("policy must be a JSON object with a 'Statement' list")
        return v


class PutTagging(BaseModel):
    bucket: str = BucketName
    tags: dict[str, str] = Field(description="The complete tag set; replaces the current tags.")


class PutVersioning(BaseModel):
    bucket: str = BucketName
    status: Literal["Enabled", "Suspended"] = Field(description="'Enabled' or 'Suspended'.")
