"""DynamoDB in the sandbox: its address space, attribute values in one canonical form, and seeding
a baseline straight into moto's in-process backend (tens of µs an item, not an HTTP call each).

Addresses (shared with ``interlock.tools.dynamodb``; tools import sandbox, never the reverse):

- a table: its ARN, ``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME``;
- an item: the table's ARN, ``/item/``, and the item's key as canonical JSON (DynamoDB-typed
  values, attribute names sorted, no spaces): ``arn:aws:dynamodb:us-east-1:123456789012:table/
  orders/item/{"pk":{"S":"a"}}``. Table names cannot hold ``/``, so ``/item/`` (``ITEM_MARK``)
  separates a table from its items unambiguously, and ``TABLE_ARN/item/`` is the prefix that
  stands for every item of the table.

Attribute values are DynamoDB's wire JSON (``{"S": "a"}``, ``{"N": "1.5"}``, ``{"B": base64}``),
normalised so that equal values compare equal whoever wrote them: numbers in DynamoDB's
canonical form (``"1.50"`` and ``"1.5"`` are one number), binary as base64 of its bytes, sets
sorted.
"""

from __future__ import annotations

import base64
import json
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Any

from ..base import CannotRehearse
from ..diff import Snapshot, State
from .common import ClientCache, Seeded, parse_arn, replaced_pairs
from .services import MotoService

ITEM_MARK = "/item/"
TABLE_KINDS = ("dynamodb.table", "dynamodb.item")


# ---------------------------------------------------------------- attribute values


# DynamoDB's numbers: up to 38 significant digits, magnitude 1E-130 to below 1E+126 (or zero).
SMALLEST = Decimal("1E-130")
TOO_LARGE = Decimal("1E+126")


def normalize_number(text: str) -> str:
    """A DynamoDB number in canonical form (no exponent, no leading or trailing zeros), exact:
    never rounded (Python's default context keeps 28 digits, DynamoDB 38, so rounding would make two
    numbers, and two item keys, one). ``ValueError`` for anything that is not a finite decimal in
    DynamoDB's range."""
    try:
        number = Decimal(str(text).strip())
    except ArithmeticError:  # InvalidOperation, and Overflow for an exponent beyond any context
        raise ValueError(f"{str(text)[:50]!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{str(text)[:50]!r} is not a finite number")
    if number.is_zero():
        return "0"
    # Checked before formatting: 'f' writes every digit of the exponent out (1E+100000000 is 100 MB).
    if not SMALLEST <= number.copy_abs() < TOO_LARGE:
        raise ValueError(f"{str(text)[:50]} is outside DynamoDB's range (magnitude 1E-130 to below 1E+126)")
    digits = len(number.as_tuple().digits)
    exact = Context(prec=max(digits, 1), Emax=MAX_EMAX, Emin=MIN_EMIN)
    return format(number.normalize(exact), "f")


def significant_digits(canonical: str) -> int:
    """How many significant digits a canonical number has (``1000`` has 1, ``0.0105`` 3)."""
    return len(canonical.lstrip("-").replace(".", "").strip("0"))


def _binary(value: Any) -> str:
    raw = value if isinstance(value, bytes | bytearray) else base64.b64decode(str(value), validate=True)
    return base64.b64encode(bytes(raw)).decode("ascii")


