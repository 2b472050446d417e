"""Plain k-means (k-means++ seeding, Lloyd iterations) for the colour palette and the motion codebook."""
from __future__ import annotations

import numpy as np

KMEANS_ITERATIONS = 8


def nearest(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest row of ``c`` for every row of ``x``."""
    d = (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :]
    return np.argmin(d, axis=1).astype(np.int32)


def kmeans(x: np.ndarray, k: int, rng: np.random.RandomState, iters: int = KMEANS_ITERATIONS) -> np.ndarray:
    """Plain k-means++ / Lloyd on a small sample; deterministic for a given ``rng``. Returns k x D centres."""
    centres = [x[rng.randint(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else None
        c = x[rng.choice(len(x), p=p)]
        centres.append(c)
        d2 = np.minimum(d2, ((x - c) ** 2).sum(1))
    c = np.array(centres, np.float32)
    for _ in range(iters):
        a = nearest(x, c)
        for j in range(k):
            sel = a == j
            if sel.any():
                c[j] = x[sel].mean(0)
    return c
