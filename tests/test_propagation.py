"""Segment planning and the tracking loop: corrections, objects added or removed, cancel and resume."""
from __future__ import annotations

import numpy as np
import pytest

from tam.errors import Cancelled, MaskError
from tam.frames import ArrayFrames
from tam.track.base import TRACKERS, Tracker
from tam.track.evaluate import j_measure
from tam.track.propagation import count_frames, plan_segments, track


# ----------------------------------------------------------------------------- synthetic video
def _video(n=20, h=72, w=96, seed=0):
    """A textured background and two textured objects moving in opposite directions.

    Returns (frames, gt) where gt[t] is the label map (1: disk moving right,
    2: square moving left).
    """
    rng = np.random.default_rng(seed)
    bg = rng.integers(60, 120, (h, w, 3)).astype(np.uint8)
    bg[..., 1] = 90  # greenish, distinct from the objects
    tex_a = rng.integers(180, 255, (h, w)).astype(np.uint8)
    tex_b = rng.integers(0, 60, (h, w)).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    frames, gt = [], []
    for t in range(n):
        img = bg.copy()
        lab = np.zeros((h, w), np.uint8)
        disk = (xx - (18 + 2 * t)) ** 2 + (yy - 24) ** 2 <= 11 ** 2
        square = (abs(xx - (78 - 2 * t)) <= 9) & (abs(yy - 50) <= 9)
        img[disk] = np.stack([tex_a, tex_a // 3, tex_a // 4], -1)[disk]
        img[square] = np.stack([tex_b // 2, tex_b // 2, tex_b + 150], -1)[square]
        lab[disk] = 1
        lab[square] = 2
        frames.append(img)
        gt.append(lab)
    return ArrayFrames(frames), gt


class _Recorder(Tracker):
    """Yields the start keyframe's labels plus 100 on every frame and records each call."""

    name = "recorder"

    def __init__(self):
        self.calls = []

    def propagate(self, state, frames, keyframes, start, stop):
        self.calls.append((start, stop))
        step = 1 if stop > start else -1
        for t in range(start + step, stop, step):
            yield t, np.full_like(keyframes[start], 100)


# ----------------------------------------------------------------------------- planning
def test_plan_segments_stops_at_neighbouring_keyframes():
    # a full run tracks each frame once, from the nearer keyframe
    assert sorted(plan_segments(30, [0, 10, 20])) == [(0, 6), (10, 5), (10, 16), (20, 15), (20, 30)]
    assert count_frames(30, [0, 10, 20]) == 30
    # a correction on frame 10 re-runs only the two gaps that touch it
    assert sorted(plan_segments(30, [0, 10, 20], changed=[10])) == [(10, 0), (10, 20)]
    assert plan_segments(30, [0, 10, 20], changed=[10], direction="forward") == [(10, 20)]
    assert plan_segments(30, [5], direction="backward") == [(5, -1)]
    assert plan_segments(30, [0, 1]) == [(1, 30)]  # adjacent keyframes leave no gap
    with pytest.raises(MaskError):
        plan_segments(30, [])


def test_correction_keeps_other_keyframes_exactly():
    frames = ArrayFrames([np.zeros((8, 8, 3), np.uint8)] * 30)
    keys = {k: np.full((8, 8), k + 1, np.uint8) for k in (0, 10, 20)}
    rec = _Recorder()
    out = list(track(rec, None, frames, keys, changed=[10]))
    assert sorted(rec.calls) == [(10, 0), (10, 20)]
    indices = [i for i, _ in out]
    assert indices[0] == 10 and out[0][1] is keys[10]  # the edited keyframe as given
    assert 0 not in indices and 20 not in indices      # other keyframes are never overwritten
    assert sorted(indices[1:]) == sorted(list(range(11, 20)) + list(range(1, 10)))
    assert len(out) == count_frames(30, keys, changed=[10])


# ----------------------------------------------------------------------------- objects added, removed
@pytest.fixture(scope="module")
def video():
    return _video()


def test_new_object_appears_only_after_its_keyframe(video):
    frames, gt = video
    tracker = TRACKERS.create("classical")
    state = tracker.init_state(frames)
    first = np.where(gt[0] == 1, 1, 0).astype(np.uint8)       # only the disk at frame 0
    keys = {0: first, 10: gt[10]}                              # the square is added at frame 10
    got = dict(track(tracker, state, frames, keys, direction="forward"))
    assert set(got) == set(range(20))
    for t in range(1, 10):
        assert not np.any(got[t] == 2), f"object 2 leaked into frame {t}, before its keyframe"
    for t in range(11, 20):
        assert j_measure(got[t] == 2, gt[t] == 2) > 0.6, t
        assert j_measure(got[t] == 1, gt[t] == 1) > 0.6, t
    assert got[10] is keys[10]


def test_removed_object_is_not_tracked_after_its_keyframe(video):
    frames, gt = video
    tracker = TRACKERS.create("classical")
    state = tracker.init_state(frames)
    keys = {0: gt[0], 8: np.where(gt[8] == 2, 2, 0).astype(np.uint8)}  # object 1 removed at 8
    got = dict(track(tracker, state, frames, keys, direction="forward"))
    for t in range(1, 8):
        assert j_measure(got[t] == 1, gt[t] == 1) > 0.6, t
    for t in range(9, 20):
        assert not np.any(got[t] == 1), t
        assert j_measure(got[t] == 2, gt[t] == 2) > 0.6, t


def test_cancel_then_resume_from_last_saved_frame(video):
    frames, gt = video
    tracker = TRACKERS.create("classical")
    state = tracker.init_state(frames)
    saved: dict[int, np.ndarray] = {}
    polls = []

    def stop_after_six():
        polls.append(1)
        return len(polls) >= 6

    with pytest.raises(Cancelled):
        for i, labels in track(tracker, state, frames, {0: gt[0]}, should_stop=stop_after_six):
            saved[i] = labels
    assert sorted(saved) == list(range(7))  # keyframe + the 6 frames yielded before the stop
    last = max(saved)
    keys = {0: gt[0], last: saved[last]}
    for i, labels in track(tracker, state, frames, keys, changed=[last], direction="forward"):
        saved[i] = labels
    assert sorted(saved) == list(range(20))
    scores = [j_measure(saved[t] == k, gt[t] == k) for t in range(1, 20) for k in (1, 2)]
    assert min(scores) > 0.6


def test_backward_and_forward_agree_on_synthetic_motion(video):
    frames, gt = video
    tracker = TRACKERS.create("classical")
    state = tracker.init_state(frames)
    back = dict(tracker.propagate(state, frames, {19: gt[19]}, 19, -1))
    assert sorted(back) == list(range(19))
    for t in range(19):
        for k in (1, 2):
            assert j_measure(back[t] == k, gt[t] == k) > 0.6, (t, k)


def test_object_leaving_the_frame_is_not_held_inside():
    frames, gt = _video(n=56)  # the disk leaves on the right at frame 45, the square on the left
    tracker = TRACKERS.create("classical")
    got = dict(tracker.propagate(tracker.init_state(frames), frames, {0: gt[0]}, 0, 56))
    for k in (1, 2):
        full = np.count_nonzero(gt[0] == k)
        assert j_measure(got[38] == k, gt[38] == k) > 0.6          # followed while leaving
        after = [np.count_nonzero(got[t] == k) for t in range(46, 56)]
        assert max(after[4:]) < 0.3 * full, after                 # what remains fades
        assert after[-1] == 0 or after[-1] < after[0], after  # gone, or going
