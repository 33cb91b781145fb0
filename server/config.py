"""Configuration: TOML, validated with pydantic, failing closed with the key and the fix named.

Lookup: ``--config`` > ``$INTERLOCK_CONFIG`` > ``./interlock.toml`` > the built-in playground.
Store: ``store.url`` (PostgreSQL) > ``store.path`` > ``$INTERLOCK_DB_URL`` > ``[service] state_dir``/interlock.db
(hardened mode) > ``$INTERLOCK_DB`` > ``$XDG_DATA_HOME/interlock/interlock.db`` (``store_location``).
Config changes take effect when the server restarts; each plan records the config's hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from difflib import get_close_matches
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

PLAYGROUND = "playground"

ACTION_CLASSES = ("read", "create", "update", "delete")
WRITE_CLASSES = ("create", "update", "delete")
# Risk flags the engine itself sets (policy.evaluate_plan); each toolset declares its own
# (``Toolset.risk_flags``), so a new toolset's flags need nothing here.
ENGINE_RISKS = (
    "playground",
    "destructive",
    "replace",
    "bulk",
    "confusable-name",
    "novel",
    "listing-detail",
    "irreversible",  # a change its pre-image cannot put back (server.rollback)
    "overwrites-later-change",  # a rollback overwrites what production changed since the apply
)
# Toolsets a scope may name (DESIGN.md §2), beyond those registered in tools/.
KNOWN_TOOLSETS = ("s3", "dynamodb", "iam", "ec2", "ssm", "sqs", "lambda", "cloudformation", "containers")


@cache
def known_risks() -> tuple[str, ...]:
    """Every risk flag a plan can carry: the engine's and every registered toolset's."""
    from interlock.tools import TOOLSETS  # server -> tools; loaded only when a config names risks

    return tuple(dict.fromkeys([*ENGINE_RISKS, *(f for t in TOOLSETS for f in t.risk_flags)]))


@cache
def address_schemes() -> tuple[str, ...]:
    """The address prefixes resources can have ("aws:", "docker:"), from the registered toolsets."""
    from interlock.tools import TOOLSETS

    return tuple(dict.fromkeys(t.address_prefix.split(":", 1)[0] + ":" for t in TOOLSETS))


GLOB_CHARS = "*?["


class _Strict(BaseModel):
    """Every config model: unknown keys refused; immutable once validated, so what an engine was opened
    with is what runs (a resolved copy, e.g. with the playground's endpoint, is a new object)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    path: str | None = None
    # Team mode: a PostgreSQL database shared by several replicas (or $INTERLOCK_DB_URL).
    url: str | None = None
    # A plan left `applying` this long (a replica killed mid-apply) is recovered by any replica:
    # production is read again and the plan ends applied or failed, never applied twice.
    apply_lease_seconds: float = Field(600.0, gt=0)

    @field_validator("url")
    @classmethod
    def _postgres(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"[store] url must be a PostgreSQL URL (postgresql://user@host/db), not {v.split('://')[0]!r}: "
                "for a SQLite file use [store] path"
            )
        return v

    @model_validator(mode="after")
    def _one(self) -> StoreConfig:
        if self.url and self.path:
            raise ValueError(
                "[store] sets both path and url: keep path (SQLite) or url (PostgreSQL), not both"
            )
        return self


class RehearsalConfig(_Strict):
    max_objects: int = Field(25_000, ge=1, description="refuse calls whose footprint holds more objects")
    detail_limit: int = Field(500, ge=0, description="read objects in full up to this many")
    max_read_bytes: int = Field(8 * 1024 * 1024, ge=0)
    command_timeout_seconds: float = Field(30.0, gt=0)
    sandboxes: int | None = Field(
        None,
        ge=1,
        le=32,
        description="how many AWS sandboxes rehearse at once, each in a worker process of its own "
        "(1: one, in the server's process); unset: 1 for `serve` over stdio and the other commands, "
        "up to 4 (one a CPU) for `serve --transport http`",
    )
    context_cache_seconds: float = Field(
        10.0,
        ge=0,
        le=300,
        description="how long a plan may reuse the settings of the bucket an object call writes into, "
        "as read by an earlier plan (0: read them for every plan); apply always reads them again",
    )


class RollbackConfig(_Strict):
    """Pre-images: what an apply destroys or overwrites, kept so that ``interlock rollback`` can undo it."""

    enabled: bool = Field(True, description="keep pre-images on apply (false: every plan is irreversible)")
    path: str | None = Field(
        None, description="the pre-image directory; default: preimages/ beside the store"
    )
    retention_days: float = Field(30.0, gt=0, description="how long a pre-image is kept")
    max_bytes: int = Field(
        1024**3, ge=0, description="a plan whose pre-images would take more is marked irreversible"
    )


class ApprovalConfig(_Strict):
    required: int = Field(1, ge=1, description="distinct approvers a plan needs by default")
    plan_ttl_seconds: int = Field(3600, ge=1, description="a plan expires this long after it is made")


NOTIFY_TIMEOUT_RANGE = (0.1, 60.0)


class NotifyConfig(_Strict):
    """Who hears about a plan that waits for a human, a denied call and a diverged apply (server/notify.py).

    ``command`` is an argv list run without a shell, the notice in ``INTERLOCK_*`` environment
    variables; ``webhook`` is an http(s) URL that receives a Slack-compatible JSON body. Either or
    both. Each delivery is bounded by ``timeout_seconds`` and never holds up a plan.
    """

    command: list[str] | None = Field(None, description="argv of a program to run for each notice")
    webhook: str | None = Field(None, description="http(s) URL that receives a JSON POST for each notice")
    timeout_seconds: float = Field(5.0, description="bound on each delivery, 0.1 to 60 seconds")

    @field_validator("command", mode="before")
    @classmethod
    def _command_shape(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise ValueError(
                f"is the string {v!r}: write it as a list of arguments, e.g. command = "
                '["notify-send", "interlock"]; it runs without a shell'
            )
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError(
                'is empty: name a program, e.g. command = ["notify-send", "interlock"], or remove it'
            )
        for i, arg in enumerate(v):
            if "\x00" in arg:
                raise ValueError(
                    f"command[{i}] contains a NUL character, which no argument can hold: remove it"
                )
        if not v[0].strip():
            raise ValueError("command[0] is blank: it must name the program to run")
        return v

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f'{v!r} is not an http(s) URL: write e.g. webhook = "https://hooks.slack.com/services/..."'
            )
        if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in v):
            raise ValueError("contains whitespace or a control character: percent-encode it or remove it")
        return v

    @field_validator("timeout_seconds", mode="before")
    @classmethod
    def _timeout_shape(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"{v!r} is not a number of seconds: write e.g. timeout_seconds = 5")
        return v

    @field_validator("timeout_seconds")
    @classmethod
    def _timeout(cls, v: float) -> float:
        lo, hi = NOTIFY_TIMEOUT_RANGE
        if not lo <= v <= hi:  # also false for nan
            raise ValueError(f"{v:g} is out of range: use {lo:g} to {hi:g} seconds (default 5)")
        return v

    @model_validator(mode="after")
    def _something(self) -> NotifyConfig:
        if self.command is None and self.webhook is None:
            raise ValueError(
                "[notify] sets neither command nor webhook: add one of them (or both), or remove [notify]"
            )
        return self


