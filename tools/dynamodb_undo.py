"""Undo for the DynamoDB toolset (``tools.undo``): what is kept before an apply, how reversible each
change is, and the restore a rollback plan runs.

What is kept: every changed address's state as the snapshot read it. An item is kept whole (its
attributes); an item a table delete read above the detail limit is only a digest in its state, and
its bytes are the snapshot's blob (checked against the digest when kept). A table is its state
(key schema, indexes, billing and capacity, stream, TTL, point-in-time recovery, deletion
protection, tags), plus what the state leaves out and a re-create needs: the KMS key of its
encryption, and its stream's ARN (for the note that the stream put back is a new one).

How each change is undone:

- an item put, updated, deleted or batch-written: the item before is put back whole (an item the
  plan created is deleted);
- a table created: deleted again (refused while it holds items written since);
- a table updated: each setting the state holds is put back where it differs now (billing mode and
  capacity, index capacity, indexes, stream, TTL, point-in-time recovery, deletion protection,
  tags);
- a table deleted or recreated: the table is created again with its key schema, indexes and
  settings (if it is absent), then every item is put back.

What cannot be put back exactly is said in the mark's ``why`` and in the restore's ``notes``: a
stream turned on again is a new stream (a new ARN and label); a table created again is a new table
(a new creation time and table id; its point-in-time recovery window starts again; its on-demand
backups and the deleted table's system backup stay with AWS); auto scaling, alarms, resource
policies, Kinesis destinations and contributor insights are not in the state and are not touched.

Refused (``ToolFailure``), as a rollback would have to replace a table or reach beyond its
pre-image: a table whose key schema, local indexes, table class, encryption or replicas differ now
from its kept state; items of a table that does not exist now; deleting a table the plan created
while it holds items written since (found at apply: the rollback's footprint, and so its sandbox,
holds the table and not those items).

moto, where it differs from AWS: it keeps a disabled stream's label and then refuses to enable a
stream on that table again (AWS allows it; the sandbox, seeded afresh, does too); its TagResource
adds a second tag of a key instead of replacing it, so a changed tag is untagged first; it ignores
UpdateTable's SSESpecification, which a restore never sends (encryption differences are refused).

Marks: an item's mark costs its canonical bytes; a change on a table with point-in-time recovery
on carries ``Mark.aws``, so that above the pre-image budget it is ``reversible-by-aws`` rather than
irreversible.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from interlock.sandbox.aws.dynamodb import (
    DIGEST,
    _index,
    create_request,
    is_table,
    item_address,
    normalize_item,
    parse_item,
    table_name,
)
from interlock.sandbox.diff import Action, Change, Snapshot, State, canonical_json, digest

from . import dynamodb as ddb
from .spec import Limits, Resolved, ToolFailure
from .undo import REVERSIBLE, Mark, PreImage, changed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TOOLSET = "dynamodb"
PITR_KEEPS = "point-in-time recovery covers the table"
# What a re-created table does not get back, whatever the pre-image holds.
NEW_TABLE = (
    "it is a new table (a new creation time and table id); settings outside the table's state "
    "(auto scaling, alarms, resource policy, Kinesis destinations, contributor insights) are not put back"
)
# The fields of a table state a restore never changes: a table that differs there now is refused.
REFUSED = {
    "key_schema": "its key schema",
    "local_indexes": "its local secondary indexes",
    "table_class": "its table class",
    "sse": "its encryption",
    "replicas": "its replicas",
}
POLL_SECONDS = 2.0
POLL_ATTEMPTS = 300  # ten minutes, as the toolset's waiters


# ---------------------------------------------------------------- marks


def _tables(baseline: Snapshot) -> dict[str, State]:
    """Every table the baseline knows, by ARN: its own table states and its items' tables (context)."""
    out: dict[str, State] = {
        a: st for a, st in (baseline.context.get("tables") or {}).items() if isinstance(st, dict)
    }
    out.update({a: st for a, st in baseline.present().items() if is_table(a)})
    return out


