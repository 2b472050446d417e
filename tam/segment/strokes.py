"""Brush strokes that snap to edges: a graph cut seeded by each stroke.

An editor paints where clicks fall short. An *add* stroke lays down object; an
*erase* stroke takes it away. A stroke is not a paint mark: it seeds a graph cut
in a window around itself, so it claims the region it lies in up to that
region's edges (a leg, a patch of fence) rather than a blob the brush's width.
Where no edge is near (the same colour on both sides) the cut costs least
around the stroke itself, so the brush then paints about its own footprint.
A stroke reaches at most a margin around its bounding box (the largest of
REACH_FRACTION of the frame's diagonal, REACH_RADII brush radii and
REACH_EXTENT of the stroke's longest side); a region larger than that is cut
at the margin, so a longer stroke claims more.

Contract of :func:`apply_strokes`: ``image`` RGB uint8 HxWx3, ``mask`` bool HxW
(the mask before the strokes), ``strokes`` in the image's pixels, applied in
order; returns a new bool HxW mask. Only pixels the stroke may change move: an
add stroke adds pixels that were outside the mask, an erase stroke removes
pixels that were inside it, and only in the connected parts of the cut that
touch the stroke. Inputs are not modified.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import maxflow
import numpy as np
from scipy import ndimage

from tam.errors import PromptError

ADD, ERASE = 1, 0
REACH_FRACTION = 0.08  # window margin around a stroke, as a fraction of the frame's diagonal
REACH_RADII = 3.0  # ... and at least this many brush radii
REACH_EXTENT = 0.5  # ... and at least this fraction of the stroke's longest side
RING = 2  # width in px of the window's border that seeds "not this region"
SMOOTHNESS = 50.0  # weight of the contrast-sensitive boundary term (GrabCut's gamma)
DIAGONAL = 1.0 / np.sqrt(2.0)  # boundary weight of a diagonal neighbour
HIST_BINS = 16  # colour histogram bins per channel
HIST_SIGMA = 1.0  # histogram smoothing in bins
HIST_PRIOR = 1e-3  # probability mass spread evenly over every bin
MAX_COST = 10.0  # cap on a pixel's colour cost (-log probability)
HARD = 1e9  # capacity that fixes a seed's side


@dataclass(frozen=True)
class Stroke:
    """A brush stroke: ``points`` (N, 2) x, y in pixels; ``label`` 1 add, 0 erase; ``radius`` in pixels."""

    points: np.ndarray
    label: int
    radius: float

    def __post_init__(self):
        pts = np.asarray(self.points, np.float64).reshape(-1, 2)
        object.__setattr__(self, "points", pts)
        if len(pts) == 0:
            raise PromptError("a stroke needs at least one point")
        if self.label not in (ADD, ERASE):
            raise PromptError(f"stroke label must be 0 (erase) or 1 (add), got {self.label}")
        if not self.radius > 0:
            raise PromptError(f"stroke radius must be positive, got {self.radius}")

    def scaled(self, sx: float, sy: float) -> "Stroke":
        """The stroke in pixels scaled by ``sx``, ``sy`` (the radius by their mean)."""
        return Stroke(self.points * (sx, sy), self.label, self.radius * (sx + sy) / 2)


def footprint(stroke: Stroke, shape: tuple[int, int]) -> np.ndarray:
    """The pixels the brush passed over: bool ``shape`` (H, W)."""
    out = np.zeros(shape, np.uint8)
    pts = np.round(stroke.points).astype(np.int32)
    r = max(1, int(round(stroke.radius)))
    cv2.polylines(out, [pts.reshape(-1, 1, 2)], False, 1, thickness=2 * r, lineType=cv2.LINE_8)
    for x, y in pts[[0, -1]]:
        cv2.circle(out, (int(x), int(y)), r, 1, -1)
    return out.astype(bool)


def apply_strokes(image: np.ndarray, mask: np.ndarray, strokes: Iterable[Stroke]) -> np.ndarray:
    """``mask`` after each of ``strokes`` in order (see the module's contract)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise PromptError(f"strokes need an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")
    if mask.shape != image.shape[:2]:
        raise PromptError(f"mask is {mask.shape}, the image {image.shape[:2]}")
    out = mask.astype(bool).copy()
    for stroke in strokes:
        out = cut_stroke(image, out, stroke)
    return out


def cut_stroke(image: np.ndarray, mask: np.ndarray, stroke: Stroke) -> np.ndarray:
    """One stroke's graph cut: the new bool mask (``mask`` untouched)."""
    h, w = mask.shape
    painted = footprint(stroke, (h, w))
    if not painted.any():
        return mask.copy()
    y0, y1, x0, x1 = _window(painted, stroke.radius)
    crop = (slice(y0, y1), slice(x0, x1))
    changeable = ~mask[crop] if stroke.label == ADD else mask[crop].copy()
    ring = _ring((y1 - y0, x1 - x0), open_sides=(y0 > 0, y1 < h, x0 > 0, x1 < w))
    claimed = _cut(image[crop], painted[crop], ring & changeable & ~painted[crop])
    region = _touching(claimed & changeable, painted[crop])
    out = mask.copy()
    out[crop] = out[crop] | region if stroke.label == ADD else out[crop] & ~region
    return out


def _window(painted: np.ndarray, radius: float) -> tuple[int, int, int, int]:
    """Rows y0:y1 and columns x0:x1 of the stroke's bounding box grown by its reach."""
    h, w = painted.shape
    ys, xs = np.nonzero(painted)
    extent = max(ys.max() - ys.min(), xs.max() - xs.min())
    margin = int(np.ceil(max(REACH_FRACTION * np.hypot(h, w), REACH_RADII * radius, REACH_EXTENT * extent)))
    return (max(0, ys.min() - margin), min(h, ys.max() + 1 + margin),
            max(0, xs.min() - margin), min(w, xs.max() + 1 + margin))


def _ring(shape: tuple[int, int], open_sides: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """The window's border, RING px wide, on the sides (top, bottom, left, right) inside the frame.

    A side on the frame's own edge is left out: a region may reach the edge of the picture.
    """
    ring = np.zeros(shape, bool)
    top, bottom, left, right = open_sides
    if top:
        ring[:RING] = True
    if bottom:
        ring[-RING:] = True
    if left:
        ring[:, :RING] = True
    if right:
        ring[:, -RING:] = True
    return ring


def _cut(rgb: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Graph cut of ``rgb`` (h, w, 3) between seeds ``inside`` and ``outside``: bool, True = with the stroke.

    Data term: colour histograms of the two seed sets; boundary term: a
    contrast-sensitive Potts on 8 neighbours. Without outside seeds the colour
    model of "not this region" is the rest of the window.
    """
    img = rgb.astype(np.float32)
    background = outside if outside.any() else ~ndimage.binary_dilation(inside, iterations=2)
    if not background.any():
        return inside.copy()
    cost_in = _colour_cost(img, inside)  # cost of a pixel going with the stroke
    cost_out = _colour_cost(img, background)
    g = maxflow.Graph[float]()
    nodes = g.add_grid_nodes(inside.shape)
    for (dy, dx), weight in _neighbour_weights(img).items():
        structure = np.zeros((3, 3))
        structure[1 + dy, 1 + dx] = 1.0
        g.add_grid_edges(nodes, weights=weight, structure=structure, symmetric=True)
    source = np.where(inside, HARD, cost_out)  # paid when a pixel ends up outside
    sink = np.where(outside, HARD, cost_in)
    g.add_grid_tedges(nodes, source, sink)
    g.maxflow()
    return ~g.get_grid_segments(nodes)


def _neighbour_weights(img: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Boundary weights towards the right, down and both lower diagonals, per pixel."""
    offsets = {(0, 1): 1.0, (1, 0): 1.0, (1, 1): DIAGONAL, (1, -1): DIAGONAL}
    h, w = img.shape[:2]
    padded = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    diffs = {(dy, dx): ((img - padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]) ** 2).sum(axis=2)
             for dy, dx in offsets}
    mean = np.mean([d.mean() for d in diffs.values()])
    beta = 1.0 / (2.0 * mean) if mean > 0 else 0.0
    return {k: SMOOTHNESS * offsets[k] * np.exp(-beta * d) for k, d in diffs.items()}


def _colour_cost(img: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """-log of each pixel's colour probability under the histogram of ``sample``, capped."""
    bins = np.clip((img * (HIST_BINS / 256.0)).astype(np.int32), 0, HIST_BINS - 1)
    flat = (bins[..., 0] * HIST_BINS + bins[..., 1]) * HIST_BINS + bins[..., 2]
    hist = np.bincount(flat[sample], minlength=HIST_BINS ** 3).astype(np.float64)
    hist = ndimage.gaussian_filter(hist.reshape((HIST_BINS,) * 3), HIST_SIGMA).ravel()
    prob = (1.0 - HIST_PRIOR) * hist / max(hist.sum(), 1e-12) + HIST_PRIOR / hist.size
    return np.minimum(-np.log(prob[flat]), MAX_COST)


def _touching(region: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The connected parts (8-connected) of ``region`` that touch ``seed`` or its 1-px rim."""
    labels, n = ndimage.label(region, structure=np.ones((3, 3)))
    if n == 0:
        return region
    hit = np.unique(labels[ndimage.binary_dilation(seed) & region])
    return np.isin(labels, hit[hit > 0])
