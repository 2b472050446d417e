"""Which frames to re-track after an edit, and the loop that does it.

The user's annotated frames (keyframes) are fixed. Tracking fills the gaps
between them: from each keyframe forwards to the next keyframe and backwards to
the previous one (or the video's ends). A correction on frame k re-runs only the
two gaps that touch k, so every other correction stays as the user left it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from tam.errors import Cancelled, MaskError
from tam.frames import FrameSequence
from tam.track.base import Tracker


def plan_segments(
    num_frames: int,
    keyframes: Iterable[int],
    changed: Iterable[int] | None = None,
    direction: str = "both",
) -> list[tuple[int, int]]:
    """(start, stop) segments to run; ``changed`` limits them to those from edited frames.

    ``direction`` is "forward", "backward" or "both".
    """
    keys = sorted(set(keyframes))
    if not keys:
        raise MaskError("no annotated frame to track from: add clicks or a mask first")
    if direction not in ("forward", "backward", "both"):
        raise ValueError(f"direction must be forward, backward or both, not {direction!r}")
    sources = keys if changed is None else sorted(set(changed) & set(keys))
    segments = []
    for k in sources:
        i = keys.index(k)
        nxt = keys[i + 1] if i + 1 < len(keys) else num_frames
        prv = keys[i - 1] if i > 0 else -1
        if direction in ("forward", "both") and nxt - k > 1:
            segments.append((k, nxt))
        if direction in ("backward", "both") and k - prv > 1:
            segments.append((k, prv))
    return segments


def track(
    tracker: Tracker,
    state,
    frames: FrameSequence,
    keyframes: Mapping[int, np.ndarray],
    changed: Iterable[int] | None = None,
    direction: str = "both",
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, labels)`` for keyframes (as given) and every tracked frame.

    ``should_stop`` is polled between frames; when it returns True, :class:`Cancelled`
    is raised after the frames already yielded, which the caller has saved, so work
    resumes from the last saved frame by annotating or re-running.
    """
    segments = plan_segments(len(frames), keyframes, changed, direction)
    for k in sorted(keyframes) if changed is None else sorted(set(changed) & set(keyframes)):
        yield k, keyframes[k]
    for start, stop in segments:
        for index, labels in tracker.propagate(state, frames, keyframes, start, stop):
            yield index, labels
            if should_stop is not None and should_stop():
                raise Cancelled("tracking cancelled")


def count_frames(num_frames: int, keyframes: Iterable[int], changed=None, direction="both") -> int:
    """How many frames :func:`track` will yield (for progress bars)."""
    keys = sorted(set(keyframes))
    src = keys if changed is None else sorted(set(changed) & set(keys))
    segs = plan_segments(num_frames, keys, changed, direction)
    return len(src) + sum(abs(stop - start) - 1 for start, stop in segs)
