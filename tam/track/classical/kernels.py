"""Compiled per-pixel loops of the classical tracker (numba).

Each replaces a chain of whole-array NumPy/OpenCV steps that made a temporary
array per step: one pass over the pixels, no temporaries. Results equal the
array forms up to float rounding (the tests compare them).

Shapes: working-size maps are h x w; label stacks L x h x w float32, background first.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_LIKE_EPS = np.float32(1e-6)  # added to a histogram's likelihood before normalising (as ColourModels.likelihood)


@njit(cache=True, fastmath=True)
def camera_residual_bins(back, hom, edges):
    """Distance (h x w float32, working px) of each pixel's backward flow to the homography ``hom``
    (3 x 3 float64, current -> previous pixel coordinates), and its bin among ``edges`` (int64 h x w,
    as ``np.searchsorted(edges, residual)``: the number of edges below the residual)."""
    h, w = back.shape[0], back.shape[1]
    resid = np.empty((h, w), np.float32)
    bins = np.empty((h, w), np.int64)
    h00, h01, h02 = hom[0, 0], hom[0, 1], hom[0, 2]
    h10, h11, h12 = hom[1, 0], hom[1, 1], hom[1, 2]
    h20, h21, h22 = hom[2, 0], hom[2, 1], hom[2, 2]
    for y in range(h):
        for x in range(w):
            d = h20 * x + h21 * y + h22
            d = 1.0 / d if d != 0.0 else 0.0  # a point at infinity maps to the origin, as cv2.perspectiveTransform
            ex = np.float32(x + back[y, x, 0] - (h00 * x + h01 * y + h02) * d)
            ey = np.float32(y + back[y, x, 1] - (h10 * x + h11 * y + h12) * d)
            resid[y, x] = np.sqrt(ex * ex + ey * ey)
        for x in range(w):  # a separate loop without branches: the compiler vectorises both
            r = resid[y, x]
            k = 0
            for e in range(edges.shape[0]):
                k += edges[e] < r
            bins[y, x] = k
    return resid, bins


@njit(cache=True)
def colour_log_tables(lut):
    """``log(lut + eps)`` (L x n_bins) and, per bin, the log of its sum over labels (n_bins): the colour
    histograms' log-likelihood normalised over labels is their difference."""
    n, nb = lut.shape
    logs = np.empty((n, nb), np.float32)
    totals = np.empty(nb, np.float32)
    for b in range(nb):
        total = np.float32(0.0)
        for i in range(n):
            v = lut[i, b] + _LIKE_EPS
            logs[i, b] = np.log(v)
            total += v
        totals[b] = np.log(total)
    return logs, totals


@njit(cache=True, fastmath=True)
def fuse_cues(log_prior, lut, bins, weight, forest, forest_weight, penalty, penalty_weight, local, local_weight):
    """Posterior (L x h x w float32, summing to 1 over labels) of the fused cues; ``log_prior`` is overwritten.

    Per pixel and label the log-posterior is ``log_prior + a * log(like) + forest_weight * a *
    log(forest) + penalty_weight * penalty + local_weight * local``, then a softmax over labels, where
    ``like`` is the colour histograms' likelihood ``lut[l, bin] + eps`` normalised over labels (``lut``:
    L x n_bins, ``bins``: the pixels' bins, h x w), ``a`` the appearance weight (h x w), ``forest`` the
    forest's class probabilities, ``penalty`` the camera penalty (nats) and ``local`` the local colour
    log-likelihoods (each L x h x w; a 0-sized array for a cue that is off).
    """
    n, h, w = log_prior.shape
    logs, totals = colour_log_tables(lut)
    has_forest = forest.shape[0] == n
    has_penalty = penalty.shape[0] == n
    has_local = local.shape[0] == n
    fw = np.float32(forest_weight)
    pw = np.float32(penalty_weight)
    lw = np.float32(local_weight)
    for y in range(h):
        for x in range(w):
            b = bins[y, x]
            aw = weight[y, x]
            best = np.float32(-np.inf)
            for i in range(n):
                v = log_prior[i, y, x] + aw * (logs[i, b] - totals[b])
                if has_forest:
                    v += fw * aw * np.log(forest[i, y, x])
                if has_penalty:
                    v += pw * penalty[i, y, x]
                if has_local:
                    v += lw * local[i, y, x]
                log_prior[i, y, x] = v
                best = max(best, v)
            s = np.float32(0.0)
            for i in range(n):
                e = np.exp(log_prior[i, y, x] - best)
                log_prior[i, y, x] = e
                s += e
            inv = np.float32(1.0) / s
            for i in range(n):
                log_prior[i, y, x] *= inv
    return log_prior



