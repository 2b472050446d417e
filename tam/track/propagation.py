"""Which frames to re-track after an edit, and the loop that does it.

The user's annotated frames (keyframes) are fixed. Tracking fills the gaps
between them: from each keyframe forwards to the next keyframe and backwards to
the previous one (or the video's ends). A correction on frame k re-runs only the
two gaps that touch k, so every other correction stays as the user left it.
Tracking never crosses a shot cut: a run stops at the last frame of its
keyframe's shot, and a shot with no keyframe is left untracked.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from tam.errors import Cancelled, MaskError
from tam.frames import FrameSequence
from tam.track.base import Tracker
from tam.track.refine import Refiner


def plan_segments(
    num_frames: int,
    keyframes: Iterable[int],
    changed: Iterable[int] | None = None,
    direction: str = "both",
    cuts: Iterable[int] = (),
) -> list[tuple[int, int]]:
    """(start, stop) segments to run; ``changed`` limits them to gaps touching edited frames.

    ``direction`` is "forward", "backward" or "both". When both ends of a gap between
    two keyframes are to be run in both directions, the gap is split at its middle:
    each frame is tracked once, from the nearer annotation. A single edited keyframe
    re-propagates over the whole of its neighbouring gaps, up to the other keyframes.
    ``cuts`` (first frames of new shots) bound every segment to its keyframe's shot.
    """
    keys = sorted(set(keyframes))
    if not keys:
        raise MaskError("no annotated frame to track from: add clicks or a mask first")
    if direction not in ("forward", "backward", "both"):
        raise ValueError(f"direction must be forward, backward or both, not {direction!r}")
    sources = set(keys) if changed is None else set(changed) & set(keys)
    fwd = direction in ("forward", "both")
    bwd = direction in ("backward", "both")
    cuts = sorted(c for c in set(cuts) if 0 < c < num_frames)
    segments = []
    first, last = keys[0], keys[-1]
    if bwd and first in sources and first > 0:
        segments.append((first, -1))
    for a, b in zip(keys, keys[1:]):
        if b - a <= 1:
            continue
        run_a, run_b = fwd and a in sources, bwd and b in sources
        if _shot_start(cuts, a) != _shot_start(cuts, b):
            segments += [(a, b)] * run_a + [(b, a)] * run_b  # each runs to its own shot's end
        elif run_a and run_b:
            mid = (a + b) // 2
            segments.append((a, mid + 1))
            if b - 1 > mid:
                segments.append((b, mid))
        elif run_a:
            segments.append((a, b))
        elif run_b:
            segments.append((b, a))
    if fwd and last in sources and last < num_frames - 1:
        segments.append((last, num_frames))
    clipped = [(start, _clip_to_shot(cuts, start, stop)) for start, stop in segments]
    return [(start, stop) for start, stop in clipped if abs(stop - start) > 1]


def _shot_start(cuts: list[int], frame: int) -> int:
    """The first frame of ``frame``'s shot."""
    k = bisect_right(cuts, frame)
    return cuts[k - 1] if k else 0


def _clip_to_shot(cuts: list[int], start: int, stop: int) -> int:
    """``stop`` (exclusive) brought within ``start``'s shot."""
    if stop > start:
        k = bisect_right(cuts, start)
        return min(stop, cuts[k]) if k < len(cuts) else stop
    return max(stop, _shot_start(cuts, start) - 1)


def stopped_at_cuts(num_frames: int, keyframes: Iterable[int], changed: Iterable[int] | None = None,
                    direction: str = "both", cuts: Iterable[int] = ()) -> list[int]:
    """The cuts where tracking from these keyframes stops short (for telling the user why)."""
    cuts = sorted(c for c in set(cuts) if 0 < c < num_frames)
    free = plan_segments(num_frames, keyframes, changed, direction)
    stops = set()
    for start, stop in free:
        clipped = _clip_to_shot(cuts, start, stop)
        if clipped != stop:
            stops.add(clipped if stop > start else clipped + 1)
    return sorted(stops)


def track(
    tracker: Tracker,
    state,
    frames: FrameSequence,
    keyframes: Mapping[int, np.ndarray],
    changed: Iterable[int] | None = None,
    direction: str = "both",
    should_stop: Callable[[], bool] | None = None,
    refiner: Refiner | None = None,
    cuts: Iterable[int] = (),
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, labels)`` for keyframes (as given) and every tracked frame.

    With a ``refiner`` (TAM's step 3), objects whose masks degrade are re-segmented
    and tracking continues from the refined frame; see :mod:`tam.track.refine`.

    ``should_stop`` is polled between frames; when it returns True, :class:`Cancelled`
    is raised after the frames already yielded, which the caller has saved, so work
    resumes from the last saved frame by annotating or re-running.
    """
    segments = plan_segments(len(frames), keyframes, changed, direction, cuts)
    for k in sorted(keyframes) if changed is None else sorted(set(changed) & set(keyframes)):
        yield k, keyframes[k]
    for start, stop in segments:
        if refiner is None:
            for index, labels in tracker.propagate(state, frames, keyframes, start, stop):
                yield index, labels
                if should_stop is not None and should_stop():
                    raise Cancelled("tracking cancelled")
        else:
            yield from _refined_segment(tracker, state, frames, keyframes, start, stop, refiner, should_stop)


def _refined_segment(tracker, state, frames, keyframes, start, stop, refiner, should_stop):
    """One segment with TAM's refinement: a re-prompted frame restarts tracking from itself.

    The refined frame joins the tracker's memory (the ``keyframes`` it sees) for
    the rest of this segment only; the user's keyframes are left as they are.
    """
    memory = dict(keyframes)
    step = 1 if stop > start else -1
    last_refined: dict[int, int] = {}  # object id -> frame of its latest refinement
    origin = start
    while True:
        previous = memory[origin]
        restart = None
        steps = tracker.propagate(state, frames, memory, origin, stop)
        try:
            for index, labels in steps:
                ids = [k for k in refiner.degraded(previous, labels)
                       if abs(index - last_refined.get(k, start - step * 10**9)) > refiner.config.cooldown]
                if ids:
                    for k in ids:
                        last_refined[k] = index
                    refined = refiner.refine(frames[index], labels, ids)
                    if refined is not None:
                        labels, restart = refined, index
                yield index, labels
                if should_stop is not None and should_stop():
                    raise Cancelled("tracking cancelled")
                if restart is not None:
                    break
                previous = labels
        finally:
            steps.close()
        if restart is None or restart + step == stop:
            return
        memory[restart] = labels
        origin = restart


def count_frames(num_frames: int, keyframes: Iterable[int], changed=None, direction="both",
                 cuts: Iterable[int] = ()) -> int:
    """How many frames :func:`track` will yield (for progress bars)."""
    keys = sorted(set(keyframes))
    src = keys if changed is None else sorted(set(changed) & set(keys))
    segs = plan_segments(num_frames, keys, changed, direction, cuts)
    return len(src) + sum(abs(stop - start) - 1 for start, stop in segs)
