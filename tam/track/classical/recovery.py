"""Recovery of lost objects: finding an object again when the cues have let it go.

Two searches run after each frame's answer:

* by colour (:func:`recover_by_template`): an object whose colour fit falls
  under ``redetect_ratio`` of its fit on the annotated frame is searched for
  over the whole frame with its annotated colour template, and moved there when
  that place fits better;
* by motion (:func:`find_moving`): an object seen moving against the camera
  whose mask then moves with the camera for ``lost_frames`` frames running was
  left on the background (a rider passing behind branches leaves the mask on
  them, and colour alone cannot tell: their colour fit stays within a fifth of
  the rider's). It is looked for among the connected regions that move off the
  camera's motion.

Both update the per-label probabilities (L x h x w float32, background first)
in place, which the next frame's motion prior starts from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from tam.track.classical.appearance import colour_fit
from tam.track.classical.config import ClassicalTrackerConfig
from tam.track.classical.state import WorkFrame

TEMPLATE_SCALE = 0.25  # colour templates are matched at this fraction of the working size
MIN_SIDE = 8  # smallest side (px) of the downscaled frame
MIN_TEMPLATE_PIXELS = 6  # an object with fewer pixels at the template's scale gets no template
MOVING_WINDOW = 5  # frames of slow-pixel shares whose median tells whether an object moves
FAST_CLOSE = 5  # closing (px) of the fast-moving pixels into regions ...
FAST_OPEN = 3  # ... and opening, which drops specks
AREA_RANGE = (0.3, 3.0)  # a candidate region's area, in multiples of the object's area before it was lost


@dataclass
class ObjectMemory:
    """One object as annotated: its colour template and where it was (the long-term memory)."""

    template: np.ndarray   # Lab crop at TEMPLATE_SCALE, float32 th x tw x 3
    template_mask: np.ndarray  # its mask, float32 th x tw in {0, 1}
    origin: tuple[int, int]    # (y0, x0) of the crop at TEMPLATE_SCALE
    prob: np.ndarray       # the object's annotated probability, h x w working size
    fit: float             # its colour fit on the annotated frame (nats)
    scale: float           # downscaled width / working width


@dataclass
class Watch:
    """What the search by motion knows of one object: its last shares of slow pixels, whether it
    was seen moving, how many frames running its mask has moved with the camera and its area before."""

    recent: list = field(default_factory=list)
    moving: bool = False
    streak: int = 0
    area: float = 0.0


def _downscaled(lab: np.ndarray) -> np.ndarray:
    h, w = lab.shape[:2]
    return cv2.resize(lab, (max(MIN_SIDE, int(w * TEMPLATE_SCALE)), max(MIN_SIDE, int(h * TEMPLATE_SCALE))),
                      interpolation=cv2.INTER_AREA)


def remember(frame: WorkFrame, prob: np.ndarray, luts: np.ndarray) -> list[ObjectMemory | None]:
    """Each object's memory on its annotated frame (None for an object too small for a template)."""
    out: list[ObjectMemory | None] = []
    f = TEMPLATE_SCALE
    lab = _downscaled(frame.lab)
    for i, p in enumerate(prob[1:], start=1):
        m = p > 0.5
        fit = colour_fit(frame.bins, m, luts, i)
        ms = cv2.resize(p, lab.shape[1::-1], interpolation=cv2.INTER_AREA) > 0.5
        ys, xs = np.nonzero(ms)
        if len(ys) < MIN_TEMPLATE_PIXELS:
            out.append(None)
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        out.append(ObjectMemory(np.ascontiguousarray(lab[y0:y1, x0:x1]),
                                np.ascontiguousarray(ms[y0:y1, x0:x1].astype(np.float32)),
                                (y0, x0), p.copy(), fit, f))
    return out


def recover_by_template(cur: WorkFrame, arg: np.ndarray, prob: np.ndarray, key_luts: np.ndarray,
                        memory: list[ObjectMemory | None], cfg: ClassicalTrackerConfig) -> None:
    """Re-find objects whose colour no longer matches the annotation; updates ``prob`` in place.

    ``arg`` holds the label indices of the answer (uint8 h x w), ``key_luts``
    the keyframes' colour histograms (L x n_bins).
    """
    h, w = cur.gray.shape
    lab_small = None
    for i, mem in enumerate(memory, start=1):
        if mem is None or mem.fit <= 0:
            continue
        now = colour_fit(cur.bins, arg == i, key_luts, i)
        if now >= cfg.redetect_ratio * mem.fit:
            continue
        if lab_small is None:
            lab_small = _downscaled(cur.lab)
        templ = mem.template
        if lab_small.shape[0] < templ.shape[0] or lab_small.shape[1] < templ.shape[1]:
            continue
        res = cv2.matchTemplate(lab_small, templ, cv2.TM_SQDIFF, mask=np.repeat(mem.template_mask[..., None], 3, 2))
        _, _, loc, _ = cv2.minMaxLoc(res)
        y0, x0 = mem.origin
        dx, dy = (loc[0] - x0) / mem.scale, (loc[1] - y0) / mem.scale
        cand = cv2.warpAffine(mem.prob, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_LINEAR)
        cand_fit = colour_fit(cur.bins, cand > 0.5, key_luts, i)
        if cand_fit > now + cfg.redetect_margin and cand_fit >= cfg.redetect_accept * mem.fit:
            give(prob, i, np.maximum(prob[i], cand), cand)


