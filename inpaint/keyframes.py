"""When a keyframe's fill, carried along the flow, must be refreshed.

A fill carried through a zoom-in is resampled from fewer and fewer keyframe
pixels, so it softens. :func:`magnification` measures how much: the linear
scale between a frame and its keyframe, from the coordinate map that carries
the keyframe's content (frame pixel -> keyframe position). Above
``REFRESH_ZOOM`` the flow-guided inpainter makes the frame a new keyframe and
asks its filler to refine the carried fill (which keeps its layout) with sharp
patches.
"""
from __future__ import annotations

import numpy as np

REFRESH_ZOOM = 1.25  # linear magnification since the keyframe that triggers a refresh


def magnification(coords: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> float:
    """Median linear magnification at pixels (``ys``, ``xs``) of the map ``coords`` (HxWx2, x/y).

    1 / sqrt(|det J|) of the map's Jacobian: 1 where the frame shows the keyframe
    at its own scale, 2 where one keyframe pixel spans two frame pixels across.
    Returns 1.0 for no pixels.
    """
    if len(ys) == 0:
        return 1.0
    cx, cy = coords[..., 0], coords[..., 1]
    h, w = cx.shape
    y0, y1 = np.maximum(ys - 1, 0), np.minimum(ys + 1, h - 1)
    x0, x1 = np.maximum(xs - 1, 0), np.minimum(xs + 1, w - 1)
    dx = np.maximum(x1 - x0, 1).astype(np.float32)
    dy = np.maximum(y1 - y0, 1).astype(np.float32)
    a = (cx[ys, x1] - cx[ys, x0]) / dx  # d cx / dx
    b = (cx[y1, xs] - cx[y0, xs]) / dy  # d cx / dy
    c = (cy[ys, x1] - cy[ys, x0]) / dx
    d = (cy[y1, xs] - cy[y0, xs]) / dy
    det = np.abs(a * d - b * c)
    return float(1.0 / np.sqrt(max(float(np.median(det)), 1e-6)))
