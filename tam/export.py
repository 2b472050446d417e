"""Video out: H.264 MP4 at the source's size and timing, with the source's audio.

``VideoWriter`` encodes RGB frames into a temporary file beside the target and
renames it into place only when the file is complete. Audio is copied packet by
packet when MP4 can hold its codec, and re-encoded to AAC otherwise.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from tam.errors import OutputError, VideoError
from tam.fileio import AtomicWriter, check_writable_dir, sweep_stale

MP4_AUDIO_COPY = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
TIME_BASE = Fraction(1, 90000)  # MPEG's 90 kHz clock: exact for every common frame rate


def _video_encoder() -> str:
    import av

    for name in ("libx264", "h264", "libopenh264"):
        if name in av.codecs_available:
            try:
                av.codec.Codec(name, "w")
                return name
            except Exception:  # noqa: BLE001 - an encoder listed but not built in
                continue
    raise OutputError("this FFmpeg build has no H.264 encoder")


class VideoWriter(AtomicWriter):
    """Write RGB uint8 frames to an MP4; use as a context manager.

    ``timestamps`` (seconds per frame) keeps a variable-frame-rate source's timing;
    without them frames are spaced at ``fps``. Odd sizes are kept exactly: yuv420p
    needs even sizes, so odd ones are encoded as yuv444p instead of being cropped.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float,
                 timestamps: list[float] | None = None, audio_from: str | os.PathLike | None = None,
                 crf: int = 17, preset: str = "medium"):
        import av

        self.path = Path(path)
        check_writable_dir(self.path.parent)
        if width < 2 or height < 2:
            raise OutputError(f"cannot encode a {width}x{height} video")
        self.width, self.height, self.fps = width, height, fps
        self.timestamps = timestamps
        self.audio_from = Path(audio_from) if audio_from else None
        sweep_stale(self.path)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{id(self):x}.part.mp4")
        self._count = 0
        self._container = av.open(str(self._tmp), mode="w", format="mp4",
                                  options={"movflags": "+faststart"})
        rate = Fraction(fps).limit_denominator(1001)
        stream = self._container.add_stream(_video_encoder(), rate=rate)
        stream.width, stream.height = width, height
        even = width % 2 == 0 and height % 2 == 0
        stream.pix_fmt = "yuv420p" if even else "yuv444p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        stream.options = {"crf": str(crf), "preset": preset}
        self._stream = stream
        self._audio_src = self._audio_out = None
        if self.audio_from is not None:
            try:
                self._open_audio()
            except BaseException:
                self.abort()
                raise

    def _open_audio(self) -> None:
        """Add the audio stream now: MP4 takes no new stream once packets are written."""
        import av

        try:
            src = av.open(str(self.audio_from))
        except av.error.FFmpegError as e:
            raise VideoError(f"cannot read the audio of {self.audio_from.name}: {e}") from None
        if not src.streams.audio:
            src.close()
            return
        ain = src.streams.audio[0]
        if ain.codec_context.name in MP4_AUDIO_COPY:
            out = self._container.add_stream_from_template(ain)
        else:
            out = self._container.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)
            layout = ain.codec_context.layout.name if ain.codec_context.layout else "stereo"
            out.layout = layout if layout in ("mono", "stereo", "5.1") else "stereo"
        self._audio_src, self._audio_out = src, out

    def write(self, rgb: np.ndarray) -> None:
        import av

        if rgb.shape[:2] != (self.height, self.width):
            raise OutputError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the video {self.width}x{self.height}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[..., :3]), format="rgb24")
        if self.timestamps is not None and self._count < len(self.timestamps):
            t = self.timestamps[self._count]
        else:
            t = self._count / self.fps
        frame.pts = int(round(t / TIME_BASE))
        frame.time_base = TIME_BASE
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._count += 1

    def _finish_video(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)

    def _add_audio(self) -> None:
        import av

        src, out = self._audio_src, self._audio_out
        ain = src.streams.audio[0]
        vin = src.streams.video[0] if src.streams.video else None
        # Audio keeps its offset from the first video frame, as in the source.
        start = 0.0
        if vin is not None and vin.start_time is not None:
            start = float(vin.start_time * vin.time_base)
        length = self.timestamps[-1] + 1 / self.fps if self.timestamps else self._count / self.fps
        try:
            if ain.codec_context.name in MP4_AUDIO_COPY:
                self._copy_audio(src, ain, out, start, start + length)
            else:
                self._transcode_audio(src, ain, out)
        except av.error.FFmpegError as e:
            raise VideoError(f"cannot copy the audio of {self.audio_from.name}: {e}") from None

    def _copy_audio(self, src, ain, out, start: float, end: float) -> None:
        shift = int(round(start / ain.time_base))
        for packet in src.demux(ain):
            if packet.dts is None or packet.size == 0:
                continue
            if float(packet.pts * ain.time_base) >= end + 0.05:
                break
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = out
            self._container.mux(packet)

    def _transcode_audio(self, src, ain, out) -> None:
        import av

        resampler = av.AudioResampler(format="fltp", layout=out.layout, rate=out.rate)
        for frame in src.decode(ain):
            frame.pts = None
            for rf in resampler.resample(frame):
                for packet in out.encode(rf):
                    self._container.mux(packet)
        for packet in out.encode(None):
            self._container.mux(packet)

    def close(self) -> Path:
        """Finish the file and move it into place; returns the final path."""
        if self._count == 0:
            self.abort()
            raise OutputError("no frames were written")
        self._finish_video()
        if self._audio_out is not None:
            self._add_audio()
            self._audio_src.close()
        self._container.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if getattr(self, "_audio_src", None) is not None:
            self._audio_src.close()
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - closing a broken encoder; the file is removed anyway
            pass
        self._tmp.unlink(missing_ok=True)