def find_moving(cur: WorkFrame, resid: np.ndarray, slow_share: np.ndarray, arg: np.ndarray, prob: np.ndarray,
                key_luts: np.ndarray, memory: list[ObjectMemory | None], watch: list[Watch],
                cfg: ClassicalTrackerConfig) -> None:
    """Move a lost moving object back onto a region that moves like it; updates ``prob`` in place.

    ``resid`` is each pixel's distance to the camera's motion (working px),
    ``slow_share`` each label's share of pixels moving with the camera (NaN:
    not judged). An object counts as moving once the median of its last
    MOVING_WINDOW shares falls under ``lost_moving``. Candidates are the
    connected regions moving over ``lost_fast_px`` off the camera, outside the
    other objects, of AREA_RANGE times the object's area before it was lost and
    within (1 + frames lost) times its size of the mask; the one whose colours
    fit the annotated object best takes it, if that fit is at least
    ``redetect_ratio`` of the annotated one.
    """
    for i, wt in enumerate(watch, start=1):
        slow = float(slow_share[i])
        if np.isnan(slow):
            continue
        m = arg == i
        if not _still_lost(wt, slow, m, cfg) or not memory or memory[i - 1] is None:
            continue
        best = _best_moving_region(cur, resid, arg, m, key_luts, i, wt, memory[i - 1].fit, cfg)
        if best is None:
            continue
        cand = best.astype(np.float32)
        prob[0] += prob[i] * (1 - cand)  # the place it was left on goes back to the background
        give(prob, i, cand, cand)
        wt.streak = 0


def _still_lost(wt: Watch, slow: float, mask: np.ndarray, cfg: ClassicalTrackerConfig) -> bool:
    """Update ``wt`` with this frame's share of slow pixels; True once the object counts as lost."""
    wt.recent = (wt.recent + [slow])[-MOVING_WINDOW:]
    wt.moving = wt.moving or (len(wt.recent) == MOVING_WINDOW and float(np.median(wt.recent)) < cfg.lost_moving)
    if not wt.moving:
        return False
    wt.streak = wt.streak + 1 if slow > cfg.lost_slow else 0
    if wt.streak == 0:
        wt.area = float(np.count_nonzero(mask))
    return wt.streak >= cfg.lost_frames


def _best_moving_region(cur: WorkFrame, resid: np.ndarray, arg: np.ndarray, mask: np.ndarray,
                        key_luts: np.ndarray, i: int, wt: Watch, fit0: float, cfg: ClassicalTrackerConfig
                        ) -> np.ndarray | None:
    """The fast-moving region (bool h x w) that fits object ``i``'s colours best, or None."""
    fast = ((resid > cfg.lost_fast_px) & ((arg == 0) | mask)).astype(np.uint8)
    fast = cv2.morphologyEx(fast, cv2.MORPH_CLOSE, np.ones((FAST_CLOSE, FAST_CLOSE), np.uint8))
    fast = cv2.morphologyEx(fast, cv2.MORPH_OPEN, np.ones((FAST_OPEN, FAST_OPEN), np.uint8))
    n, comp, stats, centroids = cv2.connectedComponentsWithStats(fast, connectivity=8)
    best, best_fit = None, cfg.redetect_ratio * fit0
    # it may have moved about its own size a frame since it was lost, not across the frame
    ys, xs = np.nonzero(mask)
    centre = (xs.mean(), ys.mean())
    reach = np.sqrt(wt.area) * (1 + wt.streak)
    for c in range(1, n):
        area = stats[c, cv2.CC_STAT_AREA]
        if not AREA_RANGE[0] * wt.area <= area <= AREA_RANGE[1] * wt.area:
            continue
        if np.hypot(*(centroids[c] - centre)) > reach:
            continue
        region = comp == c
        fit = colour_fit(cur.bins, region, key_luts, i)
        if fit > best_fit:
            best, best_fit = region, fit
    return best


def give(prob: np.ndarray, i: int, value: np.ndarray, region: np.ndarray) -> None:
    """Set object ``i``'s probability to ``value``, the other labels giving up ``region`` (soft, in
    [0, 1]); ``prob`` is renormalised in place."""
    prob[i] = value
    others = np.delete(np.arange(prob.shape[0]), i)
    prob[others] *= (1 - region)[None]
    prob /= prob.sum(0, keepdims=True) + 1e-12
