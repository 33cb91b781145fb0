"""The SQS toolset: reads that go to production, writes that return a plan.

Addresses (ARNs, ``account_scoped``):

- a queue ``arn:aws:sqs:REGION:ACCOUNT:NAME``;
- its messages ``arn:aws:sqs:REGION:ACCOUNT:NAME/messages`` (``child_separator`` ``/``: queue
  names hold only letters, digits, ``-``, ``_`` and a ``.fifo`` suffix, never ``/``). Only the
  tools that can lose messages (purge, delete) name it, so a scope rule for a queue's messages is
  written ``arn:aws:sqs:us-east-1:123456789012:orders/messages`` (or ``...:orders*`` for both).

An agent may name a queue by its name (``orders``), its URL
(``https://sqs.us-east-1.amazonaws.com/123456789012/orders``) or its ARN; ``canonical`` turns each
into the ARN in the target's region and account before policy decides, and refuses an ARN or URL
of another account or region.

State shapes (the sandbox seeds from these; the diff compares them):

- queue: ``{name, fifo, tags, created, last_modified, <Attribute>: value, ...}`` with every
  attribute ``GetQueueAttributes(All)`` returns under its AWS name (``VisibilityTimeout``,
  ``MessageRetentionPeriod``, ``Policy``, ``RedrivePolicy``, ...), values as AWS sends them
  (strings), except ``Policy`` and ``RedrivePolicy``, parsed from JSON so a diff shows their
  structure. ``QueueArn`` is the address and is left out; the timestamps are volatile.
  ``RedriveAllowPolicy`` (which moto neither stores nor reports) is read into the snapshot's
  context, so a change to it makes a plan stale, but it is not compared.
- messages: ``{approximate_messages, approximate_messages_not_visible,
  approximate_messages_delayed, holds_messages, unpredicted: ["holds_messages"]}``. The counts are
  SQS's approximations: volatile, shown but never compared, so their drift neither makes a plan
  stale nor fails a verification. ``holds_messages`` (any of the three above zero) is compared, so
  a plan made on an empty queue goes stale when messages arrive (it would now lose what the approver
  never saw). It is ``unpredicted`` for the check after apply: producers keep writing to a live
  queue, and SQS takes up to 60 seconds to finish a purge. A purge is a replace of the messages
  (``-/+``: every message deleted, the queue going on empty; the sandbox's ``replaced`` says so),
  so policy counts it as a delete; a queue delete deletes them (``-``).

Snapshot context: ``dead_letter_queues`` (ARN -> ``{fifo}`` or None) for every dead-letter queue
the footprint's queues redrive to, so the sandbox holds them (moto refuses a redrive policy whose
target does not exist), and ``redrive_allow`` (queue ARN -> policy) where AWS reported one.

Undo (``tools.sqs_undo``): a queue's attributes, policies and tags are put back, a deleted queue is
created again under its name; its messages never (a purge or delete of messages is irreversible).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import urlparse

from botocore.exceptions import ClientError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from interlock.sandbox.aws.common import parse_arn
from interlock.sandbox.diff import Action, Change, Snapshot, State

from .spec import Footprint, Limits, Place, Resolved, ToolFailure, Toolset, ToolSpec, judged_as_parent
from .sqs_undo import UNDO

if TYPE_CHECKING:  # boto3-stubs: every SQS call below is type-checked
    from mypy_boto3_sqs import SQSClient

SPACE = "arn:aws:sqs:"
MESSAGES = "/messages"  # a queue's messages: the queue's ARN + this
VOLATILE = frozenset(
    {
        "created",
        "last_modified",
        "approximate_messages",
        "approximate_messages_not_visible",
        "approximate_messages_delayed",
        "unpredicted",
    }
)

# ---------------------------------------------------------------- names and addresses

NAME_RULES = (
    "1 to 80 letters, digits, hyphens or underscores; a FIFO queue's name ends in '.fifo' "
    "(at most 75 characters before it)"
)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo")
_AWS_DOMAIN = re.compile(r"(?:^|\.)(?:amazonaws\.com(?:\.cn)?|api\.aws|amazonaws\.eu)$")
_REGION_LABEL = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]+")


def url_region(host: str) -> str | None:
    """The region an SQS endpoint's host names (``sqs.eu-west-1.amazonaws.com``,
    ``sqs-fips.us-east-2.amazonaws.com``, ``sqs.eu-west-1.api.aws``, a VPC endpoint's
    ``vpce-….sqs.eu-west-1.vpce.amazonaws.com``, legacy ``queue.amazonaws.com`` = us-east-1); None for a
    host that is not AWS's (an emulator's). ``ValueError`` for an AWS host that names no region: it
    must never be read as the target's."""
    host = host.lower().rstrip(".")
    if not _AWS_DOMAIN.search(host):
        return None
    if host == "queue.amazonaws.com":
        return "us-east-1"
    regions = {label for label in host.split(".") if _REGION_LABEL.fullmatch(label)}
    if len(regions) != 1:
        raise ValueError(f"{host} is an AWS host that names no one region")
    return regions.pop()


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def _queue_ref(value: str) -> str:
    """A queue as the agent may name it: a name, a URL or an ARN (each checked for its shape)."""
    if value.startswith("arn:"):
        parsed = parse_arn(value)
        if parsed is None or parsed.service != "sqs" or not valid_name(parsed.resource):
            raise ValueError(
                f"{value[:120]!r} is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME, the name being "
                f"{NAME_RULES}): give the queue's name, URL or ARN"
            )
        return value
    if value.startswith(("https://", "http://")):
        parts = [p for p in urlparse(value).path.split("/") if p]
        if len(parts) != 2 or not parts[0].isdigit() or not valid_name(parts[1]):
            raise ValueError(
                f"{value[:120]!r} is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME): "
                "give the queue's name, URL or ARN"
            )
        return value
    if not valid_name(value):
        raise ValueError(f"{value[:120]!r} is not a queue name: SQS queue names are {NAME_RULES}")
    return value


