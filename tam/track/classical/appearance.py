"""Appearance cues of the classical tracker: what each label looks like.

* Global: a joint histogram of colour and texture (smoothed gradient magnitude)
  per label, each object and the background near the objects, learned from every
  annotated frame (the long-term memory: a correction anywhere teaches every
  segment) and updated conservatively from tracked frames whose areas stayed
  plausible (:class:`ColourModels`). The random forest over patch descriptors
  (:mod:`tam.track.forest`), trained on the annotated frames only, tells
  look-alike colours apart by their surroundings.
* Local: per-pixel Gaussian colour models of each label fitted in a window
  around the pixel on the previous frame warped onto the current one
  (:func:`local_loglik`).

Label order everywhere: background first, then the objects in ``ids`` order.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# gradient magnitude (Sobel) mapped to the top texture bin: the response to a 100-grey-level step
TEXTURE_TOP = 400.0
# background histogram: shares of the band near the objects and of the whole background
NEAR_BACKGROUND_SHARE = 0.8
ALL_BACKGROUND_SHARE = 0.2
# local colour models: a window whose (soft) support for a label is under this share does not judge it
LOCAL_MIN_SUPPORT = 0.02
LOCAL_FLOOR = -8.0  # lowest local log-likelihood relative to the best label (nats)
LOCAL_RANGE = 40.0  # a label's log-likelihoods are clipped this far below their maximum (nats)
# tracked frames update the colour models only when every object's area is within these multiples
# of its annotated area
UPDATE_AREA_RANGE = (0.5, 2.0)
KEYFRAME_PULL = 0.5  # after an update, the models are pulled this far back to the keyframes'


def texture_bin(gray: np.ndarray, n: int, sigma: float) -> np.ndarray:
    """Smoothed gradient magnitude quantised on a log scale into ``n`` bins (int32).

    Joined to the colour bins it tells smooth regions (sky, fur, a shirt) from
    textured ones of the same colour (grass, foliage, a fence), which colour alone confuses.
    """
    mag = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    if sigma > 0:
        mag = cv2.GaussianBlur(mag, (0, 0), sigma)
    # bin edges equally spaced in log(1 + magnitude) up to TEXTURE_TOP (the Sobel response to a
    # 100-grey-level step; stronger edges share the top bin); counting the edges passed
    # is cheaper than a per-pixel log
    q = np.zeros(mag.shape, np.int32)
    for k in range(1, n):
        q += mag > np.expm1(k * np.log1p(TEXTURE_TOP) / n)
    return q


def smooth_hist(hist: np.ndarray, bins: int, texture: int = 1) -> np.ndarray:
    """Blur a flattened bins^3 x texture histogram a little so unseen neighbouring bins are not impossible."""
    cube = hist.reshape(bins, bins, bins, texture).astype(np.float32)
    for axis in range(3):
        cube = (np.roll(cube, 1, axis) * 0.25 + cube * 0.5 + np.roll(cube, -1, axis) * 0.25)
    if texture > 1:  # texture is ordinal: neighbours clamped at the ends, not wrapped round
        lo = np.concatenate([cube[..., :1], cube[..., :-1]], axis=-1)
        hi = np.concatenate([cube[..., 1:], cube[..., -1:]], axis=-1)
        cube = lo * 0.25 + cube * 0.5 + hi * 0.25
    cube = cube / max(float(cube.sum()), 1e-12)
    return (cube.reshape(-1) + 1e-6 / cube.size).astype(np.float32)


def label_histograms(frame_bins: np.ndarray, labels: np.ndarray, ids: list[int], n_bins: int,
                     band: int) -> dict[int, np.ndarray]:
    """Normalised colour-texture histograms (float64, ``n_bins``) per object and for the background.

    ``frame_bins`` is a WorkFrame's bin map and ``labels`` a working-size label
    map; the background's histogram mixes its pixels within ``band`` working px
    of an object with all of its pixels.
    """
    out = {}
    for k in ids:
        m = labels == k
        out[k] = np.bincount(frame_bins[m], minlength=n_bins).astype(np.float64)
    fg = (labels > 0).astype(np.uint8)
    dist = cv2.distanceTransform(1 - fg, cv2.DIST_L2, 3)
    bg_near = (dist > 0) & (dist <= band)
    bg = np.bincount(frame_bins[bg_near], minlength=n_bins).astype(np.float64)
    bg_all = np.bincount(frame_bins[fg == 0], minlength=n_bins).astype(np.float64)
    out[0] = (bg / max(bg.sum(), 1) * NEAR_BACKGROUND_SHARE
              + bg_all / max(bg_all.sum(), 1) * ALL_BACKGROUND_SHARE)
    for k in ids:
        out[k] /= max(out[k].sum(), 1)
    return out


def colour_fit(frame_bins: np.ndarray, mask: np.ndarray, luts: np.ndarray, i: int) -> float:
    """Mean log colour-likelihood ratio (nats), label ``i`` against the background, over ``mask``."""
    if not mask.any():
        return -np.inf
    b = frame_bins[mask]
    return float(np.mean(np.log(luts[i][b]) - np.log(luts[0][b])))


@dataclass
class ColourModels:
    """Each label's colour-texture histogram (L x n_bins float32, rows in label order).

    ``keyframe`` is learned from the annotated frames and never changes during
    a segment; ``current`` follows the tracked frames and is pulled back to it.
    """

    keyframe: np.ndarray
    current: np.ndarray

    @classmethod
    def from_keyframes(cls, models: dict[int, np.ndarray], labels_all: list[int], n_bins: int) -> ColourModels:
        """Rows for ``labels_all``; a label no keyframe shows gets the uniform histogram."""
        key = np.stack([models.get(k, np.full(n_bins, 1.0 / n_bins)) for k in labels_all])
        return cls(key, key.copy())

    def update(self, frame_bins: np.ndarray, labels: np.ndarray, ids: list[int], labels_all: list[int],
               config) -> None:
        """Blend in a tracked frame's histograms (``labels``: working-size label values) at ``update_rate``."""
        new = label_histograms(frame_bins, labels, ids, config.n_bins, config.band)
        luts = self.current
        for i, k in enumerate(labels_all):
            cur_h = smooth_hist(new[k], config.bins, config.texture_bins)
            luts[i] = (1 - config.update_rate) * luts[i] + config.update_rate * cur_h
        self.current = (1 - KEYFRAME_PULL) * luts + KEYFRAME_PULL * self.keyframe


