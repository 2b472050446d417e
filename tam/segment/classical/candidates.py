"""Candidate regions from the clicks: geodesic evidence per superpixel and the newest click's own region.

Distances run over the superpixel graph (a step costs the colour change plus
the edge strength crossed) and are compared in geo-scales (``frame.geo_unit``).
Every array here is per superpixel (length n) unless it says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse.csgraph import dijkstra

from tam.segment.base import Prompt
from tam.segment.classical.config import ClassicalSegmenterConfig
from tam.segment.classical.frame import PreparedFrame

GEO_CLIP = 3.0  # geodesic evidence is clipped to +-this many geo-scales
INFLUENCE_CLIP = 6.0  # the newest click's region fades over at most this many geo-scales
BOX_RING = 5  # pixels: width of the box's inner frame, seeded like the image border
SPLIT_CLIP = 30.0  # logistic clip of a negative click's split
NO_LIMIT = 1e6  # stands for an unbounded background distance in the growth limit


@dataclass
class Clicks:
    """The prompt's clicks at working size: ``pts`` (N, 2) int x, y; ``labs`` (N,) 1/0; their superpixels."""

    pts: np.ndarray
    labs: np.ndarray
    pos_sp: np.ndarray  # superpixels under positive clicks
    neg_sp: np.ndarray  # superpixels under negative clicks, minus any that a positive click also holds

    @property
    def any_positive(self) -> bool:
        return bool((self.labs == 1).any())

    def positive_points(self, before_last: bool = False) -> np.ndarray:
        pts, labs = (self.pts[:-1], self.labs[:-1]) if before_last else (self.pts, self.labs)
        return pts[labs == 1]


@dataclass
class BoxRegion:
    """The box prompt's constraint: ``inside`` (n,) superpixels mostly in the box, ``ring`` (n,) its frame
    (the image border when there is no box), ``pixels`` h x w bool (None without a box)."""

    inside: np.ndarray
    ring: np.ndarray
    pixels: np.ndarray | None


@dataclass
class Evidence:
    """Geodesic evidence: ``d_pos`` distance from the positive clicks (None for a box alone), ``d_bg`` from
    the negative clicks and the background seeds, ``geo`` the clipped object evidence in geo-scales."""

    d_pos: np.ndarray | None
    d_bg: np.ndarray
    geo: np.ndarray


@dataclass
class ClickRegion:
    """The newest click's region: ``infl`` (n,) in [0, 1] how strongly it overrides the previous mask,
    ``new_term`` its signed weight in the cut's score."""

    infl: np.ndarray
    new_term: np.ndarray


def read_clicks(f: PreparedFrame, prompt: Prompt) -> Clicks:
    """The prompt's clicks at working size (conflicting clicks on one superpixel: the positive one wins)."""
    h, w = f.labels.shape
    pts = np.asarray(prompt.points, np.float64).reshape(-1, 2) * f.scale
    pts = np.clip(np.floor(pts), 0, [w - 1, h - 1]).astype(int)
    labs = np.asarray(prompt.labels).reshape(-1)
    pos_sp = f.superpixels_at(pts[labs == 1])
    neg_sp = np.setdiff1d(f.superpixels_at(pts[labs == 0]), pos_sp)
    return Clicks(pts, labs, pos_sp, neg_sp)


def box_region(f: PreparedFrame, box) -> BoxRegion:
    """Outside the box is background and its frame acts like the image border; no box: the whole frame."""
    if box is None:
        return BoxRegion(np.ones(f.n, bool), f.border.copy(), None)
    h, w = f.labels.shape
    x0, y0, x1, y1 = (v * f.scale for v in box)
    ys, xs = np.mgrid[0:h, 0:w]
    in_box = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    inside = np.bincount(f.labels.ravel(), in_box.ravel(), f.n) / f.size > 0.5
    ring_px = in_box & ~cv2.erode(in_box.astype(np.uint8), np.ones((BOX_RING, BOX_RING), np.uint8)).astype(bool)
    ring = np.zeros(f.n, bool)
    ring[np.unique(f.labels[ring_px])] = True
    return BoxRegion(inside, ring & inside, in_box)


