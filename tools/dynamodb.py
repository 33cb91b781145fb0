"""The DynamoDB toolset: reads that go to production, writes that return a plan.

Addresses are ARNs. A table is ``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME``; an item is its
table's ARN, the separator ``/item/`` (``child_separator``), and the item's key as canonical
JSON (DynamoDB-typed, attribute names sorted, numbers normalised):
``arn:aws:dynamodb:us-east-1:123456789012:table/orders/item/{"pk":{"S":"a"}}``. ``TABLE/item/``
is the prefix for every item of a table (a table delete's footprint). A table named by name is
resolved to its ARN in the target's region and account before policy decides; an ARN of another
account or region is refused.

State shapes (the sandbox seeds from these; the diff compares them):

- table: ``{name, key_schema {attr: HASH|RANGE}, attribute_types {attr: S|N|B}, billing_mode,
  throughput {read, write}|None, global_indexes, local_indexes, stream (view type)|None,
  ttl (attribute)|None, pitr ENABLED|DISABLED, deletion_protection, sse, table_class, tags,
  backups (count of on-demand backups)}``. Nothing generated (creation time, stream ARN, table
  id) is in it, so a table reads the same in production and in the sandbox.
- item: the item itself, attribute name -> typed value, so the diff is attribute by attribute.
  Above the detail limit (a table delete of a large table) an item is ``{detail: "digest",
  sha256, attributes}``: the digest of the canonical item; the full item travels in the
  snapshot's blobs to seed the sandbox, never into the plan.

For an item call the table's state is context (its key schema decides the call; a change to
it makes the plan stale) rather than a change.

Arguments: rules DynamoDB itself enforces are enforced in the argument models first, with the
rule named:

- table names: 3-255 characters of letters, digits, ``_ . -``; or the table's ARN
  (``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME``), which must name the target's own account and
  region (checked by ``canonical`` against the target);
- attribute values: DynamoDB's typed JSON, exactly one type key each (``S N B BOOL NULL M L SS NS
  BS``); numbers finite, at most 38 significant digits, magnitude 1E-130 to below 1E+126; binary
  as base64; sets non-empty and without duplicates; nesting at most 32 levels;
- attribute names 1-65,535 characters (key attributes at most 255); an item at most 400 KB;
- keys: only S, N or B values; a string or binary key value non-empty; a partition key at most
  2,048 bytes, a sort key at most 1,024;
- a batch: at most 1,000 requests on one table, no key twice (DynamoDB refuses duplicates in one
  BatchWriteItem).

Every argument model refuses unknown fields (``extra="forbid"``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from botocore.exceptions import ClientError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from interlock.sandbox.aws.common import parse_arn
from interlock.sandbox.aws.dynamodb import (
    DIGEST,
    ITEM_MARK,
    condition_error,
    create_request,
    is_table,
    item_address,
    items_prefix,
    key_json,
    normalize_item,
    normalize_number,
    normalize_value,
    parse_item,
    significant_digits,
    table_name,
)
from interlock.sandbox.base import CannotRehearse
from interlock.sandbox.diff import Action, Change, Snapshot, State, canonical_json, digest

from .spec import (
    Footprint,
    FootprintTooLarge,
    Limits,
    Place,
    Resolved,
    ToolFailure,
    Toolset,
    ToolSpec,
    judged_as_parent,
    read_all,
)
from .undo import PreImage, Undo

if TYPE_CHECKING:  # boto3-stubs: the DynamoDB calls below are type-checked
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WaiterConfigTypeDef


# ---------------------------------------------------------------- arguments

NAME_RE = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
ARN_RE = re.compile(r"arn:aws:dynamodb:[a-z0-9-]*:[0-9]*:table/[a-zA-Z0-9_.-]{3,255}")
MAX_ITEM_BYTES = 400 * 1024
MAX_DEPTH = 32
MAX_BATCH = 1000
MAX_PAGE = 100
TYPES = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")
KEY_TYPES = ("S", "N", "B")
TABLE_DESCRIPTION = (
    "The table: its name ('orders') or its ARN ('arn:aws:dynamodb:us-east-1:123456789012:table/orders', "
    "which must be in the target's account and region)."
)
KEY_HELP = (
    "The item's key: its partition key attribute and, if the table has one, its sort key attribute, each "
    "typed as the table defines it: {'pk': {'S': 'a'}, 'sk': {'N': '1'}} (S, N or B as base64)."
)
VALUE_HELP = (
    "DynamoDB-typed JSON, one type key per value: {'S': 'text'}, {'N': '42'}, {'B': '<base64>'}, "
    "{'BOOL': true}, {'NULL': true}, {'M': {...}}, {'L': [...]}, {'SS': [...]}, {'NS': [...]}, {'BS': [...]}"
)


def _lone_surrogate(data: Any) -> str | None:
    """Where ``data`` (an argument, any JSON) holds a lone surrogate, in a string or a key; walked
    without recursion, as an argument may be nested thousands deep."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
                return where or repr(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in k):
                    return f"{where}[{k!r}]" if where else repr(k)
                stack.append((f"{where}[{k!r}]" if where else str(k), v))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
    return None


def _text(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``check``, after refusing a lone surrogate anywhere in the value (a refusal that quoted one
    could not be encoded: pydantic-core raises UnicodeEncodeError instead of the refusal)."""

    def checked(value: Any) -> Any:
        where = _lone_surrogate(value)
        if where is not None:
            raise ValueError(f"{where} holds a lone surrogate, which is not text: send valid Unicode")
        return check(value)

    return checked


def _table(value: str) -> str:
    if NAME_RE.fullmatch(value) or ARN_RE.fullmatch(value):
        return value
    raise ValueError(
        f"{value[:80]!r} is neither a DynamoDB table name (3-255 letters, digits, '_', '.', '-') nor a "
        "table ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME): give one of them"
    )


TableRef = Annotated[str, AfterValidator(_table)]


def _number(text: Any, where: str) -> None:
    if not isinstance(text, str):
        raise ValueError(f"{where}: a number is sent as a string, e.g. {{'N': '42'}}")
    try:
        canonical = normalize_number(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}; DynamoDB numbers are finite decimals") from None
    digits = significant_digits(canonical)
    if digits > 38:
        raise ValueError(f"{where}: {text[:50]} has {digits} significant digits; DynamoDB keeps at most 38")


def check_value(value: Any, where: str, depth: int = 1) -> None:
    """Raise ``ValueError`` naming ``where`` unless ``value`` is one well-formed attribute value."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: nested more than {MAX_DEPTH} levels, DynamoDB's limit")
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in TYPES:
        raise ValueError(f"{where}: not an attribute value; use {VALUE_HELP}")
    ((kind, inner),) = value.items()
    if kind == "S" and not isinstance(inner, str):
        raise ValueError(f"{where}: an S value is a string")
    elif kind == "N":
        _number(inner, where)
    elif kind == "B":
        _base64(inner, where)
    elif kind == "BOOL" and not isinstance(inner, bool):
        raise ValueError(f"{where}: a BOOL value is true or false")
    elif kind == "NULL" and inner is not True:
        raise ValueError(f"{where}: a NULL value is written {{'NULL': true}}")
    elif kind == "M":
        if not isinstance(inner, dict):
            raise ValueError(f"{where}: an M value is an object of attribute values")
        for k, v in inner.items():
            check_value(v, f"{where}.{k}", depth + 1)
    elif kind == "L":
        if not isinstance(inner, list):
            raise ValueError(f"{where}: an L value is a list of attribute values")
        for i, v in enumerate(inner):
            check_value(v, f"{where}[{i}]", depth + 1)
    elif kind in ("SS", "NS", "BS"):
        if not isinstance(inner, list) or not inner:
            raise ValueError(f"{where}: a {kind} value is a non-empty list (DynamoDB has no empty sets)")
        for i, v in enumerate(inner):
            if kind == "SS" and not isinstance(v, str):
                raise ValueError(f"{where}[{i}]: an SS holds strings")
            if kind == "NS":
                _number(v, f"{where}[{i}]")
            if kind == "BS":
                _base64(v, f"{where}[{i}]")
        canonical = normalize_value(value)[kind]
        if len(canonical) != len(inner):
            raise ValueError(f"{where}: the {kind} holds a value twice; DynamoDB refuses duplicates in a set")


