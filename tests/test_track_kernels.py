"""The classical tracker's compiled passes and shortcuts against the whole-array forms they replace."""
import cv2
import numpy as np

from tam.track.camera import _EDGES, camera_homography, residual_and_bins
from tam.track.classical import fusion
from tam.track.classical.config import ClassicalTrackerConfig


def _reference_fuse(log_prior, lut, bins, weight, forest, penalty, local, cfg):
    like = lut[:, bins] + 1e-6
    like /= like.sum(0, keepdims=True)
    logp = log_prior + weight * np.log(like) + (cfg.forest_weight * weight) * np.log(forest)
    logp += cfg.residual_weight * penalty + cfg.local_weight * local
    logp -= logp.max(0, keepdims=True)
    post = np.exp(logp)
    return post / post.sum(0, keepdims=True)


def test_fused_cues_equal_the_whole_array_fusion():
    rng = np.random.default_rng(0)
    n, h, w, nb = 3, 17, 23, 64
    cfg = ClassicalTrackerConfig()
    log_prior = np.log(rng.random((n, h, w)) + 1e-3).astype(np.float32)
    lut = rng.random((n, nb)).astype(np.float32)
    bins = rng.integers(0, nb, (h, w)).astype(np.int32)
    weight = rng.random((h, w)).astype(np.float32)
    forest = (rng.random((n, h, w)) + 0.01).astype(np.float32)
    penalty = -rng.random((n, h, w)).astype(np.float32)
    local = -3 * rng.random((n, h, w)).astype(np.float32)
    want = _reference_fuse(log_prior, lut, bins, weight, forest, penalty, local, cfg)
    cues = fusion.Cues(log_prior.copy(), weight, lut, bins, forest, penalty, local)
    got = fusion.fuse(cues, cfg)
    assert got.shape == (n, h, w)
    np.testing.assert_allclose(got, want, atol=2e-5)
    # cues that are off weigh nothing: the prior alone
    alone = fusion.fuse(fusion.Cues(log_prior.copy()), cfg)
    prior = np.exp(log_prior) / np.exp(log_prior).sum(0, keepdims=True)
    np.testing.assert_allclose(alone, prior, atol=2e-5)


def test_residuals_and_bins_equal_the_homography_and_searchsorted():
    h, w = 40, 60
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid = np.stack([gx, gy], -1)
    hom = np.array([[1.02, 0.01, 3.0], [-0.01, 0.98, -2.0], [1e-4, -2e-4, 1.0]])
    cam = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), hom).reshape(h, w, 2) - grid
    back = cam.astype(np.float32)
    back[10:20, 20:35] += (5.0, -3.0)  # an object moving against the camera
    back += np.random.default_rng(1).normal(0, 0.3, back.shape).astype(np.float32)
    resid, bins = residual_and_bins(back, hom)
    want = np.hypot(*(back - cam).transpose(2, 0, 1))
    np.testing.assert_allclose(resid, want, atol=1e-3)
    near_edge = np.abs(want[..., None] - _EDGES).min(-1) < 1e-3
    assert np.array_equal(bins[~near_edge], np.searchsorted(_EDGES, want[~near_edge]))
    # the fit itself recovers the camera from the background
    fitted = camera_homography(back, np.ones((h, w), np.float32), np.ones((h, w), np.float32))
    assert np.median(residual_and_bins(back, fitted)[0][:8]) < 1.0


