"""The Segmenter interface: clicks (and optionally a box or a previous mask) to a mask.

A segmenter is a shared model that holds no per-image data. ``set_image``
prepares one frame (SAM's image embedding, or the classical backend's
superpixels and colour models) and returns that work as an image state; each
``predict(state, prompt)`` is then cheap, which is what makes click-by-click
editing feel instant.

Who owns what: the segmenter owns only its weights and configuration (shared by
every browser session and thread); the image state belongs to the caller that
asked for it (a studio session keeps a few, :class:`tam.studio.Studio`; the
evaluation and the command line keep one for the length of a call). A
:class:`SegmentResult` is per-call: its logits go back in as ``mask_input``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tam.errors import PromptError
from tam.registry import Backend, Registry


@dataclass(frozen=True)
class Prompt:
    """Clicks in frame pixels: ``points`` is (N, 2) x, y; ``labels`` 1 positive, 0 negative."""

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1

    @classmethod
    def from_clicks(cls, clicks, box=None) -> "Prompt":
        """``clicks`` is an iterable of (x, y, label)."""
        clicks = list(clicks)
        pts = np.array([[c[0], c[1]] for c in clicks], np.float32).reshape(-1, 2)
        lab = np.array([int(c[2]) for c in clicks], np.int32).reshape(-1)
        return cls(pts, lab, None if box is None else tuple(float(v) for v in box))

    def validate(self, width: int, height: int) -> None:
        if len(self.points) != len(self.labels):
            raise PromptError("points and labels differ in number")
        for (x, y), lab in zip(self.points, self.labels):
            if not (0 <= x < width and 0 <= y < height):
                raise PromptError(f"click ({x:g}, {y:g}) lies outside the {width}x{height} frame")
            if lab not in (0, 1):
                raise PromptError(f"click label must be 0 (negative) or 1 (positive), got {lab}")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise PromptError(f"box {self.box} is empty or outside the {width}x{height} frame")
        if len(self.points) == 0 and self.box is None:
            raise PromptError("give at least one click or a box")


@dataclass
class SegmentResult:
    mask: np.ndarray  # bool HxW at the image's size
    score: float  # backend's own quality estimate in [0, 1]
    logits: np.ndarray | None = None  # low-res logits to feed back as ``mask_input``


ImageState = Any  # what ``set_image`` returns: opaque to the caller, read only by the segmenter that made it


class Segmenter(Backend, ABC):
    """One interface for every click-to-mask backend. RGB uint8 in, bool mask out.

    The instance holds no per-image data, so one instance serves any number of
    callers and threads at once; each keeps the image states it asked for.
    """

    @abstractmethod
    def set_image(self, image: np.ndarray) -> ImageState:
        """Prepare one RGB uint8 HxWx3 frame; returns the state that ``predict`` takes for it."""

    def set_frame(self, image: np.ndarray, neighbours=()) -> ImageState:
        """Prepare one frame of a video: ``image`` as for ``set_image``, ``neighbours`` a few RGB frames of
        the same size near it in time (see :func:`tam.segment.video.neighbour_indices`). A backend that
        uses no motion cues prepares ``image`` alone."""
        return self.set_image(image)

    @abstractmethod
    def predict(self, state: ImageState, prompt: Prompt, mask_input: np.ndarray | None = None) -> SegmentResult:
        """Mask for the frame ``state`` was prepared from (by this segmenter). ``mask_input`` is a previous
        result's logits or mask."""

    def segment(self, image: np.ndarray, prompt: Prompt) -> SegmentResult:
        """Convenience: prepare ``image`` and predict once."""
        h, w = image.shape[:2]
        prompt.validate(w, h)
        return self.predict(self.set_image(image), prompt)


SEGMENTERS: Registry[Segmenter] = Registry("segmenter", default="classical")
SEGMENTERS.register(
    "classical", "tam.segment.classical:ClassicalSegmenter",
    "superpixel graph cut with colour/texture models and geodesic click priors (no weights)",
)
SEGMENTERS.register(
    "sam", "tam.segment.sam:SamSegmenter",
    "Segment Anything ViT-B/L/H from a local checkpoint", needs=("torch", "segment_anything"),
)
SEGMENTERS.register(
    "sam2", "tam.segment.sam2:Sam2Segmenter",
    "SAM 2.1 image predictor from a local checkpoint", needs=("torch", "sam2"),
)
