"""Shared helpers for the neural backends: device choice, precision, embedding caches.

Everything here imports torch lazily (inside functions), so importing this module
costs nothing on the classical path.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict

import numpy as np

from tam.errors import BackendError


def checkpoint_problem(packages: tuple[str, ...], install: str, family: str, label: str, default: str,
                       checkpoint=None) -> str:
    """Why a checkpoint-based backend cannot run here, in one line ('' when it can).

    ``family`` is the weights family (``sam``, ``sam2``), ``label`` its name for
    people, ``default`` the checkpoint that ``weights download`` should fetch.
    """
    from pathlib import Path

    from tam import weights
    from tam.registry import packages_present

    if not packages_present(*packages):
        return f"the {family} backend needs {install}"
    if checkpoint is not None:
        return "" if Path(checkpoint).is_file() else f"{label} checkpoint {checkpoint} does not exist"
    if not weights.installed(family):
        return (f"no {label} checkpoint installed: run python -m tam weights download {default} "
                "(or pass --checkpoint FILE)")
    return ""


def pick_device(requested: str | None = None):
    """A ``torch.device``: the requested one, else CUDA when present, else CPU."""
    import torch

    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as exc:
        raise BackendError(f"unknown device {requested!r} (use auto, cpu or cuda[:N])") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device {requested!r} asked for, but this torch sees no CUDA GPU")
    if device.type not in ("cpu", "cuda"):
        raise BackendError(f"device {requested!r} is not supported (use auto, cpu or cuda[:N])")
    return device


def autocast(device):
    """bfloat16 autocast on CUDA GPUs that support it; plain float32 elsewhere (CPU)."""
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def image_digest(image: np.ndarray) -> bytes:
    """A cheap content key for an image (shape, dtype and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((image.shape, image.dtype.str)).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.digest()


class LRU:
    """A tiny least-recently-used cache (per segmenter instance, never module-global)."""

    def __init__(self, size: int):
        self.size = max(1, int(size))
        self._items: OrderedDict = OrderedDict()

    def get(self, key):
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return None

    def put(self, key, value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
