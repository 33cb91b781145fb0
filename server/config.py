"""Configuration: TOML, validated with pydantic, failing closed with the key and the fix named.

Lookup: ``--config`` > ``$INTERLOCK_CONFIG`` > ``./interlock.toml`` > the built-in playground.
Store: ``store.path`` > ``$INTERLOCK_DB`` > ``$XDG_DATA_HOME/interlock/interlock.db``.
Config changes take effect when the server restarts; each plan records the config's hash.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

PLAYGROUND = "playground"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Strict):
    path: str | None = None


class RehearsalConfig(_Strict):
    max_objects: int = Field(25_000, ge=1, description="refuse calls whose footprint holds more objects")
    detail_limit: int = Field(500, ge=0, description="read objects in full up to this many")
    max_read_bytes: int = Field(8 * 1024 * 1024, ge=0)
    command_timeout_seconds: float = Field(30.0, gt=0)


class ApprovalConfig(_Strict):
    required: int = Field(1, ge=1, description="distinct approvers a plan needs by default")
    plan_ttl_seconds: int = Field(3600, ge=1, description="a plan expires this long after it is made")


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

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        if self.kind == "docker" and (self.profile or self.endpoint_url):
            raise ValueError("a docker target takes docker_host, not profile or endpoint_url")
        return self


class Config(_Strict):
    store: StoreConfig = StoreConfig()
    rehearsal: RehearsalConfig = RehearsalConfig()
    approvals: ApprovalConfig = ApprovalConfig()
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    scopes: dict[str, Any] = Field(default_factory=dict)

    # Not from the file:
    source: str = Field("built-in playground", exclude=True)
    config_hash: str = Field("builtin", exclude=True)

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


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parts.append(f"{loc}: unknown key (check the spelling; see config/ for examples)")
        elif err["type"] == "missing":
            parts.append(f"{loc}: required key is missing")
        else:
            parts.append(f"{loc}: {err['msg']}")
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
    cfg.source = source
    cfg.config_hash = hashlib.sha256(text.encode()).hexdigest()
    if not cfg.targets:
        raise ConfigError(f"{source} configures no targets", "add a [targets.NAME] table (see config/)")
    return cfg


def load_config(explicit: str | None = None) -> Config:
    """Load the config, or the built-in playground config when none is found."""
    path = find_config_path(explicit)
    if path is None:
        cfg = Config(
            targets={PLAYGROUND: TargetConfig(kind="aws", default=True, production=False, playground=True)},
        )
        cfg.source = "built-in playground"
        cfg.config_hash = "builtin-playground"
        return cfg
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


def store_path(cfg: Config) -> Path:
    if cfg.store.path:
        return Path(cfg.store.path).expanduser()
    env = os.environ.get("INTERLOCK_DB")
    if env:
        return Path(env)
    return data_dir() / "interlock.db"
