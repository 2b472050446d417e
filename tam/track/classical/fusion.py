"""Fusion of the classical tracker's cues: all labels compete for every pixel.

The log-posterior is the sum of the cues' log-likelihoods, each with its weight
(motion prior, colour histograms and forest, camera penalty, local colour
models); it is smoothed with an edge-aware guided filter; each object's area is
kept within a few percent of its previous area (erosion by flow and smoothing
would otherwise make thin objects vanish); then the arg-max. Each thick enough
object's boundary is refined by a contrast-sensitive graph cut
(:mod:`tam.track.cut`) in a narrow band, which moves a weak boundary onto the
image edge; graph cuts shrink thin parts, so the boundary cost ramps up with the
object's thickness and thin objects keep the plain arg-max.

Shapes: label stacks are L x h x w float32 at the working size, background first.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tam.track.classical import kernels
from tam.track.classical.config import ClassicalTrackerConfig

MAX_AREA_GAIN = 20.0  # the area balance scales an object's probability by at most this either way
CUT_GAIN_MARGIN = 1.05  # after a cut, a gained pixel's probability is put this far above the others' ...
CUT_LOSS_MARGIN = 0.95  # ... and a lost pixel's this far below


@dataclass
class Cues:
    """Per-label log-likelihood terms of one frame (each L x h x w, or None when off).

    The colour cue is the histograms ``colour_lut`` (L x n_bins) read at each
    pixel's bin ``bins`` (h x w); it and ``forest_posterior`` are weighted by
    ``appearance_weight`` (an h x w map: more where the flow is inconsistent);
    the rest carry their config weight when fused.
    """

    log_prior: np.ndarray
    appearance_weight: np.ndarray | float = 0.0
    colour_lut: np.ndarray | None = None         # colour-texture histograms, L x n_bins (not logs)
    bins: np.ndarray | None = None               # each pixel's colour-texture bin, h x w
    forest_posterior: np.ndarray | None = None   # forest class probabilities (not logs)
    camera_penalty: np.ndarray | None = None     # nats, <= 0
    local: np.ndarray | None = None              # local colour log-likelihoods relative to the best label


def fuse(cues: Cues, cfg: ClassicalTrackerConfig) -> np.ndarray:
    """The posterior (L x h x w float32, summing to 1 over labels) of the weighted cues.

    ``cues.log_prior`` is overwritten (it becomes the answer).
    """
    n, h, w = cues.log_prior.shape
    none = np.zeros((0, 1, 1), np.float32)
    if cues.colour_lut is None:  # no colour cue: a flat histogram of one bin, weighing nothing
        lut, bins, weight = np.ones((n, 1), np.float32), np.zeros((h, w), np.int32), np.zeros((h, w), np.float32)
    else:
        lut, bins = cues.colour_lut, cues.bins
        weight = np.broadcast_to(np.asarray(cues.appearance_weight, np.float32), (h, w))
    return kernels.fuse_cues(
        cues.log_prior, np.ascontiguousarray(lut, np.float32), bins, np.ascontiguousarray(weight),
        none if cues.forest_posterior is None else np.ascontiguousarray(cues.forest_posterior, np.float32),
        np.float32(cfg.forest_weight),
        none if cues.camera_penalty is None else np.ascontiguousarray(cues.camera_penalty, np.float32),
        np.float32(cfg.residual_weight),
        none if cues.local is None else np.ascontiguousarray(cues.local, np.float32),
        np.float32(cfg.local_weight))


def smoothing_radii(prev_area: np.ndarray, cfg: ClassicalTrackerConfig) -> list[int]:
    """The guided filter's radius per label (working px, label order): sqrt(an object's previous area) /
    guided_scale within 1..guided_radius (small objects get a small radius); the background takes the
    smallest objects'."""
    radii = np.clip(np.round(np.sqrt(prev_area) / cfg.guided_scale), 1, cfg.guided_radius).astype(int)
    return [int(radii.min())] + [int(r) for r in radii]


def guided_filters(guide: np.ndarray, radii: list[int], eps: float) -> dict:
    """One OpenCV guided filter per distinct radius, on ``guide`` (h x w x 3 float32 in [0, 1])."""
    return {r: cv2.ximgproc.createGuidedFilter(guide, r, eps) for r in set(radii)}


def guided_smooth(post: np.ndarray, filters: dict, radii: list[int]) -> np.ndarray:
    """Edge-aware smoothing of each label's posterior (L x h x w) with its radius' filter, renormalised."""
    if len(filters) == 1:
        # one radius for all labels: the filter is linear and keeps constants, so the background's
        # answer is one minus the objects' (one filter fewer: half the cost with one object)
        f = filters[radii[0]]
        smooth = np.empty_like(post)
        for i in range(1, post.shape[0]):
            smooth[i] = f.filter(post[i])
        smooth[0] = 1 - smooth[1:].sum(0)
        np.clip(smooth, 0, None, out=smooth)
    else:
        smooth = np.clip(np.stack([filters[r].filter(p) for r, p in zip(radii, post)]), 0, None)
    smooth /= smooth.sum(0, keepdims=True) + 1e-12
    return smooth