def item_bytes(address: str, state: State | None, blobs: dict[str, bytes]) -> int:
    """What keeping an item costs: its canonical JSON (the blob, for an item read as a digest)."""
    if state is None:
        return 0
    if state.get("detail") == DIGEST:
        blob = blobs.get(address)
        # Without its blob (never so in a plan's baseline) an estimate; ``keep`` refuses such an item.
        return len(blob) if blob is not None else int(state.get("attributes") or 0) * 64
    return len(canonical_json(state).encode())


def _expired(state: State | None, ttl: str | None, now: float) -> bool:
    """The item's TTL attribute is a time already past: DynamoDB deletes it again once put back."""
    if state is None or not ttl or state.get("detail") == DIGEST:
        return False
    value = (state.get(ttl) or {}).get("N")
    try:
        return value is not None and Decimal(value) < Decimal(now)
    except InvalidOperation:
        return False


def _update_gaps(before: State, after: State) -> list[str]:
    """What a rollback of this table update cannot put back exactly, or where AWS may refuse it."""
    gaps: list[str] = []
    if before.get("stream") != after.get("stream") and before.get("stream"):
        gaps.append(
            "the stream put back is a new stream (a new ARN and label), without the old one's records"
        )
    if before.get("billing_mode") == "PAY_PER_REQUEST" and after.get("billing_mode") == "PROVISIONED":
        gaps.append("AWS allows four switches to on-demand billing per table in 24 hours")
    old, new = before.get("throughput") or {}, after.get("throughput") or {}
    if old and new and any((old.get(k) or 0) < (new.get(k) or 0) for k in ("read", "write")):
        gaps.append("lowering capacity again counts against AWS's daily limit on decreases")
    if before.get("ttl") != after.get("ttl"):
        gaps.append("AWS refuses a second TTL change on a table within about an hour of the first")
    if before.get("pitr") == "ENABLED" and after.get("pitr") != "ENABLED":
        gaps.append(
            "point-in-time recovery turned on again starts a new recovery window: times before the rollback "
            "cannot be restored"
        )
    return gaps


def _table_mark(c: Change) -> Mark:
    before = c.before or {}
    aws = PITR_KEEPS if before.get("pitr") == "ENABLED" else ""
    if c.action is Action.CREATE:
        return Mark(
            c.address, REVERSIBLE, 0, "a rollback deletes the table, and refuses while it holds items"
        )
    if c.action is Action.UPDATE:
        # A table's settings are a small state, counted as nothing (items are what costs bytes).
        return Mark(c.address, REVERSIBLE, 0, "; ".join(_update_gaps(before, c.after or {})))
    bits = []
    if c.action is Action.DELETE:
        bits.append(
            "a rollback creates the table again with its key schema, indexes and settings, then puts every item back"
        )
        bits.append(NEW_TABLE)
        if before.get("stream"):
            bits.append("its stream is a new stream (a new ARN and label)")
        if before.get("pitr") == "ENABLED":
            bits.append(
                "its point-in-time recovery window starts again (the deleted table's system backup stays with AWS)"
            )
    else:  # a replace: the table the plan re-created stays; its items are put back
        bits.append(
            "a rollback puts every item back into the table the plan created again, which stays a new table"
        )
    if before.get("backups"):
        bits.append(f"its {before['backups']} on-demand backup(s) stay as AWS keeps them")
    return Mark(c.address, REVERSIBLE, 0, "; ".join(bits), aws)


def marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    """One mark per change: every change is reversible from its pre-image, an item costing its bytes;
    a change on a table with point-in-time recovery on is covered by AWS above the budget."""
    tables = _tables(baseline)
    now = time.time()
    out: list[Mark] = []
    for c in changed(changes):
        if is_table(c.address):
            out.append(_table_mark(c))
            continue
        found = parse_item(c.address)
        table = tables.get(found[0]) if found is not None else None
        aws = PITR_KEEPS if (table or {}).get("pitr") == "ENABLED" else ""
        why = ""
        if _expired(c.before, (table or {}).get("ttl"), now):
            why = f"its TTL attribute {(table or {}).get('ttl')} has passed: DynamoDB deletes it again once put back"
        out.append(Mark(c.address, REVERSIBLE, item_bytes(c.address, c.before, baseline.blobs), why, aws))
    return out


# ---------------------------------------------------------------- keep


