"""Compiled kernels of patch-based completion: PatchMatch search and patch voting.

All images are float32 HxWxC (C-contiguous; colour plus any feature channels); masks are uint8 HxW (1 = set);
coordinates are int32 (y, x) of patch centres; patches are square with side
``2 * half + 1``. Every kernel is single-threaded and draws its random numbers
from an explicit xorshift seed, so the same inputs give the same outputs.

* :func:`patch_distance` - sum of squared differences between a target patch
  and a source patch, over the target pixels that lie inside the image, with an
  early exit above a bound. The search adds ``lam_y`` times the squared row
  offset plus ``lam_x`` times the squared column offset between the two centres
  (a preference for near sources, and with ``lam_y > lam_x`` for sources in the
  same rows: horizons and ground bands are mostly horizontal).
* :func:`patchmatch` - improves a nearest-neighbour field (Barnes et al. 2009):
  alternating scan order, propagation from the two scan-order neighbours, then a
  random search around the current match with a radius halving down to 1 px.
  Only centres marked in ``valid`` (source patches wholly inside the allowed
  source region) are ever proposed.
* :func:`vote` - each target pixel of the hole becomes the weighted mean of the
  colours that the patches covering it propose (Wexler et al. 2007).
* :func:`vote_best` - each hole pixel takes the colour proposed by the covering
  patch with the lowest per-pixel distance (no averaging, no blur).
"""
from __future__ import annotations

import numpy as np
from numba import njit

_BIG = np.float32(3.0e38)


