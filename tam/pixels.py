"""Frames in the source's own pixel format, so lossless exports keep untouched pixels bit for bit.

A :class:`NativeFrame` holds a decoded frame as planar numpy arrays (uint8 for
8-bit formats, uint16 for 9-16 bit ones) in a *planar* pixel format FFmpeg names
(``yuv420p``, ``yuv422p10le``, ``gbrp``...). Packed or semi-planar sources
(``nv12``, ``p010le``, ``rgb24``...) are first moved, without loss, to the
planar format of the same depth and subsampling. :func:`blend` puts a filled
RGB frame into the planes through a per-pixel alpha and leaves every sample
whose alpha is 0 exactly as decoded.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import cv2
import numpy as np

# Lossless re-homes for packed / semi-planar formats (same depth, same subsampling).
PLANAR_EQUIVALENT = {
    "nv12": "yuv420p", "nv21": "yuv420p", "nv16": "yuv422p", "nv24": "yuv444p",
    "p010le": "yuv420p10le", "p016le": "yuv420p16le", "p210le": "yuv422p10le", "p410le": "yuv444p10le",
    "yuyv422": "yuv422p", "uyvy422": "yuv422p", "yuvj420p": "yuv420p", "yuvj422p": "yuv422p",
    "yuvj444p": "yuv444p", "yuvj440p": "yuv440p",
    "rgb24": "gbrp", "bgr24": "gbrp", "rgba": "gbrp", "bgra": "gbrp", "argb": "gbrp", "abgr": "gbrp",
    "rgb0": "gbrp", "bgr0": "gbrp", "0rgb": "gbrp", "0bgr": "gbrp", "gbrap": "gbrp", "pal8": "gbrp",
    "rgb48le": "gbrp16le", "rgb48be": "gbrp16le", "rgba64le": "gbrp16le", "rgba64be": "gbrp16le",
    "gbrap10le": "gbrp10le", "gbrap12le": "gbrp12le", "gbrap16le": "gbrp16le",
    "yuva420p": "yuv420p", "yuva422p": "yuv422p", "yuva444p": "yuv444p",
    "yuva420p10le": "yuv420p10le", "yuva422p10le": "yuv422p10le", "yuva444p10le": "yuv444p10le",
    "ya8": "gray", "monob": "gray", "monow": "gray",
}
PLANAR = {f"{base}{depth}" for base in ("yuv420p", "yuv422p", "yuv444p", "yuv440p", "gbrp")
          for depth in ("", "9le", "10le", "12le", "14le", "16le")} | {
    "yuv410p", "yuv411p", "gray", "gray9le", "gray10le", "gray12le", "gray14le", "gray16le"}
# The YUV matrix for RGB sources (image folders) that carry no tag: HD's.
DEFAULT_MATRIX = 1  # AVCOL_SPC_BT709
MPEG_RANGE, JPEG_RANGE = 1, 2
RGB_MATRIX = 0  # AVCOL_SPC_RGB


@dataclass(frozen=True)
class ColourTags:
    """FFmpeg's colour enums (ints; 2 = unspecified, range 0 = unspecified)."""

    primaries: int = 2
    transfer: int = 2
    matrix: int = 2
    range: int = 0

    def apply(self, target) -> None:
        """Set the tags on an ``av`` codec context or frame."""
        target.color_primaries = self.primaries
        target.color_trc = self.transfer
        target.colorspace = self.matrix
        target.color_range = self.range


@dataclass
class NativeFrame:
    """One frame as planes in ``pix_fmt``; ``pts`` in ``time_base`` units from the clip's first frame."""

    planes: list[np.ndarray]
    pix_fmt: str
    width: int
    height: int
    tags: ColourTags
    pts: int = 0
    time_base: Fraction = Fraction(1, 25)

    @property
    def bits(self) -> int:
        return bit_depth(self.pix_fmt)

    @property
    def is_rgb(self) -> bool:
        return self.pix_fmt.startswith("gbrp")

    def to_av(self):
        """An ``av.VideoFrame`` with these planes and tags."""
        import av

        frame = av.VideoFrame(self.width, self.height, self.pix_fmt)
        for plane, data in zip(frame.planes, self.planes):
            stride = plane.line_size // data.itemsize
            buf = np.zeros((plane.height, stride), data.dtype)
            buf[: data.shape[0], : data.shape[1]] = data
            plane.update(buf.tobytes())
        self.tags.apply(frame)
        frame.pts, frame.time_base = self.pts, self.time_base
        return frame

    def rgb_u8(self) -> np.ndarray:
        """RGB uint8 HxWx3, as the decoder's own conversion gives it (what the studio shows)."""
        if self.pix_fmt == "gbrp":
            return np.dstack([self.planes[2], self.planes[0], self.planes[1]])
        return self.to_av().to_ndarray(format="rgb24")

    def rgb16(self) -> np.ndarray:
        """RGB uint16 HxWx3 on 0..65535: an 8-bit frame's :meth:`rgb_u8` times 257, exactly;
        a deeper one converted straight to 16 bits."""
        if self.bits <= 8:
            return self.rgb_u8().astype(np.uint16) * 257
        return self.to_av().to_ndarray(format="rgb48le")


