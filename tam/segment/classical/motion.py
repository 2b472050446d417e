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


@dataclass
class Motion:
    """Per-superpixel motion of a prepared frame (n superpixels, D = 2 x neighbours, M codes)."""

    mean: np.ndarray  # n x D mean displacement towards each neighbour, working-size pixels
    hist: np.ndarray  # n x M histogram of displacement codes (rows sum to 1)
    kernel: np.ndarray  # M x M smoothing between codes (rows sum to 1)


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


def motion_model(field: np.ndarray, labels: np.ndarray, n: int, sigma: float, seed: int) -> Motion:
    """Summarise a displacement field (h x w x D) over the superpixels ``labels`` (h x w, ids 0..n-1)."""
    flat = labels.ravel()
    D = field.shape[2]
    px = field.reshape(-1, D)
    size = np.bincount(flat, minlength=n).astype(np.float64)
    mean = np.stack([np.bincount(flat, px[:, c], n) for c in range(D)], 1) / size[:, None]
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
    return Motion(mean, hist, kernel)


def motion_edges(motion: Motion, ei: np.ndarray, ej: np.ndarray, edge_px: float, relative: float) -> np.ndarray:
    """Edge strength in [0, 1] per adjacent pair from how differently the two sides move: the RMS over
    neighbours of their displacement difference, in units of ``edge_px`` pixels plus ``relative`` times
    how fast the pair moves against the frame's median motion (the camera): flow on a fast mover is
    rougher, so a fast object's parts need a larger difference to count as apart."""
    k = np.sqrt(max(1, motion.mean.shape[1] // 2))
    diff = np.linalg.norm(motion.mean[ei] - motion.mean[ej], axis=1) / k
    own = np.linalg.norm(motion.mean - np.median(motion.mean, axis=0), axis=1) / k
    return np.clip(diff / (edge_px + relative * 0.5 * (own[ei] + own[ej])), 0.0, 1.0)
