"""Pixel stages after the cut: GrabCut polish, the first click's box stage, and the answer's constraints.

Masks are h x w bool at the working resolution; clicks come as ``pts`` (N, 2)
int x, y and ``labs`` (N,) 1/0 at that resolution.
"""
from __future__ import annotations

import cv2
import numpy as np

from tam.masks import dilate
from tam.segment.classical.config import ClassicalSegmenterConfig
from tam.segment.classical.frame import PreparedFrame

WINDOW_PAD = 15  # pixels added around the polish window, and of background context beyond it
BOX_CONTEXT = 0.5  # the box stage's background context: this share of the box on each side ...
BOX_CONTEXT_PAD = 10  # ... plus this many pixels
MIN_BACKGROUND = 50  # pixels of definite background GrabCut needs to learn from
MIN_CROP = 8  # pixels: smallest side of a downscaled box-stage crop
FRAME_WIDTH = 2  # pixels: width of the box's inner frame checked for leaks


def connected_to(mask: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """The 8-connected pieces of ``mask`` that overlap ``anchor``."""
    n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(comp[anchor & mask])] = True
    keep[0] = False
    return keep[comp]


def seed_clicks(gc: np.ndarray, pts, labs, origin: tuple[int, int], radius: int,
                values: tuple[int, int] = (cv2.GC_BGD, cv2.GC_FGD)) -> None:
    """Mark a disc around every click in a label crop: by default definite background or object for
    GrabCut; ``values`` gives the (negative, positive) values to write instead."""
    for (x, y), lab in zip(pts, labs):
        cv2.circle(gc, (int(x) - origin[0], int(y) - origin[1]), max(1, radius),
                   int(values[1] if lab else values[0]), -1)