def _item_of(address: str, state: State, blobs: dict[str, bytes]) -> dict[str, Any]:
    """The whole item a state stands for: the state itself, or the blob its digest names (checked)."""
    if state.get("detail") != DIGEST:
        return state
    raw = blobs.get(address)
    item = normalize_item(json.loads(raw)) if raw is not None else None
    if item is None or digest(item) != state.get("sha256"):
        raise ToolFailure(
            f"the bytes kept for item {address} do not match its digest {state.get('sha256')}",
            "the pre-image is damaged: this item cannot be put back by a rollback",
        )
    return item


def keep(client: DynamoDBClient, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    """Each changed address's state as production holds it now, every item a state holds only by
    digest (its blob, checked), and for each table what a re-create needs beyond its state."""
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    for c in changed(changes):
        st = current.states.get(c.address)
        if st is None and c.before is not None:
            raise ToolFailure(
                f"{c.address} was not read from production before the apply, so it could not be kept",
                "plan the call again",
            )
        states[c.address] = st
        if st is not None and st.get("detail") == DIGEST:
            _item_of(c.address, st, current.blobs)
            blobs[c.address] = current.blobs[c.address]
    context: dict[str, Any] = {}
    if current.context.get("tables"):
        context["tables"] = current.context["tables"]
    extra: dict[str, Any] = {}
    for address, st in states.items():
        if st is None or not is_table(address):
            continue
        try:
            d = client.describe_table(TableName=table_name(address))["Table"]
        except ClientError as exc:
            if ddb._code(exc) in ddb.MISSING:
                continue
            raise
        facts = {
            "kms_key": (d.get("SSEDescription") or {}).get("KMSMasterKeyArn"),
            "stream_arn": d.get("LatestStreamArn"),
            "table_id": d.get("TableId"),
        }
        extra[address] = {k: v for k, v in facts.items() if v}
    if extra:
        context["table_facts"] = extra
    return PreImage(toolset=TOOLSET, states=states, blobs=blobs, context=context)


# ---------------------------------------------------------------- restore


def _wait_active(client: DynamoDBClient, name: str) -> None:
    """Until the table and every one of its indexes are ACTIVE (AWS refuses the next update before)."""
    for _ in range(POLL_ATTEMPTS):
        d = client.describe_table(TableName=name)["Table"]
        busy = d.get("TableStatus") != "ACTIVE" or any(
            ix.get("IndexStatus", "ACTIVE") != "ACTIVE" for ix in d.get("GlobalSecondaryIndexes", [])
        )
        if not busy:
            return
        time.sleep(POLL_SECONDS)  # AWS changes tables asynchronously
    raise ToolFailure(
        f"table {name} did not become ACTIVE within {int(POLL_SECONDS * POLL_ATTEMPTS)} seconds",
        "check it with describe_dynamodb_table and plan the rollback again",
    )


def _update(client: DynamoDBClient, name: str, **kw: Any) -> None:
    client.update_table(TableName=name, **kw)
    _wait_active(client, name)


def _batch(client: DynamoDBClient, name: str, requests: list[Any]) -> None:
    for i in range(0, len(requests), 25):  # BatchWriteItem takes at most 25 requests
        pending: dict[str, Any] = {name: requests[i : i + 25]}
        for attempt in range(10):
            resp = client.batch_write_item(RequestItems=pending)
            pending = dict(resp.get("UnprocessedItems") or {})
            if not pending:
                break
            time.sleep(min(2.0, 0.05 * 2**attempt))  # DynamoDB asks to back off on unprocessed items
        else:
            raise ToolFailure(
                f"DynamoDB left {len(pending.get(name, []))} item(s) of table {name} unwritten after 10 attempts",
                "the table is throttled; the rollback's outcome lists what was put back: plan it again",
            )


def _pitr(client: DynamoDBClient, name: str, on: bool) -> None:
    """Point-in-time recovery on or off; AWS answers ContinuousBackupsUnavailable for a while after a
    table is created or its backups change, so that answer is waited out."""
    for attempt in range(POLL_ATTEMPTS):
        try:
            client.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": on}
            )
            return
        except ClientError as exc:
            if ddb._code(exc) != "ContinuousBackupsUnavailableException" or attempt == POLL_ATTEMPTS - 1:
                raise
        time.sleep(POLL_SECONDS)


