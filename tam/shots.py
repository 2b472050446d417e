"""Shot cuts: where a clip jumps to another shot, so tracking never carries a mask across.

``detect_cuts(frames, fps)`` runs PySceneDetect's AdaptiveDetector (content
change against its neighbours, so fast motion and pans do not read as cuts)
on frames brought down to :data:`DETECT_WIDTH` pixels wide; a cut is the index
of the first frame of the new shot. :func:`shots` turns cuts into shot ranges.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

DETECT_WIDTH = 256  # pixels; the detector's HSV differences need no more
MIN_SHOT_FRAMES = 8  # shorter "shots" are flashes, not cuts
# A frame's content change against the mean of its 2+2 neighbours. Within the 17 davis2016
# sequences (fast motion, pans) it never passes 1.44; at a cut between two of them it is
# 2.3-13.9. PySceneDetect's default, 3.0, missed 3 of 17 such cuts.
ADAPTIVE_THRESHOLD = 2.0
DETECTOR = "scenedetect-adaptive-v2"  # recorded with cached cuts; a new one re-detects


class CutFinder:
    """Feed RGB uint8 frames in order with :meth:`add`; :meth:`cuts` gives the cuts found."""

    def __init__(self, fps: float, width: int = DETECT_WIDTH):
        from scenedetect.detectors import AdaptiveDetector

        self._detector = AdaptiveDetector(adaptive_threshold=ADAPTIVE_THRESHOLD, min_scene_len=MIN_SHOT_FRAMES)
        self._rate = float(fps) if fps and fps > 0 else 25.0
        self._width = width
        self._count = 0
        self._found: set[int] = set()
        self._finished = False

    def add(self, rgb: np.ndarray) -> None:
        from scenedetect.common import FrameTimecode

        small = cv2.cvtColor(_downscale(rgb, self._width), cv2.COLOR_RGB2BGR)
        found = self._detector.process_frame(FrameTimecode(self._count, self._rate), small)
        self._found.update(t.frame_num for t in found)
        self._count += 1

    def cuts(self) -> list[int]:
        from scenedetect.common import FrameTimecode

        if not self._finished and self._count:
            found = self._detector.post_process(FrameTimecode(self._count - 1, self._rate))
            self._found.update(t.frame_num for t in found)
            self._finished = True
        return sorted(int(c) for c in self._found if 0 < c < self._count)


def detect_cuts(frames: Iterable[np.ndarray], fps: float, width: int = DETECT_WIDTH) -> list[int]:
    """Frame indices where a new shot starts (never 0), from RGB uint8 frames read in order."""
    finder = CutFinder(fps, width)
    for rgb in frames:
        finder.add(rgb)
    return finder.cuts()


def _downscale(rgb: np.ndarray, width: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w <= width:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (width, max(2, int(round(h * width / w)))), interpolation=cv2.INTER_AREA)


def shots(num_frames: int, cuts: Iterable[int]) -> list[tuple[int, int]]:
    """``[(first, last), ...]`` inclusive frame ranges of the shots."""
    bounds = [0] + sorted(c for c in set(cuts) if 0 < c < num_frames) + [num_frames]
    return [(a, b - 1) for a, b in zip(bounds, bounds[1:])]


def describe(num_frames: int, cuts: Iterable[int], fps: float) -> Iterator[str]:
    """One line per shot: its frames and times."""
    for k, (a, b) in enumerate(shots(num_frames, cuts), 1):
        yield f"shot {k}: frames {a}-{b} ({a / fps:.2f}-{(b + 1) / fps:.2f} s)"