QueueRef = Annotated[str, AfterValidator(_queue_ref)]
QUEUE_DESCRIPTION = (
    "The queue: its name ('orders'), its URL (https://sqs.us-east-1.amazonaws.com/123456789012/orders) "
    "or its ARN (arn:aws:sqs:us-east-1:123456789012:orders). Interlock resolves it to the ARN in the "
    "target's region and account; an ARN or URL of another account or region is refused."
)


def queue_arn(place: Place, value: str) -> str:
    """The canonical ARN of a queue named by name, URL or ARN, in ``place``'s region and account."""
    assert place.account is not None
    if value.startswith("arn:"):
        place.own_arn(value, "queues")
        return value
    if value.startswith(("https://", "http://")):
        url = urlparse(value)
        account, name = [p for p in url.path.split("/") if p]
        try:
            region = url_region(url.hostname or "")
        except ValueError as exc:
            raise ToolFailure(
                f"{value}: {exc}, so it cannot be told to be a queue of target {place.target!r} "
                f"(account {place.account} region {place.region})",
                "name the queue by its name or its ARN",
            ) from None
        if account != place.account or (region is not None and region != place.region):
            raise ToolFailure(
                f"{value} is a queue of account {account}"
                + (f" in {region}" if region else "")
                + f", and target {place.target!r} is account {place.account} region {place.region}",
                "interlock acts only on the target's own queues: use the target that holds it",
            )
        return place.arn("sqs", name)
    return place.arn("sqs", value)


def name_of(arn: str) -> str:
    parsed = parse_arn(arn)
    if parsed is None or parsed.service != "sqs":
        raise ToolFailure(f"internal error: {arn!r} is not a queue ARN", "report it; nothing was changed")
    return parsed.resource.removesuffix(MESSAGES)


def messages_address(arn: str) -> str:
    return arn + MESSAGES


def kind_of(address: str) -> str:
    return "sqs.messages" if address.endswith(MESSAGES) else "sqs.queue"


# ---------------------------------------------------------------- attribute rules