def _gsi_shape(ix: dict[str, Any]) -> Any:
    return (ix.get("key_schema"), ix.get("projection"))


def _gsi_create(name: str, ix: dict[str, Any], provisioned: bool) -> dict[str, Any]:
    return {"Create": _index(name, ix, provisioned)}


def _throughput(tp: dict[str, Any]) -> dict[str, int]:
    return {"ReadCapacityUnits": int(tp["read"]), "WriteCapacityUnits": int(tp["write"])}


def _create_table(client: DynamoDBClient, st: State, facts: dict[str, Any]) -> list[str]:
    """Create the table as ``st`` has it (key schema, indexes, billing, stream, encryption key, tags,
    deletion protection, then TTL and point-in-time recovery): what cannot be the same is noted."""
    if st.get("replicas"):
        raise ToolFailure(
            f"table {st['name']} was a global table (replicas in {', '.join(st['replicas'])}); a rollback "
            "cannot create its replicas",
            "create the table and its replicas by hand",
        )
    kw = create_request(st)
    if st.get("sse") and facts.get("kms_key"):
        kw["SSESpecification"]["KMSMasterKeyId"] = facts["kms_key"]
    if st.get("table_class", "STANDARD") != "STANDARD":
        kw["TableClass"] = st["table_class"]
    client.create_table(**kw)
    _wait_active(client, st["name"])
    if st.get("ttl"):
        client.update_time_to_live(
            TableName=st["name"], TimeToLiveSpecification={"Enabled": True, "AttributeName": st["ttl"]}
        )
    if st.get("pitr") == "ENABLED":
        _pitr(client, st["name"], True)
    was = f" (the deleted one's id was {facts['table_id']})" if facts.get("table_id") else ""
    notes = [f"table {st['name']} was created again: {NEW_TABLE}{was}"]
    if st.get("stream"):
        was = f" (was {facts['stream_arn']})" if facts.get("stream_arn") else ""
        notes.append(f"table {st['name']}'s stream is a new stream with a new ARN and label{was}")
    if st.get("pitr") == "ENABLED":
        notes.append(f"table {st['name']}'s point-in-time recovery window starts now")
    return notes


def _refuse_replaced(st: State, now: State) -> None:
    for field, what in REFUSED.items():
        if st.get(field) != now.get(field):
            raise ToolFailure(
                f"table {st['name']} has a different {what.removeprefix('its ')} now than before the plan "
                f"({now.get(field)!r}, was {st.get(field)!r}); a rollback does not change {what}",
                "put it back by hand, or roll back the later change that made it",
            )
    keys = {k: st["attribute_types"].get(k) for k in st["key_schema"]}
    if keys != {k: (now.get("attribute_types") or {}).get(k) for k in st["key_schema"]}:
        raise ToolFailure(
            f"table {st['name']}'s key attributes have other types now than before the plan: it was replaced since",
            "put it back by hand",
        )


