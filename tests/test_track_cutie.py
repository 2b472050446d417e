"""The Cutie tracker with a tiny random-weight Cutie built from the package's own config.

The network is built by our builder from rf-cutie's model config shrunk by overrides
(the real modules, ResNet-18 trunks, one object-transformer block), saved, and loaded
back through tam.weights by the tracker. Random weights say nothing about quality;
these tests check the plumbing: which frames come back and in what order, ids,
keyframes in permanent memory, objects added mid-clip, working memory bounded on a
long clip, determinism, strict loading, the CLI.
"""
from __future__ import annotations

import numpy as np
import pytest

from tam.errors import BackendError, MaskError
from tam.frames import ArrayFrames
from tam.track.propagation import count_frames, plan_segments, track
from tests.tiny_sam2 import TEST_DEVICE, one_thread  # noqa: F401 (one_thread: autouse)

torch = pytest.importorskip("torch", reason="torch is not installed")
pytest.importorskip("cutie", reason="rf-cutie is not installed")

H, W, NUM_FRAMES = 64, 96, 8
TINY = {
    "pixel_encoder": {"type": "resnet18", "ms_dims": [256, 128, 64]},
    "pixel_dim": 16, "key_dim": 8, "value_dim": 16, "sensory_dim": 16, "embed_dim": 16,
    "object_transformer": {"embed_dim": 16, "ff_dim": 32, "num_heads": 2, "num_blocks": 1, "num_queries": 4},
    "object_summarizer": {"embed_dim": 16, "num_summaries": 4},
    "mask_decoder": {"up_dims": [16, 8, 8]},
}


