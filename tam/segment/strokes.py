"""Brush strokes that snap to edges: a graph cut seeded by each stroke.

An editor paints where clicks fall short. An *add* stroke lays down object; an
*erase* stroke takes it away. A stroke is not a paint mark: it seeds a graph cut
around itself, so near an edge the mask's new border lands on that edge (the
side of a leg, the border of a patch of fence) rather than where the brush's
rim happened to pass. A stroke reaches at most its *reach* beyond the pixels
the brush covered (REACH_RADII brush radii or REACH_EXTENT of the stroke's
longest side, whichever is farther): pixels farther away seed "not this
region", so a sweep across a region claims it up to its edges, and where no
edge is near (the same colour on both sides) the brush paints about its own
footprint. Each stroke's cut runs in a window just larger than its reach.

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
REACH_RADII = 1.5  # a stroke reaches this many brush radii beyond its footprint...
REACH_EXTENT = 0.25  # ... or this share of its longest side, whichever is farther
WINDOW_PAD = 2  # px of "not this region" seeds around the reach, inside the window
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
    reach = stroke_reach(painted, stroke.radius)
    ys, xs = np.nonzero(painted)
    pad = int(np.ceil(reach)) + WINDOW_PAD
    crop = (slice(max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)),
            slice(max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)))
    seed = painted[crop]
    changeable = ~mask[crop] if stroke.label == ADD else mask[crop]
    beyond = cv2.distanceTransform((~seed).astype(np.uint8), cv2.DIST_L2, 3) > reach
    claimed = _cut(image[crop], seed, beyond & changeable)
    region = _touching(claimed & changeable, seed)
    out = mask.copy()
    out[crop] = out[crop] | region if stroke.label == ADD else out[crop] & ~region
    return out


def stroke_reach(painted: np.ndarray, radius: float) -> float:
    """How far (px) beyond its footprint ``painted`` (bool, non-empty) a stroke of ``radius`` reaches."""
    ys, xs = np.nonzero(painted)
    extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    return max(REACH_RADII * radius, REACH_EXTENT * extent)


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
