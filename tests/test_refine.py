"""TAM's refinement step: degraded tracked masks re-prompted through the segmenter."""
from __future__ import annotations

import numpy as np
import pytest

from tam.frames import ArrayFrames
from tam.segment.base import Segmenter, SegmentResult
from tam.track.base import Tracker
from tam.track.evaluate import j_measure
from tam.track.propagation import track
from tam.track.refine import Refiner, RefineConfig, prompt_from_mask

H, W, N = 60, 80, 16


def square(i: int) -> np.ndarray:
    """Ground truth: a 20x20 square moving 2 px right per frame."""
    m = np.zeros((H, W), bool)
    m[20:40, 10 + 2 * i:30 + 2 * i] = True
    return m


def frames_with_index() -> ArrayFrames:
    # each frame carries its index in pixel (0, 0), so a test segmenter knows which frame it got
    arr = np.zeros((N, H, W, 3), np.uint8)
    arr[:, 0, 0, 0] = np.arange(N)
    return ArrayFrames(arr)


class DroppingTracker(Tracker):
    """Moves the mask with the true motion, but loses its right half on every 4th frame
    counted from where it started: a sudden degradation that then persists."""

    name = "dropping"

    def __init__(self):
        self.calls: list[tuple[int, int, tuple[int, ...]]] = []

    def propagate(self, state, frames, keyframes, start, stop):
        self.calls.append((start, stop, tuple(sorted(keyframes))))
        step = 1 if stop > start else -1
        labels = keyframes[start].copy()
        for n, i in enumerate(range(start + step, stop, step), 1):
            labels = np.roll(labels, 2 * step, axis=1)
            if n % 4 == 0:
                ys, xs = np.nonzero(labels)
                labels[:, (xs.min() + xs.max()) // 2:] = 0
            yield i, labels.copy()


class OracleSegmenter(Segmenter):
    """Answers with the true mask of the prepared frame, or with ``fixed`` when given."""

    name = "oracle"

    def __init__(self, fixed: np.ndarray | None = None):
        self.fixed = fixed
        self.prompts = []
        self.images = 0

    def set_image(self, image):
        self.images += 1
        return int(image[0, 0, 0])  # the frame's index: the only image state this segmenter needs

    def predict(self, index, prompt, mask_input=None):
        self.prompts.append((prompt, mask_input))
        mask = square(index) if self.fixed is None else self.fixed
        return SegmentResult(mask.copy(), 1.0)


def run(refiner, keyframes=None):
    tracker = DroppingTracker()
    frames = frames_with_index()
    keyframes = keyframes or {0: square(0).astype(np.uint8)}
    out = dict(track(tracker, None, frames, keyframes, refiner=refiner))
    return tracker, out


def mean_j(out) -> float:
    return float(np.mean([j_measure(out[i] == 1, square(i)) for i in range(1, N)]))


def test_prompt_from_mask_boxes_the_mask_and_points_inside_its_parts():
    m = np.zeros((H, W), bool)
    m[10:30, 10:30] = True
    m[40:50, 50:70] = True
    m[55, 5] = True  # a crumb: no point of its own
    prompt = prompt_from_mask(m, points=3)
    assert len(prompt.points) == 2 and (prompt.labels == 1).all()
    for x, y in prompt.points:
        assert m[int(y), int(x)]
    x0, y0, x1, y1 = prompt.box
    ys, xs = np.nonzero(m)
    assert x0 <= xs.min() and y0 <= ys.min() and x1 > xs.max() and y1 > ys.max()
    assert prompt_from_mask(np.zeros((H, W), bool)) is None


def test_degraded_flags_sudden_area_and_shape_changes_only():
    r = Refiner(OracleSegmenter(), RefineConfig(min_area=16))
    a = square(0).astype(np.uint8)
    moved = square(3).astype(np.uint8)  # same shape, moved: fine
    half = a.copy()
    half[:, 20:] = 0  # lost half its area
    bar = np.zeros_like(a)
    bar[28:32, 0:80] = 1  # about the same area, another shape
    assert r.degraded(a, moved) == []
    assert r.degraded(a, half) == [1]
    assert abs(int(bar.sum()) - int(a.sum())) < 0.25 * a.sum()
    assert r.degraded(a, bar) == [1]
    assert r.degraded(a, np.zeros_like(a)) == []  # gone (occluded or out): nothing to prompt from


def test_refinement_restarts_tracking_from_the_refined_frame_and_raises_accuracy():
    _, plain = run(None)
    seg = OracleSegmenter()
    refiner = Refiner(seg, RefineConfig(cooldown=0, min_area=16, accept_iou=0.3))
    tracker, refined = run(refiner)
    assert sorted(refined) == sorted(plain) == list(range(N))
    assert mean_j(refined) > mean_j(plain) + 0.2
    assert refiner.refined_frames >= 3
    # every restart starts from a refined frame held in the tracker's memory, next to the user's keyframe
    starts = [c[0] for c in tracker.calls]
    assert starts[0] == 0 and len(starts) == refiner.refined_frames + 1
    for start, _, memory in tracker.calls[1:]:
        assert 0 in memory and start in memory
        assert j_measure(refined[start] == 1, square(start)) == 1.0
    # the prompts come from the tracked mask: its box, points inside it, the mask as the previous mask
    prompt, mask_input = seg.prompts[0]
    assert prompt.box is not None and mask_input is not None and mask_input.dtype == bool


def test_cooldown_limits_how_often_an_object_is_refined():
    eager = Refiner(OracleSegmenter(), RefineConfig(cooldown=0, min_area=16, accept_iou=0.3))
    patient = Refiner(OracleSegmenter(), RefineConfig(cooldown=10, min_area=16, accept_iou=0.3))
    run(eager)
    run(patient)
    assert patient.refined_frames < eager.refined_frames
    assert patient.refined_frames >= 1


def test_an_answer_far_from_the_tracked_mask_is_rejected():
    elsewhere = np.zeros((H, W), bool)
    elsewhere[0:10, 60:80] = True
    refiner = Refiner(OracleSegmenter(fixed=elsewhere), RefineConfig(cooldown=0, min_area=16, accept_iou=0.3))
    tracker, out = run(refiner)
    _, plain = run(None)
    assert refiner.refined_frames == 0 and refiner.rejected >= 1
    assert len(tracker.calls) == 1
    assert all(np.array_equal(out[i], plain[i]) for i in range(N))


def test_refining_one_object_leaves_the_other_objects_pixels_alone():
    labels = np.zeros((H, W), np.uint8)
    labels[20:40, 10:20] = 1  # object 1 lost its right half...
    labels[20:40, 20:30] = 2  # ...to object 2, which the segmenter must not take back from
    grown = np.zeros((H, W), bool)
    grown[18:42, 8:32] = True
    refiner = Refiner(OracleSegmenter(fixed=grown), RefineConfig(accept_iou=0.3, min_area=16))
    out = refiner.refine(np.zeros((H, W, 3), np.uint8), labels, [1])
    assert out is not None
    assert np.array_equal(out == 2, labels == 2)
    assert (out == 1).sum() > (labels == 1).sum()  # it grew into the background around it


@pytest.mark.parametrize("bad", [{"accept_iou": 1.5}, {"cooldown": -1}, {"points": 0}])
def test_config_checks_its_values(bad):
    with pytest.raises(ValueError):
        RefineConfig(**bad)
