"""The motion cue of the classical tracker: where each label's pixels went since the previous frame.

Dense DIS optical flow both ways between the previous and the current frame;
their forward/backward consistency gives a per-pixel confidence. The previous
per-label probabilities are pulled along the backward flow and mixed with each
object moved as a whole by a masked template match (which follows objects whose
inside has too little texture for flow, or that an occluder's flow would drag
along). Where the flow is inconsistent the prior is blurred, and labels present
nearby keep a floor, so the motion prior says "near here". A pixel onto which
the forward flow carries no previous pixel was hidden in the previous frame:
the backward flow fills it from what hid it, so that label's prior there goes
to the other labels nearby.

Shapes: working-size frames are h x w; label stacks are L x h x w float32,
background first; flows are h x w x 2 float32 (x, y) in working px.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from tam.track.classical import kernels
from tam.track.classical.config import DIS_PRESETS, ClassicalTrackerConfig

MIN_SIDE = 8  # smallest side (px) of a downscaled image
MIN_TEMPLATE_PIXELS = 9  # an object with fewer pixels at the match's scale is not matched
MIN_SEARCH_PX = 4  # the match searches at least this far (px at its scale) around the object's box ...
SEARCH_SHARE = 0.5  # ... and at least this share of the box's longest side
EDGE_PX = 2  # an object with probability over EDGE_LEVEL this close to the frame's edge may be leaving
EDGE_LEVEL = 0.5
BLUR_DOWNSCALE = 4  # wide blurs run at a quarter of the size ...
BLUR_DOWNSCALE_SIGMA = 8.0  # ... when sigma is at least this (px) ...
BLUR_DOWNSCALE_SIDE = 64  # ... and the image's shortest side at least this (px)
PRIOR_EPS = 1e-6  # added to the prior before its log
NO_MAP = np.zeros((0, 0), np.float32)  # a per-pixel map that is off (the kernels' convention)


class FlowPair:
    """Forward and backward DIS flows of a frame pair, computed side by side on two threads.

    Owns one worker thread and one DIS instance per thread (an instance must not
    be shared between threads; creating one costs 3 ms, a tenth of a medium flow
    at 512x288). The worker also runs other jobs (:meth:`submit`) while the
    caller's thread works. One FlowPair serves one ``propagate`` call: nothing
    is shared between trackers, videos or calls. Close it (or use ``with``).
    """

    def __init__(self, preset: str, finest: int = 0, check_finest: int = 0):
        """``finest``: the backward flow's finest pyramid level (0: the preset's); ``check_finest``: the
        forward flow's (it only checks the backward one)."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tam-flow")
        self._here = _dis(preset, finest)
        self._there = _dis(preset, check_finest)

    def flows(self, prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(forward prev -> cur, backward cur -> prev) of two uint8 grey frames; OpenCV releases the GIL,
        so on two cores the pair costs little more than one flow."""
        fwd_job = self._pool.submit(self._there.calc, prev, cur, None)
        back = self._here.calc(cur, prev, None)
        return fwd_job.result(), back

    def submit(self, fn, *args) -> Future:
        """Run ``fn(*args)`` on the worker thread (idle between flow pairs)."""
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> FlowPair:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _dis(preset: str, finest: int):
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    if finest > 0:
        dis.setFinestScale(finest)
    return dis


@dataclass
class Grid:
    """Pixel coordinates of the working size: ``x``, ``y`` (h x w float32)."""

    x: np.ndarray
    y: np.ndarray

    @classmethod
    def of(cls, h: int, w: int) -> Grid:
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        return cls(gx, gy)


@dataclass
class Motion:
    """The motion cue of one frame (h x w working size, L labels)."""

    back: np.ndarray      # h x w x 2 backward flow (current -> previous), working px
    map_x: np.ndarray     # h x w where each pixel came from (x, y) in the previous frame
    map_y: np.ndarray
    conf: np.ndarray      # h x w forward/backward consistency in [0, 1]
    warped: np.ndarray    # L x h x w previous probabilities moved onto the current frame
    blurred: np.ndarray   # L x h x w their wide blur
    present: np.ndarray   # L x h x w each label's presence nearby, in [0, 1]
    log_prior: np.ndarray  # L x h x w motion_weight * log(prior)
    growth: np.ndarray    # each object's area change the flow predicts (see _flow_growth)


def motion_cue(flows: FlowPair, prev, cur, prob: np.ndarray, grid: Grid, blur_sigma: float,
               cfg: ClassicalTrackerConfig) -> Motion:
    """The motion prior for ``cur`` from ``prob`` (L x h x w) on ``prev`` (WorkFrames)."""
    fwd, back = flows.flows(prev.gray, cur.gray)
    mx, my = grid.x + back[..., 0], grid.y + back[..., 1]
    fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    conf = kernels.consistency(back, fwd_at, np.float32(cfg.consistency_px))
    warped = np.stack([cv2.remap(p, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                       for p in prob])
    warped[0] = np.clip(1 - warped[1:].sum(0), 0, 1)
    growth = _flow_growth(prob, warped, cfg.area_flow_growth)
    if cfg.shift_weight > 0:
        for i, moved in enumerate(shift_objects(prev.lab, cur.lab, prob, cfg.shift_scale), 1):
            if moved is not None:
                warped[i] = (1 - cfg.shift_weight) * warped[i] + cfg.shift_weight * moved
        warped[0] = np.clip(1 - warped[1:].sum(0), 0, 1)
    blurred = wide_blur(warped, blur_sigma)
    revealed = revealed_share(fwd, mx, my, cfg.reveal_level) if cfg.reveal_level > 0 else NO_MAP
    present, log_prior = kernels.motion_prior(warped, blurred, conf, revealed, cfg.near_level, cfg.prior_floor,
                                              cfg.motion_weight, PRIOR_EPS)
    return Motion(back, mx, my, conf, warped, blurred, present, log_prior, growth)


def revealed_share(fwd: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, level: float) -> np.ndarray:
    """How surely each pixel was hidden in the previous frame (h x w float32 in [0, 1]).

    A pixel onto which the forward flow (previous -> current) carries fewer than
    ``level`` previous pixels was behind something: 1 - coverage / level, after
    a 3x3 mean of the coverage. The backward flow fills such a pixel from the
    thing that hid it, so its label there is the one it is least likely to
    have. Pixels whose backward flow (``map_x``, ``map_y``: their source) leaves
    the frame came into view at its edge rather than from behind something: 0.
    """
    h, w = fwd.shape[:2]
    cov = cv2.blur(kernels.splat_coverage(np.ascontiguousarray(fwd, np.float32)), (3, 3))
    share = np.clip(1.0 - cov / level, 0.0, 1.0)
    share[(map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)] = 0.0
    return share


def _flow_growth(prob: np.ndarray, warped: np.ndarray, most: float) -> np.ndarray:
    """Each object's area change from the previous frame that the flow predicts (its warped mass over its mass).

    An object at the frame's edge may be leaving: the mass the flow carries out
    of the frame is lost, and its area may shrink as fast (at most 1). Elsewhere
    an object coming closer grows as its flow spreads out, by at most ``most``
    a frame; the flow's errors erode thin objects, so a shrinking mass is not
    followed there (at least 1).
    """
    growth = np.ones(prob.shape[0] - 1)
    e = EDGE_PX
    for i in range(prob.shape[0] - 1):
        p = prob[i + 1]
        at_edge = max(p[:e].max(), p[-e:].max(), p[:, :e].max(), p[:, -e:].max()) > EDGE_LEVEL
        if not at_edge and most <= 1:
            continue
        ratio = float(warped[i + 1].sum()) / (float(p.sum()) + 1e-6)
        growth[i] = min(1.0, ratio) if at_edge else min(most, max(1.0, ratio))
    return growth


def shift_objects(prev: np.ndarray, cur: np.ndarray, prob: np.ndarray, scale: float) -> np.ndarray:
    """Each object's previous probability moved by its best whole-object translation (or None).

    The translation is the minimum of a masked sum of squared colour differences
    between the object's pixels in ``prev`` and ``cur`` over a search window as
    large as half the object around its previous box. This follows an object
    whose inside has too little texture for optical flow, or that an occluder's
    flow would drag along.
    """
    h, w = prev.shape[:2]
    out: list[np.ndarray | None] = [None] * (prob.shape[0] - 1)
    small = (max(MIN_SIDE, int(w * scale)), max(MIN_SIDE, int(h * scale)))
    p_small = cv2.resize(prev, small, interpolation=cv2.INTER_AREA)
    c_small = cv2.resize(cur, small, interpolation=cv2.INTER_AREA)
    f = small[0] / w
    for i, p in enumerate(prob[1:]):
        m = cv2.resize(p, small, interpolation=cv2.INTER_AREA)
        ys, xs = np.nonzero(m > 0.5)
        if len(ys) < MIN_TEMPLATE_PIXELS:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        if y0 == 0 or x0 == 0 or y1 == small[1] or x1 == small[0]:
            continue  # touching the border: it may be leaving, which a match inside cannot say
        r = max(MIN_SEARCH_PX, int(SEARCH_SHARE * max(y1 - y0, x1 - x0)))
        sy0, sy1 = max(0, y0 - r), min(small[1], y1 + r)
        sx0, sx1 = max(0, x0 - r), min(small[0], x1 + r)
        templ = np.ascontiguousarray(p_small[y0:y1, x0:x1])
        tmask = np.ascontiguousarray((m[y0:y1, x0:x1] > 0.5).astype(np.float32))
        search = np.ascontiguousarray(c_small[sy0:sy1, sx0:sx1])
        if search.shape[0] < templ.shape[0] or search.shape[1] < templ.shape[1]:
            continue
        tm = np.repeat(tmask[..., None], 3, axis=2)
        res = cv2.matchTemplate(search, templ, cv2.TM_SQDIFF, mask=tm)
        _, _, loc, _ = cv2.minMaxLoc(res)
        dx = (sx0 + loc[0] - x0) / f
        dy = (sy0 + loc[1] - y0) / f
        mat = np.float32([[1, 0, dx], [0, 1, dy]])
        out[i] = cv2.warpAffine(p, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out


def wide_blur(prob: np.ndarray, sigma: float) -> np.ndarray:
    """Wide Gaussian blur of each channel, computed at a quarter of the size when sigma allows."""
    h, w = prob.shape[1:]
    f = BLUR_DOWNSCALE if sigma >= BLUR_DOWNSCALE_SIGMA and min(h, w) >= BLUR_DOWNSCALE_SIDE else 1
    out = np.empty_like(prob)
    for i, p in enumerate(prob):
        if f == 1:
            out[i] = cv2.GaussianBlur(p, (0, 0), sigma)
        else:
            small = cv2.resize(p, (w // f, h // f), interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), sigma / f)
            out[i] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return out
