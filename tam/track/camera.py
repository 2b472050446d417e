"""Motion against the camera: a cue that tells a moving object from the background behind it.

The background of most clips moves as one rigid scene seen by a moving camera, so
its optical flow follows a single homography (the dominant motion); a moving
object's does not. :func:`camera_homography` fits that homography to the flow of
the pixels the tracker believes are background and :func:`residual_and_bins` gives
every pixel's distance to it. :class:`ResidualModel` learns, frame to frame, how those
residuals are distributed for each label and turns them into a penalty: a pixel
that moves with the camera is unlikely to belong to an object that does not.

Objects that mostly stand still (a share of slow pixels above ``moving``) are
not judged at all, since the camera explains them as well as the background.

The other half (a pixel that moves like an object, unlike the camera, is
unlikely to be background) holds only where nothing around the object moves
with it (a swan's reflection and a car's shadow do). So it is applied only near
an object whose surrounding background (``band`` pixels) moved with the camera
in the first tracked frames: a share of fast pixels (over 2 px off the camera)
under ``bg_gate``, judged per angular sector around the object (``sectors``; a
reflection or a shadow lies on one side), on the sectors that stood still.
Figures: docs/experiments.md.
"""
from __future__ import annotations

import cv2
import numpy as np

# residual histogram bin edges (working pixels); fine near zero where the camera explains the flow
_EDGES = np.array([0.35, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0], np.float32)
_SLOW_BINS = 3  # bins under 1 px: moving with the camera
_SAMPLES = 3000  # flow vectors the homography is fitted to
_FAST_BIN = 5  # bins over 2 px: clearly moving against the camera
_FIRST = 5  # tracked frames that tell whether the background around an object moves with it
_MIN_PIXELS = 20  # fewest pixels of consistent flow a label's or a sector's share is judged from


def camera_homography(back: np.ndarray, conf: np.ndarray, background: np.ndarray) -> np.ndarray | None:
    """The camera's motion: a homography (3 x 3 float64, current -> previous pixel coordinates), or None.

    ``back`` is the flow from the current frame to the previous one (h x w x 2,
    working px), ``conf`` its forward/backward consistency and ``background``
    the background's share of the motion prior (h x w each). The homography is
    fitted (RANSAC) to consistent flow on a sparse grid of confident background
    pixels, or of any consistent pixels when the background has too few; None
    when the flow does not allow a fit.
    """
    h, w = back.shape[:2]
    step = max(2, int(np.sqrt(h * w / _SAMPLES)))
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    ok = (conf[ys, xs] > 0.5) & (background[ys, xs] > 0.9)
    if np.count_nonzero(ok) < 50:
        ok = conf[ys, xs] > 0.5
    if np.count_nonzero(ok) < 20:
        return None
    src = np.stack([xs[ok], ys[ok]], 1).astype(np.float32)
    dst = src + back[ys[ok], xs[ok]]
    hom, _ = cv2.findHomography(src, dst, cv2.RANSAC, 1.0)
    return hom


