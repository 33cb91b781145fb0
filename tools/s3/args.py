"""The S3 toolset's argument models: what an agent may pass, checked before anything runs.

Every rule S3 itself enforces on an argument is enforced here first, with S3's rule named, so a bad
argument is the agent's error to fix and never blamed on the sandbox or production:

- object keys and key prefixes: at most 1,024 bytes of UTF-8 (a key at least one), no control
  characters (U+0000-U+001F, U+007F: S3's XML API cannot carry them), no lone surrogates;
- user metadata: keys are HTTP header tokens, values printable US-ASCII without surrounding
  spaces, keys distinct ignoring case, at most 2 KB in all (keys plus values, S3's limit);
- ``content_type``: printable US-ASCII (an HTTP header value: no CR, LF or control characters),
  at most 256 characters;
- bucket tags: at most 50, keys 1-128 and values 0-256 characters of AWS's tag character set
  (letters, numbers, spaces and ``_ . : / = + - @``), no key starting with ``aws:``;
- ``region``: a region-shaped name (``us-east-1``, ``us-gov-west-1``);
- bucket policies: a JSON object with a ``Statement``, at most 20 KB (S3's limit), nested at most
  32 levels, text that encodes as UTF-8, no duplicate keys (the approver would see only one).

A model refuses unknown arguments (``extra="forbid"``): a misspelled argument is an error, never
silently dropped. Messages say the rule and the fix; the server names the argument in front.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# S3's naming rules: 3-63 lowercase letters, digits, dots and hyphens. A bucket has exactly one
# name, so policy never meets 'Cost-Reports' standing for 'cost-reports'.
BUCKET_RE = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
BucketName = Field(
    description="The S3 bucket name, e.g. 'app-logs' (lowercase letters, digits, dots and hyphens).",
    min_length=3,
    max_length=63,
    pattern=BUCKET_RE,
)

MAX_KEY_BYTES = 1024  # S3: "up to 1,024 bytes long" in UTF-8
MAX_METADATA_BYTES = 2048  # S3: user-defined metadata is limited to 2 KB (keys plus values)
MAX_CONTENT_TYPE = 256
MAX_TAGS = 50  # S3: a bucket holds at most 50 tags
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_POLICY_BYTES = 20 * 1024  # S3: bucket policies are limited to 20 KB
MAX_POLICY_DEPTH = 32  # far above any real policy; a deeper document cannot be shown or stored safely
MAX_REGION = 32
REGION_RE = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}")

KEY_RULES = "1 to 1,024 bytes of UTF-8, no control characters U+0000-U+001F or U+007F"
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# RFC 9110 token characters: what an HTTP header name (x-amz-meta-<key>) may hold.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PRINTABLE_ASCII = re.compile("[\x20-\x7e]*")
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _shown(text: str, limit: int = 60) -> str:
    """A string as a Python literal (control and format characters escaped), shortened."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def _code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def _utf8_bytes(value: str) -> int:
    """The length of ``value`` in UTF-8; a lone surrogate (which has no UTF-8) is an error."""
    found = _SURROGATE.search(value)
    if found:
        raise ValueError(
            f"holds a lone surrogate ({_code_point(found.group())} at character {found.start() + 1}), "
            "which is not text and has no UTF-8 encoding: send valid Unicode text"
        )
    return len(value.encode("utf-8"))


def _no_control_characters(value: str, what: str) -> None:
    found = _CONTROL.search(value)
    if found:
        raise ValueError(
            f"{what} cannot contain control characters (U+0000-U+001F, U+007F), which S3's XML API "
            f"cannot carry; this one has {_code_point(found.group())} at character {found.start() + 1}: "
            "remove it"
        )


def _object_key(value: str) -> str:
    size = _utf8_bytes(value)
    if not 1 <= size <= MAX_KEY_BYTES:
        raise ValueError(f"is {size} bytes of UTF-8, and S3 object keys are 1 to 1,024 bytes: shorten it")
    _no_control_characters(value, "S3 object keys")
    return value


