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


def _temp_prefix(target: Path, kind: str = "") -> str:
    # The writer's process id is part of the name, so a later writer can tell the
    # leftovers of a killed process from the work of one still running.
    return f".{target.name}.{kind}{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def sweep_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that killed writers left beside ``target``; returns them."""
    target = Path(target)
    head = f".{target.name}."
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(head):
            continue
        rest = name[len(head):]
        if rest.startswith("old."):
            rest = rest[4:]
        pid = rest.split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        path = target.parent / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``target``; rename it over ``target`` on success."""
    target = Path(target)
    check_writable_dir(target.parent)
    sweep_stale(target)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=suffix or target.suffix or ".tmp",
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
    sweep_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), dir=parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(target, "old."), dir=parent))
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


class AtomicWriter:
    """A writer used as a context manager: ``close()`` publishes the output when the block ends normally,
    ``abort()`` removes the unfinished output when it raises. Subclasses define both."""

    def close(self):
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
