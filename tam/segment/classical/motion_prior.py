"""A motion prior grown from the clicks: superpixels that move against the camera, as a clicked one does.

With neighbouring frames, every superpixel has a displacement left after the
camera's motion is taken out (``Motion.residual``). An object moving against
its background shows one there, a static background of the object's colour
none. For a positive click whose superpixel moves against the camera, each
superpixel's evidence of moving against the camera too is the log of its
residual speed over a threshold set by the click's own (in any direction: an
object's limbs swing apart); only the positive evidence connected to a click through positive
evidence counts (a second mover elsewhere in the frame stays neutral).
Everything here is per superpixel (length n), in log-odds.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tam.segment.classical.config import ClassicalSegmenterConfig
from tam.segment.classical.frame import PreparedFrame


def moves_at_all(residual: np.ndarray, sp: int, floor: float, relative: float, gain: float,
                 cap: float) -> np.ndarray:
    """(n,) log-odds that each superpixel moves against the camera as the clicked superpixel ``sp`` does, in
    whatever direction (an object's parts swing apart): ``gain`` times the log of its residual speed over a
    threshold (``relative`` times the click's residual speed, at least ``floor`` pixels), clipped to
    +-``cap``. Speeds are RMS over the neighbours of the residual displacements (n x D)."""
    k = max(1, residual.shape[1] // 2)
    speed = np.sqrt((residual ** 2).sum(1) / k)
    tau = max(floor, relative * speed[sp])
    return np.clip(gain * np.log((speed + 1e-3) / tau), -cap, cap)


def grown_from(f: PreparedFrame, positive: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(n,) bool: the superpixels of ``positive`` (n,) bool connected to one of ``seeds`` through ``positive``."""
    keep = positive[f.ei] & positive[f.ej]
    g = coo_matrix((np.ones(int(keep.sum())), (f.ei[keep], f.ej[keep])), shape=(f.n, f.n))
    _, comp = connected_components(g, directed=False)
    seeds = seeds[positive[seeds]]
    return positive & np.isin(comp, comp[seeds])


def click_motion_prior(f: PreparedFrame, cfg: ClassicalSegmenterConfig, pos_sp: np.ndarray) -> np.ndarray | None:
    """(n,) log-odds of moving with a positively clicked superpixel, or None (a still image, no positive
    click moving against the camera by ``prior_min_px`` pixels, or the prior switched off)."""
    if f.motion is None or f.motion.residual is None or cfg.w_motion_prior <= 0 or not len(pos_sp):
        return None
    res = f.motion.residual
    k = max(1, res.shape[1] // 2)
    moving = [int(s) for s in pos_sp if np.sqrt((res[s] ** 2).sum() / k) >= cfg.prior_min_px]
    if not moving:
        return None
    llr = np.max([moves_at_all(res, s, cfg.prior_min_px, cfg.prior_relative, cfg.prior_gain, cfg.prior_cap)
                  for s in moving], axis=0)
    grown = grown_from(f, llr > 0, np.asarray(moving))
    if f.size[grown].sum() > cfg.prior_max_share * f.size.sum():
        return None  # most of the frame moves with the click: the camera's motion was not found
    return np.where(llr > 0, llr * grown, llr)
