"""Per-video state of the classical tracker and the working-size view of frames and masks.

The tracker works at a reduced size (longest side ``work_side``) and answers at
the frames' size. A video's state holds a few working-size frames (LRU) and the
models learned from the keyframes, keyed by a digest of the keyframes so that
an edit makes them stale and they are dropped: memory does not grow with the
video's length.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from tam.cache import LRU, content_digest
from tam.errors import MaskError
from tam.frames import FrameSequence
from tam.track.classical.appearance import texture_bin
from tam.track.classical.config import ClassicalTrackerConfig

MIN_WORK_SIDE = 16  # shortest working side (px) however small the frames


@dataclass
class WorkFrame:
    """One frame at the working size (h x w), in the forms the cues read."""

    gray: np.ndarray   # uint8 h x w
    guide: np.ndarray  # float32 h x w x 3, RGB in [0, 1] (the guided filter's guide)
    rgb: np.ndarray    # uint8 h x w x 3
    bins: np.ndarray   # int32 h x w colour-texture bin index, 0..config.n_bins-1
    lab: np.ndarray    # float32 h x w x 3 CIELAB (OpenCV's 8-bit scaling) divided by 255


@dataclass
class ClassicalTrackerState:
    """Per-video state: working size, small LRU caches and keyframe models."""

    size: tuple[int, int]                     # frames' (height, width)
    work: tuple[int, int]                     # working (height, width)
    frames: LRU = field(default_factory=lambda: LRU(6))
    models: dict = field(default_factory=dict)  # (kind, keyframe digest, ...) -> what was learned from them


def new_state(frames: FrameSequence, config: ClassicalTrackerConfig) -> ClassicalTrackerState:
    """A fresh state for ``frames``: the working size keeps the aspect ratio, longest side at most work_side."""
    if len(frames) == 0:
        raise MaskError("the video has no frames")
    h, w = np.asarray(frames[0]).shape[:2]
    s = min(1.0, config.work_side / max(h, w))
    work = (max(MIN_WORK_SIDE, int(round(h * s))), max(MIN_WORK_SIDE, int(round(w * s))))
    return ClassicalTrackerState((h, w), work, LRU(config.cache_frames))


def work_frame(state: ClassicalTrackerState, frames: FrameSequence, i: int,
               config: ClassicalTrackerConfig) -> WorkFrame:
    """Frame ``i`` at the working size (cached in the state's LRU)."""
    def make() -> WorkFrame:
        img = np.asarray(frames[i])
        if img.shape[:2] != state.size:
            raise MaskError(f"frame {i} is {img.shape[1]}x{img.shape[0]}, expected "
                            f"{state.size[1]}x{state.size[0]}")
        h, w = state.work
        if (h, w) != state.size:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
        b = (lab.astype(np.int32) * config.bins) >> 8  # 0..bins-1 for any bin count
        bins = (b[..., 0] * config.bins + b[..., 1]) * config.bins + b[..., 2]
        if config.texture_bins > 1:
            bins = bins * config.texture_bins + texture_bin(gray, config.texture_bins, config.texture_sigma)
        return WorkFrame(gray, img.astype(np.float32) / 255.0, img, bins, lab.astype(np.float32) / 255.0)
    return state.frames.get_or(i, make)


def to_work(state: ClassicalTrackerState, labels: np.ndarray) -> np.ndarray:
    """A full-size label map (uint8 H x W) at the working size (nearest neighbour)."""
    labels = np.asarray(labels)
    if labels.shape != state.size:
        raise MaskError(f"mask is {labels.shape[1]}x{labels.shape[0]}, frames are "
                        f"{state.size[1]}x{state.size[0]}")
    h, w = state.work
    if (h, w) == state.size:
        return labels.astype(np.uint8)
    return cv2.resize(labels.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)


def soft_labels(state: ClassicalTrackerState, labels: np.ndarray, ids: list[int]) -> np.ndarray:
    """Per-label probabilities (L x h x w float32, background first, then ``ids``) of a full-size label map."""
    h, w = state.work
    chans = []
    for k in [0] + ids:
        m = (np.asarray(labels) == k).astype(np.float32)
        chans.append(cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA) if (h, w) != state.size else m)
    return np.stack(chans)


def keyframe_digest(keyframes: Mapping[int, np.ndarray]) -> str:
    """A key for everything learned from the keyframes: their indices and label maps."""
    return content_digest(*(part for k in sorted(keyframes) for part in (k, np.asarray(keyframes[k]))))


def forget_other_keyframes(models: dict, digest: str) -> None:
    """Drop the models learned from other keyframes (edits made them stale): memory stays bounded."""
    for key in [k for k in models if k[1] != digest]:
        del models[key]
