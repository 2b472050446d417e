"""Every audio stream of a source, copied (or re-encoded where the container cannot hold it) into an export.

An :class:`AudioCopier` adds its output streams when created, before any packet
is written, and is then *pumped* as the video is written, so audio and video
packets stay interleaved and memory stays flat. Audio keeps its offset from the
first video frame, as in the source.
"""
from __future__ import annotations

from pathlib import Path

from tam.errors import VideoError
from tam.mediameta import SourceMeta

TAIL_S = 0.05  # audio written past the last video frame's end, as the source's packets fall


class AudioCopier:
    """Copy the audio of ``meta.path`` into ``container`` (an ``av`` output container).

    ``copyable``: codec names the container takes as they are (None: all);
    the others are re-encoded to ``fallback`` (an encoder name).
    """

    def __init__(self, meta: SourceMeta, container, copyable: frozenset[str] | None, fallback: str):
        import av

        self._src = None
        self._outs = {}
        self._transcode = {}
        if not meta.audio or meta.path is None:
            return
        try:
            self._src = av.open(meta.path, metadata_errors="ignore")
        except av.error.FFmpegError as e:
            raise VideoError(f"cannot read the audio of {Path(meta.path).name}: {e}") from None
        vin = self._src.streams.video[0] if self._src.streams.video else None
        self._start = float(vin.start_time * vin.time_base) if vin is not None and vin.start_time is not None else 0.0
        for track in meta.audio:
            ain = self._src.streams[track.index]
            if copyable is None or track.codec in copyable:
                self._outs[ain.index] = container.add_stream_from_template(ain)
            else:
                out = container.add_stream(fallback, rate=track.sample_rate)
                layout = ain.codec_context.layout.name if ain.codec_context.layout else "stereo"
                out.layout = layout if layout in ("mono", "stereo", "5.1") else "stereo"
                self._outs[ain.index] = out
                fmt = out.codec_context.codec.audio_formats[0].name if out.codec_context.codec.audio_formats else "fltp"
                self._transcode[ain.index] = av.AudioResampler(format=fmt, layout=out.layout, rate=out.rate)
        self._container = container
        self._packets = self._src.demux(*[self._src.streams[i] for i in self._outs])
        self._pending = None
        self._done = False

    @property
    def active(self) -> bool:
        return self._src is not None

    def pump(self, until_s: float) -> None:
        """Write the audio that plays before ``until_s`` seconds of the export."""
        import av

        if self._src is None or self._done:
            return
        try:
            while True:
                packet = self._pending if self._pending is not None else next(self._packets, None)
                self._pending = None
                if packet is None:
                    self._done = True
                    return
                if packet.dts is None or packet.size == 0:
                    continue
                t = float(packet.pts * packet.time_base) - self._start
                if t >= until_s:
                    self._pending = packet
                    return
                self._write(packet)
        except av.error.FFmpegError as e:
            raise VideoError(f"cannot copy the audio: {e}") from None

    def _write(self, packet) -> None:
        index = packet.stream.index
        out = self._outs[index]
        if index in self._transcode:
            for frame in packet.decode():
                frame.pts = None
                for rf in self._transcode[index].resample(frame):
                    for p in out.encode(rf):
                        self._container.mux(p)
            return
        shift = int(round(self._start / packet.time_base))
        packet.pts -= shift
        packet.dts -= shift
        packet.stream = out
        self._container.mux(packet)

    def finish(self, end_s: float) -> None:
        """Write the audio up to the video's end and flush the encoders."""
        if self._src is None:
            return
        self.pump(end_s + TAIL_S)
        for index in self._transcode:
            for p in self._outs[index].encode(None):
                self._container.mux(p)
        self.close()

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None