def _key_prefix(value: str) -> str:
    size = _utf8_bytes(value)
    if size > MAX_KEY_BYTES:
        raise ValueError(
            f"is {size} bytes of UTF-8, and a key prefix is part of an S3 object key, which is at most "
            "1,024 bytes: shorten it"
        )
    _no_control_characters(value, "a key prefix is part of an S3 object key, and S3 object keys")
    return value


ObjectKey = Annotated[str, AfterValidator(_object_key)]
KeyPrefix = Annotated[str, AfterValidator(_key_prefix)]


def _user_metadata(value: dict[str, str]) -> dict[str, str]:
    total = 0
    seen: dict[str, str] = {}
    for key, text in value.items():
        if not _TOKEN.fullmatch(key):
            raise ValueError(
                f"key {_shown(key)} is not allowed: S3 sends user metadata as HTTP headers "
                "(x-amz-meta-<key>), so a key is one or more US-ASCII letters, digits or "
                "!#$%&'*+-.^_`|~ (an HTTP token): rename it"
            )
        if not _PRINTABLE_ASCII.fullmatch(text):
            bad = next(c for c in text if not "\x20" <= c <= "\x7e")
            raise ValueError(
                f"the value of {key!r} holds {_code_point(bad)}: S3 user metadata values are printable "
                "US-ASCII (space to '~') over its REST API: encode other text first (for example as "
                "percent-encoded UTF-8)"
            )
        if text != text.strip(" "):
            raise ValueError(
                f"the value of {key!r} starts or ends with a space, which HTTP strips, so S3 would store "
                "another value than the plan shows: remove the surrounding spaces"
            )
        folded = key.lower()
        if folded in seen:
            raise ValueError(
                f"keys {seen[folded]!r} and {key!r} differ only in case; HTTP header names ignore case, "
                "so S3 would keep one of them: use one key"
            )
        seen[folded] = key
        total += len(key) + len(text)
    if total > MAX_METADATA_BYTES:
        raise ValueError(
            f"is {total} bytes (keys plus values), and S3 limits user metadata to 2 KB (2,048 bytes): "
            "store less, or put it in the object's body"
        )
    return value


def _content_type(value: str) -> str:
    if not _PRINTABLE_ASCII.fullmatch(value):
        bad = next(c for c in value if not "\x20" <= c <= "\x7e")
        raise ValueError(
            f"holds {_code_point(bad)}: S3 stores the Content-Type as an HTTP header value, which is "
            "printable US-ASCII with no CR, LF or other control characters: use a media type such as "
            "'text/plain; charset=utf-8'"
        )
    if value != value.strip(" ") or not value:
        raise ValueError(
            "is empty or starts or ends with a space, which HTTP strips, so S3 would store another "
            "Content-Type than the plan shows: give a media type such as 'text/plain'"
        )
    return value


def _tag_characters(text: str) -> str | None:
    """The first character outside AWS's tag set ``\\p{L}\\p{Z}\\p{N}_.:/=+\\-@``, if any."""
    for char in text:
        if unicodedata.category(char)[0] not in "LZN" and char not in _TAG_PUNCTUATION:
            return char
    return None


TAG_RULES = (
    "AWS tags allow letters, numbers, spaces and _ . : / = + - @ (the character set "
    "\\p{L}\\p{Z}\\p{N}_.:/=+\\-@)"
)


