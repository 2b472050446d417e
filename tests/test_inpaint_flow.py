"""Flow-guided inpainting: quality against Telea on real frames, exactness on a
static scene, streaming, the keyframe-filler hook and bad inputs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaint import INPAINTERS
from inpaint.flow_guided import FlowGuidedConfig, FlowGuidedInpainter
from inpaint.spatial import telea
from tam.errors import MaskError
from tam.frames import ArrayFrames

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"evaluation data folder {DATA} is absent")


class Recording:
    """A FrameSequence that records which indices were read."""

    def __init__(self, items):
        self.items, self.reads = items, []

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        if not 0 <= i < len(self.items):
            raise IndexError(i)
        self.reads.append(i)
        return self.items[i]


def textured(h, w, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 6 + 1, w // 6 + 1, 3), dtype=np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def static_clip(n=14, h=96, w=160, step=6):
    """A fixed textured background with a square occluder sliding across it."""
    bg = textured(h, w)
    frames, holes = [], []
    for i in range(n):
        m = np.zeros((h, w), bool)
        x = 20 + step * i
        m[30:62, x:x + 28] = True
        frames.append(bg.copy())
        holes.append(m)
    return bg, frames, holes


def hole_psnr(out, truth, hole):
    err = ((out[hole].astype(np.float64) - truth[hole]) ** 2).mean()
    return 10 * np.log10(255.0 ** 2 / max(err, 1e-9))


@needs_data
def test_beats_telea_inside_moved_davis_holes():
    from inpaint.evaluate import load_cases

    # two sequences, the protocol's holes (the next sequence's masks, dilated)
    cases = load_cases(DATA, (432, 240), max_frames=12, names=["blackswan", "tennis"])
    assert [c.name for c in cases] == ["blackswan", "tennis"]
    # the smooth keyframe fill isolates the propagation; the default's patch fill of the
    # never-seen pixels invents texture, which PSNR charges for (measured +1.16 / +2.64 dB over
    # Telea on these 12 frames; with 8 frames searched each way instead of 10, +1.72 / +2.80)
    for inp, margin in ((INPAINTERS.create("flow-smooth"), 1.8), (FlowGuidedInpainter(), 1.0)):
        for case in cases:
            picks = [4, 8]
            ours, base = [], []
            for i, out in inp.inpaint(ArrayFrames(case.frames), ArrayFrames(case.holes), picks):
                truth, hole = case.frames[i], case.holes[i]
                assert hole.sum() > 1000
                ours.append(hole_psnr(out, truth, hole))
                base.append(hole_psnr(telea(truth, hole), truth, hole))
                assert np.array_equal(out[~hole], truth[~hole])
            # one pass (flow interpolated across the hole) gets about +1.4/+1.6 dB here; the
            # second pass (flow re-estimated on the first fill) about +2.5/+2.2
            assert np.mean(ours) > np.mean(base) + margin, (inp.name, case.name, ours, base)


def test_static_scene_is_filled_from_other_frames():
    bg, frames, holes = static_clip()
    calls = []

    def filler(rgb, hole):
        calls.append(int(hole.sum()))
        return telea(rgb, hole)

    inp = FlowGuidedInpainter(keyframe_filler=filler)
    errors = [np.abs(out[holes[i]].astype(int) - bg[holes[i]]).mean()
              for i, out in inp.inpaint(ArrayFrames(frames), ArrayFrames(holes))]
    assert len(errors) == len(frames)
    # every hole pixel is visible in another frame: only sub-pixel flow noise remains
    assert max(errors) < 1.5, errors
    spatial = np.abs(telea(frames[0], holes[0])[holes[0]].astype(int) - bg[holes[0]]).mean()
    assert spatial > 5 * max(errors)
    assert not calls  # so nothing had to be invented


def test_keyframe_filler_is_used_for_never_seen_pixels_and_carried():
    h, w, n = 80, 120, 8
    bg = textured(h, w, seed=3)
    hole = np.zeros((h, w), bool)
    hole[25:55, 40:80] = True  # a static hole on a static scene: never seen
    xs = np.arange(w)
    stripes = (128 + 80 * np.sign(np.sin(xs / 3.0)))[None, :, None] * np.ones((h, 1, 3))
    calls = []

    def filler(rgb, never):
        calls.append(never.copy())
        assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8
        out = rgb.copy()
        out[never] = stripes.astype(np.uint8)[never]
        return out

    inp = FlowGuidedInpainter(keyframe_filler=filler)
    outs = dict(inp.inpaint(ArrayFrames([bg] * n), ArrayFrames([hole] * n)))
    assert len(calls) == 1  # one keyframe; the later frames carry its fill along the flow
    assert np.array_equal(calls[0], hole)
    pattern = stripes[..., 0][hole]
    for i in (0, n - 1):
        got = outs[i][..., 0][hole].astype(float)
        assert np.corrcoef(got, pattern)[0, 1] > 0.9
    assert np.abs(outs[0].astype(int) - outs[n - 1]).max() <= 2  # stable over time


def test_known_notches_do_not_smear_into_a_spatial_fill():
    """A crevice of the removed object that the mask missed (a dark notch of known
    pixels cutting deep into a never-seen hole) must not darken the fill around it."""
    h, w, n = 96, 160, 4
    frame = np.full((h, w, 3), 128, np.uint8)
    notch = np.zeros((h, w), bool)
    notch[20:60, 79:82] = True
    frame[notch] = 0
    hole = np.zeros((h, w), bool)
    hole[20:76, 50:110] = True
    hole &= ~notch
    calls = []

    def filler(rgb, never):
        calls.append(never.copy())
        return telea(rgb, never)

    outs = dict(FlowGuidedInpainter(keyframe_filler=filler).inpaint(ArrayFrames([frame] * n),
                                                                    ArrayFrames([hole] * n)))
    deep = notch.copy()
    deep[:22] = False  # the notch's mouth on the hole's edge stays open
    assert len(calls) == 1 and calls[0][hole].all() and calls[0][deep].all()
    for i in (0, n - 1):
        assert np.array_equal(outs[i][notch], frame[notch])  # known pixels are left alone
        err = np.abs(outs[i][hole].astype(int) - 128)
        assert err.mean() < 5, err.mean()  # (about 43 when the notch seeds the fill and the blend)


@needs_data
def test_tennis_dilated_end_to_end():
    from tam.datasets import find_sequences

    (seq,) = find_sequences(DATA / "propainter_inpainting" / "tennis-dilated")
    n = 6
    frames = [seq.frame(i) for i in range(n)]
    holes = [seq.mask(i) > 0 for i in range(n)]
    outs = list(INPAINTERS.create("flow").inpaint(ArrayFrames(frames), ArrayFrames(holes)))
    assert [i for i, _ in outs] == list(range(n))
    for i, out in outs:
        assert out.shape == (240, 432, 3) and out.dtype == np.uint8
        hole = holes[i]
        assert hole.any()
        assert np.array_equal(out[~hole], frames[i][~hole])
        changed = np.abs(out[hole].astype(int) - frames[i][hole]).max(axis=1) > 10
        assert changed.mean() > 0.3  # the player is gone from a good part of the hole


def test_empty_mask_returns_the_frame_unchanged():
    frames = [textured(48, 64, seed=i) for i in range(4)]
    holes = [np.zeros((48, 64), bool)] * 4
    for i, out in FlowGuidedInpainter().inpaint(ArrayFrames(frames), ArrayFrames(holes)):
        assert np.array_equal(out, frames[i])


def test_bad_masks_and_indices():
    frames = [textured(48, 64, seed=i) for i in range(4)]
    ok = np.zeros((48, 64), bool)
    ok[10:20, 10:20] = True
    inp = FlowGuidedInpainter()
    with pytest.raises(MaskError, match="whole frame"):
        list(inp.inpaint(ArrayFrames(frames), ArrayFrames([ok, np.ones((48, 64), bool), ok, ok])))
    with pytest.raises(MaskError, match="shape"):
        list(inp.inpaint(ArrayFrames(frames), ArrayFrames([np.zeros((24, 32), bool)] * 4)))
    with pytest.raises(MaskError):
        list(inp.inpaint(ArrayFrames(frames), ArrayFrames([ok] * 3)))
    with pytest.raises(IndexError):
        list(inp.inpaint(ArrayFrames(frames), ArrayFrames([ok] * 4), indices=[1, 4]))
    with pytest.raises(ValueError):
        FlowGuidedConfig(radius=0)
    with pytest.raises(TypeError):
        FlowGuidedInpainter(no_such_option=1)


def test_streams_with_a_bounded_window_and_previews_locally():
    _, frames, holes = static_clip(n=30, step=3)
    radius = 4
    for passes in (1, 2):
        fr, mk = Recording(frames), Recording(holes)
        inp = FlowGuidedInpainter(radius=radius, passes=passes)
        for t, _ in inp.inpaint(fr, mk):
            # nothing beyond the look-ahead has been read when frame t comes out
            assert max(fr.reads) <= t + passes * radius + 1
        assert len(fr.reads) == len(frames)  # each frame read once: the passes share it

    fr, mk = Recording(frames), Recording(holes)
    out = inp.preview(fr, mk, 15, radius=3)
    assert out.shape == frames[0].shape
    assert set(fr.reads) <= set(range(15 - 2 * 3 - 1, 15 + 2 * 3 + 2))


def test_classical_path_never_imports_torch():
    code = ("import sys, numpy as np; from inpaint import INPAINTERS; import inpaint.evaluate; "
            "from tam.frames import ArrayFrames; f = [np.zeros((32, 32, 3), np.uint8)] * 3; "
            "m = [np.eye(32, dtype=bool)] * 3; list(INPAINTERS.create('flow').inpaint(ArrayFrames(f), ArrayFrames(m))); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_hole_solver_is_exact_on_harmonic_fields_and_true_gradients():
    from inpaint.solve import _DIRECTIONS, HoleSolver, push_pull

    h, w = 40, 60
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    hole = np.zeros((h, w), bool)
    hole[8:30, 1:25] = True
    hole[12:20, 40:50] = True  # a second component
    solver = HoleSolver(hole)
    linear = np.dstack([2 * xx - yy + 3, 0.5 * yy])  # harmonic: the membrane reproduces it
    damaged = linear.copy()
    damaged[hole] = 0
    assert np.abs(solver.laplace(damaged) - linear).max() < 1e-3
    # a free known pixel fixes nothing: a spike there does not leak into the fill
    flat = np.full((h, w), 5.0)
    flat[7, 10] = 100.0
    free = np.zeros((h, w), bool)
    free[7, 10] = True
    assert np.abs(HoleSolver(hole).laplace(flat)[hole] - 5).max() > 1
    assert np.abs(HoleSolver(hole, free=free).laplace(flat)[hole] - 5).max() < 1e-3
    # Poisson with the true image's own differences as guidance gives the image back
    img = textured(h, w).astype(np.float64)
    ys, xs = solver.ys, solver.xs
    guidance = []
    for dy, dx in _DIRECTIONS:
        ny, nx = np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)
        guidance.append(img[ny, nx] - img[ys, xs])
    got = solver.poisson(np.where(hole[..., None], 0, img), guidance, np.zeros((len(ys), 3)))
    assert np.abs(got - img[ys, xs]).max() < 0.05  # (a tiny anchor keeps every hole solvable)
    # the push-pull prefill stays within the range of the known pixels
    grey = img[..., 0].astype(np.uint8)
    filled = push_pull(grey, hole)
    assert np.array_equal(filled[~hole], grey[~hole])
    assert grey[~hole].min() <= filled[hole].min() and filled[hole].max() <= grey[~hole].max()


def test_the_completion_protocol_leaves_frames_without_a_hole_out_of_psnr():
    """A frame whose hole is empty equals its truth (infinite PSNR): the mean must stay finite."""
    from inpaint.evaluate import Case, evaluate_case

    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    holes = [np.zeros((48, 64), bool) for _ in range(4)]
    holes[1][10:30, 20:40] = True
    holes[2][12:32, 22:42] = True
    result = evaluate_case(INPAINTERS.create("telea"), Case("noise", frames, holes))
    assert result.frames == 4 and np.isfinite(result.psnr) and result.psnr < 40
