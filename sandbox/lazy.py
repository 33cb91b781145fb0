"""docker-py and requests, imported on first use.

They cost about 60 ms to import (requests pulls in charset_normalizer), and a server whose targets
are all AWS never uses them; the container toolset is still registered (its specs are data), so
its modules import these names. ``LazyModule`` imports the real module on the first attribute
read — ``docker.errors.NotFound`` in an ``except`` clause included — under a lock, so two threads
touching it first at once get one import. Type checkers see the real modules.
"""

from __future__ import annotations

import importlib
import threading
import types
from typing import TYPE_CHECKING, Any

_lock = threading.Lock()


class LazyModule(types.ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_real"] = None

    def _load(self) -> types.ModuleType:
        real = self.__dict__["_real"]
        if real is None:
            with _lock:
                real = self.__dict__["_real"]
                if real is None:
                    real = importlib.import_module(self.__name__)
                    self.__dict__["_real"] = real
        return real  # type: ignore[no-any-return]

    def __getattr__(self, attr: str) -> Any:
        real = self._load()
        try:
            return getattr(real, attr)
        except AttributeError:  # a submodule its package does not import itself
            return importlib.import_module(f"{self.__name__}.{attr}")


if TYPE_CHECKING:
    import docker as docker
    import docker.errors
    import docker.utils
    import requests as requests
else:
    docker = LazyModule("docker")
    requests = LazyModule("requests")

__all__ = ["LazyModule", "docker", "requests"]