def _bucket_tags(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_TAGS:
        raise ValueError(f"has {len(value)} tags, and an S3 bucket holds at most 50: drop some")
    for key, text in value.items():
        if not 1 <= len(key) <= MAX_TAG_KEY:
            raise ValueError(
                f"key {_shown(key)} is {len(key)} characters, and AWS tag keys are 1 to 128: "
                "give a key of that length"
            )
        if key[:4].lower() == "aws:":
            raise ValueError(
                f"key {_shown(key)} starts with 'aws:', a prefix AWS reserves for its own tags: "
                "choose another key"
            )
        if len(text) > MAX_TAG_VALUE:
            raise ValueError(
                f"the value of {_shown(key)} is {len(text)} characters, and AWS tag values are 0 to 256: "
                "shorten it"
            )
        for what, part in (("key", key), ("value", text)):
            bad = _tag_characters(part)
            if bad is not None:
                where = f"key {_shown(key)}" if what == "key" else f"the value of {_shown(key)}"
                raise ValueError(f"{where} holds {_code_point(bad)} {bad!r}; {TAG_RULES}: remove it")
    return value


def _region(value: str) -> str:
    if len(value) > MAX_REGION or not REGION_RE.fullmatch(value):
        raise ValueError(
            f"{_shown(value)} is not an AWS region name, which is lowercase words and a number "
            "joined by hyphens: use one such as 'us-east-1' or 'eu-west-2'"
        )
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(
                f"holds the key {_shown(key)} twice in one object; a JSON reader keeps only one, so "
                "the approver and S3 could read different policies: keep one"
            )
        doc[key] = value
    return doc


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"holds the number {text[:40]}, which no JSON reader holds exactly: fix it")
    return number


def _not_json(text: str) -> Any:
    raise ValueError(f"holds {text}, which is not JSON (write a finite number or a string): fix it")


def _check_tree(doc: Any) -> None:
    """Depth at most MAX_POLICY_DEPTH and every string (key or value) encodable as UTF-8."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_POLICY_DEPTH:
                raise ValueError(
                    f"is nested more than {MAX_POLICY_DEPTH} levels deep, and a bucket policy is a "
                    "few levels of statements and conditions: flatten it"
                )
            items = [*node.keys(), *node.values()] if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items)
        elif isinstance(node, str) and _SURROGATE.search(node):
            found = _SURROGATE.search(node)
            assert found is not None
            raise ValueError(
                f"holds a lone surrogate ({_code_point(found.group())}, written as a \\u escape), "
                "which is not text and has no UTF-8 encoding, so S3 cannot store it: remove it"
            )


def _policy_document(value: str) -> str:
    size = _utf8_bytes(value)
    if size > MAX_POLICY_BYTES:
        raise ValueError(
            f"is {size} bytes, and S3 limits a bucket policy to 20 KB (20,480 bytes): "
            "merge or remove statements"
        )
    try:
        doc = json.loads(
            value, object_pairs_hook=_no_duplicate_keys, parse_float=_finite, parse_constant=_not_json
        )
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at position {exc.pos}): fix the document") from None
    except RecursionError:
        raise ValueError(
            f"is nested more than {MAX_POLICY_DEPTH} levels deep, and a bucket policy is a few "
            "levels of statements and conditions: flatten it"
        ) from None
    except ValueError as exc:  # an integer too long to read, a duplicate key, NaN or Infinity
        message = str(exc)
        if not message.startswith("holds "):
            message = f"holds a number JSON readers refuse ({message}): fix it"
        raise ValueError(message) from None
    if not isinstance(doc, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(doc), "a number"
        )
        raise ValueError(f"must be a JSON object with a 'Statement' list, not {kind}")
    _check_tree(doc)
    statement = doc.get("Statement")
    if not isinstance(statement, list | dict) or not statement:
        raise ValueError(
            "must be a JSON object with a 'Statement' list: a bucket policy says what it allows "
            "or denies in 'Statement' (a list of statement objects)"
        )
    return value


class Arguments(BaseModel):
    """A tool's arguments: exactly the fields declared, never an unknown one."""

    model_config = ConfigDict(extra="forbid")


class ListBuckets(Arguments):
    pass


