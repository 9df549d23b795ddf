"""Named implementations, BasicSR-style: one table per kind of thing (degradations, losses,
channel scalings, layer styles), filled by @TABLE.register("name") beside each definition
and read by name everywhere else (the toolbox's choices, config checks, dispatch). A new
entry is one decorated function; no list of names to keep in step with an if-chain.
Plain Python, cheap to import."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import DemSrError

T = TypeVar("T")


class UnknownName(DemSrError, ValueError):
    """A name no entry of the table has (a user's setting, or a programming error)."""


class Registry(Generic[T]):
    """Entries by name, in the order they were registered (the first is the default)."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator: the entry serves under each of `names`."""
        def deco(entry: T) -> T:
            for name in names:
                if name in self._entries:
                    raise ValueError(f"{self.what} '{name}' is registered twice")
                self._entries[name] = entry
            return entry
        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownName(f"Unknown {self.what} '{name}'; use one of "
                              f"{', '.join(self._entries)}.") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