def _check_patterns(patterns: list[str]) -> list[str]:
    for i, p in enumerate(patterns):
        if p != "*" and not p.startswith(address_schemes()):
            raise ValueError(
                f"patterns[{i}] = {p!r} is not a resource address glob: write 'aws:s3:::BUCKET/KEY', an ARN "
                "('arn:aws:dynamodb:us-east-1:123456789012:table/orders') or 'docker:container/NAME' (globs "
                "allowed, e.g. 'aws:s3:::staging-*/*', 'arn:aws:iam::*:role/app-*'), or '*' for everything"
            )
    return patterns


def _check_actions(actions: list[str], allow_read: bool = True) -> list[str]:
    valid = ACTION_CLASSES if allow_read else WRITE_CLASSES
    for i, a in enumerate(actions):
        if a == "replace":
            raise ValueError(
                f"actions[{i}] = 'replace' is not an action class: a replace counts as delete + create; "
                "list 'delete' and 'create'"
            )
        if a == "read" and not allow_read:
            raise ValueError(
                f"actions[{i}] = 'read': reads never need approval; list create, update or delete"
            )
        if a not in valid:
            raise ValueError(f"actions[{i}] = {a!r} is not an action class: use {', '.join(valid)}")
    return list(dict.fromkeys(actions))


