"""Motion against the camera (tam.track.camera): the dominant homography's residual and its penalty."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tam.track.camera import ResidualModel, camera_residual, flow_texture
from tam.track.classical import ClassicalTrackerConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"evaluation data folder {DATA} is absent")


def _grid(h, w):
    return np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)


def _flows(h=90, w=160):
    """A camera that zooms 2% and pans, and a square object that moves on its own."""
    grid = _grid(h, w)
    gx, gy = grid[..., 0], grid[..., 1]
    back = np.empty((h, w, 2), np.float32)
    back[..., 0] = (gx - w / 2) * -0.02 + 3.0
    back[..., 1] = (gy - h / 2) * -0.02 - 1.0
    obj = np.zeros((h, w), bool)
    obj[30:60, 60:100] = True
    back[obj] = (-4.0, 2.0)
    return back, obj, grid


def test_residual_is_zero_on_the_camera_motion_and_large_on_the_object():
    back, obj, grid = _flows()
    conf = np.ones(obj.shape, np.float32)
    background = (~obj).astype(np.float32)
    resid = camera_residual(back, conf, background)
    assert resid.shape == obj.shape
    assert np.percentile(resid[~obj], 99) < 0.05
    assert resid[obj].min() > 5.0
    # with no consistent flow there is nothing to fit
    assert camera_residual(back, np.zeros_like(conf), background) is None


def test_penalty_is_one_sided_and_spares_objects_that_stand_still():
    back, obj, grid = _flows()
    conf = np.ones(obj.shape, np.float32)
    resid = camera_residual(back, conf, (~obj).astype(np.float32))
    model = ResidualModel(3, rate=1.0)
    bins = model.bins(resid)
    assert model.penalty(bins, conf, 1.5, 0.25) is None  # nothing learned yet
    # label 1 is the moving square; label 2 a still object (a patch of background called object 2)
    labels = obj.astype(np.uint8)
    labels[5:20, 5:30] = 2
    model.update(bins, conf, labels)
    pen = model.penalty(bins, conf, 1.5, 0.25)
    assert pen.shape == (3,) + obj.shape and pen.max() <= 0
    assert np.all(pen[0] == 0)                      # never against the background
    assert pen[1][~obj].mean() < -1.0                 # the camera explains these: not the moving square
    assert np.all(pen[1][obj] == 0)                   # where the square's own motion is, no penalty
    assert np.all(pen[1] >= -1.5)                     # clipped
    assert np.all(pen[2] == 0)                        # moves with the camera: not judged at all
    # where the flow is not trusted the penalty fades
    assert np.all(model.penalty(bins, conf * 0, 1.5, 0.25) == 0)


def test_background_pays_near_a_moving_object_only_when_nothing_around_it_moves_along():
    back, obj, grid = _flows()
    conf = np.ones(obj.shape, np.float32)
    labels = obj.astype(np.uint8)
    near = np.zeros((2,) + obj.shape, np.float32)
    near[1, 20:70, 50:110] = 1.0  # the zone around the square
    # a leg the tracker missed: the square's bottom rows, called background, still move with it
    missed = np.zeros_like(obj)
    missed[52:60, 60:100] = True
    # a shadow: background beside the square moving with it
    shadow_back = back.copy()
    shadow = np.zeros_like(obj)
    shadow[52:80, 45:115] = True
    shadow_back[shadow] = (-4.0, 2.0)
    for flow, still in ((back, True), (shadow_back, False)):
        resid = camera_residual(flow, conf, (~obj).astype(np.float32))
        model = ResidualModel(2, rate=1.0, band=25, bg_gate=0.25)
        bins = model.bins(resid)
        tracked = labels.copy()
        tracked[missed] = 0
        for k in range(5):  # the first tracked frames tell what the surroundings do
            model.update(bins, conf, tracked)
            if k < 4:
                assert np.all(model.penalty(bins, conf, 1.5, 0.25, near=near)[0] == 0)
        pen = model.penalty(bins, conf, 1.5, 0.25, near=near)
        assert np.all(model.penalty(bins, conf, 1.5, 0.25)[0] == 0)  # no zone given: never
        if still:
            assert pen[0][missed].mean() < -1.0, "moves like the object, not the camera: not background"
            assert np.all(pen[0][near[1] == 0] == 0)  # only near the object
            assert np.all(pen[0][~obj] == 0)  # the camera explains the rest
        else:
            assert np.all(pen[0] == 0), "the shadow moves along: moving pixels may be background"


def test_background_pays_only_on_the_sides_where_nothing_moved_along():
    """A shadow below the object closes the background's half below it; above it, a missed part still pays."""
    back, obj, grid = _flows()
    conf = np.ones(obj.shape, np.float32)
    near = np.zeros((2,) + obj.shape, np.float32)
    near[1, 20:70, 50:110] = 1.0  # the zone around the square
    shadow = np.zeros_like(obj)
    shadow[52:80, 45:115] = True
    back[shadow] = (-4.0, 2.0)
    missed = np.zeros_like(obj)
    missed[30:33, 60:100] = True  # the square's top rows, called background
    resid = camera_residual(back, conf, (~obj).astype(np.float32))
    tracked = obj.astype(np.uint8)
    tracked[missed] = 0
    for sectors in (1, 4, 8):
        model = ResidualModel(2, rate=1.0, band=25, bg_gate=0.25, sectors=sectors)
        bins = model.bins(resid)
        for _ in range(5):
            model.update(bins, conf, tracked)
        pen = model.penalty(bins, conf, 1.5, 0.25, near=near)
        if sectors == 1:
            assert np.all(pen[0] == 0), "the whole ring is judged at once: the shadow closes it"
        else:
            assert pen[0][missed].mean() < -1.0, "above the square nothing moved along: background pays"
            assert np.all(pen[0][shadow & ~obj] == 0), "below it the shadow moves along: no penalty"


