"""A studio kept between jobs reuses the tracker's state and gives the masks a fresh one gives."""
from __future__ import annotations

import numpy as np
import pytest

from tam.project import Project
from tam.registry import Entry
from tam.studio import Studio
from tam.track.base import TRACKERS
from tam.track.classical import ClassicalTracker
from tests.media import make_video

N = 12


class CountingTracker(ClassicalTracker):
    """The classical tracker, counting how often a per-video state is made."""

    name = "counting"
    inits: list = []

    def init_state(self, frames):
        CountingTracker.inits.append(len(frames))
        return super().init_state(frames)


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(TRACKERS._entries, "counting", Entry("counting", f"{__name__}:CountingTracker", "test"))
    monkeypatch.setattr(CountingTracker, "inits", [])
    from tam.studio import StudioConfig

    return StudioConfig(tracker="counting")


def square(x: int) -> np.ndarray:
    labels = np.zeros((48, 64), np.uint8)
    labels[12:32, x:x + 20] = 1
    return labels


def project(tmp_path, name: str) -> Project:
    clip = tmp_path / "clip.mp4"
    if not clip.exists():
        make_video(clip, n=N, width=128, height=96)
    p = Project.create(clip, path=tmp_path / name, proxy_longest=64)
    p.add_object(object_id=1)
    p.set_keyframe(0, square(10))
    return p


def masks(p: Project) -> list[np.ndarray]:
    return [p.mask(i) for i in range(N)]


def test_a_second_track_reuses_the_state_and_gives_the_same_masks(tmp_path, counting):
    kept_project, fresh_project = project(tmp_path, "kept"), project(tmp_path, "fresh")
    kept = Studio(kept_project, counting)  # one studio for every job, as a studio session keeps it

    def jobs(studio_for):
        list(studio_for().track("both"))
        studio_for().project.set_keyframe(6, square(20))  # a correction on frame 6...
        list(studio_for().track("forward", from_frame=6))  # ...re-tracked from there only

    jobs(lambda: kept)
    assert CountingTracker.inits == [N]  # made once, for the first job
    jobs(lambda: Studio(fresh_project, counting))  # a new studio, so a new state, per job
    assert CountingTracker.inits == [N, N, N]
    got, want = masks(kept_project), masks(fresh_project)
    assert all(m is not None for m in got)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert (got[11] == 1).any() and not np.array_equal(got[11], got[5])  # the correction moved the late frames


def test_a_studio_holding_a_state_retracks_in_process_even_with_a_pool(tmp_path, counting, monkeypatch):
    from dataclasses import replace

    import tam.jobs.tracking
    from tam.jobs.executors import ExecutorSpec

    def no_tasks(*args, **kwargs):
        raise AssertionError("tracked as pool tasks although the studio holds a tracker state")

    monkeypatch.setattr(tam.jobs.tracking, "run_tracking", no_tasks)
    p = project(tmp_path, "pooled")
    studio = Studio(p, replace(counting, executor=ExecutorSpec(kind="pool", workers=2)))
    list(studio.track("both"))  # one stretch: tracked here, the state kept
    p.set_keyframe(6, square(20))
    list(studio.track("both", from_frame=6))  # two stretches from frame 6, but the state is here
    assert CountingTracker.inits == [N]
