"""Spatial (single-frame) inpainting with OpenCV, used per frame or on keyframes."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from inpaint.base import Inpainter
from tam.frames import FrameSequence


def telea(image: np.ndarray, hole: np.ndarray, radius: int = 5) -> np.ndarray:
    """Fill ``hole`` (bool HxW) of an RGB uint8 image by OpenCV's Telea method."""
    if not hole.any():
        return image.copy()
    return cv2.inpaint(image, hole.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)


class TeleaInpainter(Inpainter):
    """Each frame on its own. Fast and honest, but it flickers: a baseline."""

    name = "telea"

    def __init__(self, radius: int = 5):
        self.radius = radius

    def inpaint(self, frames: FrameSequence, masks: FrameSequence,
                indices: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        for i in range(len(frames)) if indices is None else sorted(indices):
            yield i, telea(frames[i], masks[i], self.radius)