def test_one_object_smoothing_equals_filtering_every_label():
    rng = np.random.default_rng(2)
    h, w = 36, 48
    guide = rng.random((h, w, 3)).astype(np.float32)
    p = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2)
    post = np.stack([1 - p, p])
    cfg = ClassicalTrackerConfig()
    radii = fusion.smoothing_radii(np.array([900.0]), cfg)
    assert radii == [1, 1]
    got = fusion.guided_smooth(post, fusion.guided_filters(guide, radii, cfg.guided_eps), radii)
    f = cv2.ximgproc.createGuidedFilter(guide, 1, cfg.guided_eps)
    want = np.clip(np.stack([f.filter(q) for q in post]), 0, None)
    want /= want.sum(0, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_one_object_full_size_answer_equals_the_upsampled_arg_max():
    rng = np.random.default_rng(3)
    p = cv2.GaussianBlur(rng.random((18, 32)).astype(np.float32), (0, 0), 2)
    p = (p - p.min()) / (p.max() - p.min())
    smooth = np.stack([1 - p, p])
    got = fusion.full_size_answer(smooth, (45, 80), [0, 7])
    up = np.stack([cv2.resize(s, (80, 45), interpolation=cv2.INTER_LINEAR) for s in smooth])
    want = np.where(up[1] > up[0], 7, 0)
    close = np.abs(up[1] - up[0]) < 1e-5
    assert set(np.unique(got)) <= {0, 7}
    assert np.array_equal(got[~close], want[~close])
    assert 0.2 < np.mean(got == 7) < 0.8


def test_motion_prior_and_consistency_equal_the_array_forms():
    from tam.track.classical import kernels

    rng = np.random.default_rng(4)
    n, h, w = 3, 20, 30
    cfg = ClassicalTrackerConfig()
    back = rng.normal(0, 2, (h, w, 2)).astype(np.float32)
    fwd_at = -back + rng.normal(0, 1, (h, w, 2)).astype(np.float32)
    conf = kernels.consistency(back, fwd_at, np.float32(cfg.consistency_px))
    err = np.hypot(*(back + fwd_at).transpose(2, 0, 1))
    np.testing.assert_allclose(conf, np.exp(-(err / cfg.consistency_px) ** 2), atol=1e-5)
    warped = rng.random((n, h, w)).astype(np.float32)
    warped /= warped.sum(0, keepdims=True)
    blurred = cv2.GaussianBlur(warped.transpose(1, 2, 0), (0, 0), 3).transpose(2, 0, 1).copy()
    blurred[1, :, :10] = 0  # a label absent from part of the frame
    revealed = np.clip(rng.random((h, w)) * 2 - 1, 0, 1).astype(np.float32)  # about half the pixels
    want_present = np.minimum(1.0, blurred / cfg.near_level)
    near = want_present / (want_present.sum(0, keepdims=True) + 1e-12)
    mixed = conf * warped + (1 - conf) * blurred
    # where revealed, that share of the label the flow brought (largest warped) goes to the others by presence
    handed = mixed.copy()
    occluder = warped.argmax(0)
    for y, x in zip(*np.nonzero(revealed > 0)):
        o = occluder[y, x]
        others = [i for i in range(n) if i != o]
        total = want_present[others, y, x].sum()
        if total > 0:
            moved = revealed[y, x] * mixed[o, y, x] * min(1.0, total)
            handed[o, y, x] -= moved
            handed[others, y, x] += moved * want_present[others, y, x] / total
    for rev, base in ((np.zeros((0, 0), np.float32), mixed), (revealed, handed)):
        present, log_prior = kernels.motion_prior(warped, blurred, conf, rev, cfg.near_level, cfg.prior_floor,
                                                  cfg.motion_weight, 1e-6)
        prior = (1 - cfg.prior_floor) * base + cfg.prior_floor * near
        np.testing.assert_allclose(present, want_present, atol=1e-6)
        np.testing.assert_allclose(log_prior, np.log(prior + 1e-6) * cfg.motion_weight, atol=1e-4)


def test_a_revealed_pixel_gives_a_far_object_next_to_nothing():
    # background uncovered behind background (an animal stepping out of its burrow) with the only object's
    # faint blur far away: its share must stay about its presence, not take the whole handed-over prior
    from tam.track.classical import kernels

    h, w = 4, 4
    warped = np.stack([np.ones((h, w)), np.zeros((h, w))]).astype(np.float32)
    blurred = np.stack([np.ones((h, w)), np.full((h, w), 1e-5)]).astype(np.float32)
    conf = np.ones((h, w), np.float32)
    revealed = np.ones((h, w), np.float32)
    for rev in (np.zeros((0, 0), np.float32), revealed):
        _, log_prior = kernels.motion_prior(warped, blurred, conf, rev, 0.05, 0.0, 1.0, 1e-6)
        assert np.exp(log_prior[1]).max() < 1e-3
        assert np.exp(log_prior[0]).min() > 0.99


def test_splat_coverage_counts_the_previous_pixels_landing_on_each_pixel():
    from tam.track.classical import kernels
    from tam.track.classical.motion import revealed_share

    h, w = 30, 40
    fwd = np.zeros((h, w, 2), np.float32)
    np.testing.assert_allclose(kernels.splat_coverage(fwd), 1.0, atol=1e-6)
    # a block moves 3 px right: it lands on pixels that now count twice, and uncovers a 3 px strip
    fwd[10:20, 10:20, 0] = 3.0
    cov = kernels.splat_coverage(fwd)
    assert cov.sum() == np.float32(h * w)
    np.testing.assert_allclose(cov[10:20, 10:13], 0.0)
    np.testing.assert_allclose(cov[10:20, 20:23], 2.0)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    back = np.zeros_like(fwd)
    back[10:20, 13:23, 0] = -3.0
    share = revealed_share(fwd, gx + back[..., 0], gy + back[..., 1], 0.5)
    assert share[12:18, 11].min() == 1.0 and share[:, 30:].max() == 0.0 and share[12:18, 15:19].max() == 0.0
    # the camera pans: the strip whose source lies outside the frame came into view at the edge, not from behind
    pan = np.zeros_like(fwd)
    pan[..., 0] = 5.0
    assert kernels.splat_coverage(pan)[:, :5].max() == 0.0
    assert revealed_share(pan, gx - 5, gy, 0.5).max() == 0.0
