"""Atomic writes: every output goes to a temporary name beside its target and is
renamed into place only when complete, so a crash never leaves half a file."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tam.errors import OutputError


def check_writable_dir(directory: str | os.PathLike) -> Path:
    d = Path(directory)
    if not d.is_dir():
        raise OutputError(f"output directory does not exist: {d}")
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"output directory is not writable: {d}")
    return d


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``target``; rename it over ``target`` on success."""
    target = Path(target)
    check_writable_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def atomic_dir(target: str | os.PathLike):
    """Yield a temporary folder next to ``target``; it replaces ``target`` on success."""
    target = Path(target)
    parent = check_writable_dir(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | os.PathLike, data) -> None:
    with atomic_path(path, ".json") as tmp:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())


def read_json(path: str | os.PathLike, default=None):
    p = Path(path)
    if not p.exists():
        return default
    with open(p) as f:
        return json.load(f)
