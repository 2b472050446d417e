"""Exemplar-based filling: texture like the surroundings, structure carried through the
hole, the excluded band never copied, reproducible output, and its place as the
flow inpainter's default keyframe filler."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaint import INPAINTERS
from inpaint.exemplar import ExemplarConfig, complete, excluded_sources
from inpaint.fill_metrics import texture_figures
from inpaint.flow_guided import FlowGuidedInpainter
from inpaint.spatial import telea
from tam.frames import ArrayFrames

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"evaluation data folder {DATA} is absent")


def noise_texture(h, w, seed=0, base=128, spread=60):
    """A grainy grey-ish RGB texture (detail at every pixel)."""
    rng = np.random.default_rng(seed)
    grain = rng.normal(0, spread / 2, (h, w, 1))
    tint = np.array([1.0, 0.9, 0.8])
    return np.clip(base + grain * tint, 0, 255).astype(np.uint8)


def square_hole(h, w, y0, y1, x0, x1):
    hole = np.zeros((h, w), bool)
    hole[y0:y1, x0:x1] = True
    return hole


def test_fill_has_the_texture_of_its_surroundings_where_telea_smears():
    img = noise_texture(72, 96)
    hole = square_hole(72, 96, 24, 48, 36, 60)
    tex, w1 = texture_figures(complete(img, hole), hole)
    tex_telea, _ = texture_figures(telea(img, hole), hole)
    assert 0.7 < tex < 1.3 and w1 < 0.3
    assert tex_telea < 0.4


def test_a_straight_edge_continues_through_the_hole():
    img = np.concatenate([noise_texture(36, 96, 1, base=60, spread=30),
                          noise_texture(36, 96, 2, base=190, spread=30)], axis=0)
    hole = square_hole(72, 96, 22, 50, 36, 60)  # straddles the edge at row 36
    out = complete(img, hole).astype(np.float32).mean(axis=2)
    above, below = out[22:33, 36:60], out[40:50, 36:60]
    assert above.mean() < 90 and below.mean() > 160
    # the edge stays a straight horizontal line: each column switches near row 36
    switch = np.argmax(out[22:50, 36:60] > 125, axis=0) + 22
    assert np.abs(switch - 36).max() <= 3


def test_the_excluded_band_is_never_copied():
    img = noise_texture(80, 110, 3)
    hole = square_hole(80, 110, 30, 50, 45, 65)
    cfg = ExemplarConfig()
    band = excluded_sources(hole, cfg)
    assert band.any() and not (band & hole).any()
    img[band] = (255, 0, 0)  # a shadow-like colour found only next to the hole
    out = complete(img, hole, cfg)
    red = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] < 60)
    assert not red[hole].any()


def test_the_same_seed_gives_the_same_fill():
    img = noise_texture(64, 80, 4)
    hole = square_hole(64, 80, 20, 40, 30, 50)
    a = complete(img, hole, ExemplarConfig(seed=3))
    b = complete(img, hole, ExemplarConfig(seed=3))
    assert np.array_equal(a, b)
    assert np.array_equal(a[~hole], img[~hole])


def test_bad_inputs_raise_one_clear_error():
    img = noise_texture(32, 32)
    with pytest.raises(ValueError, match="hole has shape"):
        complete(img, np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="RGB uint8"):
        complete(img.astype(np.float32), np.zeros((32, 32), bool))
    with pytest.raises(ValueError, match="patch"):
        ExemplarConfig(patch=4)


def test_flow_default_fills_never_seen_pixels_with_patches_and_keeps_them_still():
    assert FlowGuidedInpainter().config.filler == "exemplar"
    assert INPAINTERS.create("flow-smooth").config.filler == "telea"
    img = noise_texture(60, 80, 5)
    hole = square_hole(60, 80, 20, 40, 30, 50)
    outs = [out for _, out in INPAINTERS.create("flow").inpaint(ArrayFrames([img] * 4),
                                                                ArrayFrames([hole] * 4))]
    tex, _ = texture_figures(outs[2], hole)
    smooth = [out for _, out in INPAINTERS.create("flow-smooth").inpaint(ArrayFrames([img] * 2),
                                                                         ArrayFrames([hole] * 2))]
    assert tex > 0.6 > texture_figures(smooth[1], hole)[0]
    change = np.abs(outs[3][hole].astype(int) - outs[2][hole].astype(int)).mean()
    assert change < 0.5  # a static shot gets a static fill


def test_the_classical_fill_does_not_import_torch():
    code = ("import sys, numpy as np; from inpaint.exemplar import complete; "
            "img = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8); "
            "h = np.zeros((40, 50), bool); h[15:25, 20:30] = True; complete(img, h); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


@needs_data
def test_on_a_real_static_shot_the_fill_has_texture():
    from inpaint.evaluate_static import load_static_cases

    [case] = load_static_cases(DATA, (216, 120), ["davis2016/blackswan"])
    out = complete(case.frame, case.hole)
    tex, w1 = texture_figures(out, case.hole)
    tex_telea, _ = texture_figures(telea(case.frame, case.hole), case.hole)
    assert tex > 0.5 and w1 < 0.5
    assert tex > 2 * tex_telea
    assert np.array_equal(out[~case.hole], case.frame[~case.hole])


def test_a_frame_without_a_whole_known_patch_gets_a_smooth_fill():
    img = noise_texture(12, 12, 6)
    hole = np.eye(12, dtype=bool) | np.eye(12, dtype=bool)[::-1]
    out = complete(img, hole)
    assert np.array_equal(out[~hole], img[~hole])
    assert out[hole].std() < img.std()  # averaged colours, no garbage


def test_eval_inpaint_static_protocol_prints_figures_and_writes_pictures(tmp_path, capsys):
    from PIL import Image

    from tam.cli import main

    seq = tmp_path / "data" / "set" / "shot"
    (seq / "frames").mkdir(parents=True)
    (seq / "masks").mkdir()
    img = noise_texture(48, 64, 7)
    mask = np.zeros((48, 64), np.uint8)
    mask[18:30, 26:38] = 255
    for i in range(2):
        Image.fromarray(img).save(seq / "frames" / f"{i:05d}.png")
        Image.fromarray(mask).save(seq / "masks" / f"{i:05d}.png")
    out = tmp_path / "pictures"
    code = main(["eval-inpaint", str(tmp_path / "data"), "--protocol", "static", "--size", "64x48",
                 "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    for name in ("telea", "shiftmap", "base:flow-smooth", "ours:flow", "means over 1 static shots"):
        assert name in text
    ours = [line for line in text.splitlines() if line.strip().startswith("ours:flow")][-1].split()
    assert float(ours[1]) > 0.6 and float(ours[3]) < 0.5  # tex, flicker
    picture = cv2.imread(str(out / "set_shot.png"))
    assert picture.shape == (48, 64 * 5, 3)


def test_a_fill_carried_through_a_zoom_keeps_its_texture():
    rng = np.random.default_rng(8)
    scene = cv2.resize(rng.integers(0, 255, (60, 100, 3), dtype=np.uint8), (200, 120),
                       interpolation=cv2.INTER_CUBIC)
    scene = np.clip(scene.astype(int) + rng.integers(-30, 30, scene.shape), 0, 255).astype(np.uint8)
    disc = np.zeros((120, 200), np.uint8)
    cv2.circle(disc, (110, 60), 16, 1, -1)
    frames, holes = [], []
    for i in range(12):  # the camera zooms in on an object that hides the same background throughout
        m = cv2.getRotationMatrix2D((100, 60), 0, 1 + 0.02 * i)
        frames.append(cv2.warpAffine(scene, m, (200, 120), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
        holes.append(cv2.warpAffine(disc, m, (200, 120), flags=cv2.INTER_NEAREST) > 0)
    outs = dict(INPAINTERS.create("flow").inpaint(ArrayFrames(frames), ArrayFrames(holes)))
    first, last = texture_figures(outs[0], holes[0])[0], texture_figures(outs[11], holes[11])[0]
    assert first > 0.6
    assert last > 0.9 * first, (first, last)  # no blur piles up as the fill is carried along


def test_a_view_that_shows_the_background_is_copied_into_the_hole():
    scene = noise_texture(64, 96, 9)
    hole = square_hole(64, 96, 20, 44, 36, 60)
    alone = complete(scene, hole)
    seen = np.ones_like(hole)
    seen[10:30, 10:30] = False  # the other view has its own hole elsewhere
    with_view = complete(scene, hole, sources=[(scene, seen)])
    err = lambda out: np.abs(out[hole].astype(int) - scene[hole].astype(int)).mean()  # noqa: E731
    assert err(with_view) < 2 < 10 < err(alone)
    with pytest.raises(ValueError, match="source view"):
        complete(scene, hole, sources=[(scene[:32], seen[:32])])


def test_a_carried_draft_keeps_its_layout():
    img = np.concatenate([noise_texture(40, 96, 10, base=60, spread=30),
                          noise_texture(40, 96, 11, base=190, spread=30)], axis=0)
    hole = square_hole(80, 96, 16, 64, 30, 66)
    draft = img.copy()
    draft[hole] = 128
    draft[16:64, 30:48] = 60  # the carried fill says: dark on the left half, bright on the right
    draft[16:64, 48:66] = 190
    out = complete(draft, hole, start=hole).astype(np.float32).mean(axis=2)
    assert out[20:60, 32:44].mean() < 100 < 150 < out[20:60, 52:64].mean()


def test_magnification_of_a_zoom():
    from inpaint.keyframes import magnification

    h, w = 40, 60
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    coords = np.dstack([30 + (gx - 30) / 1.5, 20 + (gy - 20) / 1.5])  # frame pixel -> keyframe position
    ys, xs = np.nonzero(square_hole(h, w, 10, 30, 20, 40))
    assert magnification(coords, ys, xs) == pytest.approx(1.5, rel=1e-3)
    assert magnification(np.dstack([gx, gy]), ys, xs) == pytest.approx(1.0)