class ListObjects(Arguments):
    bucket: str = BucketName
    prefix: KeyPrefix = Field(
        "",
        description="Only keys that start with this prefix (at most 1,024 bytes of UTF-8, no control characters).",
    )
    max_keys: int = Field(100, ge=1, le=1000, description="At most this many keys in one page (1-1000).")
    continuation_token: str | None = Field(
        None, description="The next_token of the previous page, to read the next page."
    )


class GetObject(Arguments):
    bucket: str = BucketName
    key: ObjectKey = Field(description=f"The object key ({KEY_RULES}).", min_length=1, max_length=1024)


class BucketOnly(Arguments):
    bucket: str = BucketName


class PutObject(Arguments):
    bucket: str = BucketName
    key: ObjectKey = Field(
        description=f"The object key to write ({KEY_RULES}).", min_length=1, max_length=1024
    )
    body: str = Field(description="The object's content, as UTF-8 text.")
    content_type: Annotated[str, AfterValidator(_content_type)] = Field(
        "text/plain",
        description="The Content-Type to store with the object (printable US-ASCII, at most 256 characters).",
        max_length=MAX_CONTENT_TYPE,
    )
    metadata: Annotated[dict[str, str], AfterValidator(_user_metadata)] = Field(
        default_factory=dict,
        description=(
            "User metadata (x-amz-meta-*) as a string-to-string map. Keys are HTTP header tokens "
            "(US-ASCII letters, digits and !#$%&'*+-.^_`|~), values printable US-ASCII; at most 2 KB "
            "in all, as S3 allows."
        ),
    )


class CopyObject(Arguments):
    source_bucket: str = Field(
        description="The bucket to copy from.", min_length=3, max_length=63, pattern=BUCKET_RE
    )
    source_key: ObjectKey = Field(
        description=f"The key to copy from ({KEY_RULES}).", min_length=1, max_length=1024
    )
    bucket: str = Field(description="The destination bucket.", min_length=3, max_length=63, pattern=BUCKET_RE)
    key: ObjectKey = Field(description=f"The destination key ({KEY_RULES}).", min_length=1, max_length=1024)


class DeleteObjects(Arguments):
    bucket: str = BucketName
    keys: list[Annotated[ObjectKey, Field(min_length=1, max_length=1024)]] | None = Field(
        None,
        description=f"Exact keys to delete. Give either keys or prefix, not both. Each key is {KEY_RULES}.",
        max_length=10_000,
    )
    prefix: KeyPrefix | None = Field(
        None,
        description=(
            "Delete every object whose key starts with this prefix. Give either keys or prefix. "
            "At most 1,024 bytes of UTF-8, no control characters."
        ),
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


class CreateBucket(Arguments):
    bucket: str = BucketName
    region: Annotated[str, AfterValidator(_region)] = Field(
        "us-east-1", description="The region to create the bucket in (an AWS region name, e.g. 'eu-west-2')."
    )


class DeleteBucket(Arguments):
    bucket: str = BucketName
    force: bool = Field(
        False,
        description="Empty the bucket first (deletes every object). Without it a non-empty bucket fails.",
    )


class PutPolicy(Arguments):
    bucket: str = BucketName
    policy: Annotated[str, AfterValidator(_policy_document)] = Field(
        description=(
            "The bucket policy as a JSON document (a string): a JSON object with a 'Statement', "
            "at most 20 KB, as S3 allows."
        )
    )


class PutTagging(Arguments):
    bucket: str = BucketName
    tags: Annotated[dict[str, str], AfterValidator(_bucket_tags)] = Field(
        description=(
            "The complete tag set; replaces the current tags. At most 50 tags; keys 1-128 and values "
            "0-256 characters of letters, numbers, spaces and _ . : / = + - @; no key may start with 'aws:'."
        )
    )


class PutVersioning(Arguments):
    bucket: str = BucketName
    status: Literal["Enabled", "Suspended"] = Field(description="'Enabled' or 'Suspended'.")
