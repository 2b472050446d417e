"""The random-forest appearance model of the classical tracker (tam.track.forest)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tam.track.classical import ClassicalTracker, ClassicalTrackerConfig
from tam.track.classical.appearance import label_histograms, smooth_hist as _smooth_hist
from tam.track.classical.state import to_work, work_frame
from tam.track.evaluate import j_measure
from tam.track.forest import ForestModel, patch_features

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"evaluation data folder {DATA} is absent")


def _scene(shift=0, seed=0):
    """A red disc on a green field, beside a red patch of the same colour striped with dark lines.

    Colour alone calls the patch object; its stripes (gradients, local contrast) tell it apart.
    """
    rng = np.random.RandomState(seed)
    h, w = 120, 200
    img = np.empty((h, w, 3), np.float32)
    img[:] = (40, 150, 60)
    obj = np.zeros((h, w), np.uint8)
    cv2.circle(obj, (60 + shift, 60), 25, 1, -1)
    img[obj > 0] = (200, 40, 40)
    img[30:90, 130:180] = (200, 40, 40)
    img[30:90, 130:180][:, ::4] = (60, 10, 10)
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    return img, obj


def test_patch_features_shape_and_working_size():
    img, _ = _scene()
    feat = patch_features(img, 100)
    assert feat.shape == (60, 100, 16) and feat.dtype == np.float32
    assert patch_features(img, 400).shape[:2] == img.shape[:2]  # never upsampled


def test_forest_tells_the_object_from_a_look_alike_by_its_surroundings():
    img, obj = _scene()
    model = ForestModel([0, 1], side=200, trees=10, samples=1500).fit({0: img}, {0: obj})
    moved, moved_obj = _scene(shift=8, seed=1)
    post = model.posterior(moved, moved.shape[:2])
    assert post.shape == (2, 120, 200) and np.allclose(post.sum(0), 1.0, atol=1e-4)
    inside = cv2.erode(moved_obj, np.ones((7, 7), np.uint8)) > 0
    assert post[1][inside].mean() > 0.8
    assert post[0][35:85, 135:175].mean() > 0.8  # the striped patch of the object's colour
    # the same forest, deterministic for a seed
    again = ForestModel([0, 1], side=200, trees=10, samples=1500).fit({0: img}, {0: obj})
    assert np.array_equal(again.posterior(moved, moved.shape[:2]), post)


def test_posterior_is_background_far_away_uniform_deep_inside_and_bounded_in_work():
    img, obj = _scene()
    model = ForestModel([0, 1], side=200, trees=10, samples=1500).fit({0: img}, {0: obj})
    mass = np.zeros(obj.shape, np.float32)
    mass[20:100, 20:100] = 0.5
    mass[50:70, 50:70] = 1.0
    post = model.posterior(img, obj.shape, object_mass=mass)
    assert post[0][:, 150:].min() > 0.95          # far from every object: background, not asked
    assert np.allclose(post[:, 55:65, 55:65], 0.5, atol=1e-3)  # deep inside: no opinion
    # a budget far below the asked band makes it ask a coarser grid: same size, same verdicts
    coarse = ForestModel([0, 1], side=200, trees=10, samples=1500, budget=200).fit({0: img}, {0: obj})
    cpost = coarse.posterior(img, obj.shape, object_mass=mass)
    assert cpost.shape == post.shape
    band = (mass > 0.05) & (mass <= 0.9)
    agree = np.mean((cpost[1] > 0.5)[band] == (post[1] > 0.5)[band])
    assert agree > 0.9


def test_forest_without_an_object_has_no_opinion():
    img, obj = _scene()
    model = ForestModel([0, 1]).fit({0: img}, {0: np.zeros_like(obj)})
    assert np.allclose(model.posterior(img, (30, 50)), 0.5)


def test_forest_settings_are_validated():
    with pytest.raises(ValueError):
        ClassicalTrackerConfig(forest_trees=-1)
    with pytest.raises(ValueError):
        ClassicalTrackerConfig(forest_side=8)
    assert ClassicalTrackerConfig(forest_trees=0).forest_trees == 0  # off: histograms only


@needs_data
def test_forest_beats_the_colour_histograms_on_real_frames():
    """Trained on frame 0, judged on a later frame within 12 px of the true object."""
    from tam.datasets import find_sequences

    seqs = {s.name: s for s in find_sequences(DATA)}
    gains = []
    for name, t in (("davis2016/libby", 10), ("davis2016/car-shadow", 20), ("davis2016/tennis", 10)):
        seq = seqs[name]
        f0, m0 = np.asarray(seq.frames[0]), np.asarray(seq.mask(0))
        ft, mt = np.asarray(seq.frames[t]), np.asarray(seq.mask(t))
        band = cv2.dilate((mt > 0).astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
        post = ForestModel([0, 1]).fit({0: f0}, {0: m0}).posterior(ft, mt.shape)
        j_forest = j_measure((post[1] > post[0]) & band, mt > 0)
        # the tracker's colour-texture histograms, learned from the same frame
        tracker = ClassicalTracker()
        state = tracker.init_state(seq.frames)
        cfg = tracker.config
        hists = label_histograms(work_frame(state, seq.frames, 0, cfg).bins, to_work(state, m0), [1],
                                 cfg.n_bins, cfg.band)
        bg, fg = (_smooth_hist(hists[k], cfg.bins, cfg.texture_bins) for k in (0, 1))
        bins = work_frame(state, seq.frames, t, cfg).bins
        hist = cv2.resize((fg[bins] > bg[bins]).astype(np.uint8), mt.shape[::-1], interpolation=cv2.INTER_NEAREST)
        j_hist = j_measure((hist > 0) & band, mt > 0)
        assert j_forest > 0.75, (name, j_forest, j_hist)
        gains.append(j_forest - j_hist)
    assert np.mean(gains) > 0.025, gains  # measured: +0.04, +0.04, +0.04


def test_tracker_trains_one_forest_per_keyframe_set_and_forgets_stale_ones():
    from tam.frames import ArrayFrames

    frames = ArrayFrames([_scene(shift=3 * i, seed=i)[0] for i in range(5)])
    first = _scene()[1]
    tracker = ClassicalTracker(work_side=200, forest_trees=5, forest_samples=500)
    state = tracker.init_state(frames)
    out = dict(tracker.propagate(state, frames, {0: first}, 0, 5))
    forests = [v for k, v in state.models.items() if k[0] == "forest"]
    assert len(forests) == 1
    # the disc moves 3 px a frame: tracked, not confused with the striped patch
    assert j_measure(out[4] == 1, _scene(shift=12)[1] == 1) > 0.8
    list(tracker.propagate(state, frames, {0: first}, 0, 5))
    assert [v for k, v in state.models.items() if k[0] == "forest"][0] is forests[0]  # reused
    edited = {0: first, 4: _scene(shift=12)[1]}
    list(tracker.propagate(state, frames, edited, 4, -1))
    kept = [v for k, v in state.models.items() if k[0] == "forest"]
    assert len(kept) == 1 and kept[0] is not forests[0]  # retrained, the stale one dropped
    assert len(state.models) == 2  # with the colour histograms of the same keyframes
