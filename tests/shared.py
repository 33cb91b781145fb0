"""One instance of a costly test resource (a server process) per test session, however many modules
import the fixture that makes it: pytest makes a separate session-scoped fixture of each import, so
they share a ``Shared`` (the first one in starts it, the last one out stops it)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: T | None = None
        self._users = 0
        self._exit: contextlib.ExitStack | None = None

    @contextlib.contextmanager
    def use(self, start: Callable[[], AbstractContextManager[T]]) -> Iterator[T]:
        with self._lock:
            if self._value is None:
                self._exit = contextlib.ExitStack()
                self._value = self._exit.enter_context(start())
            self._users += 1
            value = self._value
        try:
            yield value
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._exit is not None:
                    exit_stack, self._exit, self._value = self._exit, None, None
                    exit_stack.close()
