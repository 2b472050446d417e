"""No-reference figures of how a fill looks, and side-by-side pictures of fills.

Where no truth exists (the background was never seen), PSNR cannot judge a fill:
a smooth smear scores well on it and badly on the eye. Two figures compare the
detail inside the hole with the detail around it, on the grey image smoothed by a
Gaussian of sigma ``SIGMA`` (pixels), as |Laplacian| values:

* ``tex``: mean |Laplacian| inside the hole / mean in the ring of pixels
  ``RING_INNER`` to ``RING_OUTER`` px outside it (1 = as much detail as the
  surroundings, a smear is near 0.15);
* ``w1``: the 1-Wasserstein distance between the |Laplacian| values inside the
  hole and in that ring, divided by the ring's mean (0 = the detail is distributed
  like the surroundings').
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SIGMA = 0.8
RING_INNER, RING_OUTER = 3, 15  # px outside the hole


def detail(rgb: np.ndarray) -> np.ndarray:
    """|Laplacian| of the Gaussian-smoothed grey image (HxW float32, grey levels)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    smooth = cv2.GaussianBlur(grey, (0, 0), SIGMA)
    return np.abs(cv2.Laplacian(smooth, cv2.CV_32F))


def ring(hole: np.ndarray) -> np.ndarray:
    """Pixels ``RING_INNER`` to ``RING_OUTER`` px outside ``hole`` (bool HxW)."""
    h8 = hole.astype(np.uint8)

    def grow(r):
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        return cv2.dilate(h8, k) > 0

    return grow(RING_OUTER) & ~grow(RING_INNER)


def texture_figures(rgb: np.ndarray, hole: np.ndarray) -> tuple[float, float]:
    """(tex, w1) of the fill inside ``hole`` of ``rgb`` (see the module docstring); NaN if undefined."""
    from scipy.stats import wasserstein_distance

    around = ring(hole)
    if not hole.any() or not around.any():
        return float("nan"), float("nan")
    d = detail(rgb)
    inside, outside = d[hole], d[around]
    scale = float(outside.mean())
    if scale <= 0:
        return float("nan"), float("nan")
    return float(inside.mean()) / scale, float(wasserstein_distance(inside, outside)) / scale


def side_by_side(path: str | Path, columns: list[tuple[str, np.ndarray]]) -> None:
    """Write ``columns`` (label, RGB uint8 HxWx3, same sizes) as one labelled PNG, atomically."""
    tiles = []
    for label, rgb in columns:
        tile = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.putText(tile, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    if not cv2.imwrite(str(tmp), np.concatenate(tiles, axis=1)):
        raise OSError(f"cannot write {path}")
    tmp.replace(path)


def show_hole(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``rgb`` with ``hole`` painted magenta (what the filler must replace)."""
    out = rgb.copy()
    out[hole] = (255, 0, 255)
    return out