def normalize_value(value: Any) -> Any:
    """One attribute value (a botocore client's, moto's or an agent's) in canonical wire JSON."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError("an attribute value is an object with exactly one type key, e.g. {'S': 'text'}")
    ((kind, inner),) = value.items()
    if kind == "S":
        return {"S": str(inner)}
    if kind == "N":
        return {"N": normalize_number(inner)}
    if kind == "B":
        return {"B": _binary(inner)}
    if kind == "BOOL":
        return {"BOOL": bool(inner)}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "M":
        return {"M": {str(k): normalize_value(v) for k, v in sorted(dict(inner).items())}}
    if kind == "L":
        return {"L": [normalize_value(v) for v in inner]}
    if kind == "SS":
        return {"SS": sorted({str(v) for v in inner})}
    if kind == "NS":
        return {"NS": sorted({normalize_number(v) for v in inner}, key=Decimal)}
    if kind == "BS":
        return {"BS": sorted({_binary(v) for v in inner})}
    raise ValueError(f"unknown attribute type {kind!r}")


def normalize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {str(k): normalize_value(v) for k, v in sorted(item.items())}


def key_json(key: dict[str, Any]) -> str:
    """An item's key as the canonical JSON its address ends with."""
    return json.dumps(normalize_item(key), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------- addresses


def condition_error(
    expression: str, names: dict[str, str] | None, values: dict[str, Any] | None
) -> str | None:
    """Why the rehearsal's emulator cannot parse this ConditionExpression, or None if it can.

    moto answers a malformed condition (``'0'``, ``'n >'``, an unmatched parenthesis) with a 500,
    not DynamoDB's ValidationException; a write tool asks here first and refuses the expression."""
    from moto.dynamodb.comparisons import get_filter_expression

    try:
        get_filter_expression(expression, names or {}, values or {})
    except ValueError as exc:  # moto's parser's own syntax errors
        return str(exc)[:200] or "a syntax error"
    except RecursionError:
        return "it is nested too deeply"
    except Exception:  # noqa: BLE001 - anything else moto reports itself, as DynamoDB would
        return None
    return None


def table_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def table_name(address: str) -> str:
    """The table's name in a table or item address; ``ValueError`` for any other address."""
    parsed = parse_arn(address)
    if parsed is None or parsed.service != "dynamodb" or not parsed.resource.startswith("table/"):
        raise ValueError(f"{address!r} is not a DynamoDB table or item ARN")
    return parsed.resource.removeprefix("table/").split("/", 1)[0]


def item_address(table: str, key: dict[str, Any]) -> str:
    """``table`` is the table's ARN."""
    return table + ITEM_MARK + key_json(key)


def items_prefix(table: str) -> str:
    return table + ITEM_MARK


def parse_item(address: str) -> tuple[str, dict[str, Any]] | None:
    """(table ARN, key) of an item address; None for a table address (or anything else)."""
    table, sep, key = address.partition(ITEM_MARK)
    if not sep:
        return None
    try:
        parsed = json.loads(key)
    except ValueError:
        return None
    return (table, parsed) if isinstance(parsed, dict) else None


def is_table(address: str) -> bool:
    return ITEM_MARK not in address and address.startswith("arn:aws:dynamodb:")


# ---------------------------------------------------------------- seeding

# Item states read above the detail limit hold a digest; the full item travels in the snapshot's
# blobs (never hashed into a plan) so the sandbox holds it exactly.
DIGEST = "digest"


def _tables(snapshot: Snapshot) -> dict[str, State]:
    """Every table the sandbox must hold, by ARN: the footprint's own, and those of its items (context)."""
    out: dict[str, State] = {}
    for arn, st in (snapshot.context.get("tables") or {}).items():
        if isinstance(st, dict):
            out[arn] = st
    for addr, st in snapshot.present().items():
        if is_table(addr):
            out[addr] = st
    return out


def _key_schema(st: State) -> list[dict[str, str]]:
    """KeySchema as DynamoDB wants it: the partition (HASH) key first."""
    keys = sorted(st["key_schema"].items(), key=lambda kv: kv[1] != "HASH")
    return [{"AttributeName": n, "KeyType": t} for n, t in keys]


def _index(name: str, ix: dict[str, Any], provisioned: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "IndexName": name,
        "KeySchema": _key_schema(ix),
        "Projection": dict(ix.get("projection") or {"ProjectionType": "ALL"}),
    }
    if provisioned and ix.get("throughput"):
        out["ProvisionedThroughput"] = {
            "ReadCapacityUnits": ix["throughput"]["read"],
            "WriteCapacityUnits": ix["throughput"]["write"],
        }
    return out


def create_request(st: State) -> dict[str, Any]:
    """CreateTable's parameters for a table state (seeding and ``recreate``): what the state holds."""
    provisioned = st.get("billing_mode") != "PAY_PER_REQUEST"
    kw: dict[str, Any] = {
        "TableName": st["name"],
        "KeySchema": _key_schema(st),
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in sorted(st["attribute_types"].items())
        ],
        "BillingMode": "PROVISIONED" if provisioned else "PAY_PER_REQUEST",
    }
    if provisioned:
        tp = st.get("throughput") or {"read": 1, "write": 1}
        kw["ProvisionedThroughput"] = {"ReadCapacityUnits": tp["read"], "WriteCapacityUnits": tp["write"]}
    gsis = st.get("global_indexes") or {}
    if gsis:
        kw["GlobalSecondaryIndexes"] = [_index(n, ix, provisioned) for n, ix in sorted(gsis.items())]
    lsis = st.get("local_indexes") or {}
    if lsis:
        kw["LocalSecondaryIndexes"] = [_index(n, ix, False) for n, ix in sorted(lsis.items())]
    if st.get("stream"):
        kw["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": st["stream"]}
    if st.get("sse"):
        kw["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
    if st.get("tags"):
        kw["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(st["tags"].items())]
    if st.get("deletion_protection"):
        kw["DeletionProtectionEnabled"] = True
    return kw


def unholdable(st: State) -> str | None:
    """Why moto cannot hold this table as production has it (None: it can)."""
    if st.get("table_class", "STANDARD") != "STANDARD":
        return f"table class {st['table_class']} (moto keeps no table class)"
    if st.get("replicas"):
        return f"replicas in {', '.join(st['replicas'])} (moto does not hold global tables)"
    return None


def _reset(account: str, region: str) -> None:
    from moto.dynamodb.models import dynamodb_backends

    dynamodb_backends[account][region].reset()


def _seed(snapshot: Snapshot, account: str, region: str, clients: ClientCache) -> Seeded:
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[account][region]
    tables = _tables(snapshot)
    by_name: dict[str, Any] = {}
    for arn, st in tables.items():
        why = unholdable(st)
        if why is not None:
            raise CannotRehearse(
                f"the embedded sandbox cannot hold DynamoDB table {st['name']} as production has it: {why}; "
                "a rehearsal would show changes that are the emulator's, not the call's"
            )
        kw = create_request(st)
        table = backend.create_table(
            name=kw["TableName"],
            schema=kw["KeySchema"],
            throughput=kw.get("ProvisionedThroughput"),
            attr=kw["AttributeDefinitions"],
            global_indexes=kw.get("GlobalSecondaryIndexes"),
            indexes=kw.get("LocalSecondaryIndexes"),
            streams=kw.get("StreamSpecification"),
            billing_mode=kw["BillingMode"],
            sse_specification=kw.get("SSESpecification"),
            tags=kw.get("Tags", []),
            deletion_protection_enabled=kw.get("DeletionProtectionEnabled", False),
            warm_throughput=None,
        )
        ttl = st.get("ttl")
        if ttl:
            table.ttl = {"TimeToLiveStatus": "ENABLED", "AttributeName": ttl}
        if st.get("pitr") == "ENABLED":
            backend.update_continuous_backups(kw["TableName"], {"PointInTimeRecoveryEnabled": True})
        # Backups before items: moto copies the table into each backup.
        for i in range(int(st.get("backups") or 0)):
            backend.create_backup(kw["TableName"], f"interlock-seed-{i}")
        by_name[arn] = table
    for addr, st in snapshot.present().items():
        found = parse_item(addr)
        if found is None:
            continue
        parent = by_name.get(found[0])
        if parent is None:
            continue  # the table is absent in production: so is the item
        _insert(parent, json.loads(snapshot.blobs[addr]) if st.get("detail") == DIGEST else _own(st))
    return Seeded()


def _own(value: Any) -> Any:
    """A copy of a state's containers for moto to own: it keeps the lists it is given (a set's
    values), and an update in the rehearsal must never reach the baseline's states."""
    if isinstance(value, dict):
        return {k: _own(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_own(v) for v in value]
    return value


def _insert(table: Any, attrs: dict[str, Any]) -> None:
    """Put one item of production's straight into moto's table. ``Table.put_item`` would check
    the item's size attribute by attribute (quadratic in its attributes: most of a seed's time)
    and write a stream record; an item production holds is within DynamoDB's limits already,
    and seeding is not a write the stream should show."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    hash_key = DynamoType(attrs[table.hash_key_attr])
    range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    item = Item(hash_key, range_key, {})
    item.attrs = LimitedSizeDict({k: DynamoType(v) for k, v in attrs.items()})  # dict.update: no size check
    if range_key is not None:
        table.items[hash_key][range_key] = item
    else:
        table.items[hash_key] = item


def _replaced(calls: list[tuple[str, dict[str, Any]]], account: str, region: str) -> set[str]:
    def name(params: dict[str, Any]) -> str | None:
        value = params.get("TableName")
        if not isinstance(value, str):
            return None
        return table_name(value) if value.startswith("arn:") else value

    return replaced_pairs(calls, "DeleteTable", "CreateTable", name, lambda n: table_arn(region, account, n))


SERVICE = MotoService(name="dynamodb", reset=_reset, seed=_seed, replaced=_replaced)
