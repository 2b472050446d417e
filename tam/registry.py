"""A small registry of lazily imported backends.

Each backend kind (segmenter, tracker, inpainter) keeps one :class:`Registry`.
Entries name a ``module:Class`` path, so listing what exists never imports torch
or any other heavy dependency; the class is imported only when it is chosen.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tam.errors import BackendError

T = TypeVar("T")


class Backend:
    """What every backend kind shares: a name, and whether it can run here (and why not)."""

    name: str = ""

    @classmethod
    def is_available(cls) -> bool:
        return True

    @classmethod
    def unavailable_reason(cls) -> str:
        return ""


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:ClassName"
    summary: str
    needs: tuple[str, ...] = ()  # importable modules the backend requires

    def load_class(self) -> type:
        module_name, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attr)


def packages_present(*names: str) -> bool:
    """True when every named module can be found (nothing is imported)."""
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


class Registry(Generic[T]):
    """Maps a backend name to its class; lists only backends that can run here."""

    def __init__(self, kind: str, default: str):
        self.kind = kind
        self.default = default
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str, summary: str, needs: tuple[str, ...] = ()) -> None:
        self._entries[name] = Entry(name, target, summary, needs)

    def names(self) -> list[str]:
        """Every registered name, available here or not."""
        return list(self._entries)

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            known = ", ".join(self._entries)
            raise BackendError(f"unknown {self.kind} backend {name!r} (known: {known})")
        return self._entries[name]

    def is_available(self, name: str) -> bool:
        entry = self.entry(name)
        if not packages_present(*entry.needs):
            return False
        return bool(entry.load_class().is_available())

    def available(self) -> list[str]:
        """Names of the backends that can run on this machine now (default first)."""
        names = [n for n in self._entries if self.is_available(n)]
        names.sort(key=lambda n: n != self.default)
        return names

    def unavailable_reason(self, name: str) -> str:
        entry = self.entry(name)
        missing = [m for m in entry.needs if not packages_present(m)]
        if missing:
            return f"{self.kind} backend {name!r} needs the Python package(s) {', '.join(missing)}"
        return str(entry.load_class().unavailable_reason())

    def create(self, name: str | None = None, **config: Any) -> T:
        """An instance of backend ``name`` (default: the registry's default).

        Without options the backend must be available as installed (its default
        weights present). With options (a checkpoint or model path, say) the
        backend's constructor checks them itself and raises a BackendError.
        """
        name = name or self.default
        entry = self.entry(name)
        if not packages_present(*entry.needs):
            raise BackendError(self.unavailable_reason(name))
        cls = entry.load_class()
        if not config and not cls.is_available():
            raise BackendError(str(cls.unavailable_reason()))
        return cls(**config)