def bit_depth(pix_fmt: str) -> int:
    import av

    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def planar_format(pix_fmt: str) -> str:
    """The planar format holding ``pix_fmt``'s samples without loss."""
    if pix_fmt in PLANAR:
        return pix_fmt
    if pix_fmt in PLANAR_EQUIVALENT:
        return PLANAR_EQUIVALENT[pix_fmt]
    import av

    fmt = av.VideoFormat(pix_fmt)
    bits = max(c.bits for c in fmt.components)
    depth = "" if bits <= 8 else ("10le" if bits <= 10 else "12le" if bits <= 12 else "16le")
    base = "gbrp" if fmt.is_rgb else "yuv444p"
    return base + depth


def tags_of(obj) -> ColourTags:
    """The colour tags of an ``av`` frame or codec context."""
    def val(name, default):
        v = getattr(obj, name, None)
        return int(v) if v is not None else default
    return ColourTags(val("color_primaries", 2), val("color_trc", 2), val("colorspace", 2),
                      val("color_range", 0))


def from_av(frame, rotation: int = 0, tags: ColourTags | None = None) -> NativeFrame:
    """The planes of a decoded frame, in a planar format, turned by ``rotation`` (degrees CCW)."""
    tags = tags or tags_of(frame)
    fmt = planar_format(frame.format.name)
    if rotation in (90, 270) and _subsampling(fmt)[0] != _subsampling(fmt)[1]:
        fmt = _full_chroma(fmt)  # 4:2:2 turned on its side is no 4:2:2
    if fmt != frame.format.name:
        frame = _reformat(frame, fmt, tags)
    dtype = np.uint16 if bit_depth(fmt) > 8 else np.uint8
    planes = []
    for plane in frame.planes:
        stride = plane.line_size // np.dtype(dtype).itemsize
        a = np.frombuffer(plane, dtype, count=plane.height * stride).reshape(plane.height, stride)
        a = a[:, : plane.width]
        planes.append(np.ascontiguousarray(np.rot90(a, rotation // 90) if rotation else a))
    w, h = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
    return NativeFrame(planes, fmt, w, h, tags)


def from_rgb(rgb: np.ndarray, tags: ColourTags | None = None) -> NativeFrame:
    """An RGB uint8 image (an image-folder frame) as ``gbrp`` planes, unchanged."""
    r, g, b = (np.ascontiguousarray(rgb[..., k]) for k in range(3))
    return NativeFrame([g, b, r], "gbrp", rgb.shape[1], rgb.shape[0], tags or ColourTags(range=JPEG_RANGE))


def convert(frame: NativeFrame, pix_fmt: str, tags: ColourTags | None = None) -> NativeFrame:
    """``frame`` in another planar format (depth, subsampling, RGB<->YUV with ``tags``' matrix)."""
    if pix_fmt == frame.pix_fmt:
        return frame
    out_tags = tags or frame.tags
    converted = _reformat(frame.to_av(), pix_fmt, frame.tags, out_tags)
    native = from_av(converted, tags=out_tags)
    native.pts, native.time_base = frame.pts, frame.time_base
    return native


def to_av_format(frame: NativeFrame, pix_fmt: str, tags: ColourTags | None = None):
    """``frame`` as an ``av.VideoFrame`` in ``pix_fmt`` (packed formats too), carrying ``tags``."""
    out_tags = tags or frame.tags
    av_frame = frame.to_av()
    if pix_fmt != frame.pix_fmt:
        av_frame = _reformat(av_frame, pix_fmt, frame.tags, out_tags)
    out_tags.apply(av_frame)
    av_frame.pts, av_frame.time_base = frame.pts, frame.time_base
    return av_frame


def yuv_tags(tags: ColourTags) -> ColourTags:
    """Tags for a YUV encoding of a frame with ``tags``: an RGB source gets HD's matrix, limited range."""
    if tags.matrix in (0, 2):  # RGB or unspecified
        return replace(tags, matrix=DEFAULT_MATRIX, range=MPEG_RANGE)
    return tags


def blend(frame: NativeFrame, fill_rgb: np.ndarray, alpha: np.ndarray) -> NativeFrame:
    """``fill_rgb`` (uint8 HxWx3, frame size) over ``frame`` through ``alpha`` (float32 HxW, 0..1).

    Every sample whose alpha is 0 (for a subsampled plane: every source pixel it
    covers has alpha 0) keeps its decoded value exactly.
    """
    fill = _fill_planes(frame, fill_rgb)
    planes = []
    for src, top in zip(frame.planes, fill):
        a = alpha if src.shape == alpha.shape else cv2.resize(alpha, src.shape[::-1], interpolation=cv2.INTER_AREA)
        planes.append(_mix(src, top, a))
    return replace(frame, planes=planes)


def blend_rgb16(source16: np.ndarray, fill_rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGB uint16 ``source16`` with ``fill_rgb`` (uint8) over it; alpha 0 keeps the source exactly."""
    return _mix(source16, fill_rgb.astype(np.uint16) * 257, alpha[..., None])


def _mix(src: np.ndarray, top: np.ndarray, a: np.ndarray) -> np.ndarray:
    out = src.astype(np.float32) * (1.0 - a) + top.astype(np.float32) * a
    top_value = np.iinfo(src.dtype).max
    mixed = np.clip(out + 0.5, 0, top_value).astype(src.dtype)
    return np.where(a > 0, mixed, src)


def _fill_planes(frame: NativeFrame, fill_rgb: np.ndarray) -> list[np.ndarray]:
    rgb = from_rgb(fill_rgb)
    if frame.pix_fmt == "gbrp":
        return rgb.planes
    tags = frame.tags if not frame.is_rgb else ColourTags(range=JPEG_RANGE)
    return convert(rgb, frame.pix_fmt, tags).planes


def _subsampling(pix_fmt: str) -> tuple[int, int]:
    import av

    size = 64
    fmt = av.VideoFormat(pix_fmt, size, size)
    chroma = [c for c in fmt.components if c.is_chroma]
    if not chroma or fmt.is_rgb:
        return 1, 1
    return size // max(chroma[0].width, 1), size // max(chroma[0].height, 1)


def _range_name(value: int, rgb: bool) -> str:
    if rgb:
        return "JPEG"
    return "JPEG" if value == JPEG_RANGE else "MPEG"


def _matrix_name(value: int) -> str | None:
    return {1: "ITU709", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020"}.get(value)


def _reformat(frame, pix_fmt: str, src: ColourTags, dst: ColourTags | None = None):
    """swscale ``frame`` into ``pix_fmt`` with explicit matrices and ranges (no silent range change)."""
    import av

    dst = dst or src
    src_rgb = av.VideoFormat(frame.format.name).is_rgb
    dst_rgb = av.VideoFormat(pix_fmt).is_rgb
    kwargs = {"format": pix_fmt,
              "src_color_range": _range_name(src.range, src_rgb),
              "dst_color_range": _range_name(dst.range, dst_rgb),
              "interpolation": "BICUBIC"}
    if _matrix_name(src.matrix):
        kwargs["src_colorspace"] = _matrix_name(src.matrix)
    if _matrix_name(dst.matrix):
        kwargs["dst_colorspace"] = _matrix_name(dst.matrix)
    return frame.reformat(**kwargs)


def _full_chroma(pix_fmt: str) -> str:
    """The 4:4:4 format of ``pix_fmt``'s depth (``yuv422p10le`` -> ``yuv444p10le``)."""
    for base in ("yuv420p", "yuv422p", "yuv440p", "yuv410p", "yuv411p"):
        if pix_fmt.startswith(base):
            return "yuv444p" + pix_fmt[len(base):]
    return pix_fmt