def test_flow_texture_is_low_on_flat_regions():
    img = np.full((60, 60), 128, np.uint8)
    img[:, 30:] = np.random.RandomState(0).randint(0, 255, (60, 30))
    tex = flow_texture(img, 8.0)
    assert tex[:, :20].max() == 0 and tex[:, 40:].min() > 0.9


def test_residual_settings_are_validated():
    for bad in ({"residual_weight": -1}, {"residual_clip": 0}, {"residual_moving": 1.5}, {"residual_rate": 0},
                {"residual_bg_sectors": 0}):
        with pytest.raises(ValueError):
            ClassicalTrackerConfig(**bad)
    assert ClassicalTrackerConfig(residual_weight=0).residual_weight == 0  # off


@needs_data
def test_residual_tells_moving_objects_from_the_background_on_real_frames():
    """DIS flow between two real frames: the object moves against the camera, the background does not."""
    from tam.datasets import find_sequences

    seqs = {s.name: s for s in find_sequences(DATA)}
    for name, t in (("davis2016/car-shadow", 20), ("davis2016/tennis", 30), ("davis2016/blackswan", 20)):
        seq = seqs[name]
        a, b = (cv2.cvtColor(cv2.resize(np.asarray(seq.frames[k]), (512, 288), interpolation=cv2.INTER_AREA),
                             cv2.COLOR_RGB2GRAY) for k in (t - 1, t))
        mask = cv2.resize((np.asarray(seq.mask(t)) > 0).astype(np.uint8), (512, 288),
                          interpolation=cv2.INTER_NEAREST) > 0
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        back, fwd = dis.calc(b, a, None), dis.calc(a, b, None)
        grid = _grid(288, 512)
        fwd_at = cv2.remap(fwd, grid[..., 0] + back[..., 0], grid[..., 1] + back[..., 1], cv2.INTER_LINEAR)
        conf = np.exp(-(np.hypot(*(back + fwd_at).transpose(2, 0, 1)) / 1.5) ** 2)
        # the background away from the object (a car's shadow moves with it)
        away = ~(cv2.dilate(mask.astype(np.uint8), np.ones((41, 41), np.uint8)) > 0) & (conf > 0.5)
        resid = camera_residual(back, conf, (~mask).astype(np.float32))
        inner = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        # measured: object / background medians 8.2 / 0.30, 12.5 / 0.14, 4.6 / 0.14
        assert np.median(resid[inner]) > 3.0, name
        assert np.median(resid[away]) < 0.6, name