def run_grabcut(image: np.ndarray, gc: np.ndarray, iters: int, seed: int) -> np.ndarray:
    """GrabCut from the labels ``gc`` (updated in place), seeded for repeatable answers; the object."""
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    cv2.grabCut(np.ascontiguousarray(image), gc, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def probable(gc: np.ndarray) -> np.ndarray:
    """Where the GrabCut labels ``gc`` are left for the cut to decide (probable object or background)."""
    return (gc == cv2.GC_PR_BGD) | (gc == cv2.GC_PR_FGD)


def undecided(gc: np.ndarray) -> int:
    """How many pixels of the GrabCut labels ``gc`` are left for the cut to decide."""
    return int(np.count_nonzero(probable(gc)))


def grabcut_polish(f: PreparedFrame, cfg: ClassicalSegmenterConfig, mask, pts, labs, inside_px=None,
                   definite_bg=None) -> np.ndarray:
    """GrabCut seeded with the mask (probable labels) and the clicks (definite), in a window: the mask's
    box (with the positive clicks) grown by ``grabcut_margin`` + WINDOW_PAD; a little context beyond the
    window, everything outside ``inside_px`` (the box prompt) and ``definite_bg`` (h x w bool) are
    definite background. In a window of more than ``grabcut_band_above`` undecided pixels, so are those
    farther than ``grabcut_band`` outside the mask: the cut's time grows with its undecided pixels (about
    3.5 us each on one core), and only large objects make such windows."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    xs = np.concatenate([xs, pts[labs == 1, 0]])
    ys = np.concatenate([ys, pts[labs == 1, 1]])
    fx = int(cfg.grabcut_margin * (xs.max() - xs.min()) + WINDOW_PAD)
    fy = int(cfg.grabcut_margin * (ys.max() - ys.min()) + WINDOW_PAD)
    x0, x1 = max(0, xs.min() - fx), min(w, xs.max() + fx + 1)
    y0, y1 = max(0, ys.min() - fy), min(h, ys.max() + fy + 1)
    bx0, bx1 = max(0, x0 - WINDOW_PAD), min(w, x1 + WINDOW_PAD)
    by0, by1 = max(0, y0 - WINDOW_PAD), min(h, y1 + WINDOW_PAD)
    gc = np.where(mask[by0:by1, bx0:bx1], cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    window = np.zeros_like(gc, bool)
    window[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0] = True
    gc[~window] = cv2.GC_BGD
    if inside_px is not None:
        gc[~inside_px[by0:by1, bx0:bx1]] = cv2.GC_BGD
    if definite_bg is not None:
        gc[definite_bg[by0:by1, bx0:bx1]] = cv2.GC_BGD
    if cfg.grabcut_band and undecided(gc) > cfg.grabcut_band_above:
        gc[~dilate(mask[by0:by1, bx0:bx1], cfg.grabcut_band) & (gc == cv2.GC_PR_BGD)] = cv2.GC_BGD
    seed_clicks(gc, pts, labs, (bx0, by0), cfg.click_radius)
    fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    if fg.all() or not fg.any():
        return mask
    out = np.zeros_like(mask)
    out[by0:by1, bx0:bx1] = run_grabcut(f.rgb[by0:by1, bx0:bx1], gc, cfg.grabcut_iters, cfg.seed)
    return out


def _grown_box(mask: np.ndarray, grow: float) -> tuple[int, int, int, int, float, float]:
    """(x0, y0, x1, y1, width, height) of the mask's bounding box grown by ``grow``, clipped to the frame."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    bh = (ys.max() - ys.min() + 1) * (1 + grow)
    bw = (xs.max() - xs.min() + 1) * (1 + grow)
    x0, x1 = int(max(0, cx - bw / 2)), int(min(w, cx + bw / 2 + 1))
    y0, y1 = int(max(0, cy - bh / 2)), int(min(h, cy + bh / 2 + 1))
    return x0, y0, x1, y1, bw, bh


def _grabcut_small(crop, gc, iters, seed, side) -> np.ndarray:
    """GrabCut on the crop downscaled to at most ``side`` pixels a side (0: full size); the object as uint8."""
    ch, cw = gc.shape
    ds = side / max(ch, cw) if side else 1.0
    if ds >= 1.0:
        return run_grabcut(crop, gc, iters, seed).astype(np.uint8)
    size = (max(MIN_CROP, round(cw * ds)), max(MIN_CROP, round(ch * ds)))
    small = cv2.resize(gc, size, interpolation=cv2.INTER_NEAREST)
    fg = run_grabcut(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), small, iters, seed).astype(np.float32)
    return (cv2.resize(fg, (cw, ch), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)


def _box_cut(crop: np.ndarray, gc: np.ndarray, cfg: ClassicalSegmenterConfig) -> np.ndarray:
    """The box stage's GrabCut on ``crop`` from the labels ``gc`` (crop size); the object as uint8.

    ``box_iters`` iterations on the crop downscaled to ``box_side``; when that is still more than
    ``box_coarse_side`` pixels a side, the first iteration runs on the crop downscaled to
    ``box_coarse_side`` and the others start from its answer (the undecided labels set to it)."""
    iters = cfg.box_iters
    side = min(max(gc.shape), cfg.box_side or max(gc.shape))  # the longer side the iterations run at
    if cfg.box_coarse_side and iters > 1 and side > cfg.box_coarse_side:
        first = _grabcut_small(crop, gc.copy(), 1, cfg.seed, cfg.box_coarse_side).astype(bool)
        gc = np.where(probable(gc), np.where(first, cv2.GC_PR_FGD, cv2.GC_PR_BGD), gc).astype(np.uint8)
        iters -= 1
    return _grabcut_small(crop, gc, iters, cfg.seed, cfg.box_side)


def _touches_frame(inner: np.ndarray, box, shape, limit: float) -> bool:
    """Whether the answer covers more than ``limit`` of the box's inner frame (sides on the image border
    do not count)."""
    x0, y0, x1, y1 = box
    h, w = shape
    ring = []
    if y0 > 0:
        ring.append(inner[:FRAME_WIDTH].ravel())
    if y1 < h:
        ring.append(inner[-FRAME_WIDTH:].ravel())
    if x0 > 0:
        ring.append(inner[:, :FRAME_WIDTH].ravel())
    if x1 < w:
        ring.append(inner[:, -FRAME_WIDTH:].ravel())
    return bool(ring) and np.concatenate(ring).mean() > limit


def box_grabcut(f: PreparedFrame, cfg: ClassicalSegmenterConfig, mask, pts, labs) -> np.ndarray:
    """First click only: GrabCut in the mask's bounding box grown by ``box_grow``.

    Inside the box everything starts as probable object, outside (a margin of context) as definite
    background; what GrabCut keeps, in the connected pieces holding a positive click, is added to the mask.
    The box assumes the object fits inside it: an answer larger than the mask's own bounding box (a share
    of the grown box above 1 / (1 + box_grow)^2), or one along more than ``box_touch`` of the box's inner
    frame, ran into the background, and the mask is returned unchanged.
    """
    h, w = mask.shape
    x0, y0, x1, y1, bw, bh = _grown_box(mask, cfg.box_grow)
    px, py = int(BOX_CONTEXT * bw) + BOX_CONTEXT_PAD, int(BOX_CONTEXT * bh) + BOX_CONTEXT_PAD
    bx0, bx1, by0, by1 = max(0, x0 - px), min(w, x1 + px), max(0, y0 - py), min(h, y1 + py)
    gc = np.full((by1 - by0, bx1 - bx0), cv2.GC_BGD, np.uint8)
    gc[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0] = cv2.GC_PR_FGD
    if np.count_nonzero(gc == cv2.GC_BGD) < MIN_BACKGROUND:
        return mask  # the box fills the image: no background to learn from
    seed_clicks(gc, pts, labs, (bx0, by0), cfg.click_radius)
    fg = _box_cut(np.ascontiguousarray(f.rgb[by0:by1, bx0:bx1]), gc, cfg)
    seed_clicks(fg, pts, labs, (bx0, by0), cfg.click_radius, values=(0, 1))
    anchor = np.zeros(fg.shape, bool)
    pos = pts[labs == 1] - [bx0, by0]
    pos = pos[(pos[:, 0] >= 0) & (pos[:, 0] < bx1 - bx0) & (pos[:, 1] >= 0) & (pos[:, 1] < by1 - by0)]
    anchor[pos[:, 1], pos[:, 0]] = True
    grown = connected_to(fg.astype(bool), anchor)
    inner = grown[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]  # the answer within the box itself
    if inner.mean() > 1.0 / (1.0 + cfg.box_grow) ** 2:
        return mask
    if cfg.box_touch < 1.0 and _touches_frame(inner, (x0, y0, x1, y1), (h, w), cfg.box_touch):
        return mask
    out = mask.copy()
    out[by0:by1, bx0:bx1] |= grown
    return out


def keep_to_sign(mask: np.ndarray, prev_px: np.ndarray, label: int) -> np.ndarray:
    """A positive click only adds to the previous mask, a negative one only takes away from it."""
    return (mask | prev_px) if label == 1 else (mask & prev_px)


def keep_click_decision(mask: np.ndarray, decided: np.ndarray, region: np.ndarray, label: int) -> np.ndarray:
    """Within a negative click's ``region``, what the cut ``decided`` stands: its removals stay removed,
    whatever the polish made of them (a positive click's answer is left to the polish)."""
    if label == 1:
        return mask
    return mask & ~(region & ~decided)


def keep_anchored(mask: np.ndarray, pts, labs, prev_px: np.ndarray | None) -> np.ndarray:
    """The pieces of ``mask`` connected to a positive click or to the previous mask."""
    anchor = np.zeros_like(mask) if prev_px is None else prev_px.copy()
    for x, y in pts[labs == 1]:
        anchor[y, x] = True
    return connected_to(mask, anchor)


def force_click_discs(mask: np.ndarray, pts, labs, radius: int) -> None:
    """Set a disc of ``radius`` pixels around every click to its label, in place."""
    for (x, y), lab in zip(pts, labs):
        cv2.circle(mask.view(np.uint8), (int(x), int(y)), radius, int(lab), -1)