class ServiceConfig(_Strict):
    """Hardened mode (``interlock service run``): the service user owns the store and credentials."""

    user: str = Field("interlock", description="the OS user the service runs as")
    state_dir: str = Field("/var/lib/interlock", description="the store and the service key (0700)")
    runtime_dir: str = Field("/run/interlock", description="agent.sock and approver.sock")
    allowed_signers: str | None = Field(
        None, description="OpenSSH allowed_signers file mapping approvers' keys to names (signed approvals)"
    )
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(None, ge=1, le=65535, description="also serve agents over HTTP (tokens)")
    approver_http_host: str = "127.0.0.1"
    approver_http_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="also serve approvers over HTTP (POST /v1/approver, every request SSH-signed)",
    )

    @field_validator("state_dir", "runtime_dir")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not Path(v).is_absolute():
            raise ValueError(f"{v!r} is relative: give an absolute path")
        return v

    @property
    def store(self) -> Path:
        return Path(self.state_dir) / "interlock.db"

    @property
    def key_path(self) -> Path:
        return Path(self.state_dir) / "service.key"

    @property
    def agent_socket(self) -> Path:
        return Path(self.runtime_dir) / "agent.sock"

    @property
    def approver_socket(self) -> Path:
        return Path(self.runtime_dir) / "approver.sock"


class PrincipalsConfig(_Strict):
    """OS users (and groups) by name: the approvers, or the users that run agents."""

    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class NameLists(_Strict):
    """Allow and deny lists of names (globs allowed). ``allow`` unset means everything; deny wins."""

    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)


class ResourceRule(_Strict):
    """Resource address globs for some action classes. ``*`` matches any characters, ``/`` included."""

    actions: list[str] = Field(min_length=1, description="read, create, update, delete")
    patterns: list[str] = Field(min_length=1, description="resource address globs")
    description: str = ""

    _actions = field_validator("actions")(classmethod(lambda cls, v: _check_actions(v)))
    _patterns = field_validator("patterns")(classmethod(lambda cls, v: _check_patterns(v)))


class Resources(_Strict):
    allow: list[ResourceRule] = Field(default_factory=list)
    deny: list[ResourceRule] = Field(default_factory=list)


class ApprovalRule(_Strict):
    """How many distinct approvers a plan needs when it makes a matching change.

    Empty ``actions`` means every write action, empty ``patterns`` every resource. A rule with
    ``risk`` applies only to plans carrying one of those flags, and only ever raises the count.
    """

    approvers: int = Field(ge=0, le=10)
    actions: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    risk: list[str] = Field(default_factory=list)
    description: str = ""

    _actions = field_validator("actions")(classmethod(lambda cls, v: _check_actions(v, allow_read=False)))
    _patterns = field_validator("patterns")(classmethod(lambda cls, v: _check_patterns(v)))

    @field_validator("risk")
    @classmethod
    def _risk(cls, v: list[str]) -> list[str]:
        for i, r in enumerate(v):
            known = known_risks()
            if r not in known:
                near = get_close_matches(r, known, n=1)
                also = f" (did you mean {near[0]!r}?)" if near else ""
                raise ValueError(f"risk[{i}] = {r!r} is not a risk flag{also}: use {', '.join(known)}")
        return v


