"""Pixel-level boundary refinement: a graph cut in a narrow band around the superpixel answer.

Masks are h x w bool at the working resolution.
"""
from __future__ import annotations

import cv2
import maxflow
import numpy as np

from tam.segment.classical.config import ClassicalSegmenterConfig
from tam.segment.classical.cut import HARD, softplus
from tam.segment.classical.frame import PreparedFrame

PRIOR = 0.5  # log-odds the superpixel answer adds to each pixel in the band
HIST_COUNT_FLOOR = 1.0  # added to every (smoothed) palette count of the pixel colour models


def band_llr(f: PreparedFrame, mask: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Per-palette-colour log-ratio (K,): the mask's colours against the ring just outside it mixed with
    all of the background."""
    K = len(f.palette)
    hf = np.bincount(f.pix_palette[mask], minlength=K) @ f.kernel + HIST_COUNT_FLOOR
    hb = np.bincount(f.pix_palette[band & ~mask], minlength=K) @ f.kernel + HIST_COUNT_FLOOR
    hb2 = np.bincount(f.pix_palette[~mask], minlength=K) @ f.kernel + HIST_COUNT_FLOOR
    hb = hb / hb.sum() + hb2 / hb2.sum()
    return np.log(hf / hf.sum()) - np.log(hb / hb.sum())


def refine(f: PreparedFrame, cfg: ClassicalSegmenterConfig, mask: np.ndarray) -> np.ndarray:
    """Pixel graph cut in a band of half-width ``refine_band`` around the mask's outline; the mask's eroded
    core stays object and everything beyond the dilated outline stays background."""
    k = np.ones((2 * cfg.refine_band + 1,) * 2, np.uint8)
    m8 = mask.astype(np.uint8)
    outer = cv2.dilate(m8, k).astype(bool)
    inner = cv2.erode(m8, k).astype(bool)
    band = outer & ~inner
    ys, xs = np.nonzero(outer)
    y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, mask.shape[0])
    x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, mask.shape[1])
    sl = (slice(y0, y1), slice(x0, x1))
    u = band_llr(f, mask, band)[f.pix_palette[sl]].astype(np.float64)
    u += np.where(mask[sl], PRIOR, -PRIOR)
    cost_fg = softplus(-u)
    cost_bg = softplus(u)
    cost_fg[~outer[sl]] = HARD
    cost_bg[inner[sl]] = HARD
    g = maxflow.Graph[float]()
    ids = g.add_grid_nodes(cost_fg.shape)
    add_contrast_edges(g, ids, f.lab[sl], cfg.refine_pair)
    g.add_grid_tedges(ids, cost_bg, cost_fg)
    g.maxflow()
    out = mask.copy()
    out[sl] = ~g.get_grid_segments(ids)
    return out


def add_contrast_edges(g, ids, lab: np.ndarray, weight: float) -> None:
    """4-connected pixel edges weighted ``weight * exp(-beta * |Lab difference|^2)`` (GrabCut's beta)."""
    for dy, dx in ((0, 1), (1, 0)):
        d = np.zeros(ids.shape)
        diff = lab[dy:, dx:] - lab[:lab.shape[0] - dy, :lab.shape[1] - dx]
        d2 = (diff ** 2).sum(2)
        d[: d2.shape[0], : d2.shape[1]] = d2
        beta = 1.0 / (2.0 * d2.mean() + 1e-6)
        st = np.zeros((3, 3))
        st[1 + dy, 1 + dx] = 1
        g.add_grid_edges(ids, weights=weight * np.exp(-beta * d), structure=st, symmetric=True)


def refine_keeping_pieces(f: PreparedFrame, cfg: ClassicalSegmenterConfig, mask: np.ndarray) -> np.ndarray:
    """``refine``, except that a connected piece it would shrink below ``refine_keep`` of its area stays as
    it was: the refinement moves outlines, it does not decide which parts belong."""
    refined = refine(f, cfg, mask)
    if cfg.refine_keep <= 0:
        return refined
    n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    area = np.bincount(comp.ravel(), minlength=n)
    kept = np.bincount(comp[refined & mask], minlength=n)
    lost = np.flatnonzero(kept < cfg.refine_keep * area)
    lost = lost[lost > 0]
    return refined | np.isin(comp, lost) if len(lost) else refined