def geodesic_evidence(f: PreparedFrame, cfg: ClassicalSegmenterConfig, clicks: Clicks, box: BoxRegion) -> Evidence:
    """Object evidence per superpixel: closer to a positive click than to the background, within the extent
    that the click's growth front picks (``growth_extent``); with a box alone, far from the box's frame."""
    n, unit = f.n, f.geo_unit
    d_pos = f.distances(clicks.pos_sp) if len(clicks.pos_sp) else None
    d_neg = f.distances(clicks.neg_sp)
    ring = np.flatnonzero(box.ring & ~np.isin(np.arange(n), clicks.pos_sp))
    d_ring = f.distances(ring) + cfg.border_offset * unit if len(ring) else np.full(n, np.inf)
    d_bg = np.minimum(d_neg, d_ring)
    if d_pos is None:
        geo = np.clip(d_bg / unit - 1.0, -GEO_CLIP, GEO_CLIP)
    else:
        limit = growth_extent(f, cfg, d_pos, d_bg, box.inside)
        geo = np.clip((np.minimum(np.minimum(d_bg, NO_LIMIT), limit) - d_pos) / unit, -GEO_CLIP, GEO_CLIP)
    geo = np.where(np.isfinite(geo), geo, -GEO_CLIP)
    return Evidence(d_pos, d_bg, geo)


def growth_extent(f: PreparedFrame, cfg: ClassicalSegmenterConfig, d_pos, d_bg, inside, base=None,
                  tolerance=None) -> float:
    """Geodesic radius of the growth around a click: among the candidate areas ``cfg.extent_fractions``
    (shares of the frame), the widest front for which the outline of ``base | grown region`` (``base``:
    the previous mask, if any) follows edges nearly as strong as the best front's."""
    grow = np.isfinite(d_pos) & (d_pos < d_bg) & inside
    if base is not None:
        grow &= ~base
    order = np.argsort(np.where(grow, d_pos, np.inf), kind="stable")[: int(grow.sum())]
    cum = np.cumsum(f.size[order]) / f.size.sum()
    cap = np.inf
    if base is not None and base.any():
        cap = cfg.growth_cap * f.size[base].sum() / f.size.sum() + 0.002
    cands = []
    for frac in cfg.extent_fractions:
        if frac > cap:
            break
        k = int(np.searchsorted(cum, frac))
        if k >= len(order):
            break
        t = d_pos[order[k]]
        region = grow & (d_pos <= t)
        if base is not None:
            region |= base
        cross = region[f.ei] != region[f.ej]
        if not cross.any():
            continue
        cands.append((t, float((f.blen[cross] * f.bedge[cross]).sum() / f.blen[cross].sum())))
    if not cands:
        return float(d_pos[order[0]]) if len(order) else 0.0
    best = max(c[1] for c in cands)
    tol = cfg.extent_tolerance if tolerance is None else tolerance
    return max(t for t, sc in cands if sc >= tol * best)


def spread_extent(f: PreparedFrame, cfg: ClassicalSegmenterConfig, d_new, d_opp, inside, inner, old_sp) -> float:
    """Geodesic radius for a positive click outside the mask ``inner``: the mask's own spread (the
    ``adapt_q`` percentile of the distance from the earlier positive clicks ``old_sp`` over the mask) times
    ``adapt_growth``, limited so the growth adds at most ``adapt_cap`` times the mask's area; 0 without a mask."""
    if not len(old_sp) or not inner.any():
        return 0.0
    d_old = dijkstra(f.graph, directed=False, indices=old_sp, min_only=True)
    vals = d_old[inner & np.isfinite(d_old)]
    if not len(vals):
        return 0.0
    t = cfg.adapt_growth * float(np.percentile(vals, cfg.adapt_q))
    return min(t, radius_for_area(f, d_new, d_opp, inside, inner, cfg.adapt_cap * f.size[inner].sum()))


def radius_for_area(f: PreparedFrame, d_new, d_opp, inside, inner, area: float) -> float:
    """Geodesic radius around a click (``d_new``: its distance) within which the superpixels outside the
    mask ``inner`` that it may grow over (nearer to it than ``d_opp``, inside the box) cover ``area``
    working pixels; inf when they cover less."""
    grow = np.isfinite(d_new) & (d_new < d_opp) & inside & ~inner
    order = np.argsort(np.where(grow, d_new, np.inf), kind="stable")[: int(grow.sum())]
    k = int(np.searchsorted(np.cumsum(f.size[order]), area))
    return float(d_new[order[k]]) if k < len(order) else np.inf