def residual_and_bins(back: np.ndarray, hom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's distance (h x w float32, working px) between its backward flow and the homography's
    motion, and its residual bin (int64 h x w, as :meth:`ResidualModel.bins`), in one pass."""
    from tam.track.classical.kernels import camera_residual_bins

    return camera_residual_bins(np.ascontiguousarray(back, np.float32), np.asarray(hom, np.float64), _EDGES)


def camera_residual(back: np.ndarray, conf: np.ndarray, background: np.ndarray) -> np.ndarray | None:
    """Per-pixel distance (h x w float32, working px) between the backward flow and the camera's
    homography (:func:`camera_homography`), or None when the flow does not allow a fit."""
    hom = camera_homography(back, conf, background)
    return None if hom is None else residual_and_bins(back, hom)[0]


def flow_texture(gray: np.ndarray, full: float) -> np.ndarray:
    """How far optical flow can be trusted: local grey-level spread (7x7) over ``full``, at most 1.

    Inside a textureless region DIS fills in the flow from its surroundings, so a
    black swan's body can seem to move with the water around it.
    """
    g = gray.astype(np.float32)
    mean = cv2.blur(g, (7, 7))
    spread = np.sqrt(np.maximum(cv2.blur(g * g, (7, 7)) - mean * mean, 0))
    return np.clip(spread / full, 0, 1)


def _sectors(ys: np.ndarray, xs: np.ndarray, centre: tuple[float, float], n: int) -> np.ndarray:
    """Angular sector (0..n-1, clockwise on screen starting from the left) of each pixel (``ys``, ``xs``)
    around the point ``centre`` (y, x)."""
    if n == 1:
        return np.zeros(np.shape(ys), np.int64)
    cy, cx = centre
    angle = np.arctan2(ys - cy, xs - cx)
    return np.minimum(n - 1, ((angle + np.pi) * (n / (2 * np.pi))).astype(np.int64))


class ResidualModel:
    """Each label's histogram of camera residuals, learned from the tracked frames (moving average)."""

    def __init__(self, n_labels: int, rate: float = 0.5, band: float = 25.0, bg_gate: float = 0.25,
                 sectors: int = 1):
        """``sectors``: the surroundings are judged per direction from the object's centroid, in this many
        equal angular sectors (1: the whole ring at once)."""
        self.n_labels = n_labels
        self.rate = rate
        self.band = band
        self.bg_gate = bg_gate
        self.sectors = sectors
        self.hist: np.ndarray | None = None  # labels x bins, rows sum to 1
        # each label's share of its own pixels moving with the camera in the last frame learned from
        # (NaN: under _MIN_PIXELS pixels of consistent flow)
        self.slow = np.full(n_labels, np.nan)
        # per frame of the first few, per label: that share, and the share of fast pixels in the
        # background around each object (labels x sectors)
        self.first_around: list[np.ndarray] = []
        self.first_slow: list[np.ndarray] = []

    @staticmethod
    def bins(resid: np.ndarray) -> np.ndarray:
        return np.searchsorted(_EDGES, resid.ravel()).reshape(resid.shape)

    def update(self, bins: np.ndarray, conf: np.ndarray, labels: np.ndarray) -> None:
        """Learn from a frame's answer (``labels``: label index per pixel) where its flow is consistent."""
        good = conf > 0.5
        n = len(_EDGES) + 1
        hist = np.stack([np.bincount(bins[(labels == i) & good], minlength=n).astype(np.float64)
                         for i in range(self.n_labels)])
        counts = hist.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.slow = np.where(counts >= _MIN_PIXELS, hist[:, :_SLOW_BINS].sum(1) / counts, np.nan)
        if self.bg_gate > 0 and len(self.first_around) < _FIRST:
            self._learn_surroundings(bins, good, labels)
        hist = (hist + 1.0) / (hist.sum(1, keepdims=True) + n)
        # neighbouring bins share a little (a speed drifts from frame to frame); the ends are clamped
        lo = np.concatenate([hist[:, :1], hist[:, :-1]], 1)
        hi = np.concatenate([hist[:, 1:], hist[:, -1:]], 1)
        hist = 0.6 * hist + 0.2 * lo + 0.2 * hi
        self.hist = hist if self.hist is None else (1 - self.rate) * self.hist + self.rate * hist

    def _learn_surroundings(self, bins: np.ndarray, good: np.ndarray, labels: np.ndarray) -> None:
        around = np.full((self.n_labels, self.sectors), np.nan)
        for i in range(1, self.n_labels):
            if np.isnan(self.slow[i]):
                continue
            m = labels == i
            dist = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 3)
            ring = (dist > 2) & (dist <= self.band) & (labels == 0) & good
            ys, xs = np.nonzero(ring)
            my, mx = np.nonzero(m)
            sector = _sectors(ys, xs, (float(np.mean(my)), float(np.mean(mx))), self.sectors)
            fast = bins[ys, xs] >= _FAST_BIN
            for k in range(self.sectors):
                inside = sector == k
                if np.count_nonzero(inside) >= _MIN_PIXELS:
                    around[i, k] = np.mean(fast[inside])
        self.first_around.append(around)
        self.first_slow.append(self.slow.copy())

    def _still_surroundings(self, moving: float) -> dict[int, np.ndarray]:
        """Objects that moved against the camera, each with the sectors (bool) around it whose background
        did not (a sector never seen counts as moving)."""
        if len(self.first_around) < _FIRST:
            return {}
        around, slow = np.stack(self.first_around), np.stack(self.first_slow)
        out = {}
        for i in range(1, self.n_labels):
            s = slow[:, i][~np.isnan(slow[:, i])]
            if not len(s) or s.mean() >= moving:
                continue
            seen = ~np.isnan(around[:, i])  # frames x sectors
            share = np.where(seen, around[:, i], 0).sum(0) / np.maximum(seen.sum(0), 1)
            still = seen.any(0) & (share < self.bg_gate)
            if still.any():
                out[i] = still
        return out

    def penalty(self, bins: np.ndarray, trust: np.ndarray, clip: float, moving: float,
                near: np.ndarray | None = None) -> np.ndarray | None:
        """Per-label log-penalty (labels x h x w, <= 0), or None before learning.

        Object ``i`` loses ``min(clip, log(best label's likelihood / its own))``
        times ``trust`` (flow consistency and texture) wherever another label
        explains the residual better; objects with more than ``moving`` of their
        pixels moving with the camera are left alone. The background loses the
        same way to the objects whose surroundings stood still with the camera
        (see the module's notes), within their ``near`` zone (per label, in
        [0, 1]; without it the background is never penalised).
        """
        if self.hist is None:
            return None
        ll = np.log(self.hist)
        table = np.clip(ll - ll.max(0, keepdims=True), -clip, 0).astype(np.float32)  # labels x bins
        table[0] = 0
        table[self.hist[:, :_SLOW_BINS].sum(1) > moving] = 0
        out = table[:, bins]
        out *= trust
        still = self._still_surroundings(moving) if (self.bg_gate > 0 and near is not None) else {}
        if still:
            objects = list(still)
            row = np.clip(ll[0] - ll[objects].max(0), -clip, 0).astype(np.float32)
            out[0] = row[bins]
            out[0] *= trust
            out[0] *= np.max([near[i] * self._open_zone(near[i], still[i]) for i in objects], axis=0)
        return out

    def _open_zone(self, near: np.ndarray, still: np.ndarray) -> np.ndarray:
        """1 where a pixel lies in one of the ``still`` sectors around the centroid of ``near`` (an object's
        presence, h x w), else 0 (float32 h x w)."""
        if still.all():
            return np.ones(near.shape, np.float32)
        h, w = near.shape
        ys, xs = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
        total = max(float(near.sum()), 1e-12)
        # weighted sums spelled out (no BLAS call: its threads would spin on a second core)
        centre = float((near.sum(1) * ys).sum()) / total, float((near.sum(0) * xs).sum()) / total
        sector = _sectors(ys[:, None], xs[None, :], centre, self.sectors)
        return still[sector].astype(np.float32)