_INTEGERS = {  # attribute: (lowest, highest, unit)
    "DelaySeconds": (0, 900, "seconds"),
    "MaximumMessageSize": (1024, 1_048_576, "bytes"),
    "MessageRetentionPeriod": (60, 1_209_600, "seconds (1 minute to 14 days)"),
    "ReceiveMessageWaitTimeSeconds": (0, 20, "seconds"),
    "VisibilityTimeout": (0, 43_200, "seconds (12 hours)"),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400, "seconds (1 minute to 24 hours)"),
}
_CHOICES = {
    "SqsManagedSseEnabled": ("true", "false"),
    "ContentBasedDeduplication": ("true", "false"),
    "DeduplicationScope": ("messageGroup", "queue"),
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
    "FifoQueue": ("true",),
}
_FIFO_ONLY = ("ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit")
_JSON = ("Policy", "RedrivePolicy")
SETTABLE = (*_INTEGERS, *_CHOICES, *_JSON, "KmsMasterKeyId")
# moto neither stores nor reports it, so a rehearsal could not show what setting it does.
UNREHEARSABLE = ("RedriveAllowPolicy",)
MAX_POLICY_BYTES = 20 * 1024


def _text(value: Any) -> Any:
    """Attribute values as SQS takes them, strings: 30 -> "30", true -> "true"."""
    if isinstance(value, dict):
        return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
    return value


