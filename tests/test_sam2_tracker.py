"""The SAM 2 tracker with a tiny random-weight SAM 2.1 on real DAVIS frames.

The model is built by sam2's builder from its hydra config shrunk by overrides,
saved, and loaded back through tam.weights by our tracker. Random weights say
nothing about quality; these tests check the plumbing: which frames come back and
in what order, shapes and ids, keyframes kept as given, keyframe encodings reused
between calls, memory pruned without changing the result, determinism.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tam.errors import MaskError
from tam.frames import ArrayFrames
from tam.track.propagation import count_frames, plan_segments, track
from tests.tiny_sam2 import SAM2_CONFIG, TEST_DEVICE, one_thread, tiny_sam2_overrides  # noqa: F401 (one_thread: autouse)

torch = pytest.importorskip("torch", reason="torch is not installed")
pytest.importorskip("sam2", reason="sam2 is not installed")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SEQUENCE = DATA / "davis2017_432x240" / "schoolgirls"
NUM_FRAMES = 8


def tiny_overrides():
    """Tiny SAM 2.1 with a short memory (2 frames)."""
    return tiny_sam2_overrides(memory_frames=2)


@pytest.fixture(scope="module")
def clip():
    if not SEQUENCE.is_dir():
        pytest.skip(f"DAVIS data not found at {SEQUENCE}")
    from tam.datasets import read_label_png

    frame_paths = sorted((SEQUENCE / "frames").glob("*.jpg"))[:NUM_FRAMES]
    mask_paths = sorted((SEQUENCE / "masks").glob("*.png"))[:NUM_FRAMES]
    from PIL import Image

    frames = ArrayFrames([np.array(Image.open(p).convert("RGB")) for p in frame_paths])
    masks = [read_label_png(p) for p in mask_paths]
    # Two objects, with ids that are not 1..N on purpose.
    keep = {1: 7, 2: 3}
    def remap(m):
        out = np.zeros_like(m)
        for src, dst in keep.items():
            out[m == src] = dst
        return out
    labels = [remap(m) for m in masks]
    assert all((lab == 7).any() and (lab == 3).any() for lab in (labels[0], labels[5]))
    return frames, labels


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(0)
    model = build_sam2_video_predictor(SAM2_CONFIG, None, device="cpu", hydra_overrides_extra=tiny_overrides())
    path = tmp_path_factory.mktemp("sam2trk") / "tiny_sam2.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def tracker(checkpoint):
    from tam.track.sam2 import Sam2Tracker

    return Sam2Tracker(checkpoint=checkpoint, config=SAM2_CONFIG, overrides=tiny_overrides(), device=TEST_DEVICE)


def test_track_two_objects_with_a_correction_keyframe(tracker, clip):
    frames, labels = clip
    keyframes = {0: labels[0], 5: labels[5]}
    state = tracker.init_state(frames)
    out = list(track(tracker, state, frames, keyframes))

    expected = [0, 5]
    for start, stop in plan_segments(NUM_FRAMES, keyframes):
        step = 1 if stop > start else -1
        expected += list(range(start + step, stop, step))
    assert [i for i, _ in out] == expected == [0, 5, 1, 2, 4, 3, 6, 7]
    assert len(out) == count_frames(NUM_FRAMES, keyframes)
    for index, lab in out:
        assert lab.shape == (240, 432) and lab.dtype == np.uint8
        assert set(np.unique(lab)) <= {0, 3, 7}
        if index in keyframes:
            assert lab is keyframes[index]
    # Every object got a mask on every keyframe, encoded once.
    assert state.encoded_keyframes == 4 and state.object_ids == (3, 7)

    # A fresh state and the same inputs give the same labels.
    again = list(track(tracker, tracker.init_state(frames), frames, keyframes))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(out, again))

    # Editing keyframe 5 re-encodes only that keyframe and re-runs only the gaps around it.
    edited = dict(keyframes)
    edited[5] = np.where(labels[5] == 3, 0, labels[5]).astype(np.uint8)
    edited[5][100:140, 200:260] = 3
    out2 = list(track(tracker, state, frames, edited, changed=[5]))
    assert [i for i, _ in out2] == [5, 4, 3, 2, 1, 6, 7]
    assert state.encoded_keyframes == 6


def test_reverse_order_and_pruned_memory_give_the_same_result(tracker, clip, monkeypatch):
    frames, labels = clip
    keyframes = {7: labels[7]}
    state = tracker.init_state(frames)
    backward = list(tracker.propagate(state, frames, keyframes, 7, -1))
    assert [i for i, _ in backward] == [6, 5, 4, 3, 2, 1, 0]
    window = tracker.memory_window
    assert window == 3
    for per_obj in state.inference["output_dict_per_obj"].values():
        kept = sorted(per_obj["non_cond_frame_outputs"])
        assert len(kept) <= window and kept == [0, 1, 2]
        assert sorted(per_obj["cond_frame_outputs"]) == [7]

    # Dropping memory the model cannot reach changes nothing.
    monkeypatch.setattr(type(tracker), "memory_window", property(lambda self: 10_000))
    full = list(tracker.propagate(tracker.init_state(frames), frames, keyframes, 7, -1))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(backward, full))
    assert len(full) == 7


def test_labels_from_competing_objects():
    from tam.track.sam2 import logits_to_labels

    logits = torch.full((2, 1, 2, 3), -1.0)
    logits[0, 0, 0, 0], logits[1, 0, 0, 0] = 2.0, 1.0  # both positive: the higher wins
    logits[1, 0, 0, 1] = 0.5  # only the second
    logits[0, 0, 1, 2], logits[1, 0, 1, 2] = 3.0, 4.0
    lab = logits_to_labels(logits, [9, 200])
    assert lab.dtype == np.uint8
    assert lab.tolist() == [[9, 200, 0], [0, 0, 200]]


def test_bad_inputs_and_empty_keyframes(tracker, clip):
    frames, labels = clip
    state = tracker.init_state(frames)
    with pytest.raises(MaskError, match="no mask to track from"):
        list(tracker.propagate(state, frames, {0: labels[0]}, 2, 5))
    with pytest.raises(MaskError, match="keyframe 0 mask"):
        list(tracker.propagate(state, frames, {0: labels[0][:100]}, 0, 3))
    with pytest.raises(MaskError, match="made for 8 frames"):
        list(tracker.propagate(state, ArrayFrames([frames[0]] * 3), {0: labels[0]}, 0, 3))
    empty = np.zeros_like(labels[0])
    out = list(tracker.propagate(state, frames, {2: empty}, 2, 5))
    assert [i for i, _ in out] == [3, 4] and all(not lab.any() for _, lab in out)
    assert state.encoded_keyframes == 0
