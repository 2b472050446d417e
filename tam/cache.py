"""The one bounded cache and the one content digest that every module uses.

An :class:`LRU` belongs to whoever created it (a frame reader, a tracker's
per-video state, a studio session): it is never module-global, and its bound
is set by its owner, so memory never grows with a video's length.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

_MISSING = object()


class LRU:
    """The ``capacity`` most recently used entries of a dict (capacity >= 1). Not thread-safe: one owner."""

    def __init__(self, capacity: int):
        if int(capacity) < 1:
            raise ValueError(f"an LRU cache holds at least one entry, got capacity {capacity}")
        self.capacity = int(capacity)
        self._items: OrderedDict = OrderedDict()

    def get(self, key: Hashable, default=None):
        """The value under ``key`` (now the most recently used), else ``default``."""
        value = self._items.get(key, _MISSING)
        if value is _MISSING:
            return default
        self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value) -> None:
        """Store ``value`` under ``key``, dropping the least recently used entries beyond the capacity."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get_or(self, key: Hashable, make: Callable[[], Any]):
        """The value under ``key``, made by ``make()`` (and stored) when absent."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        self._items.clear()

    def __contains__(self, key) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


def content_digest(*parts) -> str:
    """A hex SHA-1 of ``parts`` in order: an array by its shape, dtype and bytes, a str by its UTF-8 bytes,
    bytes as they are, anything else by its ``repr``. A single str hashes exactly as ``hashlib.sha1(s.encode())``."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            arr = np.ascontiguousarray(part)
            h.update(repr((arr.shape, arr.dtype.str)).encode())
            h.update(arr.data)
        elif isinstance(part, str):
            h.update(part.encode())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(repr(part).encode())
    return h.hexdigest()
