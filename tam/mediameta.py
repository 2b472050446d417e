"""What an export copies from its source besides the pictures: rate, clock, colour, timecode, audio.

``read_meta(path)`` opens the container's headers only (no decoding). Image
folders have no such facts: they get :data:`FOLDER_META` at the folder's rate.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from tam.pixels import ColourTags, tags_of

TIMECODE_KEYS = ("timecode", "TIMECODE")


@dataclass(frozen=True)
class AudioTrack:
    index: int  # the stream's index in the source container
    codec: str
    channels: int
    sample_rate: int


@dataclass(frozen=True)
class SourceMeta:
    """``rate`` frames per second (exact rational), ``time_base`` of the frames' timestamps."""

    rate: Fraction
    time_base: Fraction
    tags: ColourTags = ColourTags()
    timecode: str | None = None  # "HH:MM:SS:FF" (";" before FF = drop-frame)
    audio: list[AudioTrack] = field(default_factory=list)
    path: str | None = None

    def summary(self) -> str:
        t = self.tags
        tc = self.timecode or "none"
        return (f"rate {self.rate.numerator}/{self.rate.denominator}, timecode {tc}, "
                f"colour primaries/transfer/matrix/range {t.primaries}/{t.transfer}/{t.matrix}/{t.range}, "
                f"{len(self.audio)} audio stream(s)")


def folder_meta(fps: float) -> SourceMeta:
    rate = Fraction(fps).limit_denominator(1001)
    return SourceMeta(rate=rate, time_base=1 / rate)


def read_meta(path: str | os.PathLike) -> SourceMeta:
    """The facts of a video file that an export keeps."""
    import av

    from tam.errors import VideoError, brief

    path = Path(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise VideoError(f"{path.name} is not a readable video: {brief(e)}") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path.name} has no video stream")
        v = container.streams.video[0]
        rate = v.average_rate or v.guessed_rate or v.base_rate or Fraction(25)
        audio = [AudioTrack(s.index, s.codec_context.name, s.codec_context.channels or 2,
                            s.codec_context.sample_rate or 48000)
                 for s in container.streams.audio if s.codec_context is not None]
        return SourceMeta(rate=Fraction(rate), time_base=Fraction(v.time_base or 1 / Fraction(rate)),
                          tags=tags_of(v.codec_context), timecode=_timecode(container),
                          audio=audio, path=str(path))


def _timecode(container) -> str | None:
    """The start timecode: the video stream's, a timecode track's (MOV tmcd), or the file's."""
    streams = list(container.streams.video[:1]) + [s for s in container.streams if s.type == "data"]
    for meta in [s.metadata for s in streams] + [container.metadata]:
        for key in TIMECODE_KEYS:
            if meta.get(key):
                return meta[key]
    return None
