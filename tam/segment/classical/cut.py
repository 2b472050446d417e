"""The superpixel graph cut: colour/texture models, the unary score, the pairwise term and max-flow.

Scores are log-odds per superpixel (positive means object); costs are scaled
by the square root of each superpixel's area.
"""
from __future__ import annotations

from dataclasses import dataclass

import maxflow
import numpy as np

from tam.segment.classical.candidates import ClickRegion, Clicks, Evidence
from tam.segment.classical.config import ClassicalSegmenterConfig
from tam.segment.classical.frame import PreparedFrame
from tam.segment.classical.motion_prior import click_motion_prior

HARD = 1e9  # cost that forbids a label
PREV_GAIN = 3.0  # log-odds a fully trusted previous mask adds (times w_prev)
HIST_FLOOR = 1e-3  # added to every palette bin of a colour model
GEO_SHARPNESS = 2.0  # slope of the logistic that turns geodesic evidence into initial object weights
LOGIT_FLOOR = 0.5  # the answer's logits are at least this far from 0 ...
LOGIT_CAP = 4.0  # ... and at most this far


@dataclass
class CutResult:
    """``labels`` (n,) bool object superpixels; ``score`` (n,) the last round's unary log-odds."""

    labels: np.ndarray
    score: np.ndarray

    def logits(self) -> np.ndarray:
        """Signed confidence per superpixel in [-LOGIT_CAP, LOGIT_CAP]."""
        return np.where(self.labels, 1.0, -1.0) * np.minimum(np.abs(self.score) + LOGIT_FLOOR, LOGIT_CAP)


def softplus(x):
    return np.logaddexp(0.0, x)


def histogram_logratio(hist: np.ndarray, kernel: np.ndarray, size: np.ndarray, fg_w: np.ndarray) -> np.ndarray:
    """log p(hist | object) - log p(hist | background) per superpixel: both models are mixtures of the
    superpixels' histograms (n x K) weighted by ``fg_w`` (n,) in [0, 1] and by area, smoothed by ``kernel``."""
    mf = ((fg_w * size) @ hist) @ kernel + HIST_FLOOR
    mb = (((1.0 - fg_w) * size) @ hist) @ kernel + HIST_FLOOR
    mf /= mf.sum()
    mb /= mb.sum()
    return hist @ (np.log(mf) - np.log(mb))


def colour_logratio(f: PreparedFrame, fg_w: np.ndarray) -> np.ndarray:
    """The colour/texture log-ratio per superpixel (palette histograms)."""
    return histogram_logratio(f.hist, f.kernel, f.size, fg_w)


def appearance_logratio(f: PreparedFrame, cfg: ClassicalSegmenterConfig, fg_w: np.ndarray) -> np.ndarray:
    """Colour, plus motion when the frame has neighbours, as weighted log-ratios per superpixel."""
    out = cfg.w_colour * colour_logratio(f, fg_w)
    if f.motion is not None and cfg.w_motion > 0:
        out = out + cfg.w_motion * histogram_logratio(f.motion.hist, f.motion.kernel, f.size, fg_w)
    return out


def moves_apart(f: PreparedFrame, cfg: ClassicalSegmenterConfig, labels: np.ndarray) -> np.ndarray:
    """(n,) bool: superpixels whose motion the object's motion model (fitted to the cut's answer ``labels``)
    rejects by more than ``motion_veto`` in log-odds; none for a still image."""
    if f.motion is None or cfg.motion_veto <= 0 or not labels.any() or labels.all():
        return np.zeros(f.n, bool)
    llr = histogram_logratio(f.motion.hist, f.motion.kernel, f.size, labels.astype(np.float64))
    return (llr < -cfg.motion_veto) & ~labels


def pair_weights(f: PreparedFrame, cfg: ClassicalSegmenterConfig) -> np.ndarray:
    """Smoothness weight per adjacent pair: long shared boundaries, similar colours and no edge cost most."""
    beta = 1.0 / (2.0 * np.mean(f.dcol ** 2) + 1e-6)
    return cfg.w_pair * np.sqrt(f.blen) * np.exp(-beta * f.dcol ** 2) * (1.0 - f.bedge) ** 2


def max_flow(f: PreparedFrame, cost_fg: np.ndarray, cost_bg: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Minimum cut over the superpixel graph; ``cost_fg`` is paid by object superpixels. Returns (n,) bool."""
    g = maxflow.Graph[float]()
    g.add_nodes(f.n)
    g.add_edges(f.ei, f.ej, pair, pair)
    g.add_grid_tedges(np.arange(f.n), cost_bg, cost_fg)
    g.maxflow()
    return ~g.get_grid_segments(np.arange(f.n))


def initial_weights(ev: Evidence, prev: np.ndarray | None, inside: np.ndarray,
                    prior: np.ndarray | None = None) -> np.ndarray:
    """Object weights (n,) in [0, 1] for the first colour models: the geodesic evidence (plus the motion
    prior's log-odds when given), averaged with the previous mask when there is one; 0 outside the box."""
    z = GEO_SHARPNESS * ev.geo if prior is None else GEO_SHARPNESS * ev.geo + prior
    fg_w = 1.0 / (1.0 + np.exp(-z))
    if prev is not None:
        fg_w = 0.5 * fg_w + 0.5 * prev
    fg_w[~inside] = 0.0
    return fg_w


def solve(f: PreparedFrame, cfg: ClassicalSegmenterConfig, clicks: Clicks, ev: Evidence, region: ClickRegion,
          inside: np.ndarray, prev: np.ndarray | None) -> CutResult:
    """Cut with the score colour + geodesic evidence + the newest click's term + the motion prior grown from
    the positive clicks (with neighbouring frames) + the previous mask outside the click's region; clicks and the box are hard constraints. ``rounds`` re-estimates the colour models."""
    prior = click_motion_prior(f, cfg, clicks.pos_sp)
    fg_w0 = initial_weights(ev, prev, inside, prior if cfg.prior_init else None)
    fg_w = fg_w0.copy()
    prev_w = None if prev is None else cfg.w_prev * (1.0 - region.infl)
    pair = pair_weights(f, cfg)
    area = np.sqrt(f.size)
    labels = fg_w > 0.5
    score = None
    for _ in range(cfg.rounds):
        score = appearance_logratio(f, cfg, fg_w) + cfg.w_geo * ev.geo + region.new_term
        if prior is not None:
            score = score + cfg.w_motion_prior * prior
        if prev_w is not None:
            score = score + prev_w * (2 * prev - 1) * PREV_GAIN
        cost_fg = softplus(-score) * area
        cost_bg = softplus(score) * area
        cost_fg[~inside] = HARD
        cost_fg[clicks.neg_sp] = HARD
        cost_bg[clicks.pos_sp] = HARD
        labels = max_flow(f, cost_fg, cost_bg, pair)
        if not labels.any():
            break
        fg_w = 0.5 * labels + 0.5 * fg_w0
    return CutResult(labels, score)
