"""Sparse Laplace / Poisson solves over a hole, and a fast push-pull fill.

``HoleSolver`` factorises the 5-point Laplacian restricted to the pixels of a
hole once, with the pixels around it as Dirichlet boundary and Neumann
conditions at the image border, then answers any number of right-hand sides:
a membrane (Laplace) fill of flow fields, or a Poisson reconstruction of colours
from a guidance gradient field (gradient-domain blending).
"""
from __future__ import annotations

import cv2
import numpy as np

_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (dy, dx)


class HoleSolver:
    """The Laplacian over ``hole`` (bool HxW), factorised once.

    Known pixels in ``free`` (bool HxW, optional) fix nothing: the hole's values
    are not pulled towards them.

    A hole that touches no known pixel (it covers the frame) is kept solvable by a
    tiny pull towards the initial values passed to :meth:`laplace`/:meth:`poisson`.
    """

    def __init__(self, hole: np.ndarray, anchor: float = 1e-6, free: np.ndarray | None = None):
        import scipy.sparse as sp
        import scipy.sparse.linalg as sla

        self.hole = hole
        h, w = hole.shape
        ys, xs = np.nonzero(hole)
        self.ys, self.xs = ys, xs
        n = len(ys)
        self.n = n
        index = np.full((h, w), -1, np.int64)
        index[ys, xs] = np.arange(n)
        self.index = index
        degree = np.zeros(n)
        rows, cols = [np.arange(n)], [None]
        # per direction: (in-bounds mask, neighbour index or -1, neighbour ys, xs)
        self.links = []
        for dy, dx in _DIRECTIONS:
            yy, xx = ys + dy, xs + dx
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            if free is not None:  # a free neighbour is no boundary: Neumann, as at the image border
                inside[inside] = ~free[yy[inside], xx[inside]]
            nb = np.full(n, -1, np.int64)
            nb[inside] = index[yy[inside], xx[inside]]
            degree += inside
            sel = nb >= 0
            rows.append(np.nonzero(sel)[0])
            cols.append(nb[sel])
            self.links.append((inside, nb, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)))
        self.anchor = anchor
        diag = degree + anchor
        cols[0] = np.arange(n)
        data = np.concatenate([diag] + [-np.ones(len(r)) for r in rows[1:]])
        matrix = sp.csc_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        self._lu = sla.splu(matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                            options={"SymmetricMode": True}) if n else None
        self.size = self._lu.nnz if n else 0  # stored non-zeros of the factors (memory)

    def _boundary_sum(self, image: np.ndarray) -> np.ndarray:
        """Sum of known neighbours' values for each hole pixel: (n, C)."""
        c = image.shape[2] if image.ndim == 3 else 1
        img = image.reshape(image.shape[0], image.shape[1], c)
        total = np.zeros((self.n, c), np.float64)
        for inside, nb, yy, xx in self.links:
            known = inside & (nb < 0)
            total[known] += img[yy[known], xx[known]]
        return total

    def laplace(self, image: np.ndarray) -> np.ndarray:
        """``image`` (HxW or HxWxC float) with the hole replaced by the membrane fill of its border."""
        if not self.n:
            return image
        init = image[self.ys, self.xs].reshape(self.n, -1).astype(np.float64)
        rhs = self._boundary_sum(image) + self.anchor * init
        out = image.copy()
        out[self.ys, self.xs] = self._lu.solve(rhs).reshape(out[self.ys, self.xs].shape)
        return out

    def poisson(self, image: np.ndarray, guidance: list[np.ndarray], init: np.ndarray) -> np.ndarray:
        """Values over the hole whose differences follow ``guidance``, fixed by the known border.

        ``guidance[k]`` (n x C) is the wanted value of ``f(neighbour) - f(pixel)`` for
        direction ``k`` of ``_DIRECTIONS``; ``image`` holds the known pixels;
        ``init`` (n x C) only anchors a hole that has no border. Returns n x C.
        """
        rhs = self._boundary_sum(image) + self.anchor * init
        for (inside, _, _, _), g in zip(self.links, guidance):
            rhs[inside] -= g[inside]
        return self._lu.solve(rhs)


def push_pull(image: np.ndarray, hole: np.ndarray, levels: int = 8) -> np.ndarray:
    """A fast smooth fill of ``hole`` by normalised averaging over an image pyramid.

    Good enough to hide an object from the optical flow estimator; not a final fill.
    """
    if not hole.any():
        return image
    img = image.astype(np.float32)
    weight = (~hole).astype(np.float32)
    pyramid = []
    num, den = img * (weight[..., None] if img.ndim == 3 else weight), weight
    for _ in range(levels):
        pyramid.append((num, den))
        if min(den.shape[:2]) < 4:
            break
        num = cv2.pyrDown(num)
        den = cv2.pyrDown(den)
    num, den = pyramid[-1]
    dd = den[..., None] if img.ndim == 3 else den
    filled = num / np.maximum(dd, 1e-6)
    for num, den in reversed(pyramid[:-1]):
        up = cv2.pyrUp(filled, dstsize=(den.shape[1], den.shape[0]))
        dd = den[..., None] if img.ndim == 3 else den
        alpha = np.clip(dd * 4.0, 0.0, 1.0)  # trust this level where enough known pixels fell
        filled = alpha * (num / np.maximum(dd, 1e-6)) + (1 - alpha) * up
    out = image.copy()
    out[hole] = np.clip(filled[hole], 0, 255).astype(image.dtype) if image.dtype == np.uint8 else filled[hole]
    return out
