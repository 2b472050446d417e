"""The export codecs: which container, encoder, pixel format and audio each one takes.

``resolve(out, name)`` picks the codec for an output path (``--codec`` or the
path's suffix) and rejects a mismatch with a one-line error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tam.errors import OutputError

MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
MOV_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le",
                       "pcm_s24be", "pcm_s32le", "pcm_f32le", "pcm_f32be"})
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
PRORES_HQ, PRORES_4444 = "3", "4"  # prores_ks profiles
FFV1_FALLBACK = {8: "yuv444p", 10: "yuv444p10le", 12: "yuv444p12le", 16: "yuv444p16le"}
FFV1_PACKED = {"gbrp": "bgr0"}  # FFV1 takes 8-bit RGB packed only: the same samples, losslessly


@dataclass(frozen=True)
class Codec:
    """One export codec. ``suffixes``: the file endings it writes ("" = a folder of images)."""

    name: str
    summary: str
    suffixes: tuple[str, ...]
    encoder: str | None = None
    lossless: bool = False
    options: dict = field(default_factory=dict)

    @property
    def is_sequence(self) -> bool:
        return self.suffixes == ("",)

    def pixel_format(self, source_fmt: str, bits: int, width: int, height: int, alpha: bool = False) -> str:
        """The encoded pixel format for a source frame in planar ``source_fmt`` of ``bits`` depth."""
        even = width % 2 == 0 and height % 2 == 0
        if self.name == "h264":
            return "yuv420p" if even else "yuv444p"
        if self.name == "h265":
            depth = "10le" if bits > 8 else ""
            return ("yuv420p" if even else "yuv444p") + depth
        if self.name == "prores":
            if width % 2:
                raise OutputError(f"ProRes 422 needs an even width, the clip is {width} wide: use prores4444")
            return "yuv422p10le"
        if self.name == "prores4444":
            return "yuva444p10le" if alpha else "yuv444p10le"
        if self.name == "ffv1":
            if source_fmt in _ffv1_formats():
                return source_fmt
            if source_fmt in FFV1_PACKED:
                return FFV1_PACKED[source_fmt]
            return FFV1_FALLBACK[8 if bits <= 8 else 10 if bits <= 10 else 12 if bits <= 12 else 16]
        if self.name == "png":
            return "rgb48le"
        raise OutputError(f"no pixel format for codec {self.name}")


CODECS = {c.name: c for c in (
    Codec("h264", "H.264 (MP4), 8-bit, small files", (".mp4", ".mov", ".mkv"), "libx264",
          options={"crf": "17", "preset": "medium"}),
    Codec("h265", "H.265/HEVC (MP4), 10-bit for 10-bit sources", (".mp4", ".mov", ".mkv"), "libx265",
          options={"crf": "18", "preset": "medium", "x265-params": "log-level=error"}),
    Codec("prores", "Apple ProRes 422 HQ (MOV), 10-bit", (".mov",), "prores_ks",
          options={"profile": PRORES_HQ, "vendor": "apl0"}),
    Codec("prores4444", "Apple ProRes 4444 (MOV), 10-bit 4:4:4", (".mov",), "prores_ks",
          options={"profile": PRORES_4444, "vendor": "apl0"}),
    Codec("ffv1", "FFV1 (MKV), lossless in the source's pixel format", (".mkv",), "ffv1", lossless=True,
          options={"level": "3", "slicecrc": "1", "g": "1"}),
    Codec("png", "16-bit RGB PNG sequence (a folder), lossless", ("",), lossless=True),
)}
DEFAULT_BY_SUFFIX = {".mp4": "h264", ".mov": "prores", ".mkv": "ffv1"}


def _ffv1_formats() -> set[str]:
    import av

    return {f.name for f in av.codec.Codec("ffv1", "w").video_formats or ()}


def names() -> list[str]:
    return list(CODECS)


def resolve(out: str | Path, name: str | None) -> Codec | None:
    """The codec writing ``out``: ``name``, or the one its suffix implies.

    None means the historical default for a folder without ``--codec``: 8-bit PNGs.
    """
    suffix = Path(out).suffix.lower()
    if name is None:
        if not suffix:
            return None
        if suffix not in DEFAULT_BY_SUFFIX:
            raise OutputError(f"output {Path(out).name}: use .mp4, .mov, .mkv or a folder name")
        return CODECS[DEFAULT_BY_SUFFIX[suffix]]
    if name not in CODECS:
        raise OutputError(f"unknown codec {name!r}: choose from {', '.join(CODECS)}")
    codec = CODECS[name]
    if suffix not in codec.suffixes:
        want = "a folder name (no suffix)" if codec.is_sequence else " or ".join(codec.suffixes)
        raise OutputError(f"codec {name} writes {want}, not {Path(out).name}")
    return codec


def default_name(codec: Codec, stem: str) -> str:
    """A file (or folder) name for ``codec``'s output."""
    return stem if codec.is_sequence else stem + codec.suffixes[0]