class LimitsConfig(_Strict):
    """Blast radius: above a soft limit a plan needs one more approver; above a hard limit it is refused."""

    changes_soft: int | None = Field(None, ge=1)
    changes_hard: int | None = Field(None, ge=1)
    deletes_soft: int | None = Field(None, ge=1)
    deletes_hard: int | None = Field(None, ge=1)
    changes_per_hour: int | None = Field(None, ge=1, description="budget of changes applied per hour")

    @model_validator(mode="after")
    def _order(self) -> LimitsConfig:
        for what in ("changes", "deletes"):
            soft, hard = getattr(self, f"{what}_soft"), getattr(self, f"{what}_hard")
            if soft is not None and hard is not None and soft >= hard:
                raise ValueError(
                    f"{what}_soft ({soft}) must be below {what}_hard ({hard}): lower the soft limit or raise the hard one"
                )
        return self


class Scopes(_Strict):
    """What an agent may do on one target. Evaluated by server/policy.py, in the order written there."""

    read_only: bool = False
    toolsets: NameLists = Field(default_factory=NameLists)
    tools: NameLists = Field(default_factory=NameLists)
    resources: Resources = Field(default_factory=Resources)
    approvals: list[ApprovalRule] = Field(default_factory=list)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    plan_ttl_seconds: int | None = Field(None, ge=1, description="default: approvals.plan_ttl_seconds (1 h)")
    replace_window_seconds: int = Field(
        86_400, ge=0, description="a create of what a plan deleted this recently is a replace"
    )
    unrehearsed_types: list[str] = Field(
        default_factory=list,
        description=(
            "CloudFormation resource types a stack may hold that interlock cannot rehearse "
            "(AWS::SNS::Topic): planned with the resource flagged unrehearsed instead of refused"
        ),
    )

    @field_validator("unrehearsed_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        for i, t in enumerate(v):
            if not re.fullmatch(r"(AWS|Custom)::[A-Za-z0-9]+(::[A-Za-z0-9]+)?", t):
                raise ValueError(
                    f"unrehearsed_types[{i}] = {t!r} is not a CloudFormation resource type (AWS::SNS::Topic)"
                )
        return v

    @field_validator("toolsets")
    @classmethod
    def _toolsets(cls, v: NameLists) -> NameLists:
        known = set(KNOWN_TOOLSETS) | {s.toolset for s in _registered_specs()}
        _check_names(v, sorted(known), "toolset")
        return v

    @field_validator("tools")
    @classmethod
    def _tools(cls, v: NameLists) -> NameLists:
        _check_names(v, [s.name for s in _registered_specs()], "tool")
        return v


def _registered_specs() -> tuple[Any, ...]:
    from interlock.tools import ALL_SPECS  # server -> tools is the allowed direction

    return ALL_SPECS


def _check_names(lists: NameLists, known: list[str], what: str) -> None:
    for field_name in ("allow", "deny"):
        for i, name in enumerate(getattr(lists, field_name) or []):
            if any(ch in name for ch in GLOB_CHARS) or name in known:
                continue
            near = get_close_matches(name, known, n=1)
            also = f"did you mean {near[0]!r}? " if near else ""
            raise ValueError(
                f"{field_name}[{i}] = {name!r} is not a known {what}: {also}known: {', '.join(known)}"
            )


class SandboxConfig(_Strict):
    """Where a target's rehearsals run: the embedded moto server (default), or an S3-compatible
    emulator of your own by URL (``kind = "endpoint"``, e.g. LocalStack)."""

    kind: Literal["moto", "endpoint"] = "moto"
    url: str | None = None

    @model_validator(mode="after")
    def _url(self) -> SandboxConfig:
        if self.kind == "endpoint":
            if not self.url:
                raise ValueError('an endpoint sandbox needs url = "http://127.0.0.1:4566" (its emulator)')
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"sandbox url {self.url!r} is not an http(s) URL")
        elif self.url:
            raise ValueError('url goes with kind = "endpoint"; the moto sandbox is embedded')
        return self


