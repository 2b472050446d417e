"""Motion cues from neighbouring frames: optical flow per superpixel, motion codes and motion edges.

A click on frame t may look at frames around t. Parts of one object move
together and a static background of the object's colour does not, so the
displacement of every pixel towards each neighbour (DIS optical flow) is
summarised per superpixel: its mean displacement (pixels at working size), a
histogram over a small k-means codebook of displacements (the motion
counterpart of the colour palette), and, per adjacent pair, how differently
the two sides move.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tam.segment.classical.kmeans import kmeans, nearest

FLOW_SCALE = 0.5  # flow is computed at this share of the working size (DIS is robust there, and 4x cheaper)
MOTION_CODES = 16  # k-means codebook of displacement vectors
MOTION_SAMPLE = 8000  # pixels sampled to fit the codebook
CHUNK = 65536  # pixels per block when assigning codes
CAMERA_GRID = 8  # pixels between the flow samples the camera's homography is fitted to
CAMERA_RANSAC_PX = 1.5  # RANSAC inlier threshold of that fit (working-size pixels) ...
CAMERA_RANSAC_SHARE = 0.1  # ... or this share of the median displacement, when larger (a fast pan)
MIN_CAMERA_SAMPLES = 12  # fewer samples than this: the camera is taken as still
MIN_CAMERA_INLIERS = 0.5  # a neighbour whose camera fit explains less of the frame than this is left out


@dataclass
class Motion:
    """Per-superpixel motion of a prepared frame (n superpixels, D = 2 x neighbours, M codes)."""

    mean: np.ndarray  # n x D mean displacement towards each neighbour, working-size pixels
    hist: np.ndarray  # n x M histogram of displacement codes (rows sum to 1)
    kernel: np.ndarray  # M x M smoothing between codes (rows sum to 1)
    residual: np.ndarray | None = None  # n x D mean displacement left after the camera's motion is taken out


def _grey(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA) if grey.shape[::-1] != size else grey


def displacement_field(work: np.ndarray, neighbours, scale: float) -> np.ndarray:
    """h x w x 2k float32: the displacement of every working-size pixel of ``work`` towards each of the k
    ``neighbours`` (RGB frames of the original size; ``scale`` = working / original)."""
    h, w = work.shape[:2]
    fw, fh = max(8, round(w * FLOW_SCALE)), max(8, round(h * FLOW_SCALE))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    g0 = _grey(work, (fw, fh))
    fields = []
    for frame in neighbours:
        flow = dis.calc(g0, _grey(frame, (fw, fh)), None)
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= w / fw
        flow[..., 1] *= h / fh
        fields.append(flow)
    return np.concatenate(fields, axis=2).astype(np.float32)


def camera_residual(field: np.ndarray) -> np.ndarray | None:
    """h x w x D': the displacement field (h x w x D, D = 2 per neighbour) minus the camera's motion, a
    homography per neighbour fitted by RANSAC to a grid of the field's samples (the dominant motion: the
    background wherever it fills most of the frame). Neighbours whose fit explains less than
    MIN_CAMERA_INLIERS of the samples (the flow failed, or no one motion dominates) are left out
    (D' <= D); None when none is left."""
    h, w, D = field.shape
    ys, xs = np.mgrid[CAMERA_GRID // 2:h:CAMERA_GRID, CAMERA_GRID // 2:w:CAMERA_GRID]
    src = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    if len(src) < MIN_CAMERA_SAMPLES:
        return None
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for c in range(0, D, 2):
        flow = field[..., c:c + 2]
        disp = flow[src[:, 1].astype(int), src[:, 0].astype(int)]
        thr = max(CAMERA_RANSAC_PX, CAMERA_RANSAC_SHARE * float(np.median(np.linalg.norm(disp, axis=1))))
        hom, inliers = cv2.findHomography(src, src + disp, cv2.RANSAC, thr)
        if hom is None or inliers.mean() < MIN_CAMERA_INLIERS:
            continue
        den = hom[2, 0] * gx + hom[2, 1] * gy + hom[2, 2]
        den = np.where(np.abs(den) < 1e-6, 1e-6, den)
        out.append(np.stack([flow[..., 0] - ((hom[0, 0] * gx + hom[0, 1] * gy + hom[0, 2]) / den - gx),
                             flow[..., 1] - ((hom[1, 0] * gx + hom[1, 1] * gy + hom[1, 2]) / den - gy)], 2))
    return np.concatenate(out, 2) if out else None


def _means(field: np.ndarray, flat: np.ndarray, n: int, size: np.ndarray) -> np.ndarray:
    px = field.reshape(-1, field.shape[2])
    return np.stack([np.bincount(flat, px[:, c], n) for c in range(px.shape[1])], 1) / size[:, None]


def motion_model(field: np.ndarray, labels: np.ndarray, n: int, sigma: float, seed: int,
                 residual: bool = True) -> Motion:
    """Summarise a displacement field (h x w x D) over the superpixels ``labels`` (h x w, ids 0..n-1);
    ``residual``: also the displacement left after the camera's motion (``camera_residual``)."""
    flat = labels.ravel()
    D = field.shape[2]
    px = field.reshape(-1, D)
    size = np.bincount(flat, minlength=n).astype(np.float64)
    mean = _means(field, flat, n, size)
    left = camera_residual(field) if residual else None
    residual = None if left is None else _means(left, flat, n, size)
    rng = np.random.RandomState(seed)
    sample = px[rng.choice(len(px), min(len(px), MOTION_SAMPLE), replace=False)]
    codes = kmeans(sample, MOTION_CODES, rng)
    pix_code = np.concatenate([nearest(px[i:i + CHUNK], codes) for i in range(0, len(px), CHUNK)])
    hist = np.bincount(flat * MOTION_CODES + pix_code, minlength=n * MOTION_CODES)
    hist = hist.reshape(n, MOTION_CODES).astype(np.float64)
    hist /= hist.sum(1, keepdims=True)
    cd2 = ((codes[:, None, :] - codes[None, :, :]) ** 2).sum(2) / max(1, D // 2)
    kernel = np.exp(-cd2 / (2 * sigma ** 2))
    kernel /= kernel.sum(1, keepdims=True)
    return Motion(mean, hist, kernel, residual)


def motion_edges(motion: Motion, ei: np.ndarray, ej: np.ndarray, edge_px: float, relative: float) -> np.ndarray:
    """Edge strength in [0, 1] per adjacent pair from how differently the two sides move: the RMS over
    neighbours of their displacement difference, in units of ``edge_px`` pixels plus ``relative`` times
    how fast the pair moves against the frame's median motion (the camera): flow on a fast mover is
    rougher, so a fast object's parts need a larger difference to count as apart."""
    k = np.sqrt(max(1, motion.mean.shape[1] // 2))
    diff = np.linalg.norm(motion.mean[ei] - motion.mean[ej], axis=1) / k
    own = np.linalg.norm(motion.mean - np.median(motion.mean, axis=0), axis=1) / k
    return np.clip(diff / (edge_px + relative * 0.5 * (own[ei] + own[ej])), 0.0, 1.0)
