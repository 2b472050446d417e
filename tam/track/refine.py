"""Refinement (TAM step 3): re-prompt the segmenter where a tracked mask degrades.

A tracker's output drifts: a part of the object is lost, or the background
leaks in. When an object's mask changes suddenly between two consecutive
tracked frames (its area, or its shape once the motion of its centre is taken
out), the segmenter is asked again on that frame, prompted by what the tracker
knows: the mask's bounding box, positive points deep inside its largest parts,
and the mask itself as the previous mask. The answer replaces the tracked mask
when it stays close enough to it (a segmenter that jumps to another object is
worse than the drift), and :func:`tam.track.propagation.track` then restarts
tracking from that frame with the refined mask in the tracker's memory, like a
keyframe that the user never has to see.

Refined frames are not user annotations: they are not stored as keyframes, and
a later correction re-tracks over them.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tam.segment.base import Prompt, Segmenter


@dataclass(frozen=True)
class RefineConfig:
    # A frame is re-prompted when an object's area changes by more than this
    # fraction from the previous frame...
    area_change: float = 0.25
    # ...or when its mask, moved so the two centroids coincide, overlaps the
    # previous one by less than this IoU.
    shape_iou: float = 0.75
    # The refined mask is kept only if it overlaps the tracked one at least this
    # much: below, the segmenter has most likely jumped to something else.
    accept_iou: float = 0.5
    # Frames to wait before the same object may be refined again, so a genuinely
    # changing object does not send every frame to the segmenter.
    cooldown: int = 5
    min_area: int = 64  # smaller masks are left alone: too little to prompt from
    points: int = 3  # positive points, one per largest connected part
    use_mask: bool = True  # pass the tracked mask as the segmenter's previous mask

    def __post_init__(self):
        if not 0 <= self.area_change:
            raise ValueError("area_change must be >= 0")
        for name in ("shape_iou", "accept_iou"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1]")
        if self.cooldown < 0 or self.points < 1 or self.min_area < 1:
            raise ValueError("cooldown must be >= 0, points and min_area >= 1")


class Refiner:
    """Decides which tracked objects degraded on a frame and re-segments them."""

    def __init__(self, segmenter: Segmenter, config: RefineConfig | None = None):
        """``segmenter`` may be shared with an interactive front end: it holds no per-image
        data, and the image state of a refined frame lives only for that frame's call."""
        self.segmenter = segmenter
        self.config = config or RefineConfig()
        self.refined_frames = 0  # frames whose masks were replaced (for reports)
        self.rejected = 0  # segmenter answers discarded by ``accept_iou``

    def degraded(self, previous: np.ndarray, labels: np.ndarray) -> list[int]:
        """Ids of the objects whose mask changed suddenly from ``previous`` to ``labels``."""
        cfg = self.config
        out = []
        for k in np.unique(previous):
            if k == 0:
                continue
            a, b = previous == k, labels == k
            na, nb = int(np.count_nonzero(a)), int(np.count_nonzero(b))
            if na < cfg.min_area or nb < cfg.min_area:
                continue  # vanished or tiny: occlusion or exit, nothing to prompt from
            if abs(nb - na) > cfg.area_change * na or _centred_iou(a, b) < cfg.shape_iou:
                out.append(int(k))
        return out

    def refine(self, image: np.ndarray, labels: np.ndarray, ids: list[int]) -> np.ndarray | None:
        """``labels`` with the objects ``ids`` re-segmented, or None when nothing was kept."""
        out = labels.copy()
        changed = False
        prompts = {k: prompt_from_mask(labels == k, self.config.points) for k in ids}
        prompts = {k: v for k, v in prompts.items() if v is not None}
        if not prompts:
            return None
        state = self.segmenter.set_image(image)
        results = {k: self.segmenter.predict(state, v, mask_input=(labels == k) if self.config.use_mask else None)
                   for k, v in prompts.items()}
        for k, result in results.items():
            tracked = labels == k
            mask = np.asarray(result.mask, bool)
            if _iou(mask, tracked) < self.config.accept_iou:
                self.rejected += 1
                continue
            # Other objects keep their pixels: the refinement of one object must not
            # eat a neighbour that the tracker separated.
            out[tracked] = 0
            out[mask & ((labels == 0) | tracked)] = k
            changed = True
        if changed:
            self.refined_frames += 1
            return out
        return None


def prompt_from_mask(mask: np.ndarray, points: int = 3) -> Prompt | None:
    """Box of ``mask`` and positive points at the deepest pixel of its largest parts."""
    m = np.asarray(mask, np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return None
    h, w = m.shape
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1
    largest = stats[order[0], cv2.CC_STAT_AREA]
    dist = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    pts = []
    for c in order[:points]:
        # Crumbs around the main part are more likely drift than object.
        if stats[c, cv2.CC_STAT_AREA] < 0.1 * largest:
            break
        d = np.where(comp == c, dist, 0)
        y, x = np.unravel_index(int(np.argmax(d)), d.shape)
        pts.append((float(x), float(y), 1))
    ys, xs = np.nonzero(m)
    pad_x = max(2.0, 0.05 * (xs.max() - xs.min() + 1))
    pad_y = max(2.0, 0.05 * (ys.max() - ys.min() + 1))
    box = (max(0.0, xs.min() - pad_x), max(0.0, ys.min() - pad_y),
           min(float(w), xs.max() + 1 + pad_x), min(float(h), ys.max() + 1 + pad_y))
    return Prompt.from_clicks(pts, box)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def _centred_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two masks after moving ``b`` so that its centroid lands on ``a``'s."""
    ya, xa = np.nonzero(a)
    yb, xb = np.nonzero(b)
    dy = int(round(ya.mean() - yb.mean()))
    dx = int(round(xa.mean() - xb.mean()))
    h, w = a.shape
    yb, xb = yb + dy, xb + dx
    keep = (yb >= 0) & (yb < h) & (xb >= 0) & (xb < w)
    moved = np.zeros_like(a)
    moved[yb[keep], xb[keep]] = True
    return _iou(a, moved)
