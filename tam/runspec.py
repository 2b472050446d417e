"""One typed description of a run: which backend to build, and how a long run reports and stops.

A :class:`BackendSpec` names a backend and everything needed to build it again
anywhere: in this process, in a worker process, on another machine of a Ray
cluster. It is frozen and picklable, holds plain values only (no model, no
open file), and :meth:`BackendSpec.create` is the one place where a backend is
built from it. The command line, the studio and the batch path all build specs.

A :class:`RunContext` is the caller's side of a long run: ``progress(done,
total)`` after each step and ``cancel()`` polled between steps. It stays in
the process that started the run (the driver); tasks sent to workers carry
specs, never contexts.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tam.errors import Cancelled, TamError

KINDS = ("segmenter", "tracker", "inpainter")
DEVICES = ("auto", "cpu", "cuda")
NEURAL_NEEDS = ("torch",)  # a backend needing one of these wants a GPU when the executor has one


def _registry(kind: str):
    if kind == "segmenter":
        from tam.segment.base import SEGMENTERS
        return SEGMENTERS
    if kind == "tracker":
        from tam.track.base import TRACKERS
        return TRACKERS
    if kind == "inpainter":
        from inpaint.base import INPAINTERS
        return INPAINTERS
    raise TamError(f"unknown backend kind {kind!r} (known: {', '.join(KINDS)})")


@dataclass(frozen=True)
class BackendSpec:
    """A backend of ``kind`` called ``name`` with its constructor ``options``.

    ``device`` is auto, cpu or cuda (auto: the backend's own choice);
    ``checkpoint`` a weights file for a neural backend (None: its default).
    ``options`` are stored as a sorted tuple of (key, value) pairs so that a
    spec is hashable and two equal specs compare equal; read them with
    :attr:`options_dict`.
    """

    kind: str
    name: str
    options: tuple[tuple[str, Any], ...] = ()
    device: str = "auto"
    checkpoint: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TamError(f"unknown backend kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.device not in DEVICES:
            raise TamError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if isinstance(self.options, Mapping):
            object.__setattr__(self, "options", tuple(sorted(self.options.items())))

    @classmethod
    def of(cls, kind: str, name: str | None = None, options: Mapping[str, Any] | None = None,
           device: str | None = None, checkpoint: str | None = None) -> "BackendSpec":
        """A spec with the registry's default name when ``name`` is None."""
        return cls(kind, name or _registry(kind).default, tuple(sorted((options or {}).items())),
                   device or "auto", checkpoint or None)

    @property
    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def with_options(self, **options: Any) -> "BackendSpec":
        """This spec with ``options`` added (replacing those of the same name)."""
        return BackendSpec(self.kind, self.name, tuple(sorted({**self.options_dict, **options}.items())),
                           self.device, self.checkpoint)

    def constructor_options(self) -> dict[str, Any]:
        """The keyword arguments of the backend's constructor.

        The checkpoint and an explicit device join the options only when the spec
        carries another option or a checkpoint: a backend built with no option must
        be available as installed, which is how the registry reports a missing model.
        """
        opts = self.options_dict
        if self.checkpoint:
            opts["checkpoint"] = self.checkpoint
        if opts and self.device != "auto":
            opts["device"] = self.device
        return opts

    def create(self):
        """A new instance of the backend (raises BackendError when it cannot run here)."""
        return _registry(self.kind).create(self.name, **self.constructor_options())

    @property
    def neural(self) -> bool:
        """Whether the backend needs the neural tier (then a task asks for a GPU where there is one)."""
        needs = _registry(self.kind).entry(self.name).needs
        return any(n in NEURAL_NEEDS for n in needs)


@dataclass
class RunContext:
    """Progress and cancellation of one long run, owned by the front end that started it.

    ``on_progress(done, total)`` is called after each step; ``should_stop()`` is
    polled between steps, and :meth:`check` raises :class:`Cancelled` once it
    returns True. ``stop_event`` lets another thread cancel (:meth:`cancel`).
    """

    on_progress: Callable[[int, int], None] | None = None
    should_stop: Callable[[], bool] | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)

    def progress(self, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total)

    def cancelled(self) -> bool:
        return self.stop_event.is_set() or (self.should_stop is not None and bool(self.should_stop()))

    def cancel(self) -> None:
        self.stop_event.set()

    def check(self, what: str = "run") -> None:
        """Raise :class:`Cancelled` when the run was cancelled."""
        if self.cancelled():
            raise Cancelled(f"{what} cancelled")
