"""Tracking as a job of independent tasks: the stretches between annotated frames.

:func:`tam.track.propagation.plan_segments` splits a clip at its keyframes (and
its shot cuts): each segment runs from one annotated frame towards a neighbour
and reads nothing that another segment writes, so segments are independent
tasks. One segment stays sequential (a tracker carries its memory from frame
to frame). A task opens the project, builds the tracker from its
:class:`~tam.runspec.BackendSpec` with a state of its own, and saves each mask
to the project as it is computed (one atomic file per frame).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tam.jobs.executors import Executor, Resources, worker_info
from tam.runspec import BackendSpec, RunContext


@dataclass(frozen=True)
class TrackTask:
    """Track from the annotated frame ``start`` towards ``stop`` (exclusive) in the project at ``project``."""

    project: str
    tracker: BackendSpec
    start: int
    stop: int


def track_segment(task: TrackTask) -> dict:
    """Run one segment, saving every mask; returns counts and worker facts."""
    from tam.project import Project

    started = time.perf_counter()
    p = Project.open(task.project)
    tracker = task.tracker.create()
    state = tracker.init_state(p.frames)
    n = 0
    for index, labels in tracker.propagate(state, p.frames, p.keyframes(), task.start, task.stop):
        p.save_mask(index, labels)
        n += 1
    return {"frames": n, "seconds": time.perf_counter() - started, **worker_info()}


def segment_tasks(project, spec: BackendSpec, changed: Iterable[int] | None = None,
                  direction: str = "both") -> list[TrackTask]:
    """The project's segments to (re-)track as tasks, longest first (they finish together sooner)."""
    from tam.track.propagation import plan_segments

    segments = plan_segments(project.num_frames, project.keyframe_indices(), changed, direction, project.cuts())
    segments.sort(key=lambda s: -abs(s[1] - s[0]))
    return [TrackTask(str(project.path), spec, start, stop) for start, stop in segments]


def run_tracking(project, spec: BackendSpec, executor: Executor, changed: Iterable[int] | None = None,
                 direction: str = "both", ctx: RunContext | None = None) -> Iterator[tuple[int, int]]:
    """Track every segment on ``executor``; yields ``(frames done, total)`` as segments finish.

    The annotated frames' own masks are saved first, as :func:`tam.track.propagation.track` does."""
    from tam.track.propagation import count_frames

    ctx = ctx or RunContext()
    keys = project.keyframes()
    changed = list(changed) if changed is not None else None
    total = count_frames(project.num_frames, keys, changed, direction, project.cuts())
    annotated = sorted(keys) if changed is None else sorted(set(changed) & set(keys))
    for k in annotated:
        project.save_mask(k, keys[k])
    done = len(annotated)
    yield done, total
    for _ in project.frames.fill_cache():  # decode once here, not in every worker
        pass
    tasks = segment_tasks(project, spec, changed, direction)
    resources = Resources.for_backend(spec)
    events = executor.run(track_segment, tasks, resources)
    try:
        for event in events:
            ctx.check("tracking")
            if event is not None:
                done += event[1]["frames"]
                yield done, total
    finally:
        events.close()