def cut_boundaries(lab: np.ndarray, smooth: np.ndarray, arg: np.ndarray, cfg: ClassicalTrackerConfig
                   ) -> np.ndarray:
    """Graph-cut refinement of each thick enough object's boundary; ``smooth`` follows in place.

    ``lab`` is the working frame's Lab image, ``arg`` the label indices (uint8
    h x w); returns the new label indices.
    """
    from tam.track import cut  # loads PyMaxflow, which only this step needs

    for i in range(1, smooth.shape[0]):
        mask = arg == i
        t = cut.thickness(mask)
        if t < cfg.cut_min_thickness:
            continue
        ramp = (t - cfg.cut_min_thickness) / max(cfg.cut_thickness - cfg.cut_min_thickness, 1e-6)
        weight = cfg.cut_weight * min(1.0, ramp)
        others = np.delete(smooth, i, axis=0).max(0)
        new = cut.refine(smooth[i], others, mask, lab, weight, cfg.cut_band)
        if new is None:
            continue
        gain, loss = new & ~mask, mask & ~new
        if not (gain.any() or loss.any()):
            continue
        # the answer is the arg-max of the upsampled probabilities: make them agree with the cut
        smooth[i][gain] = np.maximum(smooth[i][gain], others[gain] * CUT_GAIN_MARGIN + 1e-6)
        smooth[i][loss] = np.minimum(smooth[i][loss], others[loss] * CUT_LOSS_MARGIN)
        smooth /= smooth.sum(0, keepdims=True) + 1e-12
        arg = argmax(smooth)
    return arg


def full_size_answer(smooth: np.ndarray, size: tuple[int, int], labels_all: list[int]) -> np.ndarray:
    """Label values (uint8 H x W, ``size`` = (H, W)) of the bilinearly upsampled probabilities' arg-max."""
    H, W = size
    if (H, W) == smooth.shape[1:]:
        return np.asarray(labels_all, np.uint8)[argmax(smooth)]
    if smooth.shape[0] == 2:
        # bilinear resizing is linear: the object wins where the upsampled difference is positive
        diff = cv2.resize(smooth[1] - smooth[0], (W, H), interpolation=cv2.INTER_LINEAR)
        return np.where(diff > 0, np.uint8(labels_all[1]), np.uint8(labels_all[0]))
    up = np.stack([cv2.resize(s, (W, H), interpolation=cv2.INTER_LINEAR) for s in smooth])
    return np.asarray(labels_all, np.uint8)[argmax(up)]


def balance_areas(prob: np.ndarray, prev_area: np.ndarray, shrink: float, grow: float,
                   max_gain: float = MAX_AREA_GAIN) -> np.ndarray:
    """Rescale each object's probability so its arg-max area stays near its previous area.

    Optical flow and smoothing erode thin objects a little on every frame; left
    alone, an object can vanish in a few dozen frames. Each object's channel is
    scaled (by at most ``max_gain`` either way) so its area stays within
    ``[shrink, grow] x`` the previous one. ``prob`` is modified in place;
    returns the new areas.
    """
    n = prob.shape[0] - 1
    areas = np.zeros(n)
    for i in range(1, n + 1):
        others = np.delete(prob, i, axis=0).max(0)
        ratio = prob[i] / (others + 1e-12)
        area = int(np.count_nonzero(ratio > 1))
        lo, hi = shrink * prev_area[i - 1], grow * prev_area[i - 1]
        gain = 1.0
        flat = ratio.reshape(-1)
        if area < lo and lo >= 1:
            k = min(flat.size - 1, int(lo))
            q = float(np.partition(flat, flat.size - 1 - k)[flat.size - 1 - k])
            gain = min(max_gain, 1.0 / max(q, 1e-12))
        elif area > hi >= 1:
            k = min(flat.size - 1, int(hi))
            q = float(np.partition(flat, flat.size - 1 - k)[flat.size - 1 - k])
            gain = max(1.0 / max_gain, 1.0 / max(q, 1e-12))
        if gain != 1.0:
            prob[i] *= gain
            areas[i - 1] = np.count_nonzero(prob[i] > np.delete(prob, i, axis=0).max(0))
        else:
            areas[i - 1] = area
    prob /= prob.sum(0, keepdims=True)
    return np.maximum(areas, 1.0)


def argmax(prob: np.ndarray) -> np.ndarray:
    """Index of the largest channel per pixel (faster than ndarray.argmax over axis 0)."""
    best = prob[0].copy()
    arg = np.zeros(best.shape, np.uint8)
    for i in range(1, prob.shape[0]):
        better = prob[i] > best
        arg[better] = i
        np.maximum(best, prob[i], out=best)
    return arg
