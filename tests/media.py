"""Small synthetic media for tests: every frame says its own index in its pixels."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SAMPLE = REPO / "assets" / "bigbuckbunny.mp4"


def frame_pattern(i: int, width: int, height: int) -> np.ndarray:
    """A textured frame whose top-left block's grey level encodes ``i`` (step 8)."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = (xx * 255 // max(width - 1, 1)).astype(np.uint8)
    rgb[..., 1] = (yy * 255 // max(height - 1, 1)).astype(np.uint8)
    rgb[..., 2] = ((xx + 3 * i) % 64 * 4).astype(np.uint8)
    rgb[: height // 2, : width // 2] = (i * 8) % 256
    return rgb


def block_index(rgb: np.ndarray) -> int:
    """The index that :func:`frame_pattern` wrote (robust to codec noise)."""
    h, w = rgb.shape[:2]
    v = float(np.median(rgb[h // 8: 3 * h // 8, w // 8: 3 * w // 8]))
    return int(round(v / 8))


def make_video(path, n=12, width=64, height=48, fps=25, codec="libx264", pix_fmt="yuv420p",
               audio=False, timestamps=None, rotate=None, options=None, audio_codec="aac"):
    """Encode ``n`` pattern frames; ``timestamps`` (seconds) makes a variable-frame-rate clip."""
    import av

    path = Path(path)
    fmt = {".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".avi": "avi"}.get(path.suffix, "mp4")
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = width, height, pix_fmt
        tb = Fraction(1, 1000)
        s.time_base = tb
        s.codec_context.time_base = tb
        if options:
            s.options = options
        if rotate is not None:
            s.set_display_rotation(rotate)  # counter-clockwise, as phones store it
        a = None
        if audio:
            a = c.add_stream(audio_codec, rate=48000)
            a.layout = "stereo"
        for i in range(n):
            f = av.VideoFrame.from_ndarray(frame_pattern(i, width, height), format="rgb24")
            t = timestamps[i] if timestamps is not None else i / fps
            f.pts = int(round(t * 1000))
            f.time_base = tb
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
        if a is not None:
            samples = int(48000 * n / fps)
            tt = np.arange(samples) / 48000.0
            wave = (0.2 * np.sin(2 * np.pi * 440 * tt)).astype(np.float32)
            frame_size = a.codec_context.frame_size or 1024
            for k in range(0, samples, frame_size):
                chunk = wave[k:k + frame_size]
                af = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
                af.sample_rate = 48000
                af.pts = k
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    return path


def stream_info(path) -> dict:
    """Decoded facts of a file: frame count, size, fps, audio presence."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(v))
        return {"frames": n, "width": v.codec_context.width, "height": v.codec_context.height,
                "fps": float(v.average_rate or 0), "audio": bool(c.streams.audio),
                "pix_fmt": v.codec_context.pix_fmt, "codec": v.codec_context.name}
