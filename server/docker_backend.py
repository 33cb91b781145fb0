"""Wiring for docker targets: production clients, the rehearsal on a disposable clone."""

from __future__ import annotations

from .errors import ConfigError
from .pipeline import Engine


async def install(engine: Engine) -> None:
    raise ConfigError("docker targets are not supported by this build", "remove the docker target from the config")


async def uninstall(engine: Engine) -> None:
    return None