def local_loglik(cur: np.ndarray, ref: np.ndarray, weights: np.ndarray, radius: int, sigma: float,
                  floor: float = LOCAL_FLOOR) -> np.ndarray:
    """Per-label log-likelihood of each pixel's colour under Gaussians fitted in a window around it.

    ``ref`` is the previous frame warped onto the current one and ``weights`` its
    per-label (soft) membership; labels with too little support in a window get ``floor``.
    """
    k = (2 * radius + 1, 2 * radius + 1)
    out = np.empty(weights.shape, np.float32)
    ref2 = ref * ref
    s2 = np.float32(sigma * sigma)
    for i, wl in enumerate(weights):
        wsum = cv2.boxFilter(wl, -1, k, normalize=True)
        ok = wsum > LOCAL_MIN_SUPPORT
        inv = (1.0 / np.maximum(wsum, 1e-6))[..., None]
        wl3 = wl[..., None]
        m1 = cv2.boxFilter(ref * wl3, -1, k, normalize=True)
        m1 *= inv
        var = cv2.boxFilter(ref2 * wl3, -1, k, normalize=True)
        var *= inv
        var -= m1 * m1
        np.maximum(var, 0, out=var)
        var += s2
        # in place, and the channel sum spelled out: this runs on every pixel of every label
        d = cur - m1
        d *= d
        d /= var
        d += np.log(var)
        ll = d[..., 0] + d[..., 1] + d[..., 2]
        ll *= -0.5
        np.maximum(ll, ll.max() - LOCAL_RANGE, out=ll)
        ll[~ok] = -1e9
        out[i] = ll
    best = out.max(0, keepdims=True)
    return np.maximum(out - best, floor)