def _put_back(client: DynamoDBClient, st: State, now: State) -> list[str]:
    """Make an existing table's settings those of ``st`` again, setting by setting."""
    name = st["name"]
    _refuse_replaced(st, now)
    notes: list[str] = []
    mode = st.get("billing_mode") or "PROVISIONED"
    provisioned = mode == "PROVISIONED"
    pre_gsis: dict[str, Any] = st.get("global_indexes") or {}
    now_gsis: dict[str, Any] = now.get("global_indexes") or {}
    # Indexes the plan's table did not have, or has in another shape: removed first (before a
    # switch to PROVISIONED, which needs the capacity of every index the table has then).
    for ix in sorted(now_gsis):
        if ix not in pre_gsis or _gsi_shape(pre_gsis[ix]) != _gsi_shape(now_gsis[ix]):
            _update(client, name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": ix}}])
    # Billing and capacity, the table's and its remaining indexes' at once.
    kw: dict[str, Any] = {}
    switched = mode != (now.get("billing_mode") or "PROVISIONED")
    if switched:
        kw["BillingMode"] = mode
    if provisioned and st.get("throughput") and (switched or st.get("throughput") != now.get("throughput")):
        kw["ProvisionedThroughput"] = _throughput(st["throughput"])
    updates = [
        {"Update": {"IndexName": ix, "ProvisionedThroughput": _throughput(pre_gsis[ix]["throughput"])}}
        for ix in sorted(pre_gsis)
        if provisioned
        and ix in now_gsis
        and _gsi_shape(pre_gsis[ix]) == _gsi_shape(now_gsis[ix])
        and pre_gsis[ix].get("throughput")
        and (switched or pre_gsis[ix].get("throughput") != now_gsis[ix].get("throughput"))
    ]
    if updates:
        kw["GlobalSecondaryIndexUpdates"] = updates
    if kw:
        _update(client, name, **kw)
    # Indexes the table had: created again, one per update (AWS creates one index at a time).
    definitions: list[Any] = [
        {"AttributeName": n, "AttributeType": t} for n, t in sorted(st["attribute_types"].items())
    ]
    for ix in sorted(pre_gsis):
        if ix not in now_gsis or _gsi_shape(pre_gsis[ix]) != _gsi_shape(now_gsis[ix]):
            _update(
                client,
                name,
                AttributeDefinitions=definitions,
                GlobalSecondaryIndexUpdates=[_gsi_create(ix, pre_gsis[ix], provisioned)],
            )
            notes.append(f"index {ix} of table {name} was created again and filled from the table's items")
    # The stream: off, then on again with its view type (a new stream).
    if st.get("stream") != now.get("stream"):
        if now.get("stream"):
            _update(client, name, StreamSpecification={"StreamEnabled": False})
        if st.get("stream"):
            _update(client, name, StreamSpecification={"StreamEnabled": True, "StreamViewType": st["stream"]})
            notes.append(f"table {name}'s stream is a new stream with a new ARN and label")
    if bool(st.get("deletion_protection")) != bool(now.get("deletion_protection")):
        _update(client, name, DeletionProtectionEnabled=bool(st.get("deletion_protection")))
    if st.get("ttl") != now.get("ttl"):
        if now.get("ttl"):
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": False, "AttributeName": now["ttl"]}
            )
        if st.get("ttl"):
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": st["ttl"]}
            )
    if st.get("pitr") != now.get("pitr"):
        on = st.get("pitr") == "ENABLED"
        _pitr(client, name, on)
        if on:
            notes.append(f"table {name}'s point-in-time recovery window starts now")
    tags, now_tags = st.get("tags") or {}, now.get("tags") or {}
    if tags != now_tags:
        arn = client.describe_table(TableName=name)["Table"]["TableArn"]
        put: list[Any] = [{"Key": k, "Value": v} for k, v in sorted(tags.items()) if now_tags.get(k) != v]
        # A changed value is untagged first: moto's TagResource adds a second tag of the key (AWS replaces it).
        gone = sorted((set(now_tags) - set(tags)) | {t["Key"] for t in put if t["Key"] in now_tags})
        if gone:
            client.untag_resource(ResourceArn=arn, TagKeys=gone)
        if put:
            client.tag_resource(ResourceArn=arn, Tags=put)
    if (st.get("backups") or 0) != (now.get("backups") or 0):
        notes.append(_backups_note(st, now))
    return notes


def _backups_note(st: State, now: State) -> str:
    return (
        f"table {st['name']} has {now.get('backups') or 0} on-demand backup(s), {st.get('backups') or 0} before "
        "the plan: a rollback neither makes nor deletes backups"
    )


def _settings_differ(st: State, now: State) -> bool:
    return {k: v for k, v in st.items() if k != "backups"} != {k: v for k, v in now.items() if k != "backups"}


def _delete_table(client: DynamoDBClient, arn: str, now: State, pre: PreImage) -> None:
    """Delete a table the plan created: refused while it holds an item the pre-image does not name
    as absent before the plan (an item written since, which the rollback's plan would not list)."""
    name = now["name"]
    names = list(now.get("key_schema") or {})
    kw: dict[str, Any] = {"TableName": name, "ConsistentRead": True}
    while True:
        page = client.scan(**kw)
        for item in page.get("Items", []):
            address = item_address(arn, {n: item[n] for n in names if n in item})
            if address not in pre.states or pre.states[address] is not None:
                raise ToolFailure(
                    f"table {name} holds items written since the plan created it (e.g. "
                    f"{address.partition('/item/')[2]}); a rollback removes only what the plan made",
                    "delete those items first (batch_write_dynamodb_items), or delete the table with "
                    "delete_dynamodb_table, whose plan lists every item",
                )
        if not page.get("LastEvaluatedKey"):
            break
        kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    if now.get("deletion_protection"):
        _update(client, name, DeletionProtectionEnabled=False)
    ddb._delete_table(client, name)