@njit(cache=True, fastmath=True)
def consistency(back, fwd_at, scale):
    """Forward/backward consistency (h x w float32 in [0, 1]): ``exp(-(|back + fwd_at| / scale)^2)``."""
    h, w = back.shape[0], back.shape[1]
    out = np.empty((h, w), np.float32)
    k = np.float32(1.0 / (scale * scale))
    for y in range(h):
        for x in range(w):
            dx = back[y, x, 0] + fwd_at[y, x, 0]
            dy = back[y, x, 1] + fwd_at[y, x, 1]
            out[y, x] = np.exp(-(dx * dx + dy * dy) * k)
    return out


@njit(cache=True, fastmath=True)
def splat_coverage(fwd):
    """How many previous pixels land on each current pixel (h x w float32): the forward flow ``fwd``
    (previous -> current, h x w x 2, working px) splatted with bilinear weights. About 1 where the scene
    just moved, under 1 where it spread out, near 0 where a pixel was hidden in the previous frame."""
    h, w = fwd.shape[0], fwd.shape[1]
    cov = np.zeros((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            tx = x + fwd[y, x, 0]
            ty = y + fwd[y, x, 1]
            if not (tx > -1.0 and tx < w and ty > -1.0 and ty < h):
                continue
            x0 = int(np.floor(tx))
            y0 = int(np.floor(ty))
            fx = np.float32(tx - x0)
            fy = np.float32(ty - y0)
            for dy in range(2):
                yy = y0 + dy
                if yy < 0 or yy >= h:
                    continue
                wy = fy if dy == 1 else np.float32(1.0) - fy
                for dx in range(2):
                    xx = x0 + dx
                    if xx < 0 or xx >= w:
                        continue
                    wx = fx if dx == 1 else np.float32(1.0) - fx
                    cov[yy, xx] += wx * wy
    return cov


@njit(cache=True, fastmath=True)
def motion_prior(warped, blurred, conf, revealed, near_level, floor, weight, eps):
    """The motion prior's presence and log (each L x h x w float32).

    Per pixel and label: ``prior = conf * warped + (1 - conf) * blurred``;
    ``present = min(1, blurred / near_level)``; where a pixel was ``revealed``
    (h x w in [0, 1]; a 0-sized array: nowhere) that share of the prior of the
    label the flow brought there (the largest ``warped``: what hid it) goes to
    the other labels in proportion to their presence (none if no other label is
    present); the prior mixed with the labels' normalised presence at share
    ``floor``; ``log_prior = weight * log(prior + eps)``.
    """
    n, h, w = warped.shape
    present = np.empty((n, h, w), np.float32)
    log_prior = np.empty((n, h, w), np.float32)
    prior = np.empty(n, np.float32)
    has_revealed = revealed.shape[0] == h
    inv_level = np.float32(1.0 / near_level)
    keep = np.float32(1.0 - floor)
    fl = np.float32(floor)
    wt = np.float32(weight)
    ep = np.float32(eps)
    for y in range(h):
        for x in range(w):
            c = conf[y, x]
            total = np.float32(0.0)
            for i in range(n):
                p = min(np.float32(1.0), blurred[i, y, x] * inv_level)
                present[i, y, x] = p
                total += p
                prior[i] = c * warped[i, y, x] + (np.float32(1.0) - c) * blurred[i, y, x]
            if has_revealed and revealed[y, x] > 0:
                _hand_over(prior, warped[:, y, x], present[:, y, x], revealed[y, x])
            inv = np.float32(1.0) / (total + np.float32(1e-12))
            for i in range(n):
                v = keep * prior[i] + fl * present[i, y, x] * inv
                log_prior[i, y, x] = wt * np.log(v + ep)
    return present, log_prior


@njit(cache=True, fastmath=True)
def _hand_over(prior, warped, present, share):
    """Move ``share`` of the prior of the label with the largest ``warped`` to the others, in proportion
    to their ``present``, times their summed presence capped at 1 (in place): a label barely present
    nearby (a far object's faint blur) takes next to nothing, none at all when no other label is present."""
    n = prior.shape[0]
    o = 0
    for i in range(1, n):
        if warped[i] > warped[o]:
            o = i
    others = np.float32(0.0)
    for i in range(n):
        if i != o:
            others += present[i]
    if others <= np.float32(0.0):
        return
    moved = share * prior[o] * min(np.float32(1.0), others)
    prior[o] -= moved
    for i in range(n):
        if i != o:
            prior[i] += moved * present[i] / others
