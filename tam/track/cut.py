"""Contrast-sensitive graph cut refining one object's boundary within a narrow band.

Used by the classical tracker after the per-pixel competition: the arg-max of
smoothed probabilities follows colour evidence pixel by pixel, so a region of
the background coloured like the object (a shadow, a reflection) that touches
it is swallowed. A cut whose boundary cost is low across image edges and high
inside uniform regions moves the boundary onto the image edge, and cuts off such
appendages. Only a band around the current boundary is free (the rest is fixed to
the arg-max), which keeps it cheap and bounds how far it may move the boundary.
"""
from __future__ import annotations

import cv2
import maxflow
import numpy as np


def thickness(mask: np.ndarray) -> float:
    """The 90th percentile of the distance to the background inside ``mask`` (pixels; 0 if empty).

    About half the width of the object's thick parts (a 40 px square gives 13).
    A graph cut's boundary cost shrinks whatever is narrow against its length
    (the shrinking bias), so the tracker gives thin objects a weaker cut or none.
    """
    if not mask.any():
        return 0.0
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    return float(np.percentile(dist[mask], 90))


def refine(prob: np.ndarray, others: np.ndarray, mask: np.ndarray, image: np.ndarray, weight: float,
           band: int) -> np.ndarray | None:
    """Binary cut of one object against the rest within ``band`` pixels of ``mask``'s boundary.

    ``prob`` is the object's probability, ``others`` the largest other label's
    probability, ``image`` float32 h x w x 3 (the contrast term), ``weight`` the
    boundary cost per unit length. Returns the refined mask, or None where there
    is nothing to refine.
    """
    if weight <= 0:
        return None
    bx, by, bw, bh = cv2.boundingRect(mask.astype(np.uint8))
    if bw == 0:
        return None
    h, w = mask.shape
    y0, y1 = max(0, by - band - 1), min(h, by + bh + band + 1)
    x0, x1 = max(0, bx - band - 1), min(w, bx + bw + band + 1)
    m = mask[y0:y1, x0:x1].astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    inner = (cv2.erode(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0).ravel()
    outer = (cv2.dilate(m, kernel) == 0).ravel()
    free = np.flatnonzero(~(inner | outer))
    n = len(free)
    if n == 0:
        return None
    ch, cw = m.shape
    p = prob[y0:y1, x0:x1].ravel()[free]
    q = others[y0:y1, x0:x1].ravel()[free]
    share = np.clip(p / (p + q + 1e-12), 1e-4, 1 - 1e-4)
    img = image[y0:y1, x0:x1].reshape(-1, image.shape[2])
    index = np.full(ch * cw, -1, np.int64)
    index[free] = np.arange(n)
    # t-links: each free pixel pays -log of the share of the side it does not take
    to_obj = -np.log(1 - share)   # paid if it ends in the background
    to_bg = -np.log(share)        # paid if it ends in the object
    # 4-neighbour edges with at least one free end (the band is a thin ring: only its pixels count)
    edges = []
    col = np.arange(ch * cw) % cw
    for off, valid in ((1, col < cw - 1), (cw, np.arange(ch * cw) < (ch - 1) * cw)):
        starts = np.zeros(ch * cw, bool)
        starts[free] = True
        starts[free[free >= off] - off] = True
        start_ = np.flatnonzero(starts & valid)
        a, b = start_, start_ + off
        diff = ((img[a] - img[b]) ** 2).sum(-1)
        edges.append((a, b, diff))
    beta = 0.5 / max(float(np.concatenate([d for *_, d in edges]).mean()), 1e-6)
    g = maxflow.Graph[float]()
    nodes = g.add_nodes(n)
    for a, b, diff in edges:
        cost = weight * np.exp(-beta * diff)
        ia, ib = index[a], index[b]
        both = (ia >= 0) & (ib >= 0)
        if both.any():
            g.add_edges(ia[both], ib[both], cost[both], cost[both])
        # an edge to a fixed neighbour is a t-link of its free end
        for i_free, fixed in ((ia, b), (ib, a)):
            sel = (i_free >= 0) & inner[fixed]
            to_obj += np.bincount(i_free[sel], cost[sel], minlength=n)
            sel = (i_free >= 0) & outer[fixed]
            to_bg += np.bincount(i_free[sel], cost[sel], minlength=n)
    g.add_grid_tedges(nodes, to_obj, to_bg)
    g.maxflow()
    out = mask.copy()
    crop = out[y0:y1, x0:x1].reshape(-1)  # a copy when the crop is not contiguous: written back below
    crop[free] = ~g.get_grid_segments(nodes)
    out[y0:y1, x0:x1] = crop.reshape(ch, cw)
    return out
