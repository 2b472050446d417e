"""The camera-compensated motion prior of the classical segmenter, and negative clicks kept to the clicked
surface."""
from __future__ import annotations

import numpy as np

from tam.segment.base import Prompt
from tam.segment.classical import ClassicalSegmenter
from tam.segment.classical.motion import camera_residual
from tam.segment.classical.motion_prior import click_motion_prior
from tam.segment.video import neighbour_indices
from tests.test_segment_video import N, OBJECT_CLICK, T, _scene


def test_camera_residual_takes_out_the_pan_and_drops_a_failed_neighbour():
    h, w = 96, 128
    pan = np.zeros((h, w, 2), np.float32)
    pan[..., 0], pan[..., 1] = 4.0, -2.0  # the camera pans
    pan[30:60, 40:80, 0] += 6.0  # an object moving right against it
    noise = np.random.RandomState(0).uniform(-20, 20, (h, w, 2)).astype(np.float32)  # a flow that failed
    left = camera_residual(np.concatenate([pan, noise], 2))
    assert left.shape == (h, w, 2)  # the failed neighbour is left out
    assert np.abs(left[:20]).max() < 0.1  # the background is still once the pan is taken out
    assert np.allclose(left[40, 60], (6.0, 0.0), atol=0.1)
    assert camera_residual(noise) is None


def test_motion_prior_grows_over_the_mover_and_not_the_static_fence():
    frames, masks, fence = _scene()
    gt, fence = masks[T], fence & ~masks[T]
    seg = ClassicalSegmenter(w_motion_prior=1.0)  # off by default (docs/experiments.md)
    f = seg.set_frame(frames[T], [frames[i] for i in neighbour_indices(T, N)])
    x, y = OBJECT_CLICK[:2]
    prior = click_motion_prior(f, seg.config, np.array([f.labels[y, x]]))
    px = prior[f.labels]
    assert np.mean(px[gt] > 0) > 0.8  # the block moves against the camera
    assert np.mean(px[fence] < 0) > 0.8  # the fence of its colour does not
    still = seg.set_image(frames[T])
    assert click_motion_prior(still, seg.config, np.array([f.labels[y, x]])) is None  # a still image
    first = seg.predict(still, Prompt.from_clicks([OBJECT_CLICK]))
    with_prior = seg.predict(f, Prompt.from_clicks([OBJECT_CLICK]))
    assert np.mean(with_prior.mask[fence]) < 0.3 and np.mean(with_prior.mask[gt]) > 0.95
    assert np.mean(first.mask[fence]) > 0.9  # the still image cannot tell the fence from the block


def _body_head_and_leak(seed=3):
    """A red body, a green head touching it on the right, and a blue-grey false region touching the head."""
    rng = np.random.RandomState(seed)
    h, w = 200, 320
    img = np.empty((h, w, 3), np.float32)
    img[:] = (230, 220, 120)
    body = np.zeros((h, w), bool)
    body[50:150, 30:150] = True
    head = np.zeros((h, w), bool)
    head[70:130, 150:190] = True
    leak = np.zeros((h, w), bool)
    leak[60:140, 190:260] = True
    img[body], img[head], img[leak] = (200, 40, 40), (40, 160, 60), (90, 110, 170)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    return img, body, head, leak


def test_negative_click_takes_back_its_own_surface_not_the_part_next_to_it():
    img, body, head, leak = _body_head_and_leak()
    prev = body | head | leak
    prompt = Prompt.from_clicks([(90, 100, 1), (225, 100, 0)])
    kept = {}
    for scale in (0.0, 25.0):
        seg = ClassicalSegmenter(neg_surface=scale)
        state = seg.set_image(img)
        mask = seg.predict(state, prompt, mask_input=prev).mask
        assert np.mean(mask[leak]) < 0.1  # the clicked surface goes either way
        kept[scale] = np.mean(mask[head])
    assert kept[25.0] > 0.9 and kept[0.0] < 0.5, kept