def _key_names(client: DynamoDBClient, arn: str, tables: dict[str, State | None]) -> list[str]:
    st = tables.get(arn)
    if st is not None:
        return list(st["key_schema"])
    try:
        return list(ddb._schema(client, arn)[0])
    except ToolFailure as exc:
        raise ToolFailure(
            f"table {table_name(arn)} does not exist now, so its items cannot be put back",
            "roll back the plan that deleted it first, or create it again",
        ) from exc


def _restore_items(
    client: DynamoDBClient,
    arn: str,
    addresses: list[str],
    pre: PreImage,
    current: Resolved,
    tables: dict[str, State | None],
) -> tuple[int, int]:
    names = _key_names(client, arn, tables)
    requests: list[Any] = []
    puts = deletes = 0
    for address in addresses:
        found = parse_item(address)
        assert found is not None
        key = found[1]
        if sorted(key) != sorted(names):
            raise ToolFailure(
                f"table {table_name(arn)}'s key is now {', '.join(names)}, and item {address} was kept under "
                f"{', '.join(sorted(key))}: the table was replaced since",
                "put the item back by hand",
            )
        kept = pre.states[address]
        want = _item_of(address, kept, pre.blobs) if kept is not None else None
        have = current.planned(address)
        if isinstance(have, dict) and have.get("detail") == DIGEST:
            if want is not None and digest(want) == have.get("sha256"):
                continue
        elif want == have:
            continue
        if want is None:
            requests.append({"DeleteRequest": {"Key": ddb._boto_item(key)}})
            deletes += 1
        else:
            requests.append({"PutRequest": {"Item": ddb._boto_item(want)}})
            puts += 1
    if requests:
        _batch(client, table_name(arn), requests)
    return puts, deletes


def restore(client: DynamoDBClient, pre: PreImage, current: Resolved) -> dict[str, Any]:
    """Make every address of the pre-image hold its kept state again: tables first (created again,
    or their settings put back), then items (put back whole, or deleted if the plan created them),
    then the tables the plan created (deleted). Addresses that hold their kept state are left alone."""
    tables: dict[str, State | None] = {a: st for a, st in pre.states.items() if is_table(a)}
    items: dict[str, list[str]] = {}
    for address in pre.states:
        found = parse_item(address)
        if found is not None:
            items.setdefault(found[0], []).append(address)
    facts: dict[str, Any] = pre.context.get("table_facts") or {}
    notes: list[str] = []
    done: dict[str, Any] = {"tables_created": [], "tables_updated": [], "tables_deleted": []}
    for arn, st in tables.items():
        if st is None:
            continue
        now = current.planned(arn)
        if now is None:
            notes += _create_table(client, st, facts.get(arn) or {})
            done["tables_created"].append(st["name"])
        elif _settings_differ(st, now):
            notes += _put_back(client, st, now)
            done["tables_updated"].append(st["name"])
        elif (st.get("backups") or 0) != (now.get("backups") or 0):
            notes.append(_backups_note(st, now))
    puts = deletes = 0
    for arn, addresses in items.items():
        if arn in tables and tables[arn] is None:
            continue  # the plan created the table: deleting it removes these too
        p, d = _restore_items(client, arn, addresses, pre, current, tables)
        puts, deletes = puts + p, deletes + d
    for arn, st in tables.items():
        now = current.planned(arn)
        if st is None and now is not None:
            _delete_table(client, arn, now, pre)
            done["tables_deleted"].append(now["name"])
    out: dict[str, Any] = {k: v for k, v in done.items() if v}
    out["items_put"] = puts
    out["items_deleted"] = deletes
    if notes:
        out["notes"] = notes
    return out