class TargetConfig(_Strict):
    kind: Literal["aws", "docker"]
    region: str = "us-east-1"
    profile: str | None = None
    endpoint_url: str | None = None
    docker_host: str | None = None
    default: bool = False
    production: bool = True
    playground: bool = False
    description: str = ""
    scopes: Scopes = Field(default_factory=Scopes)
    sandbox: SandboxConfig | None = None
    # This target's own pre-image settings (default: the deployment's [rollback]).
    rollback: RollbackConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _playground_is_not_production(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("playground"):
            if data.get("production"):
                raise ValueError(
                    "a target cannot be both playground = true and production = true: remove one of them"
                )
            data = {**data, "production": False}
        return data

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        if self.kind == "docker" and (self.profile or self.endpoint_url):
            raise ValueError("a docker target takes docker_host, not profile or endpoint_url")
        if self.kind == "docker" and self.sandbox is not None:
            raise ValueError("a docker target is rehearsed on a clone of its container: remove [sandbox]")
        if self.production:
            for i, rule in enumerate(self.scopes.approvals):
                if rule.approvers < 1:
                    raise ValueError(
                        f"scopes.approvals[{i}].approvers is 0, but a production target can never need fewer "
                        "than one approver: set approvers = 1 or more (or production = false)"
                    )
        return self


class Config(_Strict):
    store: StoreConfig = StoreConfig()
    rehearsal: RehearsalConfig = RehearsalConfig()
    approvals: ApprovalConfig = ApprovalConfig()
    rollback: RollbackConfig = RollbackConfig()
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    notify: NotifyConfig | None = None
    service: ServiceConfig | None = None
    approvers: PrincipalsConfig = PrincipalsConfig()
    agents: PrincipalsConfig = PrincipalsConfig()

    # Not from the file:
    source: str = Field("built-in playground", exclude=True)
    config_hash: str = Field("builtin", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _no_global_scopes(cls, data: Any) -> Any:
        if isinstance(data, dict) and "scopes" in data:
            raise ValueError(
                "scopes: scopes are set per target: move [scopes] to [targets.NAME.scopes] (see config/)"
            )
        return data

    @model_validator(mode="after")
    def _targets(self) -> Config:
        defaults = [n for n, t in self.targets.items() if t.default]
        if len(defaults) > 1:
            raise ValueError(f"only one target may set default = true (found {', '.join(defaults)})")
        for name in self.targets:
            if not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"target name {name!r} may use letters, digits, '-' and '_' only")
        return self

    def default_target(self) -> str:
        for name, t in self.targets.items():
            if t.default:
                return name
        if len(self.targets) == 1:
            return next(iter(self.targets))
        raise ConfigError(
            "no default target: several targets are configured and none sets default = true",
            "set default = true on one target, or pass target=... with each call",
        )

    def target(self, name: str | None) -> tuple[str, TargetConfig]:
        name = name or self.default_target()
        if name not in self.targets:
            known = ", ".join(sorted(self.targets)) or "none"
            raise ConfigError(f"unknown target {name!r}", f"use one of: {known}")
        return name, self.targets[name]

    @property
    def is_playground(self) -> bool:
        return any(t.playground for t in self.targets.values())

    def with_endpoint(self, name: str, endpoint_url: str) -> Config:
        """A copy whose target ``name`` is reached at ``endpoint_url`` (the running playground)."""
        target = self.targets[name].model_copy(update={"endpoint_url": endpoint_url})
        return self.model_copy(update={"targets": {**self.targets, name: target}})


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the last key of ``loc`` (for spelling suggestions)."""
    model: Any = Config
    i = 0
    while i < len(loc):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(loc[i]))
        if field is None:
            return None
        ann: Any = field.annotation
        i += 1
        while True:  # unwrap Optional, dict[str, X] and list[X], consuming a key or an index each
            origin = get_origin(ann)
            if origin in (dict, list) and i < len(loc):
                ann = get_args(ann)[-1]
                i += 1
            elif origin is not None and type(None) in get_args(ann):
                ann = next(a for a in get_args(ann) if a is not type(None))
            else:
                break
        model = ann
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = _loc_text(loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            holder = _model_at(loc[:-1])
            known = [n for n in holder.model_fields if n not in ("source", "config_hash")] if holder else []
            near = get_close_matches(str(loc[-1]), known, n=1)
            fix = f"did you mean {near[0]!r}?" if near else "check the spelling; see config/ for examples"
            if known:
                fix += f" Keys allowed here: {', '.join(known)}"
            parts.append(f"{where}: unknown key ({fix})")
        elif err["type"] == "missing":
            parts.append(f"{where}: required key is missing")
        elif err["type"] == "value_error" and loc and msg.startswith(f"{loc[-1]}["):
            parts.append(
                f"{_loc_text(loc[:-1])}.{msg}"
            )  # the message names the element: targets.x...actions[0]
        elif err["type"] == "value_error" and msg.startswith(("allow[", "deny[", "scopes.")):
            parts.append(f"{where}.{msg}")
        elif not loc:
            parts.append(msg)
        else:
            parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def find_config_path(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("INTERLOCK_CONFIG")
    if env:
        return Path(env)
    local = Path("interlock.toml")
    if local.exists():
        return local
    return None


def parse_config(text: str, source: str) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}", "fix the syntax and start again") from exc
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"{source} is invalid: {_format_errors(exc)}",
            "fix the named keys; interlock will not start until then",
        ) from exc
    cfg = cfg.model_copy(update={"source": source, "config_hash": hashlib.sha256(text.encode()).hexdigest()})
    if not cfg.targets:
        raise ConfigError(f"{source} configures no targets", "add a [targets.NAME] table (see config/)")
    return cfg


def load_config(explicit: str | None = None) -> Config:
    """Load the config, or the built-in playground config when none is found."""
    path = find_config_path(explicit)
    if path is None:
        return Config(
            targets={PLAYGROUND: TargetConfig(kind="aws", default=True, production=False, playground=True)},
            source="built-in playground",
            config_hash="builtin-playground",
        )
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config {path}: {exc.strerror}",
            "check the path given by --config or $INTERLOCK_CONFIG",
        ) from exc
    return parse_config(text, str(path))


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "interlock"


def store_location(cfg: Config) -> str:
    """Where the store is: ``[store] url`` > ``[store] path`` > ``$INTERLOCK_DB_URL`` > the
    service's state directory (hardened mode) > ``$INTERLOCK_DB`` > the data directory."""
    if cfg.store.url:
        return cfg.store.url
    env_url = os.environ.get("INTERLOCK_DB_URL")
    if env_url and not cfg.store.path:
        if not env_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                f"$INTERLOCK_DB_URL is not a PostgreSQL URL ({env_url.split('://')[0]!r})",
                "set it to postgresql://user@host/db, or unset it and use $INTERLOCK_DB for a SQLite file",
            )
        return env_url
    return str(store_path(cfg))