@njit(cache=True, inline="always")
def _next(state):
    """One xorshift64 step: (new state, value in [0, 1))."""
    state ^= (state << np.uint64(13)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    state ^= state >> np.uint64(7)
    state ^= (state << np.uint64(17)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return state, (state >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def patch_distance(img, ty, tx, sy, sx, half, bound):
    """SSD between the target patch at (ty, tx) and the source patch at (sy, sx).

    Target pixels outside the image are skipped (the source patch lies wholly
    inside). Stops early and returns a value > ``bound`` once the sum exceeds it.
    """
    h, w = img.shape[0], img.shape[1]
    nc = img.shape[2]
    total = np.float32(0.0)
    for dy in range(-half, half + 1):
        y = ty + dy
        if y < 0 or y >= h:
            continue
        for dx in range(-half, half + 1):
            x = tx + dx
            if x < 0 or x >= w:
                continue
            for c in range(nc):
                d = img[y, x, c] - img[sy + dy, sx + dx, c]
                total += d * d
        if total > bound:
            return total
    return total


@njit(cache=True)
def _penalty(ty, tx, sy, sx, lam_y, lam_x, period):
    """The offset cost between a target centre and a source centre.

    Images stacked one above the other every ``period`` rows are views of the
    same scene: a source's row is taken within its own view.
    """
    dy = sy % period - ty
    return lam_y * np.float32(dy * dy) + lam_x * np.float32((sx - tx) * (sx - tx))


@njit(cache=True)
def _try(img, valid, nnf, dist, k, ty, tx, sy, sx, half, lam_y, lam_x, period):
    h, w = valid.shape
    if sy < 0 or sy >= h or sx < 0 or sx >= w or valid[sy, sx] == 0:
        return
    if sy == nnf[k, 0] and sx == nnf[k, 1]:
        return
    pen = _penalty(ty, tx, sy, sx, lam_y, lam_x, period)
    if pen >= dist[k]:
        return
    d = patch_distance(img, ty, tx, sy, sx, half, dist[k] - pen) + pen
    if d < dist[k]:
        dist[k] = d
        nnf[k, 0] = sy
        nnf[k, 1] = sx


@njit(cache=True)
def patchmatch(img, valid, targets, index, nnf, dist, half, iterations, seed, lam_y, lam_x, period):
    """Improve ``nnf`` (N x 2 source centres) for ``targets`` (N x 2 target centres) in place.

    ``index`` (int32 HxW) maps a target centre to its row in ``targets`` (-1 if
    none); ``dist`` (N) must hold the current distances (:func:`distances`).
    ``valid`` (uint8 HxW) marks the allowed source centres.
    """
    h, w = valid.shape
    n = targets.shape[0]
    state = np.uint64(seed) * np.uint64(2654435761) + np.uint64(88172645463325252)
    max_radius = max(h, w)
    for it in range(iterations):
        forward = it % 2 == 0
        step = 1 if forward else -1
        for j in range(n):
            k = j if forward else n - 1 - j
            ty, tx = targets[k, 0], targets[k, 1]
            # propagation: the scan-order neighbours' matches, shifted back by one
            ny = ty - step
            if 0 <= ny < h:
                m = index[ny, tx]
                if m >= 0:
                    _try(img, valid, nnf, dist, k, ty, tx, nnf[m, 0] + step, nnf[m, 1], half, lam_y, lam_x, period)
            nx = tx - step
            if 0 <= nx < w:
                m = index[ty, nx]
                if m >= 0:
                    _try(img, valid, nnf, dist, k, ty, tx, nnf[m, 0], nnf[m, 1] + step, half, lam_y, lam_x, period)
            # random search around the current best, radius halving
            radius = max_radius
            while radius >= 1:
                state, u = _next(state)
                state, v = _next(state)
                sy = nnf[k, 0] + int((2.0 * u - 1.0) * radius)
                sx = nnf[k, 1] + int((2.0 * v - 1.0) * radius)
                _try(img, valid, nnf, dist, k, ty, tx, sy, sx, half, lam_y, lam_x, period)
                radius //= 2


@njit(cache=True)
def distances(img, targets, nnf, half, out, lam_y, lam_x, period):
    """``out[k]`` = SSD between target patch ``k`` and its match plus their offset cost (:func:`_penalty`)."""
    for k in range(targets.shape[0]):
        ty, tx, sy, sx = targets[k, 0], targets[k, 1], nnf[k, 0], nnf[k, 1]
        out[k] = patch_distance(img, ty, tx, sy, sx, half, _BIG) + _penalty(ty, tx, sy, sx, lam_y, lam_x, period)


@njit(cache=True)
def random_field(valid_list, n, seed):
    """``n`` source centres drawn uniformly from ``valid_list`` (M x 2)."""
    out = np.empty((n, 2), np.int32)
    state = np.uint64(seed) * np.uint64(2654435761) + np.uint64(88172645463325252)
    m = valid_list.shape[0]
    for k in range(n):
        state, u = _next(state)
        j = min(int(u * m), m - 1)
        out[k, 0] = valid_list[j, 0]
        out[k, 1] = valid_list[j, 1]
    return out


@njit(cache=True)
def vote(img, hole, targets, nnf, weights, half, src):
    """Hole pixels of ``img`` (in place) <- weighted mean of the colours proposed for them.

    Patch ``k`` proposes ``src[nnf[k] + o]`` for the target pixel
    ``targets[k] + o`` with weight ``weights[k]``. ``src`` is the image the
    source colours are read from (the same known pixels as ``img``).
    """
    h, w = hole.shape
    nc = src.shape[2]
    acc = np.zeros((h, w, nc), np.float32)
    wsum = np.zeros((h, w), np.float32)
    for k in range(targets.shape[0]):
        ty, tx, sy, sx = targets[k, 0], targets[k, 1], nnf[k, 0], nnf[k, 1]
        wk = weights[k]
        for dy in range(-half, half + 1):
            y = ty + dy
            if y < 0 or y >= h:
                continue
            for dx in range(-half, half + 1):
                x = tx + dx
                if x < 0 or x >= w or hole[y, x] == 0:
                    continue
                for c in range(nc):
                    acc[y, x, c] += wk * src[sy + dy, sx + dx, c]
                wsum[y, x] += wk
    for y in range(h):
        for x in range(w):
            if hole[y, x] != 0 and wsum[y, x] > 0:
                for c in range(nc):
                    img[y, x, c] = acc[y, x, c] / wsum[y, x]


@njit(cache=True)
def vote_best(img, hole, targets, nnf, dist, half, src):
    """Hole pixels of ``img`` (in place) <- the colour proposed by the best covering patch.

    "Best" is the lowest distance per compared pixel; the copy keeps the
    source's texture exactly (no averaging).
    """
    h, w = hole.shape
    nc = src.shape[2]
    best = np.full((h, w), _BIG, np.float32)
    for k in range(targets.shape[0]):
        ty, tx, sy, sx = targets[k, 0], targets[k, 1], nnf[k, 0], nnf[k, 1]
        count = (min(ty + half, h - 1) - max(ty - half, 0) + 1) * (min(tx + half, w - 1) - max(tx - half, 0) + 1)
        dk = dist[k] / count
        for dy in range(-half, half + 1):
            y = ty + dy
            if y < 0 or y >= h:
                continue
            for dx in range(-half, half + 1):
                x = tx + dx
                if x < 0 or x >= w or hole[y, x] == 0:
                    continue
                if dk < best[y, x]:
                    best[y, x] = dk
                    for c in range(nc):
                        img[y, x, c] = src[sy + dy, sx + dx, c]


@njit(cache=True)
def _masked_distance(img, known, ty, tx, sy, sx, half, bound):
    """SSD over the target pixels that are known (inside the image), and their count."""
    h, w = known.shape
    nc = img.shape[2]
    total = np.float32(0.0)
    count = 0
    for dy in range(-half, half + 1):
        y = ty + dy
        if y < 0 or y >= h:
            continue
        for dx in range(-half, half + 1):
            x = tx + dx
            if x < 0 or x >= w or known[y, x] == 0:
                continue
            count += 1
            for c in range(nc):
                d = img[y, x, c] - img[sy + dy, sx + dx, c]
                total += d * d
        if total > bound * max(count, 1):
            return _BIG, count
    return total / max(count, 1), count


@njit(cache=True)
def onion_fill(img, hole, order, valid_list, half, candidates, seed, lam_y, lam_x, period):
    """Fill hole pixels of ``img`` in place, from the border inwards (``order``: N x 2, y/x).

    Each pixel takes the centre colour of the source patch that best matches the
    pixels known or already filled around it (mean SSD over those pixels), among
    ``candidates`` random source centres plus the shifted matches of its filled
    neighbours (so coherent regions grow), each with the offset cost of
    :func:`_penalty` (``lam_y``, ``lam_x`` per compared pixel). Returns the chosen
    matches (N x 2).
    """
    h, w = hole.shape
    nc = img.shape[2]
    known = np.ones((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            if hole[y, x] != 0:
                known[y, x] = 0
    match = np.full((h, w, 2), -1, np.int32)
    valid = np.zeros((h, w), np.uint8)
    for j in range(valid_list.shape[0]):
        valid[valid_list[j, 0], valid_list[j, 1]] = 1
    state = np.uint64(seed) * np.uint64(2654435761) + np.uint64(88172645463325252)
    m = valid_list.shape[0]
    out = np.empty((order.shape[0], 2), np.int32)
    for k in range(order.shape[0]):
        ty, tx = order[k, 0], order[k, 1]
        best, by, bx = _BIG, valid_list[0, 0], valid_list[0, 1]
        for dy in range(-1, 2):  # neighbours' matches, shifted
            for dx in range(-1, 2):
                ny, nx = ty + dy, tx + dx
                if ny < 0 or ny >= h or nx < 0 or nx >= w or match[ny, nx, 0] < 0:
                    continue
                sy, sx = match[ny, nx, 0] - dy, match[ny, nx, 1] - dx
                if sy < 0 or sy >= h or sx < 0 or sx >= w or valid[sy, sx] == 0:
                    continue
                pen = _penalty(ty, tx, sy, sx, lam_y, lam_x, period)
                d, c = _masked_distance(img, known, ty, tx, sy, sx, half, best - pen)
                if c > 0 and d + pen < best:
                    best, by, bx = d + pen, sy, sx
        for _ in range(min(candidates, m)):
            state, u = _next(state)
            j = min(int(u * m), m - 1)
            sy, sx = valid_list[j, 0], valid_list[j, 1]
            pen = _penalty(ty, tx, sy, sx, lam_y, lam_x, period)
            if pen >= best:
                continue
            d, c = _masked_distance(img, known, ty, tx, sy, sx, half, best - pen)
            if c > 0 and d + pen < best:
                best, by, bx = d + pen, sy, sx
        for c in range(nc):
            img[ty, tx, c] = img[by, bx, c]
        known[ty, tx] = 1
        match[ty, tx, 0], match[ty, tx, 1] = by, bx
        out[k, 0], out[k, 1] = by, bx
    return out
