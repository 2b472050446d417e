"""Session wiring for the Streamlit studio: background jobs, shared backends, click scaling.

Nothing here knows about masks, tracking or inpainting: that is :mod:`tam.studio`.
These are the small pieces a web page needs around it: a thread that drives one
of the studio's ``(done, total)`` generators while the page keeps answering, a
lock around backends that several browser sessions share, and the arithmetic
that turns a click on a displayed image into source pixels. The objects are
created by the page (through ``st.cache_resource`` or ``st.session_state``);
this module holds no state of its own.

Who owns what: :class:`SharedBackends` and :class:`JobBoard` are owned by the
server (``st.cache_resource``), one per settings and one in all; a :class:`Job`
is owned by the board's slot of its project until the next job replaces it,
and its thread owns the studio it drives for its length; the work itself lands
in the project on disk.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tam.errors import Cancelled, TamError
from tam.runspec import RunContext
from tam.studio import Backends

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 200
UPLOAD_LIMIT_ENV = "TAM_MAX_UPLOAD_MB"


def max_upload_mb() -> int:
    """The upload size limit in MB: ``$TAM_MAX_UPLOAD_MB`` or 200."""
    raw = os.environ.get(UPLOAD_LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_UPLOAD_MB
    try:
        value = int(float(raw))
    except ValueError:
        raise TamError(f"{UPLOAD_LIMIT_ENV} must be a number of megabytes, got {raw!r}") from None
    if value <= 0:
        raise TamError(f"{UPLOAD_LIMIT_ENV} must be positive, got {raw!r}")
    return value


def check_upload_size(name: str, size_bytes: int, limit_mb: int) -> None:
    """Raise a one-line TamError when an upload is over ``limit_mb``."""
    if size_bytes > limit_mb * 1024 * 1024:
        raise TamError(f"{name} is {size_bytes / 2**20:.1f} MB; the upload limit is {limit_mb} MB "
                       f"(set {UPLOAD_LIMIT_ENV} to change it)")


def available_backends(registry) -> list[str]:
    """Names a registry can run here, default first; a backend that fails to load is left out."""
    names = []
    for name in registry.names():
        try:
            if registry.is_available(name):
                names.append(name)
        except Exception as e:  # a broken optional backend must not take the page down
            log.warning("%s backend %r is not offered: %s", registry.kind, name, e)
    names.sort(key=lambda n: n != registry.default)
    return names


# -- clicks ---------------------------------------------------------------------

@dataclass(frozen=True)
class Click:
    """A click in source pixels, with the event time that identifies it."""

    x: float
    y: float
    stamp: int


def click_from_event(event: dict | None, source_size: tuple[int, int]) -> Click | None:
    """Turn ``streamlit_image_coordinates``'s value into source pixels.

    The event gives the position on the displayed image and the displayed
    width/height, so the click scales back to the source whatever the page's width.
    """
    if not event or "x" not in event or "y" not in event:
        return None
    sw, sh = source_size
    dw = float(event.get("width") or 0)
    dh = float(event.get("height") or 0)
    if dw <= 0 or dh <= 0:
        return None
    x = min(max(float(event["x"]) * sw / dw, 0.0), sw - 1.0)
    y = min(max(float(event["y"]) * sh / dh, 0.0), sh - 1.0)
    return Click(x, y, int(event.get("unix_time") or 0))


# -- shared backends --------------------------------------------------------------

class SharedBackends:
    """One :class:`Backends` shared by every session with the same settings, with locks.

    The segmenter holds no per-image data (each session keeps its own image
    states), so clicks in any number of sessions need no lock. The tracker and
    the inpainter are used by one job at a time: ``locks["tracker"]`` around a
    track, ``locks["inpainter"]`` around a preview or a render, so one session
    can click while another one renders.
    """

    KINDS = ("tracker", "inpainter")

    def __init__(self, backends: Backends):
        self.backends = backends
        self.locks = {kind: threading.RLock() for kind in self.KINDS}


# -- background jobs ---------------------------------------------------------------

class Job:
    """Drives a ``(done, total)`` generator in a thread; the page polls it.

    ``work(ctx)`` returns the generator (``ctx``, the job's :class:`~tam.runspec.RunContext`,
    is cancelled by :meth:`cancel`); it runs under ``lock`` when one
    is given, and ``on_finish`` runs after it however it ended. ``total``, the
    number of frames the work will do when known before it starts, is shown
    from the first moment (the generator's own totals replace it). The job survives
    the page that started it: its results land on disk, and a page that reopens
    the same project finds it on the board.
    """

    def __init__(self, kind: str, work: Callable[[RunContext], Iterator[tuple[int, int]]],
                 lock: threading.RLock | None = None, on_finish: Callable[[], None] | None = None,
                 total: int = 0):
        self.id = uuid.uuid4().hex[:12]
        self.kind = kind
        self.done = 0
        self.total = total
        self.state = "running"  # running, done, cancelled, failed
        self.waiting = lock is not None  # until the lock is ours
        self.message = ""
        self.started = time.time()
        self.finished: float | None = None
        self._work, self._lock, self._on_finish = work, lock, on_finish
        self.ctx = RunContext()
        self._thread = threading.Thread(target=self._run, name=f"tam-{kind}-{self.id}", daemon=True)

    def start(self) -> "Job":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def cancel(self) -> None:
        self.ctx.cancel()

    def _run(self) -> None:
        try:
            if self._lock is not None:
                with self._lock:
                    self.waiting = False
                    self._drive()
            else:
                self._drive()
            self.state = "done"
        except Cancelled:
            self.state, self.message = "cancelled", f"{self.kind} cancelled after {self.done} frames"
        except TamError as e:
            self.state, self.message = "failed", str(e)
        except MemoryError:
            self.state, self.message = "failed", "out of memory: lower the working resolution"
        except Exception as e:  # report it on the page rather than lose it in a thread
            log.exception("%s job failed", self.kind)
            self.state, self.message = "failed", f"{type(e).__name__}: {e}"
        finally:
            if self._on_finish is not None:
                try:
                    self._on_finish()
                except Exception:
                    log.exception("cleaning up after the %s job", self.kind)
            self.finished = time.time()

    def _drive(self) -> None:
        for done, total in self._work(self.ctx):
            self.done, self.total = done, total
            self.ctx.check(self.kind)


class JobBoard:
    """The jobs of this server, one slot per project folder (shared via ``st.cache_resource``)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def start(self, key: str, job: Job) -> Job:
        with self._lock:
            current = self._jobs.get(key)
            if current is not None and current.running:
                raise TamError(f"this project is busy: {current.kind} is running")
            self._jobs[key] = job
            job.start()
            return job