def store_is_url(cfg: Config) -> bool:
    return store_location(cfg).startswith(("postgresql://", "postgres://"))


def store_path(cfg: Config) -> Path:
    if cfg.store.path:
        return Path(cfg.store.path).expanduser()
    if cfg.service is not None:  # hardened mode: the service's state directory, whatever the environment says
        return cfg.service.store
    env = os.environ.get("INTERLOCK_DB")
    if env:
        return Path(env)
    return data_dir() / "interlock.db"


def rollback_for(cfg: Config, target: TargetConfig | None) -> RollbackConfig:
    """A target's pre-image settings: its own ``[targets.NAME.rollback]``, else ``[rollback]``."""
    return (target.rollback if target is not None and target.rollback is not None else None) or cfg.rollback


def preimage_dir(cfg: Config, target: TargetConfig | None = None) -> Path:
    """Where pre-images are kept: ``path`` of the target's or the deployment's ``[rollback]`` >
    ``preimages/`` beside the SQLite store (the service's state directory in hardened mode) > the
    data directory's ``preimages/`` (a PostgreSQL store)."""
    rb = rollback_for(cfg, target)
    if rb.path:
        return Path(rb.path).expanduser()
    if cfg.service is not None:
        return cfg.service.store.parent / "preimages"
    if store_is_url(cfg):
        return data_dir() / "preimages"
    return store_path(cfg).parent / "preimages"