def scene(n=NUM_FRAMES, h=H, w=W):
    """A textured background with two squares moving in opposite directions; their label maps (ids 4, 9)."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames, labels = [], []
    for i in range(n):
        rgb = np.stack([(xx * 3 + yy) % 256, (yy * 5) % 256, (xx * 7 + 40) % 256], -1).astype(np.uint8)
        lab = np.zeros((h, w), np.uint8)
        a, b = 8 + 2 * i, 60 - 2 * i
        rgb[10:30, a:a + 20] = (230, 40, 40)
        lab[10:30, a:a + 20] = 4
        rgb[36:56, b:b + 20] = (40, 40, 230)
        lab[36:56, b:b + 20] = 9
        frames.append(rgb)
        labels.append(lab)
    return ArrayFrames(frames), labels


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tam.track.cutie import build_cutie, cutie_config

    torch.manual_seed(0)
    network = build_cutie(cutie_config(model_overrides=TINY))
    path = tmp_path_factory.mktemp("cutie") / "tiny_cutie.pth"
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def tracker(checkpoint):
    from tam.track.cutie import CutieTracker

    return CutieTracker(checkpoint=checkpoint, device=TEST_DEVICE, model_overrides=TINY)


def test_loaded_weights_are_the_saved_ones_and_a_wrong_checkpoint_is_refused(tracker, checkpoint, tmp_path):
    from tam.track.cutie import CutieTracker

    saved = torch.load(checkpoint, weights_only=True)
    loaded = tracker.load().state_dict()
    assert saved.keys() == loaded.keys() and len(saved) > 100
    assert all(torch.equal(saved[k], loaded[k].cpu()) for k in saved)
    assert tracker.load() is tracker.load()  # built once

    # The full-size network does not take the tiny checkpoint: one line, no traceback.
    with pytest.raises(BackendError, match="does not fit the model") as err:
        CutieTracker(checkpoint=checkpoint, device="cpu").load()
    assert "\n" not in str(err.value)
    partial = {k: v for k, v in saved.items() if not k.startswith("mask_decoder.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(BackendError, match="missing keys mask_decoder"):
        CutieTracker(checkpoint=tmp_path / "partial.pth", device=TEST_DEVICE, model_overrides=TINY).load()
    with pytest.raises(BackendError, match="does not exist"):
        CutieTracker(checkpoint=tmp_path / "none.pth")


def test_two_objects_with_a_correction_keyframe(tracker):
    frames, labels = scene()
    keyframes = {0: labels[0], 5: labels[5]}
    state = tracker.init_state(frames)
    out = list(track(tracker, state, frames, keyframes))

    expected = [0, 5]
    for start, stop in plan_segments(NUM_FRAMES, keyframes):
        step = 1 if stop > start else -1
        expected += list(range(start + step, stop, step))
    assert [i for i, _ in out] == expected and len(out) == count_frames(NUM_FRAMES, keyframes)
    for index, lab in out:
        assert lab.shape == (H, W) and lab.dtype == np.uint8
        assert set(np.unique(lab)) <= {0, 4, 9}
    # Each run held both keyframes in permanent memory, its own start last; both objects
    # got a mask on each keyframe.
    assert [run["keyframes"] for run in state.runs] == [[5, 0], [0, 5], [0, 5]]
    assert state.object_ids == (4, 9) and state.encoded_keyframes == 2 * 2 * len(state.runs)

    again = list(track(tracker, tracker.init_state(frames), frames, keyframes))
    assert all(i == j and np.array_equal(a, b) for (i, a), (j, b) in zip(out, again))

    # Backwards from the last frame alone.
    back = list(tracker.propagate(tracker.init_state(frames), frames, {7: labels[7]}, 7, -1))
    assert [i for i, _ in back] == [6, 5, 4, 3, 2, 1, 0]


def test_an_object_added_mid_clip_is_encoded_on_every_keyframe(tracker):
    frames, labels = scene()
    first = np.where(labels[0] == 4, 4, 0).astype(np.uint8)  # only the red square at first
    keyframes = {0: first, 4: labels[4]}  # the blue one is added on frame 4
    state = tracker.init_state(frames)
    out = dict(tracker.propagate(state, frames, keyframes, 4, NUM_FRAMES))
    assert sorted(out) == [5, 6, 7] and state.object_ids == (4, 9)
    assert state.runs[-1]["keyframes"] == [0, 4] and state.encoded_keyframes == 4
    assert all(set(np.unique(lab)) <= {0, 4, 9} for lab in out.values())
    # An object on no keyframe is never reported.
    only_red = {0: first}
    out = dict(tracker.propagate(tracker.init_state(frames), frames, only_red, 0, NUM_FRAMES))
    assert all(set(np.unique(lab)) <= {0, 4} for lab in out.values())


def test_memory_keyframes_are_the_nearest_with_start_last(checkpoint):
    from tam.track.cutie import CutieTracker

    t = CutieTracker(checkpoint=checkpoint, device=TEST_DEVICE, model_overrides=TINY, max_keyframes_in_memory=3)
    keys = dict.fromkeys([0, 10, 20, 30, 40])
    assert t.memory_keyframes(keys, 20) == [10, 30, 20]
    assert t.memory_keyframes(keys, 0) == [20, 10, 0]
    assert t.memory_keyframes({5: None}, 5) == [5]


def test_working_memory_stays_bounded_on_a_long_clip(checkpoint):
    from tam.track.cutie import CutieTracker

    frames, labels = scene(n=30)
    t = CutieTracker(checkpoint=checkpoint, device=TEST_DEVICE, model_overrides=TINY, mem_every=1, max_mem_frames=3)
    state = t.init_state(frames)
    out = list(t.propagate(state, frames, {0: labels[0]}, 0, 30))
    assert [i for i, _ in out] == list(range(1, 30))
    tokens_per_frame = (H // 16) * (W // 16)
    # one permanent keyframe plus max_mem_frames - 1 working frames, however long the clip
    assert state.runs[-1]["work_tokens"] == (1 + 3 - 1) * tokens_per_frame


def test_bad_inputs_and_empty_keyframes(tracker):
    frames, labels = scene()
    state = tracker.init_state(frames)
    with pytest.raises(MaskError, match="no mask to track from"):
        list(tracker.propagate(state, frames, {0: labels[0]}, 2, 5))
    with pytest.raises(MaskError, match="keyframe 0 mask"):
        list(tracker.propagate(state, frames, {0: labels[0][:10]}, 0, 3))
    with pytest.raises(MaskError, match="made for 8 frames"):
        list(tracker.propagate(state, ArrayFrames([frames[0]] * 3), {0: labels[0]}, 0, 3))
    out = list(tracker.propagate(state, frames, {2: np.zeros((H, W), np.uint8)}, 2, 5))
    assert [i for i, _ in out] == [3, 4] and all(not lab.any() for _, lab in out)
    assert state.encoded_keyframes == 0
    with pytest.raises(ValueError):
        type(tracker)(checkpoint=tracker.checkpoint, mem_every=0)


def test_registry_and_cli_track_with_a_local_checkpoint(tmp_path, monkeypatch):
    """The CLI contract ``track SOURCE --init-mask M --out DIR --backend cutie`` with a
    full-size random-weight checkpoint (the default model) on the CPU."""
    from PIL import Image

    from tam.cli import main
    from tam.masks import load_labels, save_labels
    from tam.track.base import TRACKERS
    from tam.track.cutie import build_cutie, cutie_config

    assert "cutie" in TRACKERS.names()
    monkeypatch.setenv("TAM_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    assert not TRACKERS.is_available("cutie")
    assert "weights download cutie-base-mega" in TRACKERS.unavailable_reason("cutie")

    torch.manual_seed(1)
    ckpt = tmp_path / "cutie_random.pth"
    torch.save(build_cutie(cutie_config()).state_dict(), ckpt)
    frames, labels = scene(n=4, h=48, w=64)
    src = tmp_path / "clip"
    src.mkdir()
    for i in range(4):
        Image.fromarray(frames[i]).save(src / f"{i:05d}.png")
    save_labels(tmp_path / "m.png", labels[0])
    out = tmp_path / "masks"
    code = main(["track", str(src), "--init-mask", str(tmp_path / "m.png"), "--out", str(out),
                 "--backend", "cutie", "--checkpoint", str(ckpt), "--device", TEST_DEVICE])
    assert code == 0
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == [f"{i:05d}.png" for i in range(4)]
    first = load_labels(out / "00000.png")
    assert np.array_equal(first > 0, labels[0] > 0)
    for i in range(1, 4):
        lab = load_labels(out / f"{i:05d}.png")
        assert lab.shape == (48, 64)
