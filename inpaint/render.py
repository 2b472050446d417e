"""From masks to the finished clip: hole masks, full-resolution compositing, export.

Inpainting runs at the working (proxy) size. The renderer scales each fill up and
blends it into the full-resolution source frame through a feathered alpha that
is 1 on the hole and 0 a few pixels away, so every pixel away from the removed
objects is the source's own.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inpaint.base import Inpainter
from tam import masks as maskio
from tam.errors import Cancelled, MaskError, OutputError
from tam.export import VideoWriter
from tam.fileio import atomic_dir, check_writable_dir
from tam.frames import FrameSequence


@dataclass(frozen=True)
class HoleConfig:
    """How object masks become holes. Distances are in source pixels."""

    dilate: int = 8  # grow the objects to take in their edges, motion blur and halos
    feather: int = 4  # soft blend width outside the hole

    def __post_init__(self):
        if self.dilate < 0 or self.feather < 0:
            raise ValueError("dilate and feather must be >= 0")


class HoleMasks:
    """Bool hole masks at working size from label maps: chosen ids, dilated.

    ``labels`` is a FrameSequence of uint8 label maps at ``size``; ``scale`` is
    working pixels per source pixel, so ``dilate`` keeps its meaning in source pixels.
    """

    def __init__(self, labels: FrameSequence, ids: Sequence[int] | None, config: HoleConfig,
                 scale: float = 1.0):
        self._labels, self._ids, self._config, self._scale = labels, ids, config, scale

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> np.ndarray:
        m = maskio.union(self._labels[index], self._ids)
        return maskio.dilate(m, int(round(self._config.dilate * self._scale)))


def hole_alpha(hole: np.ndarray, size: tuple[int, int], feather_px: int) -> np.ndarray | None:
    """The blend alpha (float32 HxW at ``size`` = (w, h)): 1 on the hole, 0 beyond the feather; None if empty."""
    w, h = size
    if not hole.any():
        return None
    if hole.shape != (h, w):
        hole = cv2.resize(hole.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.0
    return maskio.feather(hole, feather_px)


def full_size(fill_rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A working-size fill brought to ``size`` = (w, h)."""
    if fill_rgb.shape[1::-1] == tuple(size):
        return fill_rgb
    return cv2.resize(fill_rgb, tuple(size), interpolation=cv2.INTER_CUBIC)


def composite(source_rgb: np.ndarray, fill_rgb: np.ndarray, hole: np.ndarray, feather_px: int) -> np.ndarray:
    """Blend ``fill_rgb`` (any size) into ``source_rgb`` where ``hole`` (any size) is set."""
    h, w = source_rgb.shape[:2]
    a = hole_alpha(hole, (w, h), feather_px)
    if a is None:
        return source_rgb
    fill_rgb = full_size(fill_rgb, (w, h))
    alpha = a[..., None]
    out = source_rgb.astype(np.float32) * (1.0 - alpha) + fill_rgb.astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_frames(source: FrameSequence, work_frames: FrameSequence, holes: FrameSequence,
                  inpainter: Inpainter, feather_px: int = 4,
                  indices: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, full-resolution RGB)`` with the holes filled."""
    check_holes(holes, work_frames)
    for i, fill in inpainter.inpaint(work_frames, holes, indices):
        yield i, composite(source[i], fill, holes[i], feather_px)


def render_native(source, work_frames: FrameSequence, holes: FrameSequence, inpainter: Inpainter,
                  feather_px: int = 4, sixteen_bit_rgb: bool = False) -> Iterator[tuple[int, object]]:
    """Yield ``(index, frame, source frame)`` in order with the holes filled in the source's own pixels.

    ``source`` is a :class:`~tam.video.VideoSource` read through ``native()``; a
    frame is a :class:`~tam.pixels.NativeFrame`, or with ``sixteen_bit_rgb`` an RGB
    uint16 array. Samples outside the feathered hole are the decoded source's, bit for bit.
    """
    from tam.pixels import blend, blend_rgb16

    check_holes(holes, work_frames)
    for i, fill in inpainter.inpaint(work_frames, holes, None):
        native = source.native(i)
        size = (native.width, native.height)
        alpha = hole_alpha(holes[i], size, feather_px)
        if sixteen_bit_rgb:
            rgb16 = native.rgb16()
            yield i, (rgb16 if alpha is None else blend_rgb16(rgb16, full_size(fill, size), alpha)), native
        else:
            yield i, (native if alpha is None else blend(native, full_size(fill, size), alpha)), native


def write_clip(frames, out: str | os.PathLike, codec, meta, total: int,
               should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[int, int]]:
    """Write :func:`render_native`'s frames with ``codec`` (a :class:`tam.codecs.Codec`); yields progress.

    ``meta`` (a :class:`tam.mediameta.SourceMeta`) gives the rate, clock, colour tags,
    timecode and audio the output keeps. The output appears under its name only when complete.
    """
    from tam.encode import ClipWriter, PngSequenceWriter

    writer = None
    try:
        for done, (i, frame, native) in enumerate(frames, 1):
            if writer is None:
                writer = (PngSequenceWriter(out, meta) if codec.is_sequence else
                          ClipWriter(out, codec, meta, native.width, native.height, native.pix_fmt, native.bits))
            if codec.is_sequence:
                writer.write(i, frame, native.pts)
            else:
                writer.write(frame)
            yield done, total
            if should_stop is not None and should_stop():
                raise Cancelled("render cancelled")
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise OutputError("no frames were written")
    writer.close()


def check_holes(holes: FrameSequence, frames: FrameSequence) -> None:
    if len(holes) != len(frames):
        raise MaskError(f"{len(holes)} masks for {len(frames)} frames")
    h, w = frames[0].shape[:2]
    m = holes[0]
    if m.shape != (h, w):
        raise MaskError(f"mask is {m.shape[1]}x{m.shape[0]} but the frames are {w}x{h}")


def write_output(frames: Iterator[tuple[int, np.ndarray]], out: str | os.PathLike, total: int,
                 width: int, height: int, fps: float, timestamps=None, audio_from=None,
                 should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[int, int]]:
    """Write frames to ``out``: an ``.mp4`` video, or else a folder of PNGs; yields progress.

    The output appears under its name only when complete.
    """
    out = Path(out)
    if out.suffix.lower() == ".mp4":
        check_writable_dir(out.parent)
        with VideoWriter(out, width, height, fps, timestamps, audio_from=audio_from) as writer:
            for done, (_, rgb) in enumerate(frames, 1):
                writer.write(rgb)
                yield done, total
                if should_stop is not None and should_stop():
                    raise Cancelled("render cancelled")
    else:
        if out.suffix:
            raise OutputError(f"output {out.name}: use a .mp4 file or a folder name")
        with atomic_dir(out) as tmp:
            for done, (i, rgb) in enumerate(frames, 1):
                cv2.imwrite(str(tmp / f"{i:05d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                yield done, total
                if should_stop is not None and should_stop():
                    raise Cancelled("render cancelled")
