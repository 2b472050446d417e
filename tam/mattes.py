"""Matte frames for compositors: white where the objects are, the alpha channel the same matte."""
from __future__ import annotations

import numpy as np

from tam.mediameta import SourceMeta
from tam.pixels import ColourTags, NativeFrame

MATTE_FORMAT = "yuva444p10le"
LUMA_BLACK, LUMA_WHITE, CHROMA_ZERO, TEN_BIT_MAX = 64, 940, 512, 1023  # 10-bit limited-range video levels
MATTE_TAGS = ColourTags(primaries=1, transfer=1, matrix=1, range=1)  # BT.709, limited range


def matte_frame(alpha: np.ndarray | None, size: tuple[int, int], seconds: float, meta: SourceMeta) -> NativeFrame:
    """A 10-bit 4:4:4:4 frame from ``alpha`` (float32 HxW in 0..1, None = empty) at ``size`` = (w, h),
    shown ``seconds`` after the first frame (in ``meta``'s time base)."""
    w, h = size
    a = np.zeros((h, w), np.float32) if alpha is None else alpha
    y = np.round(LUMA_BLACK + (LUMA_WHITE - LUMA_BLACK) * a).astype(np.uint16)
    c = np.full((h, w), CHROMA_ZERO, np.uint16)
    alpha10 = np.round(TEN_BIT_MAX * a).astype(np.uint16)
    pts = int(round(seconds / meta.time_base))
    return NativeFrame([y, c, c.copy(), alpha10], MATTE_FORMAT, w, h, MATTE_TAGS, pts, meta.time_base)