def depth_extent(f: PreparedFrame, cfg: ClassicalSegmenterConfig, d_new, d_opp, inside, inner, x: int,
                 y: int) -> float:
    """Geodesic radius for a positive click at (``x``, ``y``) (working pixels) outside the mask ``inner``:
    it grows over at most ``depth_cap`` x pi x D^2 working pixels, D being its distance (pixels) to the
    mask, and at least the smallest candidate extent (``extent_fractions[0]`` of the frame); inf when
    the cap is off or there is no mask."""
    if cfg.depth_cap <= 0 or not inner.any():
        return np.inf
    outside = ~inner[f.labels]
    depth = float(cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)[y, x])
    area = max(cfg.depth_cap * np.pi * depth ** 2, cfg.extent_fractions[0] * f.size.sum())
    return radius_for_area(f, d_new, d_opp, inside, inner, area)


def surface_similarity(f: PreparedFrame, cfg: ClassicalSegmenterConfig, sp: int) -> np.ndarray:
    """(n,) in (0, 1]: how much each superpixel looks like superpixel ``sp`` (a Gaussian of the mean-colour
    distance in units of ``neg_surface`` Lab and, with neighbouring frames, of the mean-motion difference in
    units of ``motion_edge`` pixels)."""
    d2 = (np.linalg.norm(f.mean - f.mean[sp], axis=1) / cfg.neg_surface) ** 2
    if f.motion is not None:
        k = np.sqrt(max(1, f.motion.mean.shape[1] // 2))
        d2 = d2 + (np.linalg.norm(f.motion.mean - f.motion.mean[sp], axis=1) / (k * cfg.motion_edge)) ** 2
    return np.exp(-0.5 * d2)


def newest_click_region(f: PreparedFrame, cfg: ClassicalSegmenterConfig, clicks: Clicks, ev: Evidence,
                        box: BoxRegion, prev: np.ndarray | None) -> ClickRegion:
    """Where the newest click overrides the previous mask (``prev``: each superpixel's share of it).

    A negative click takes back the part of the previous mask geodesically closer to it than to any
    positive click, fading with how unlike the clicked surface it looks (``surface_similarity``); a
    positive click grows by ``growth_extent`` (judged with the mask it joins) and, when there is a mask,
    at least by ``spread_extent`` and at most by ``depth_extent``.
    """
    n, unit = f.n, f.geo_unit
    if not len(clicks.pts):
        return ClickRegion(np.zeros(n), np.zeros(n))
    x, y = clicks.pts[-1]
    label = int(clicks.labs[-1])
    d_new = dijkstra(f.graph, directed=False, indices=[int(f.labels[y, x])])[0]
    if label == 0 and prev is not None and ev.d_pos is not None:
        gap = np.clip((ev.d_pos - d_new) / (cfg.split_softness * unit), -SPLIT_CLIP, SPLIT_CLIP)
        infl = (prev > 0.5) / (1.0 + np.exp(-gap))
        if cfg.neg_surface > 0:
            infl = infl * surface_similarity(f, cfg, int(f.labels[y, x]))
    else:
        d_opp = ev.d_bg if label == 1 else (ev.d_pos if ev.d_pos is not None else np.full(n, np.inf))
        base = (prev > 0.5) if (prev is not None and cfg.union_extent) else None
        lim = growth_extent(f, cfg, d_new, d_opp, box.inside, base)
        if label == 1 and prev is not None:
            inner = prev > 0.5
            if cfg.adapt_growth > 0:
                old_sp = f.superpixels_at(clicks.positive_points(before_last=True))
                lim = max(lim, spread_extent(f, cfg, d_new, d_opp, box.inside, inner, old_sp))
            lim = min(lim, depth_extent(f, cfg, d_new, d_opp, box.inside, inner, x, y))
        z = np.clip((np.minimum(lim, d_opp) - d_new) / unit, -INFLUENCE_CLIP, INFLUENCE_CLIP)
        infl = 1.0 / (1.0 + np.exp(-2.0 * z))
    return ClickRegion(infl, cfg.w_new * (1.0 if label else -1.0) * infl)
