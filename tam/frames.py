"""What backends see of a video: a random-access sequence of RGB uint8 frames.

Backends never receive a list of frames. They get a :class:`FrameSequence`
(anything with ``len`` and integer indexing, such as ``tam.video.VideoSource``
or a project's proxy cache), read only the frames they need, and let the
sequence's LRU cache bound memory.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FrameSequence(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray: ...


class ArrayFrames:
    """A FrameSequence over arrays already in memory (tests, single images, short clips)."""

    def __init__(self, frames):
        self._frames = frames

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: int) -> np.ndarray:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self._frames[index]


class MappedFrames:
    """A FrameSequence that applies ``fn`` to each item of another one, lazily."""

    def __init__(self, base, fn):
        self._base = base
        self._fn = fn

    def __len__(self) -> int:
        return len(self._base)

    def __getitem__(self, index: int) -> np.ndarray:
        return self._fn(self._base[index])


class IndexedFrames:
    """A FrameSequence of ``n`` items, item ``i`` computed by ``get(i)`` on access."""

    def __init__(self, n: int, get):
        self._n = n
        self._get = get

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self._n:
            raise IndexError(index)
        return self._get(index)
