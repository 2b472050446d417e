"""Writers for the film-grade exports: native frames in, files with the source's facts out.

:class:`ClipWriter` encodes :class:`~tam.pixels.NativeFrame` s with one of the
codecs of :mod:`tam.codecs` into MP4, MOV or MKV, keeping the source's exact
rational rate and timestamps, its colour tags, its start timecode and every
audio stream. :class:`PngSequenceWriter` writes 16-bit RGB PNGs and, beside
them, ``metadata.json`` (rate, timestamps, tags, timecode) and ``audio.mka``.
Both write to a temporary name and rename when complete.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from tam.audio import AudioCopier
from tam.codecs import CONTAINERS, MOV_AUDIO, MP4_AUDIO, Codec
from tam.errors import OutputError
from tam.fileio import AtomicWriter, atomic_dir, check_writable_dir, sweep_stale
from tam.mediameta import SourceMeta
from tam.pixels import JPEG_RANGE, RGB_MATRIX, ColourTags, NativeFrame, to_av_format, yuv_tags

AUDIO_RULES = {"mp4": (MP4_AUDIO, "aac"), "mov": (MOV_AUDIO, "pcm_s24le"), "matroska": (None, "flac")}
AUDIO_LEAD_S = 0.5  # audio is muxed this far ahead of the video written so far


class ClipWriter(AtomicWriter):
    """Encode native frames of one size into ``path``; use as a context manager.

    ``source_fmt``/``bits``: the planar format and depth of the frames to come
    (decides the encoded pixel format, see :meth:`Codec.pixel_format`); ``alpha``
    asks for an alpha channel (ProRes 4444 only): frames then carry a 4th plane.
    """

    def __init__(self, path: str | os.PathLike, codec: Codec, meta: SourceMeta, width: int, height: int,
                 source_fmt: str, bits: int, alpha: bool = False, with_audio: bool = True):
        import av

        if codec.is_sequence:
            raise OutputError(f"codec {codec.name} writes a folder: use PngSequenceWriter")
        self.path = Path(path)
        check_writable_dir(self.path.parent)
        if width < 2 or height < 2:
            raise OutputError(f"cannot encode a {width}x{height} video")
        fmt = CONTAINERS[self.path.suffix.lower()]
        sweep_stale(self.path)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{id(self):x}.part{self.path.suffix}")
        self.codec, self.meta = codec, meta
        self.pix_fmt = codec.pixel_format(source_fmt, bits, width, height, alpha)
        self.tags = _output_tags(meta.tags, source_fmt, self.pix_fmt)
        options = {"movflags": "+faststart+write_colr"} if fmt in ("mp4", "mov") else {}
        self._container = av.open(str(self._tmp), mode="w", format=fmt, options=options)
        self._count = 0
        self._last_t = 0.0
        self._audio = None
        try:
            self._stream = self._add_video(codec, width, height, fmt)
            if with_audio:
                copyable, fallback = AUDIO_RULES[fmt]
                self._audio = AudioCopier(meta, self._container, copyable, fallback)
        except BaseException:
            self.abort()
            raise

    def _add_video(self, codec: Codec, width: int, height: int, fmt: str):
        stream = self._container.add_stream(_encoder(codec), rate=self.meta.rate)
        stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
        stream.time_base = self.meta.time_base
        stream.codec_context.time_base = self.meta.time_base
        stream.options = dict(codec.options)
        self.tags.apply(stream.codec_context)
        if codec.name == "h265" and fmt in ("mp4", "mov"):
            stream.codec_tag = "hvc1"  # what QuickTime and Resolve expect for HEVC
        if self.meta.timecode:
            stream.metadata["timecode"] = self.meta.timecode
            if fmt == "matroska":
                self._container.metadata["TIMECODE"] = self.meta.timecode
        return stream

    def write(self, frame: NativeFrame) -> None:
        """Add one frame; ``frame.pts`` (in ``frame.time_base``) is its time from the first frame."""
        if (frame.width, frame.height) != (self._stream.width, self._stream.height):
            raise OutputError(f"frame is {frame.width}x{frame.height}, the video "
                              f"{self._stream.width}x{self._stream.height}")
        out = to_av_format(frame, self.pix_fmt, self.tags)
        out.pts = int(round(frame.pts * frame.time_base / self.meta.time_base))
        out.time_base = self.meta.time_base
        for packet in self._stream.encode(out):
            self._container.mux(packet)
        self._count += 1
        self._last_t = float(frame.pts * frame.time_base)
        if self._audio is not None:
            self._audio.pump(self._last_t + AUDIO_LEAD_S)

    def close(self) -> Path:
        """Finish the file and move it into place; returns the final path."""
        if self._count == 0:
            self.abort()
            raise OutputError("no frames were written")
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.finish(self._last_t + 1 / float(self.meta.rate))
            self._container.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._audio is not None:
            self._audio.close()
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - closing a broken encoder; the file is removed anyway
            pass
        self._tmp.unlink(missing_ok=True)


class PngSequenceWriter(AtomicWriter):
    """16-bit RGB PNGs ``00000.png``... in a folder, with ``metadata.json`` and ``audio.mka``."""

    def __init__(self, path: str | os.PathLike, meta: SourceMeta, with_audio: bool = True):
        self.path = Path(path)
        self.meta = meta
        self._dir_cm = atomic_dir(self.path)
        self._tmp = self._dir_cm.__enter__()
        self._pts: list[int] = []
        self._with_audio = with_audio
        self._count = 0

    def write(self, index: int, rgb16: np.ndarray, pts: int) -> None:
        """Frame ``index`` as RGB uint16 HxWx3; ``pts`` in ``meta.time_base`` units."""
        if rgb16.dtype != np.uint16:
            raise OutputError("the PNG sequence takes 16-bit RGB frames")
        cv2.imwrite(str(self._tmp / f"{index:05d}.png"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
        self._pts.append(int(pts))
        self._count += 1

    def close(self) -> Path:
        if self._count == 0:
            self.abort()
            raise OutputError("no frames were written")
        try:
            self._write_audio()
            self._write_metadata()
        except BaseException:
            self.abort()
            raise
        self._dir_cm.__exit__(None, None, None)
        return self.path

    def _write_metadata(self) -> None:
        m, t = self.meta, self.meta.tags
        data = {"frame_rate": f"{m.rate.numerator}/{m.rate.denominator}",
                "time_base": f"{m.time_base.numerator}/{m.time_base.denominator}",
                "pts": self._pts, "timecode": m.timecode,
                "color_primaries": t.primaries, "color_trc": t.transfer, "colorspace": t.matrix,
                "color_range": t.range, "bit_depth": 16}
        (self._tmp / "metadata.json").write_text(json.dumps(data, indent=1))

    def _write_audio(self) -> None:
        import av

        if not self._with_audio or not self.meta.audio:
            return
        with av.open(str(self._tmp / "audio.mka"), "w", format="matroska") as container:
            audio = AudioCopier(self.meta, container, None, "flac")
            end = float(self._pts[-1] * self.meta.time_base + 1 / self.meta.rate)
            audio.finish(end)

    def abort(self) -> None:
        """Remove the unfinished folder (the target, if any, stays as it was)."""
        error = OutputError("PNG sequence aborted")
        self._dir_cm.__exit__(OutputError, error, None)


def _output_tags(tags: ColourTags, source_fmt: str, pix_fmt: str) -> ColourTags:
    """The source's tags, but an RGB output is tagged RGB and a YUV one made from RGB gets a YUV matrix."""
    import av

    if av.VideoFormat(pix_fmt).is_rgb:
        return replace(tags, matrix=RGB_MATRIX, range=JPEG_RANGE)
    if av.VideoFormat(source_fmt).is_rgb:
        return yuv_tags(tags)
    return tags


def _encoder(codec: Codec) -> str:
    if codec.name == "h264":
        from tam.export import _video_encoder

        return _video_encoder()
    import av

    try:
        av.codec.Codec(codec.encoder, "w")
    except Exception:  # noqa: BLE001 - not built into this FFmpeg
        raise OutputError(f"this FFmpeg build has no {codec.encoder} encoder (codec {codec.name})") from None
    return codec.encoder