def _document(value: str, what: str) -> Any:
    """``value`` parsed as JSON, or ``ValueError`` naming ``what`` (a document nested past the parser's
    recursion limit too: that is no policy SQS takes)."""
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{what} is not valid JSON ({exc.msg} at position {exc.pos}): fix the document"
        ) from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to be a policy document: fix the document") from None


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` and ``int`` also take '３０' or '١', which SQS refuses."""
    return text.isascii() and text.isdigit()


def _policy(value: str) -> None:
    if value == "":
        return  # removes the policy
    if len(value.encode()) > MAX_POLICY_BYTES:
        raise ValueError(f"Policy is {len(value.encode())} bytes; keep it under 20 KB")
    doc = _document(value, "Policy")
    if not isinstance(doc, dict) or not isinstance(doc.get("Statement"), list | dict) or not doc["Statement"]:
        raise ValueError("Policy must be a JSON object with a 'Statement' list (or '' to remove the policy)")


def _redrive(value: str) -> None:
    if value == "":
        return  # removes the dead-letter queue
    if len(value.encode()) > MAX_POLICY_BYTES:
        raise ValueError(f"RedrivePolicy is {len(value.encode())} bytes; a redrive policy is a few dozen")
    doc = _document(value, "RedrivePolicy")
    if not isinstance(doc, dict) or set(doc) != {"deadLetterTargetArn", "maxReceiveCount"}:
        raise ValueError(
            "RedrivePolicy is a JSON object with exactly deadLetterTargetArn and maxReceiveCount, e.g. "
            '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:orders-dlq", "maxReceiveCount": 5} '
            "(or '' to remove it)"
        )
    target = doc["deadLetterTargetArn"]
    parsed = parse_arn(target) if isinstance(target, str) else None
    if parsed is None or parsed.service != "sqs" or not valid_name(parsed.resource):
        raise ValueError("RedrivePolicy's deadLetterTargetArn must be the ARN of an SQS queue")
    count = doc["maxReceiveCount"]
    if isinstance(count, bool) or not _digits(str(count)) or not 1 <= int(count) <= 1000:
        raise ValueError(f"RedrivePolicy's maxReceiveCount is {count!r}; SQS takes 1 to 1,000")


def _attributes(value: dict[str, str]) -> dict[str, str]:
    for key, text in value.items():
        if key in UNREHEARSABLE:
            continue  # refused by the rehearsal with the reason (moto cannot hold it)
        if key not in SETTABLE:
            raise ValueError(
                f"{key!r} is not a queue attribute that can be set; use one of {', '.join(sorted(SETTABLE))}"
            )
        if key in _INTEGERS:
            low, high, unit = _INTEGERS[key]
            if not _digits(text) or len(text) > 10 or not low <= int(text) <= high:
                raise ValueError(f"{key} is {text!r}; SQS takes a whole number from {low} to {high} {unit}")
        elif key in _CHOICES and text not in _CHOICES[key]:
            raise ValueError(f"{key} is {text!r}; SQS takes {' or '.join(repr(c) for c in _CHOICES[key])}")
        elif key == "Policy":
            _policy(text)
        elif key == "RedrivePolicy":
            _redrive(text)
        elif key == "KmsMasterKeyId" and len(text) > 2048:
            raise ValueError("KmsMasterKeyId is longer than a KMS key id, ARN or alias (2,048 characters)")
    return value


Attributes = Annotated[dict[str, str], BeforeValidator(_text), AfterValidator(_attributes)]
ATTRIBUTES_DESCRIPTION = (
    "Queue attributes by their AWS names, values as strings: DelaySeconds (0-900), MaximumMessageSize "
    "(1024-1048576), MessageRetentionPeriod (60-1209600 s), ReceiveMessageWaitTimeSeconds (0-20), "
    "VisibilityTimeout (0-43200 s), Policy (a JSON policy document; '' removes it), RedrivePolicy "
    '(JSON {"deadLetterTargetArn": ARN, "maxReceiveCount": 1-1000}; \'\' removes it), KmsMasterKeyId, '
    "KmsDataKeyReusePeriodSeconds (60-86400), SqsManagedSseEnabled ('true'/'false'); FIFO queues also "
    "ContentBasedDeduplication, DeduplicationScope (messageGroup/queue), FifoThroughputLimit "
    "(perQueue/perMessageGroupId)."
)


def _tags(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 50:
        raise ValueError(f"has {len(value)} tags, and an SQS queue holds at most 50: drop some")
    for key, text in value.items():
        if not 1 <= len(key) <= 128 or len(text) > 256:
            raise ValueError(f"tag {key[:40]!r}: AWS tag keys are 1 to 128 characters and values at most 256")
        if key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r} starts with 'aws:', a prefix AWS reserves: choose another key")
    return value


# ---------------------------------------------------------------- arguments


def _lone_surrogate(data: Any) -> str | None:
    """The name of the argument of ``data`` (a call's arguments) holding a lone surrogate, in a
    string, a key or a value, or None; pydantic lets one through, and it reaches SQS (and then
    the plan's hash, which cannot encode it)."""
    stack: list[tuple[str, Any]] = [(str(k), v) for k, v in data.items()] if isinstance(data, dict) else []
    while stack:
        where, value = stack.pop()
        texts = [value] if isinstance(value, str) else []
        if isinstance(value, dict):
            texts = [k for k in value if isinstance(k, str)]
            stack.extend((where, v) for v in value.values())
        elif isinstance(value, list):
            stack.extend((where, v) for v in value)
        if any(0xD800 <= ord(c) <= 0xDFFF for t in texts for c in t):
            return where
    return None


class Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_lone_surrogate(cls, data: Any) -> Any:
        where = _lone_surrogate(data)
        if where is not None:
            raise ValueError(f"{where!r} holds a lone surrogate, which is not text: send valid Unicode")
        return data


class WriteArguments(Arguments):
    """A write's arguments; the server adds ``reason`` and ``target`` to every write tool."""


class ListQueues(Arguments):
    prefix: str = Field(
        "", description="Only queues whose name starts with this (letters, digits, '-', '_').", max_length=80
    )
    max_results: int = Field(100, ge=1, le=1000, description="At most this many queues in one page (1-1000).")
    next_token: str | None = Field(
        None, description="The next_token of the previous page, to read the next page."
    )

    @model_validator(mode="after")
    def _prefix(self) -> ListQueues:
        if self.prefix and not re.fullmatch(r"[A-Za-z0-9_.-]+", self.prefix):
            raise ValueError("prefix is the start of a queue name: letters, digits, '-', '_' and '.' only")
        return self


class QueueOnly(Arguments):
    queue: QueueRef = Field(description=QUEUE_DESCRIPTION)


class QueueWrite(WriteArguments):
    queue: QueueRef = Field(description=QUEUE_DESCRIPTION)


class CreateQueue(WriteArguments):
    queue: QueueRef = Field(description=QUEUE_DESCRIPTION + " A FIFO queue's name ends in '.fifo'.")
    attributes: Attributes = Field(
        default_factory=dict,
        description=ATTRIBUTES_DESCRIPTION
        + " A FIFO queue needs FifoQueue 'true' (and a name ending '.fifo').",
    )
    tags: Annotated[dict[str, str], AfterValidator(_tags)] = Field(
        default_factory=dict,
        description="Tags for the new queue (at most 50; keys 1-128, values 0-256 characters).",
    )

    @model_validator(mode="after")
    def _fifo(self) -> CreateQueue:
        fifo = self.attributes.get("FifoQueue") == "true"
        if self.queue.endswith(".fifo") != fifo:
            raise ValueError(
                "a FIFO queue's name ends in '.fifo' and its attributes say FifoQueue 'true'; a standard queue "
                "has neither: make the name and FifoQueue agree"
            )
        if not fifo and any(k in self.attributes for k in _FIFO_ONLY):
            raise ValueError(
                f"{', '.join(k for k in _FIFO_ONLY if k in self.attributes)} apply to FIFO queues only"
            )
        return self


class SetAttributes(WriteArguments):
    queue: QueueRef = Field(description=QUEUE_DESCRIPTION)
    attributes: Attributes = Field(
        description=ATTRIBUTES_DESCRIPTION
        + " Attributes not named keep their value. FifoQueue cannot change.",
        min_length=1,
    )

    @model_validator(mode="after")
    def _no_fifo(self) -> SetAttributes:
        if "FifoQueue" in self.attributes:
            raise ValueError("FifoQueue is fixed when a queue is created; create a new queue to change it")
        return self


def dead_letter_target(attributes: dict[str, str]) -> str | None:
    """The ARN a RedrivePolicy argument points at (None: none set, or removed)."""
    text = attributes.get("RedrivePolicy")
    if not text:
        return None
    return str(json.loads(text)["deadLetterTargetArn"])


def canonical(client: Any, args: Any, place: Place) -> Any:
    """The call with its queue (and a redrive policy's dead-letter queue) named by ARN."""
    if not hasattr(args, "queue"):
        return args
    update: dict[str, Any] = {"queue": queue_arn(place, args.queue)}
    target = dead_letter_target(getattr(args, "attributes", {}) or {})
    if target is not None:
        queue_arn(place, target)  # the dead-letter queue must be the target's (AWS: same account and region)
    return args.model_copy(update=update)


# ---------------------------------------------------------------- snapshots

MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
_COUNTS = {
    "ApproximateNumberOfMessages": "approximate_messages",
    "ApproximateNumberOfMessagesNotVisible": "approximate_messages_not_visible",
    "ApproximateNumberOfMessagesDelayed": "approximate_messages_delayed",
}
_DROPPED = ("QueueArn", "CreatedTimestamp", "LastModifiedTimestamp", *UNREHEARSABLE, *_COUNTS)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _url(client: SQSClient, name: str) -> str | None:
    try:
        return client.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if _code(exc) in MISSING:
            return None
        raise


def _raw(client: SQSClient, name: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """(attributes, tags) of a queue; None when it does not exist."""
    url = _url(client, name)
    if url is None:
        return None
    try:
        attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
        tags = client.list_queue_tags(QueueUrl=url).get("Tags", {})
    except ClientError as exc:
        if _code(exc) in MISSING:
            return None
        raise
    return {str(k): str(v) for k, v in attrs.items()}, dict(tags)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # shown as SQS holds it


def queue_state(name: str, attrs: dict[str, str], tags: dict[str, str]) -> State:
    state: State = {
        "name": name,
        "fifo": attrs.get("FifoQueue") == "true",
        "tags": dict(tags),
        "created": attrs.get("CreatedTimestamp"),
        "last_modified": attrs.get("LastModifiedTimestamp"),
    }
    for key, value in attrs.items():
        if key in _DROPPED:
            continue
        state[key] = _json(value) if key in _JSON else value
    if isinstance(state.get("RedrivePolicy"), dict) and "maxReceiveCount" in state["RedrivePolicy"]:
        # AWS and moto send it as a number or a string; it is one value either way
        state["RedrivePolicy"] = {
            **state["RedrivePolicy"],
            "maxReceiveCount": str(state["RedrivePolicy"]["maxReceiveCount"]),
        }
    return state


def messages_state(attrs: dict[str, str]) -> State:
    counts = {field: int(attrs.get(key) or 0) for key, field in _COUNTS.items()}
    return {**counts, "holds_messages": any(counts.values()), "unpredicted": ["holds_messages"]}


def snapshot(client: SQSClient, fp: Footprint, limits: Limits) -> Snapshot:
    states: dict[str, State | None] = {}
    read: dict[str, tuple[dict[str, str], dict[str, str]] | None] = {}
    for address in fp.addresses:
        queue = address.removesuffix(MESSAGES)
        if queue not in read:
            read[queue] = _raw(client, name_of(queue))
    for address in fp.addresses:
        queue = address.removesuffix(MESSAGES)
        found = read[queue]
        if found is None:
            states[address] = None
        elif address.endswith(MESSAGES):
            states[address] = messages_state(found[0])
        else:
            states[address] = queue_state(name_of(queue), *found)
    context: dict[str, Any] = {}
    allow = {
        q: found[0]["RedriveAllowPolicy"]
        for q, found in read.items()
        if found and "RedriveAllowPolicy" in found[0]
    }
    if allow:
        context["redrive_allow"] = {q: _json(v) for q, v in allow.items()}
    if limits.context:
        dlqs: dict[str, Any] = {}
        for st in states.values():
            target = (st or {}).get("RedrivePolicy")
            arn = target.get("deadLetterTargetArn") if isinstance(target, dict) else None
            if isinstance(arn, str) and arn not in states and arn not in dlqs:
                raw = _raw(client, name_of(arn)) if parse_arn(arn) else None
                dlqs[arn] = None if raw is None else {"fifo": raw[0].get("FifoQueue") == "true"}
        if dlqs:
            context["dead_letter_queues"] = dlqs
    return Snapshot(states=states, context=context)


# ---------------------------------------------------------------- reads


def _arn_from_url(client: SQSClient, url: str) -> tuple[str, str]:
    """(name, ARN) of a queue URL from a listing (…/ACCOUNT/NAME)."""
    account, name = [p for p in urlparse(url).path.split("/") if p][-2:]
    return name, f"arn:aws:sqs:{client.meta.region_name}:{account}:{name}"


def read_list_queues(client: SQSClient, a: ListQueues, limits: Limits) -> dict[str, Any]:
    kw: dict[str, Any] = {"MaxResults": a.max_results}
    if a.prefix:
        kw["QueueNamePrefix"] = a.prefix
    if a.next_token:
        kw["NextToken"] = a.next_token
    resp = client.list_queues(**kw)
    queues = []
    for url in resp.get("QueueUrls", []):
        name, arn = _arn_from_url(client, url)
        queues.append({"name": name, "arn": arn, "url": url})
    return {"queues": queues, "next_token": resp.get("NextToken")}


def read_queue_attributes(client: SQSClient, a: QueueOnly, limits: Limits) -> dict[str, Any]:
    found = _raw(client, name_of(a.queue))
    if found is None:
        raise ToolFailure(f"queue {a.queue} does not exist", "check the name with list_sqs_queues")
    attrs, tags = found
    state = queue_state(name_of(a.queue), attrs, tags)
    return {
        "queue": a.queue,
        "attributes": {k: v for k, v in state.items() if k not in ("created", "last_modified")},
        "created": attrs.get("CreatedTimestamp"),
        "last_modified": attrs.get("LastModifiedTimestamp"),
        "redrive_allow_policy": _json(attrs["RedriveAllowPolicy"]) if "RedriveAllowPolicy" in attrs else None,
        "messages": {k: v for k, v in messages_state(attrs).items() if k.startswith("approximate")},
    }


# ---------------------------------------------------------------- writes


def _require_url(client: SQSClient, arn: str) -> str:
    url = _url(client, name_of(arn))
    if url is None:
        raise ToolFailure(f"queue {arn} does not exist", "check the name with list_sqs_queues")
    return url


def _no_unrehearsable(attributes: dict[str, str]) -> None:
    found = [k for k in attributes if k in UNREHEARSABLE]
    if found:
        raise ToolFailure(
            f"{', '.join(found)} cannot be rehearsed: the sandbox emulator (moto) neither stores nor reports it, "
            "so a plan could not show what setting it does",
            "interlock refuses rather than show 'no changes'; set it another way (console, IaC) or leave it out",
        )


def exec_create_queue(client: SQSClient, a: CreateQueue, resolved: Resolved) -> dict[str, Any]:
    _no_unrehearsable(a.attributes)
    if resolved.planned(a.queue) is not None:
        raise ToolFailure(
            f"queue {a.queue} already exists",
            "change its attributes with set_sqs_queue_attributes, or delete it first",
        )
    url = client.create_queue(
        QueueName=name_of(a.queue), Attributes=cast(Any, dict(a.attributes)), tags=dict(a.tags)
    )
    return {"url": url["QueueUrl"]}


def exec_delete_queue(client: SQSClient, a: QueueWrite, resolved: Resolved) -> dict[str, Any]:
    client.delete_queue(QueueUrl=_require_url(client, a.queue))
    return {}


def exec_purge_queue(client: SQSClient, a: QueueWrite, resolved: Resolved) -> dict[str, Any]:
    client.purge_queue(QueueUrl=_require_url(client, a.queue))
    return {}


def exec_set_attributes(client: SQSClient, a: SetAttributes, resolved: Resolved) -> dict[str, Any]:
    _no_unrehearsable(a.attributes)
    before = resolved.planned(a.queue) or {}
    fifo_only = [k for k in _FIFO_ONLY if k in a.attributes]
    if fifo_only and not before.get("fifo"):
        raise ToolFailure(
            f"{', '.join(fifo_only)} apply to FIFO queues only, and {a.queue} is a standard queue"
        )
    client.set_queue_attributes(
        QueueUrl=_require_url(client, a.queue), Attributes=cast(Any, dict(a.attributes))
    )
    return {}


def queue_fp(a: Any) -> Footprint:
    return Footprint((a.queue,))


def losing_fp(a: Any) -> Footprint:
    """The queue and its messages: what a purge or a delete loses."""
    return Footprint((a.queue, messages_address(a.queue)))


def set_fp(a: SetAttributes | CreateQueue) -> Footprint:
    """The queue, and the dead-letter queue a new redrive policy points at (read so the sandbox holds
    it: SQS refuses a redrive to a queue that does not exist; and judged by scope rules). A create's
    redrive policy names one just as a set's does."""
    target = dead_letter_target(a.attributes)
    return Footprint((a.queue, *([target] if target and target != a.queue else [])))


# ---------------------------------------------------------------- risks and the approval screen


def _count(state: State | None) -> int:
    return (
        int((state or {}).get("approximate_messages", 0) or 0)
        + int((state or {}).get("approximate_messages_not_visible", 0) or 0)
        + int((state or {}).get("approximate_messages_delayed", 0) or 0)
    )


def risks(changes: list[Change]) -> list[tuple[str, str]]:
    """``data-loss`` when a purge or a delete removes a queue's messages."""
    out: list[tuple[str, str]] = []
    for c in changes:
        if c.kind != "sqs.messages" or not (c.before or {}).get("holds_messages"):
            continue
        if c.action in (Action.DELETE, Action.REPLACE) or (
            c.after is not None and not c.after.get("holds_messages")
        ):
            how = "deleted with the queue" if c.action is Action.DELETE else "purged"
            out.append(
                (
                    "data-loss",
                    f"about {_count(c.before)} message(s) in {c.address.removesuffix(MESSAGES)} are {how} "
                    "(SQS's approximate count when planned); they cannot be recovered",
                )
            )
    return out


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    if kind == "sqs.messages":
        bits = [
            f"~{state.get('approximate_messages', 0)} message(s) visible",
            f"{state.get('approximate_messages_not_visible', 0)} in flight",
            f"{state.get('approximate_messages_delayed', 0)} delayed (approximate)",
        ]
        return bits, frozenset({*_COUNTS.values(), "holds_messages", "unpredicted"})
    if kind == "sqs.queue":
        bits = ["FIFO" if state.get("fifo") else "standard"]
        if state.get("VisibilityTimeout") is not None:
            bits.append(f"visibility {state['VisibilityTimeout']}s")
        if state.get("MessageRetentionPeriod") is not None:
            bits.append(f"retention {state['MessageRetentionPeriod']}s")
        bits.append("policy" if state.get("Policy") else "no policy")
        if isinstance(state.get("RedrivePolicy"), dict):
            bits.append("dead-letter queue " + str(state["RedrivePolicy"].get("deadLetterTargetArn", "")))
        return bits, frozenset(
            {"name", "fifo", "VisibilityTimeout", "MessageRetentionPeriod", "created", "last_modified"}
        )
    return None


def confirm_name(fp: Footprint) -> str | None:
    """What the approver types for a destructive or novel plan: the queue's name."""
    for address in fp.addresses:
        parsed = parse_arn(address)
        if parsed is not None:
            return parsed.resource.removesuffix(MESSAGES)
    return None


def read_addresses(a: Any) -> list[str]:
    queue = getattr(a, "queue", None)
    return [queue] if queue else [f"{SPACE}*"]


TOOLSET = Toolset(
    name="sqs",
    target_kind="aws",
    service="sqs",
    snapshot=snapshot,
    volatile=VOLATILE,
    kind_of=kind_of,
    canonical=canonical,
    risks=risks,
    summarize=summarize,
    confirm_name=confirm_name,
    address_prefix=SPACE,
    read_addresses=read_addresses,
    risk_flags=("data-loss",),
    child_separator="/",
    judged_as=judged_as_parent(MESSAGES),
    account_scoped=True,
    undo=UNDO,
    error_hints={
        "AWS.SimpleQueueService.NonExistentQueue": "check the queue name with list_sqs_queues",
        "QueueDoesNotExist": "check the queue name with list_sqs_queues",
        "QueueAlreadyExists": "a queue of that name exists with other attributes: change them with "
        "set_sqs_queue_attributes",
        "QueueNameExists": "a queue of that name exists with other attributes: change them with "
        "set_sqs_queue_attributes",
        "AWS.SimpleQueueService.QueueDeletedRecently": "SQS refuses a queue of the same name for 60 seconds after "
        "deleting one: wait a minute, then call create_sqs_queue again to plan anew",
        "QueueDeletedRecently": "SQS refuses a queue of the same name for 60 seconds after deleting one: wait a "
        "minute, then call create_sqs_queue again to plan anew",
        "AWS.SimpleQueueService.PurgeQueueInProgress": "SQS allows one purge of a queue every 60 seconds: wait a "
        "minute, then plan the purge again",
        "PurgeQueueInProgress": "SQS allows one purge of a queue every 60 seconds: wait a minute, then plan the "
        "purge again",
        "InvalidAttributeValue": "fix the attribute value (see the tool's description for the ranges)",
        "InvalidAttributeName": "use an attribute name from the tool's description",
    },
)
_read = TOOLSET.read
_write = TOOLSET.write

SPECS: tuple[ToolSpec, ...] = (
    _read(
        "list_sqs_queues",
        "List SQS queues",
        "List the target's queues (name, ARN, URL), optionally those whose name starts with a prefix, "
        "one page at a time.",
        ListQueues,
        read_list_queues,
        listed=lambda a, r: ("queues", [q["arn"] for q in r.get("queues", [])]),
    ),
    _read(
        "get_sqs_queue_attributes",
        "Get SQS queue attributes",
        "Read a queue's attributes (visibility timeout, retention, policy, redrive policy, ...), its tags and "
        "its approximate message counts.",
        QueueOnly,
        read_queue_attributes,
    ),
    _write(
        "create_sqs_queue",
        "Create an SQS queue",
        "Create a queue with attributes and tags. SQS refuses a queue of the name of one deleted less than "
        "60 seconds ago.",
        CreateQueue,
        set_fp,  # a create's redrive policy names its dead-letter queue as a set's does
        exec_create_queue,
    ),
    _write(
        "set_sqs_queue_attributes",
        "Set SQS queue attributes",
        "Change some attributes of a queue (visibility timeout, retention, delay, policy, redrive policy, "
        "encryption, ...); the attributes not named keep their value.",
        SetAttributes,
        set_fp,
        exec_set_attributes,
        idempotent=True,
    ),
    _write(
        "purge_sqs_queue",
        "Purge an SQS queue",
        "Delete every message in a queue (the queue and its attributes stay). The plan shows the approximate "
        "number of messages lost.",
        QueueWrite,
        losing_fp,
        exec_purge_queue,
        destructive=True,
    ),
    _write(
        "delete_sqs_queue",
        "Delete an SQS queue",
        "Delete a queue and every message in it. The plan shows the approximate number of messages lost.",
        QueueWrite,
        losing_fp,
        exec_delete_queue,
        destructive=True,
    ),
)