def _base64(inner: Any, where: str) -> None:
    if not isinstance(inner, str):
        raise ValueError(f"{where}: a binary value is sent as base64 text")
    try:
        base64.b64decode(inner, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: {inner[:40]!r} is not base64") from None


def _attribute_name(name: str, limit: int = 65535) -> None:
    if not 1 <= len(name) <= limit:
        raise ValueError(
            f"attribute name {name[:40]!r} is {len(name)} characters; DynamoDB allows 1 to {limit}"
        )


def _attributes(value: dict[str, Any]) -> dict[str, Any]:
    for name, v in value.items():
        _attribute_name(name)
        check_value(v, name)
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_ITEM_BYTES:
        raise ValueError(f"is about {size} bytes; a DynamoDB item is at most 400 KB")
    return normalize_item(value)


def _key(value: dict[str, Any]) -> dict[str, Any]:
    if not 1 <= len(value) <= 2:
        raise ValueError(
            "a key is the partition key attribute and, for a table with a sort key, the sort key attribute: "
            f"this one has {len(value)} attributes"
        )
    for name, v in value.items():
        _attribute_name(name, 255)
        check_value(v, name)
        kind, inner = next(iter(v.items()))
        if kind not in KEY_TYPES:
            raise ValueError(f"{name}: a key attribute is S, N or B, not {kind}")
        if kind in ("S", "B") and inner == "":
            raise ValueError(f"{name}: a key attribute cannot be an empty string or binary")
        if len(json.dumps(inner).encode()) > 2048 + 2:
            raise ValueError(f"{name}: a key value is at most 2,048 bytes (a sort key at most 1,024)")
    return normalize_item(value)


Attributes = Annotated[dict[str, Any], AfterValidator(_text(_attributes))]
Key = Annotated[dict[str, Any], AfterValidator(_text(_key))]
Names = Field(
    None,
    description="ExpressionAttributeNames: placeholders ('#n') for attribute names used in the expressions.",
)
Values = Field(
    None,
    description="ExpressionAttributeValues: placeholders (':v') for the values used in the expressions, "
    + VALUE_HELP
    + ".",
)


def _names(value: dict[str, str] | None) -> dict[str, str] | None:
    for k in value or {}:
        if not k.startswith("#"):
            raise ValueError(f"{k!r}: expression attribute name placeholders start with '#'")
    return value


def _values(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    for k, v in value.items():
        if not k.startswith(":"):
            raise ValueError(f"{k!r}: expression attribute value placeholders start with ':'")
        check_value(v, k)
    return normalize_item(value)


def _start_key(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    for k, v in value.items():
        check_value(v, k)
    return normalize_item(value)


StartKey = Annotated[dict[str, Any] | None, AfterValidator(_text(_start_key))]
ExprNames = Annotated[dict[str, str] | None, AfterValidator(_text(_names))]
ExprValues = Annotated[dict[str, Any] | None, AfterValidator(_text(_values))]


_NAME_PLACEHOLDER = re.compile(r"#[A-Za-z0-9_]+")
_VALUE_PLACEHOLDER = re.compile(r":[A-Za-z0-9_]+")


def check_placeholders(
    expressions: list[str], names: dict[str, str] | None, values: dict[str, Any] | None
) -> None:
    """Every '#name' and ':value' the expressions use is defined, and every one defined is used, as
    DynamoDB requires (moto answers an undefined placeholder with a 500, not a validation error)."""
    text = " ".join(expressions)
    for pattern, given, what, arg in (
        (_NAME_PLACEHOLDER, names or {}, "name", "expression_attribute_names"),
        (_VALUE_PLACEHOLDER, values or {}, "value", "expression_attribute_values"),
    ):
        used = set(pattern.findall(text))
        undefined = sorted(used - set(given))
        if undefined:
            raise ValueError(
                f"the expressions use the attribute {what} placeholder {undefined[0]!r}, "
                f"which {arg} does not define"
            )
        unused = sorted(set(given) - used)
        if unused:
            raise ValueError(f"{arg} defines {unused[0]!r}, which no expression uses (DynamoDB refuses that)")


def _tag_text(text: str) -> bool:
    return all(c in "_.:/=+-@" or unicodedata.category(c)[0] in "LNZ" for c in text)


def _tags(value: dict[str, str]) -> dict[str, str]:
    for k, v in value.items():
        if not 1 <= len(k) <= 128 or len(v) > 256 or k.lower().startswith("aws:"):
            raise ValueError(
                f"tag {k!r}: keys are 1-128 characters not starting with 'aws:', values at most 256 characters"
            )
        if not (_tag_text(k) and _tag_text(v)):
            raise ValueError(f"tag {k!r}: DynamoDB tags hold only letters, digits, spaces and _.:/=+-@")
    return value


class Arguments(BaseModel):
    """A tool's arguments: exactly the fields declared, never an unknown one."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_lone_surrogate(cls, data: Any) -> Any:
        # Not text DynamoDB can store; and a refusal quoting one could not be encoded to say so.
        where = _lone_surrogate(data)
        if where is not None:
            raise ValueError(f"{where} holds a lone surrogate, which is not text: send valid Unicode")
        return data

    @model_validator(mode="after")
    def _placeholders(self) -> Any:
        if "expression_attribute_names" not in type(self).model_fields:
            return self
        fields = (
            "key_condition_expression",
            "filter_expression",
            "condition_expression",
            "update_expression",
        )
        expressions = [e for f in fields if isinstance(e := getattr(self, f, None), str)]
        names = getattr(self, "expression_attribute_names", None)
        values = getattr(self, "expression_attribute_values", None)
        check_placeholders(expressions, names, values)
        condition = getattr(self, "condition_expression", None)
        if isinstance(condition, str):
            error = condition_error(condition, names, values)
            if error:
                raise ValueError(f"condition_expression is not a valid ConditionExpression ({error})")
        return self


class WriteArguments(Arguments):
    pass


class ListTables(Arguments):
    limit: int = Field(100, ge=1, le=100, description="At most this many tables in one page (1-100).")
    exclusive_start_table_name: str | None = Field(
        None, description="The next_table_name of the previous page, to read the next page."
    )
    # Set by ``canonical`` (never by the agent): the target's table ARNs start with it.
    _arn_prefix: str = PrivateAttr("")


class TableOnly(Arguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)


class GetItem(Arguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)
    key: Key = Field(description=KEY_HELP)


class Query(Arguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)
    key_condition_expression: str = Field(
        description="KeyConditionExpression, e.g. 'pk = :pk AND begins_with(sk, :prefix)'.", min_length=1
    )
    filter_expression: str | None = Field(
        None, description="FilterExpression applied after the key condition."
    )
    expression_attribute_names: ExprNames = Names
    expression_attribute_values: ExprValues = Values
    index_name: str | None = Field(None, description="Query this secondary index instead of the table.")
    scan_index_forward: bool = Field(True, description="False reads the sort key in descending order.")
    limit: int = Field(25, ge=1, le=MAX_PAGE, description=f"Items to evaluate in one page (1-{MAX_PAGE}).")
    exclusive_start_key: StartKey = Field(
        None, description="The last_evaluated_key of the previous page, to read the next page."
    )


class Scan(Arguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)
    filter_expression: str | None = Field(None, description="FilterExpression, e.g. 'status = :s'.")
    expression_attribute_names: ExprNames = Names
    expression_attribute_values: ExprValues = Values
    index_name: str | None = Field(None, description="Scan this secondary index instead of the table.")
    limit: int = Field(25, ge=1, le=MAX_PAGE, description=f"Items to evaluate in one page (1-{MAX_PAGE}).")
    exclusive_start_key: StartKey = Field(
        None, description="The last_evaluated_key of the previous page, to read the next page."
    )


class PutItem(WriteArguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)
    key: Key = Field(description=KEY_HELP)
    attributes: Attributes = Field(
        default_factory=dict,
        description="The item's other attributes (not its key), "
        + VALUE_HELP
        + ". The put replaces the whole "
        "item: attributes it does not name are removed.",
    )
    condition_expression: str | None = Field(
        None, description="ConditionExpression that must hold for the put, e.g. 'attribute_not_exists(pk)'."
    )
    expression_attribute_names: ExprNames = Names
    expression_attribute_values: ExprValues = Values

    @model_validator(mode="after")
    def _no_key_in_attributes(self) -> PutItem:
        both = sorted(set(self.key) & set(self.attributes))
        if both:
            raise ValueError(f"{', '.join(both)} is in the key: give key attributes in 'key' only")
        return self


class UpdateItem(WriteArguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)
    key: Key = Field(description=KEY_HELP)
    update_expression: str = Field(
        description="UpdateExpression, e.g. 'SET #s = :s, visits = visits + :one REMOVE draft'.",
        min_length=1,
        max_length=4096,
    )
    condition_expression: str | None = Field(
        None, description="ConditionExpression that must hold for the update."
    )
    expression_attribute_names: ExprNames = Names
    expression_attribute_values: ExprValues = Values


class DeleteItem(WriteArguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)
    key: Key = Field(description=KEY_HELP)
    condition_expression: str | None = Field(
        None, description="ConditionExpression that must hold for the delete."
    )
    expression_attribute_names: ExprNames = Names
    expression_attribute_values: ExprValues = Values


class PutRequest(Arguments):
    key: Key = Field(description=KEY_HELP)
    attributes: Attributes = Field(
        default_factory=dict, description="The item's other attributes (the put replaces the item)."
    )

    @model_validator(mode="after")
    def _no_key_in_attributes(self) -> PutRequest:
        both = sorted(set(self.key) & set(self.attributes))
        if both:
            raise ValueError(f"{', '.join(both)} is in the key: give key attributes in 'key' only")
        return self


class BatchWrite(WriteArguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)
    puts: list[PutRequest] = Field(
        default_factory=list, description="Items to put (each replaces any item with its key)."
    )
    deletes: list[Key] = Field(
        default_factory=list,
        description="Keys of items to delete, each like {'pk': {'S': 'a'}} (the table's key attributes).",
    )

    @model_validator(mode="after")
    def _bounded(self) -> BatchWrite:
        total = len(self.puts) + len(self.deletes)
        if total == 0:
            raise ValueError("name at least one put or delete")
        if total > MAX_BATCH:
            raise ValueError(
                f"{total} requests; a batch here holds at most {MAX_BATCH}: split it into several plans"
            )
        keys = [key_json(p.key) for p in self.puts] + [key_json(k) for k in self.deletes]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise ValueError(f"the key {dup} is named twice; DynamoDB refuses a batch that names a key twice")
        return self


BillingMode = Literal["PAY_PER_REQUEST", "PROVISIONED"]
StreamView = Literal["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"]


class KeyAttribute(Arguments):
    name: str = Field(description="The attribute's name.", min_length=1, max_length=255)
    type: Literal["S", "N", "B"] = Field(description="S (string), N (number) or B (binary).")


class CreateTable(WriteArguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)
    partition_key: KeyAttribute = Field(description="The partition (HASH) key attribute.")
    sort_key: KeyAttribute | None = Field(None, description="The sort (RANGE) key attribute, if any.")
    billing_mode: BillingMode = Field(
        "PAY_PER_REQUEST", description="PAY_PER_REQUEST (on demand) or PROVISIONED."
    )
    read_capacity: int | None = Field(
        None, ge=1, description="Read capacity units (PROVISIONED only; required then)."
    )
    write_capacity: int | None = Field(
        None, ge=1, description="Write capacity units (PROVISIONED only; required then)."
    )
    stream_view_type: StreamView | None = Field(None, description="Enable a stream with this view type.")
    tags: Annotated[dict[str, str], AfterValidator(_text(_tags))] = Field(
        default_factory=dict, description="Tags (at most 50).", max_length=50
    )
    deletion_protection: bool = Field(False, description="Refuse deletes of the table until turned off.")

    @model_validator(mode="after")
    def _capacity(self) -> CreateTable:
        _check_capacity(self.billing_mode, self.read_capacity, self.write_capacity, required=True)
        if self.sort_key is not None and self.sort_key.name == self.partition_key.name:
            raise ValueError("the sort key must be another attribute than the partition key")
        return self


def _check_capacity(mode: str | None, read: int | None, write: int | None, required: bool) -> None:
    if mode == "PAY_PER_REQUEST" and (read is not None or write is not None):
        raise ValueError("read_capacity and write_capacity apply to PROVISIONED billing only")
    if mode == "PROVISIONED" and required and (read is None or write is None):
        raise ValueError("PROVISIONED billing needs read_capacity and write_capacity")
    if (read is None) != (write is None):
        raise ValueError("give read_capacity and write_capacity together")


class UpdateTable(WriteArguments):
    table: TableRef = Field(description=TABLE_DESCRIPTION)
    billing_mode: BillingMode | None = Field(
        None, description="Switch billing: PAY_PER_REQUEST or PROVISIONED."
    )
    read_capacity: int | None = Field(None, ge=1, description="New read capacity units (PROVISIONED).")
    write_capacity: int | None = Field(None, ge=1, description="New write capacity units (PROVISIONED).")
    stream: StreamView | Literal["DISABLED"] | None = Field(
        None, description="Enable the stream with this view type, or 'DISABLED' to turn it off."
    )
    ttl_attribute: str | None = Field(
        None,
        description="Enable TTL on this attribute (a number of epoch seconds).",
        min_length=1,
        max_length=255,
    )
    ttl_enabled: bool | None = Field(
        None, description="False turns TTL off (give ttl_attribute: the attribute it is on)."
    )
    point_in_time_recovery: bool | None = Field(None, description="Turn point-in-time recovery on or off.")
    deletion_protection: bool | None = Field(None, description="Turn deletion protection on or off.")
    table_class: Literal["STANDARD", "STANDARD_INFREQUENT_ACCESS"] | None = Field(
        None, description="The table class."
    )

    @model_validator(mode="after")
    def _something(self) -> UpdateTable:
        fields = ("billing_mode", "read_capacity", "stream", "ttl_attribute", "point_in_time_recovery")
        if all(
            getattr(self, f) is None for f in (*fields, "deletion_protection", "table_class", "ttl_enabled")
        ):
            raise ValueError("name at least one setting to change")
        _check_capacity(
            self.billing_mode,
            self.read_capacity,
            self.write_capacity,
            required=self.billing_mode == "PROVISIONED",
        )
        if self.ttl_enabled is not None and self.ttl_attribute is None:
            raise ValueError("ttl_enabled needs ttl_attribute (the attribute TTL is on)")
        return self


# ---------------------------------------------------------------- the address space

SPACE = "arn:aws:dynamodb:"
MISSING = {"ResourceNotFoundException", "TableNotFoundException"}
WAIT: WaiterConfigTypeDef = {"Delay": 2, "MaxAttempts": 300}  # AWS creates and deletes tables asynchronously


def kind_of(address: str) -> str:
    return "dynamodb.item" if ITEM_MARK in address else "dynamodb.table"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# ---------------------------------------------------------------- values on the wire


def to_boto(value: Any) -> Any:
    """A canonical attribute value (binary as base64 text) as a botocore client takes it (bytes)."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": {k: to_boto(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [to_boto(v) for v in inner]}
    return {kind: inner}


def _boto_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: to_boto(v) for k, v in item.items()}


def _expressions(a: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if getattr(a, "condition_expression", None):
        kw["ConditionExpression"] = a.condition_expression
    if getattr(a, "expression_attribute_names", None):
        kw["ExpressionAttributeNames"] = a.expression_attribute_names
    if getattr(a, "expression_attribute_values", None):
        kw["ExpressionAttributeValues"] = _boto_item(a.expression_attribute_values)
    return kw


# ---------------------------------------------------------------- canonical names


def _table_arn(ref: str, place: Place) -> str:
    if not ref.startswith("arn:"):
        return place.arn("dynamodb", f"table/{ref}")
    parsed = parse_arn(ref)
    if parsed is None or parsed.service != "dynamodb" or not parsed.resource.startswith("table/"):
        raise ToolFailure(f"{ref} is not a DynamoDB table ARN", "give the table's name or its ARN")
    place.own(parsed, "tables")
    return ref


def _schema(client: DynamoDBClient, arn: str) -> tuple[dict[str, str], dict[str, str]]:
    """The table's key schema ({attr: HASH|RANGE}) and its attribute types."""
    try:
        d = client.describe_table(TableName=table_name(arn))["Table"]
    except ClientError as exc:
        if _code(exc) in MISSING:
            raise ToolFailure(
                f"table {table_name(arn)} does not exist ({arn})",
                "check the name with list_dynamodb_tables; create it with create_dynamodb_table",
            ) from exc
        raise
    keys: dict[str, str] = {k["AttributeName"]: k["KeyType"] for k in d.get("KeySchema", [])}
    types: dict[str, str] = {
        a["AttributeName"]: a["AttributeType"] for a in d.get("AttributeDefinitions", [])
    }
    return keys, types


def check_key(key: dict[str, Any], keys: dict[str, str], types: dict[str, str], table: str) -> None:
    """Refuse a key that is not exactly the table's key attributes with their types."""
    want = ", ".join(
        f"{n} ({types.get(n, '?')}, {'partition' if t == 'HASH' else 'sort'} key)" for n, t in keys.items()
    )
    if set(key) != set(keys):
        raise ToolFailure(
            f"the key {key_json(key)} does not match table {table}, whose key is {want}",
            "give exactly the table's key attributes in 'key' (describe_dynamodb_table shows them)",
        )
    for name, value in key.items():
        kind = next(iter(value))
        if kind != types.get(name):
            raise ToolFailure(
                f"key attribute {name} of table {table} is of type {types.get(name)}, and {kind} was given",
                f"send {name} as {{'{types.get(name)}': ...}}",
            )


def canonical(client: DynamoDBClient, args: Any, place: Place) -> Any:
    """Name the table by its ARN; check an item's key against the table's key schema (read from
    production) so that the item's address is the one key DynamoDB knows it by."""
    if isinstance(args, ListTables):
        out = args.model_copy()
        out._arn_prefix = place.arn("dynamodb", "table/")
        return out
    ref = getattr(args, "table", None)
    if not isinstance(ref, str):
        return args
    arn = _table_arn(ref, place)
    keys: list[dict[str, Any]] = []
    if isinstance(args, GetItem | PutItem | UpdateItem | DeleteItem):
        keys = [args.key]
    elif isinstance(args, BatchWrite):
        keys = [p.key for p in args.puts] + list(args.deletes)
    if keys:
        schema, types = _schema(client, arn)
        for key in keys:
            check_key(key, schema, types, table_name(arn))
    return args if arn == ref else args.model_copy(update={"table": arn})


# ---------------------------------------------------------------- footprints


def table_fp(a: Any, items: bool = False) -> Footprint:
    return Footprint((a.table,), (items_prefix(a.table),) if items else ())


def item_fp(a: Any) -> Footprint:
    keys = [p.key for p in a.puts] + list(a.deletes) if isinstance(a, BatchWrite) else [a.key]
    return Footprint(tuple(item_address(a.table, k) for k in keys))


def read_addresses(a: Any) -> list[str]:
    """What a read names: the table, one item, every item (query/scan), or every table."""
    if isinstance(a, ListTables):
        return [(a._arn_prefix or SPACE) + "*"]
    if isinstance(a, GetItem):
        return [item_address(a.table, a.key)]
    if isinstance(a, Query | Scan):
        return [items_prefix(a.table) + "*"]
    return [a.table]


# ---------------------------------------------------------------- snapshots


def _index_states(indexes: list[Any], provisioned: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ix in indexes or []:
        projection = dict(ix.get("Projection") or {})
        if projection.get("NonKeyAttributes"):
            projection["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
        st: dict[str, Any] = {
            "key_schema": {k["AttributeName"]: k["KeyType"] for k in ix.get("KeySchema", [])},
            "projection": projection,
        }
        tp = ix.get("ProvisionedThroughput")
        if provisioned and tp is not None:
            st["throughput"] = {"read": tp.get("ReadCapacityUnits"), "write": tp.get("WriteCapacityUnits")}
        out[ix["IndexName"]] = st
    return out


def _paged(call: Callable[..., Any], key: str, token_in: str, token_out: str, **kw: Any) -> list[Any]:
    out: list[Any] = []
    while True:
        page = call(**kw)
        out += page.get(key, [])
        token = page.get(token_out)
        if not token:
            return out
        kw[token_in] = token


def table_state(client: DynamoDBClient, name: str) -> State | None:
    """Everything about a table that decides what calls on it and its items do. The five reads
    run in parallel (one round trip's time)."""
    try:
        d = client.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if _code(exc) in MISSING:
            return None
        raise
    if d.get("TableStatus") == "DELETING":
        return None
    arn = d["TableArn"]
    reads: dict[str, Callable[[], Any]] = {
        "ttl": lambda: client.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {}),
        "pitr": lambda: (
            client.describe_continuous_backups(TableName=name)
            .get("ContinuousBackupsDescription", {})
            .get("PointInTimeRecoveryDescription", {})
            .get("PointInTimeRecoveryStatus", "DISABLED")
        ),
        "tags": lambda: _paged(
            client.list_tags_of_resource, "Tags", "NextToken", "NextToken", ResourceArn=arn
        ),
        "backups": lambda: _paged(
            client.list_backups,
            "BackupSummaries",
            "ExclusiveStartBackupArn",
            "LastEvaluatedBackupArn",
            TableName=name,
        ),
    }
    got = read_all(reads)
    billing = (d.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
    provisioned = billing == "PROVISIONED"
    tp = d.get("ProvisionedThroughput") or {}
    stream: dict[str, Any] = dict(d.get("StreamSpecification") or {})
    ttl = got["ttl"]
    sse = d.get("SSEDescription") or {}
    keys = sorted(d.get("KeySchema", []), key=lambda k: k["KeyType"] != "HASH")
    state: State = {
        "name": d["TableName"],
        "key_schema": {k["AttributeName"]: k["KeyType"] for k in keys},
        "attribute_types": {
            a["AttributeName"]: a["AttributeType"] for a in d.get("AttributeDefinitions", [])
        },
        "billing_mode": billing,
        "throughput": (
            {"read": tp.get("ReadCapacityUnits"), "write": tp.get("WriteCapacityUnits")}
            if provisioned
            else None
        ),
        "global_indexes": _index_states(d.get("GlobalSecondaryIndexes", []), provisioned),
        "local_indexes": _index_states(d.get("LocalSecondaryIndexes", []), False),
        "stream": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
        "ttl": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None,
        "pitr": "ENABLED" if got["pitr"] in ("ENABLED", "ENABLING") else "DISABLED",
        "deletion_protection": bool(d.get("DeletionProtectionEnabled")),
        "sse": sse.get("SSEType") if sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING") else None,
        "table_class": (d.get("TableClassSummary") or {}).get("TableClass") or "STANDARD",
        "tags": {t["Key"]: t.get("Value", "") for t in got["tags"]},
        "backups": sum(1 for b in got["backups"] if b.get("BackupStatus") != "DELETED"),
    }
    replicas = sorted(r["RegionName"] for r in d.get("Replicas", []) if r.get("RegionName"))
    if replicas:
        state["replicas"] = replicas
    return state


def _scan(client: DynamoDBClient, name: str, limit: int) -> Iterator[dict[str, Any]]:
    kw: dict[str, Any] = {"TableName": name, "ConsistentRead": True}
    count = 0
    while True:
        page = client.scan(**kw)
        for item in page.get("Items", []):
            count += 1
            if count > limit:
                raise FootprintTooLarge(
                    f"table {name} holds more than {limit} items, the rehearsal limit; a plan never "
                    "rehearses part of a table",
                    "delete its items in bounded batches first (batch_write_dynamodb_items, up to 1,000 keys a "
                    "plan), or have the operator raise [rehearsal] max_objects",
                )
            yield item
        start = page.get("LastEvaluatedKey")
        if not start:
            return
        kw["ExclusiveStartKey"] = start


def item_state(item: dict[str, Any], full: bool, blobs: dict[str, bytes], address: str) -> State:
    canonical = normalize_item(item)
    if full:
        return canonical
    text = canonical_json(canonical)
    blobs[address] = text.encode()
    return {"detail": DIGEST, "sha256": digest(canonical), "attributes": len(canonical)}


def _get_items(client: DynamoDBClient, name: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The items of ``keys`` (consistent reads, 100 a call); None when the table does not exist."""
    found: list[dict[str, Any]] = []
    for i in range(0, len(keys), 100):
        request: dict[str, Any] = {
            name: {"Keys": [_boto_item(k) for k in keys[i : i + 100]], "ConsistentRead": True}
        }
        for attempt in range(10):
            try:
                resp = client.batch_get_item(RequestItems=request)
            except ClientError as exc:
                if _code(exc) in MISSING:
                    return None
                raise
            found += resp.get("Responses", {}).get(name, [])
            request = dict(resp.get("UnprocessedKeys") or {})
            if not request:
                break
            time.sleep(min(2.0, 0.05 * 2**attempt))  # DynamoDB asks to back off on unprocessed keys
        else:
            raise ToolFailure(
                f"DynamoDB left keys of table {name} unread after 10 attempts",
                "the table is throttled; retry later",
            )
    return found


def snapshot(client: DynamoDBClient, fp: Footprint, limits: Limits) -> Snapshot:
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    tables = [a for a in fp.addresses if is_table(a)]
    for arn in tables:
        states[arn] = table_state(client, table_name(arn))
    items: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for addr in fp.addresses:
        found = parse_item(addr)
        if found is not None:
            items.setdefault(found[0], []).append((addr, found[1]))
    context: dict[str, Any] = {}
    if limits.context and items:
        context["tables"] = {
            arn: states[arn] if arn in states else table_state(client, table_name(arn)) for arn in items
        }
    for arn, wanted in items.items():
        if len(wanted) > limits.max_objects:
            raise FootprintTooLarge(
                f"the call names {len(wanted)} items, above the rehearsal limit of {limits.max_objects}",
                "split it into several plans",
            )
        got = _get_items(client, table_name(arn), [k for _, k in wanted])
        for addr, _ in wanted:
            states[addr] = None
        if got is None:
            continue
        names = list(wanted[0][1])
        for item in got:
            addr = item_address(arn, {n: item[n] for n in names if n in item})
            if addr in states:
                states[addr] = normalize_item(item)
    for prefix in fp.prefixes:
        arn = prefix.removesuffix(ITEM_MARK)
        table = states.get(arn) if arn in states else table_state(client, table_name(arn))
        if table is None:
            continue
        names = list(table["key_schema"])
        raw = list(_scan(client, table["name"], limits.max_objects))
        full = len(raw) <= limits.detail_limit
        for item in raw:
            addr = item_address(arn, {n: item[n] for n in names})
            states[addr] = item_state(item, full, blobs, addr)
    return Snapshot(states=states, blobs=blobs, context=context)


# ---------------------------------------------------------------- reads


def read_list_tables(client: DynamoDBClient, a: ListTables, limits: Limits) -> dict[str, Any]:
    kw: dict[str, Any] = {"Limit": a.limit}
    if a.exclusive_start_table_name:
        kw["ExclusiveStartTableName"] = a.exclusive_start_table_name
    resp = client.list_tables(**kw)
    names = resp.get("TableNames", [])
    return {
        "tables": [{"name": n, "arn": a._arn_prefix + n} for n in names],
        "next_table_name": resp.get("LastEvaluatedTableName"),
    }


def read_describe_table(client: DynamoDBClient, a: TableOnly, limits: Limits) -> dict[str, Any]:
    name = table_name(a.table)
    st = table_state(client, name)
    if st is None:
        raise ToolFailure(
            f"table {name} does not exist ({a.table})", "check the name with list_dynamodb_tables"
        )
    d = client.describe_table(TableName=name)["Table"]
    return {
        "table": st,
        "arn": a.table,
        "status": d.get("TableStatus"),
        "item_count": d.get("ItemCount"),
        "item_count_note": "approximate: DynamoDB updates ItemCount about every six hours",
        "size_bytes": d.get("TableSizeBytes"),
        "created": str(d.get("CreationDateTime")),
        "stream_arn": d.get("LatestStreamArn"),
    }


def read_get_item(client: DynamoDBClient, a: GetItem, limits: Limits) -> dict[str, Any]:
    resp = client.get_item(TableName=table_name(a.table), Key=_boto_item(a.key), ConsistentRead=True)
    item = resp.get("Item")
    return {"item": normalize_item(item) if item is not None else None}


def _key_names(client: DynamoDBClient, arn: str) -> list[str]:
    return list(_schema(client, arn)[0])


def _page(client: DynamoDBClient, a: Query | Scan, resp: Any) -> dict[str, Any]:
    last = resp.get("LastEvaluatedKey")
    return {
        "items": [normalize_item(i) for i in resp.get("Items", [])],
        "count": resp.get("Count", 0),
        "scanned_count": resp.get("ScannedCount", 0),
        "key_attributes": _key_names(client, a.table),
        "last_evaluated_key": normalize_item(last) if last else None,
    }


def _read_kw(a: Query | Scan) -> dict[str, Any]:
    kw: dict[str, Any] = {"TableName": table_name(a.table), "Limit": a.limit}
    if a.filter_expression:
        kw["FilterExpression"] = a.filter_expression
    if a.expression_attribute_names:
        kw["ExpressionAttributeNames"] = a.expression_attribute_names
    if a.expression_attribute_values:
        kw["ExpressionAttributeValues"] = _boto_item(a.expression_attribute_values)
    if a.index_name:
        kw["IndexName"] = a.index_name
    if a.exclusive_start_key:
        kw["ExclusiveStartKey"] = _boto_item(normalize_item(a.exclusive_start_key))
    return kw


def read_query(client: DynamoDBClient, a: Query, limits: Limits) -> dict[str, Any]:
    kw = _read_kw(a)
    kw["KeyConditionExpression"] = a.key_condition_expression
    kw["ScanIndexForward"] = a.scan_index_forward
    return _page(client, a, client.query(**kw))


def read_scan(client: DynamoDBClient, a: Scan, limits: Limits) -> dict[str, Any]:
    return _page(client, a, client.scan(**_read_kw(a)))


def _listed_items(a: Any, result: dict[str, Any]) -> tuple[str, list[str]]:
    names = result.get("key_attributes") or []
    return "items", [
        item_address(a.table, {n: i[n] for n in names if n in i}) for i in result.get("items", [])
    ]


# ---------------------------------------------------------------- execute


def exec_put_item(client: DynamoDBClient, a: PutItem, resolved: Resolved) -> dict[str, Any]:
    client.put_item(
        TableName=table_name(a.table), Item=_boto_item({**a.attributes, **a.key}), **_expressions(a)
    )
    return {}


def exec_update_item(client: DynamoDBClient, a: UpdateItem, resolved: Resolved) -> dict[str, Any]:
    client.update_item(
        TableName=table_name(a.table),
        Key=_boto_item(a.key),
        UpdateExpression=a.update_expression,
        **_expressions(a),
    )
    return {}


def exec_delete_item(client: DynamoDBClient, a: DeleteItem, resolved: Resolved) -> dict[str, Any]:
    client.delete_item(TableName=table_name(a.table), Key=_boto_item(a.key), **_expressions(a))
    return {}


def exec_batch_write(client: DynamoDBClient, a: BatchWrite, resolved: Resolved) -> dict[str, Any]:
    name = table_name(a.table)
    requests: list[Any] = [{"PutRequest": {"Item": _boto_item({**p.attributes, **p.key})}} for p in a.puts]
    requests += [{"DeleteRequest": {"Key": _boto_item(k)}} for k in a.deletes]
    for i in range(0, len(requests), 25):  # BatchWriteItem takes at most 25 requests
        pending: dict[str, Any] = {name: requests[i : i + 25]}
        for attempt in range(10):
            resp = client.batch_write_item(RequestItems=pending)
            pending = dict(resp.get("UnprocessedItems") or {})
            if not pending:
                break
            time.sleep(min(2.0, 0.05 * 2**attempt))  # DynamoDB asks to back off on unprocessed items
        else:
            left = len(pending.get(name, []))
            raise ToolFailure(
                f"DynamoDB left {left} request(s) of the batch on {name} unprocessed after 10 attempts",
                "the table is throttled; the plan's outcome lists what was written",
            )
    return {"puts": len(a.puts), "deletes": len(a.deletes)}


def exec_create_table(client: DynamoDBClient, a: CreateTable, resolved: Resolved) -> dict[str, Any]:
    name = table_name(a.table)
    key_schema = {a.partition_key.name: "HASH"}
    types = {a.partition_key.name: a.partition_key.type}
    if a.sort_key is not None:
        key_schema[a.sort_key.name] = "RANGE"
        types[a.sort_key.name] = a.sort_key.type
    st: State = {
        "name": name,
        "key_schema": key_schema,
        "attribute_types": types,
        "billing_mode": a.billing_mode,
        "throughput": {"read": a.read_capacity, "write": a.write_capacity}
        if a.billing_mode == "PROVISIONED"
        else None,
        "stream": a.stream_view_type,
        "tags": a.tags,
        "deletion_protection": a.deletion_protection,
    }
    client.create_table(**create_request(st))
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig=WAIT)
    return {}


def _delete_table(client: DynamoDBClient, name: str) -> None:
    client.delete_table(TableName=name)
    client.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig=WAIT)


def exec_delete_table(client: DynamoDBClient, a: TableOnly, resolved: Resolved) -> dict[str, Any]:
    _delete_table(client, table_name(a.table))
    return {}


def _settings(client: DynamoDBClient, name: str, st: State) -> None:
    """TTL and point-in-time recovery of a new table, as ``st`` has them."""
    if st.get("ttl"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": st["ttl"]}
        )
    if st.get("pitr") == "ENABLED":
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def exec_recreate_table(client: DynamoDBClient, a: TableOnly, resolved: Resolved) -> dict[str, Any]:
    """Delete the table with every item and create it again, empty, with the definition the plan
    was made on (key schema, indexes, billing, stream, tags, TTL, point-in-time recovery)."""
    name = table_name(a.table)
    st = resolved.planned(a.table)
    if st is None:
        raise ToolFailure(
            f"table {name} does not exist, so it cannot be recreated", "create it with create_dynamodb_table"
        )
    _delete_table(client, name)
    client.create_table(**create_request(st))
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig=WAIT)
    _settings(client, name, st)
    return {}


def exec_update_table(client: DynamoDBClient, a: UpdateTable, resolved: Resolved) -> dict[str, Any]:
    name = table_name(a.table)
    kw: dict[str, Any] = {}
    if a.billing_mode is not None:
        kw["BillingMode"] = a.billing_mode
    if a.read_capacity is not None and a.write_capacity is not None:
        kw["ProvisionedThroughput"] = {
            "ReadCapacityUnits": a.read_capacity,
            "WriteCapacityUnits": a.write_capacity,
        }
    if a.stream == "DISABLED":
        kw["StreamSpecification"] = {"StreamEnabled": False}
    elif a.stream is not None:
        kw["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": a.stream}
    if a.deletion_protection is not None:
        kw["DeletionProtectionEnabled"] = a.deletion_protection
    if a.table_class is not None:
        kw["TableClass"] = a.table_class
    if a.ttl_attribute is not None:
        _check_ttl(client, name, a.ttl_attribute, a.ttl_enabled is not False)
    if kw:
        resp = client.update_table(TableName=name, **kw)
        got = (resp.get("TableDescription", {}).get("TableClassSummary") or {}).get(
            "TableClass"
        ) or "STANDARD"
        if a.table_class is not None and got != a.table_class:
            # moto accepts TableClass and ignores it: a plan would say "no changes".
            raise CannotRehearse(
                f"the emulator accepted TableClass={a.table_class} for {name} and did not apply it, so "
                "update_dynamodb_table with table_class cannot be rehearsed"
            )
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig=WAIT)
    if a.ttl_attribute is not None:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": a.ttl_enabled is not False, "AttributeName": a.ttl_attribute},
        )
    if a.point_in_time_recovery is not None:
        client.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": a.point_in_time_recovery},
        )
    return {}


def _check_ttl(client: DynamoDBClient, name: str, attribute: str, enable: bool) -> None:
    """DynamoDB refuses a TTL change that changes nothing, or moves TTL while it is on; moto accepts
    both, so the rule is checked here, the same way against the sandbox and production."""
    ttl = client.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    on = ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    if enable and on:
        raise ToolFailure(
            f"TTL is already enabled on table {name} (attribute {ttl.get('AttributeName')}); DynamoDB refuses "
            "to enable it again or move it while it is on",
            "turn it off first (ttl_enabled=false), in a separate plan",
        )
    if not enable and not on:
        raise ToolFailure(f"TTL is already off on table {name}", "nothing to change")
    if not enable and ttl.get("AttributeName") != attribute:
        raise ToolFailure(
            f"TTL on table {name} is on attribute {ttl.get('AttributeName')}, not {attribute}",
            f"pass ttl_attribute={ttl.get('AttributeName')!r} to turn it off",
        )


# ---------------------------------------------------------------- risks


def _overwritten(c: Change) -> bool:
    """An existing item lost an attribute or had one's value replaced (adding attributes loses nothing)."""
    before, after = c.before or {}, c.after or {}
    if before.get("detail") == DIGEST or after.get("detail") == DIGEST:
        return before != after
    return any(after.get(k) != v for k, v in before.items())


def _sample(addresses: list[str], n: int = 3) -> str:
    keys = [a.partition(ITEM_MARK)[2] for a in addresses[:n]]
    more = f" and {len(addresses) - n} more" if len(addresses) > n else ""
    return ", ".join(keys) + more


def risks(changes: list[Change]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    deleted = [c.address for c in changes if c.kind == "dynamodb.item" and c.action is Action.DELETE]
    overwritten = [
        c.address
        for c in changes
        if c.kind == "dynamodb.item" and c.action in (Action.UPDATE, Action.REPLACE) and _overwritten(c)
    ]
    gone = [c for c in changes if c.kind == "dynamodb.table" and c.action in (Action.DELETE, Action.REPLACE)]
    for c in gone:
        name = (c.before or {}).get("name", c.address)
        n = sum(1 for a in deleted if a.startswith(c.address + ITEM_MARK))
        verb = "deleted" if c.action is Action.DELETE else "deleted and created again, empty,"
        sample = (
            f" (e.g. {_sample([a for a in deleted if a.startswith(c.address + ITEM_MARK)])})" if n else ""
        )
        out.append(("data-loss", f"table {name} is {verb} with its {n} item(s){sample}"))
        before = c.before or {}
        if before.get("pitr") != "ENABLED" and not before.get("backups"):
            out.append(
                (
                    "no-aws-backup",
                    f"table {name} has point-in-time recovery off and no backup: once deleted, AWS keeps no copy "
                    f"of its {n} item(s) (only interlock's pre-image, if the plan keeps one, can put them back)",
                )
            )
    loose = [a for a in deleted if not any(a.startswith(c.address + ITEM_MARK) for c in gone)]
    if loose:
        out.append(("data-loss", f"{len(loose)} item(s) deleted: {_sample(loose)}"))
    if overwritten:
        out.append(
            (
                "data-loss",
                f"{len(overwritten)} item(s) overwritten (attributes replaced or removed): {_sample(overwritten)}",
            )
        )
    return out


# ---------------------------------------------------------------- the approval screen


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    """An item: its attribute count (each attribute is listed); a table: billing, PITR, backups."""
    if kind == "dynamodb.item":
        if state.get("detail") == DIGEST:
            return [
                f"{state.get('attributes')} attribute(s)",
                "sha256 " + str(state.get("sha256")),  # whole: the summary stands for it (rule 9)
            ], frozenset({"detail", "sha256", "attributes"})
        return [f"{len(state)} attribute(s)"], frozenset()
    if kind == "dynamodb.table":
        bits = [str(state.get("billing_mode") or "")]
        bits.append("PITR " + ("on" if state.get("pitr") == "ENABLED" else "off"))
        bits.append(f"{state.get('backups') or 0} backup(s)")
        return [b for b in bits if b], frozenset({"name", "billing_mode", "pitr", "backups"})
    return None


def confirm_name(fp: Footprint) -> str | None:
    """What the approver types for a destructive or novel plan: the table's name."""
    for address in (*fp.addresses, *fp.prefixes):
        try:
            return table_name(address)
        except ValueError:
            continue
    return None


# ---------------------------------------------------------------- undo (``tools.dynamodb_undo``)
# Module-level wrappers: the undo module reads this one's helpers, so it is imported when first used.


def _undo_marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Any]:
    from .dynamodb_undo import marks

    return marks(changes, baseline, limits)


def _undo_keep(client: DynamoDBClient, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    from .dynamodb_undo import keep

    return keep(client, changes, current, limits)


def _undo_restore(client: DynamoDBClient, pre: PreImage, current: Resolved) -> dict[str, Any]:
    from .dynamodb_undo import restore

    return restore(client, pre, current)


TOOLSET = Toolset(
    name="dynamodb",
    target_kind="aws",
    service="dynamodb",
    snapshot=snapshot,
    volatile=frozenset(),
    hidden_attributes=frozenset(),  # an item's attributes are named by the user: every one is shown
    kind_of=kind_of,
    canonical=canonical,
    risks=risks,
    summarize=summarize,
    confirm_name=confirm_name,
    address_prefix=SPACE,
    risk_flags=("data-loss", "no-aws-backup"),
    child_separator=ITEM_MARK,
    judged_as=judged_as_parent(ITEM_MARK),
    read_addresses=read_addresses,
    account_scoped=True,
    error_hints={
        "ResourceNotFoundException": "check the table name with list_dynamodb_tables",
        "ConditionalCheckFailedException": "the condition does not hold for the item as production has it; "
        "read it with get_dynamodb_item and call again",
        "ResourceInUseException": "the table exists already, or is being created, updated or deleted; "
        "check it with describe_dynamodb_table",
        "ValidationException": "check the arguments against the table's key schema and settings "
        "(describe_dynamodb_table)",
        "ProvisionedThroughputExceededException": "the table is throttled; retry later",
        "LimitExceededException": "an account limit on table operations was reached; retry later",
    },
    undo=Undo(restore=_undo_restore, marks=_undo_marks, keep=_undo_keep, holds=lambda a: "/item/" not in a),
)
_read = TOOLSET.read
_write = TOOLSET.write


SPECS: tuple[ToolSpec, ...] = (
    _read(
        "list_dynamodb_tables",
        "List DynamoDB tables",
        "List the target's tables (name and ARN), one page at a time.",
        ListTables,
        read_list_tables,
        listed=lambda a, r: ("tables", [t["arn"] for t in r.get("tables", [])]),
    ),
    _read(
        "describe_dynamodb_table",
        "Describe a DynamoDB table",
        "Read a table's definition and settings: key schema, indexes, billing, stream, TTL, "
        "point-in-time recovery, backups, tags.",
        TableOnly,
        read_describe_table,
    ),
    _read(
        "get_dynamodb_item",
        "Get a DynamoDB item",
        "Read one item by its key (a consistent read); null when there is none.",
        GetItem,
        read_get_item,
    ),
    _read(
        "query_dynamodb_table",
        "Query a DynamoDB table",
        "Query a table or index by key condition, one capped page at a time (pass last_evaluated_key on).",
        Query,
        read_query,
        listed=_listed_items,
    ),
    _read(
        "scan_dynamodb_table",
        "Scan a DynamoDB table",
        "Scan a table or index, optionally filtered, one capped page at a time (pass last_evaluated_key on).",
        Scan,
        read_scan,
        listed=_listed_items,
    ),
    _write(
        "put_dynamodb_item",
        "Put a DynamoDB item",
        "Write one item (create it, or replace the item with that key entirely).",
        PutItem,
        item_fp,
        exec_put_item,
        idempotent=True,
    ),
    _write(
        "update_dynamodb_item",
        "Update a DynamoDB item",
        "Run an update expression on one item (creates it if absent); the plan shows each attribute's "
        "value before and after, as the expression produced it in the rehearsal.",
        UpdateItem,
        item_fp,
        exec_update_item,
    ),
    _write(
        "delete_dynamodb_item",
        "Delete a DynamoDB item",
        "Delete one item by its key.",
        DeleteItem,
        item_fp,
        exec_delete_item,
        destructive=True,
        idempotent=True,
    ),
    _write(
        "batch_write_dynamodb_items",
        "Batch-write DynamoDB items",
        "Put and delete up to 1,000 items of one table in one plan (sent 25 at a time).",
        BatchWrite,
        item_fp,
        exec_batch_write,
        destructive=True,
        idempotent=True,
    ),
    _write(
        "create_dynamodb_table",
        "Create a DynamoDB table",
        "Create a new, empty table.",
        CreateTable,
        lambda a: table_fp(a),
        exec_create_table,
    ),
    _write(
        "update_dynamodb_table",
        "Update a DynamoDB table",
        "Change a table's settings: billing mode and capacity, stream, TTL, point-in-time recovery, "
        "deletion protection.",
        UpdateTable,
        lambda a: table_fp(a),
        exec_update_table,
    ),
    _write(
        "delete_dynamodb_table",
        "Delete a DynamoDB table",
        "Delete a table and every item in it (the plan lists them).",
        TableOnly,
        lambda a: table_fp(a, items=True),
        exec_delete_table,
        destructive=True,
    ),
    _write(
        "recreate_dynamodb_table",
        "Delete and recreate a DynamoDB table",
        "Delete a table with every item and create it again, empty, with the same definition "
        "(key schema, indexes, billing, stream, tags, TTL, point-in-time recovery); its items are lost.",
        TableOnly,
        lambda a: table_fp(a, items=True),
        exec_recreate_table,
        destructive=True,
    ),
)
