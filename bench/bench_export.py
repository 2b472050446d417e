"""Cost of compositing and encoding per codec, against the 8-bit RGB H.264 path, and of shot-cut detection.

Usage: python bench/bench_export.py [--frames 40]

Composites a fixed fill into a 140x100 hole of the sample clip's frames
(1280x720) and encodes them: the baseline composites in RGB uint8 and writes
with ``tam.export.VideoWriter``; each codec composites in the source's own
pixel format and writes with ``tam.encode.ClipWriter``. Prints milliseconds a
frame (the inpainting itself is not included). Then times the cut detector on
the working-size (854x480) frames of every public davis2016 sequence.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SAMPLE = REPO / "assets" / "bigbuckbunny.mp4"
DAVIS = REPO.parent / "shared" / "data" / "davis2016"
CODECS = (("h264", ".mp4"), ("h265", ".mp4"), ("prores", ".mov"), ("ffv1", ".mkv"))


def _hole(w: int, h: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[h * 2 // 5: h * 3 // 5, w * 3 // 5: w * 3 // 4] = True
    return hole


def bench_baseline(n: int, out: Path) -> float:
    from inpaint.render import composite
    from tam.export import VideoWriter
    from tam.video import open_source

    with open_source(SAMPLE) as s:
        w, h = s.size
        fill, hole = np.full((h, w, 3), 128, np.uint8), _hole(w, h)
        t = time.perf_counter()
        with VideoWriter(out / "base.mp4", w, h, s.fps) as writer:
            for i in range(n):
                writer.write(composite(s[i], fill, hole, 4))
        return (time.perf_counter() - t) / n


def bench_codec(name: str, suffix: str, n: int, out: Path) -> float:
    from inpaint.render import full_size, hole_alpha
    from tam.codecs import CODECS as SPECS
    from tam.encode import ClipWriter
    from tam.mediameta import read_meta
    from tam.pixels import blend
    from tam.video import open_source

    with open_source(SAMPLE) as s:
        w, h = s.size
        fill, alpha = np.full((h, w, 3), 128, np.uint8), hole_alpha(_hole(w, h), (w, h), 4)
        first = s.native(0)
        t = time.perf_counter()
        with ClipWriter(out / f"{name}{suffix}", SPECS[name], read_meta(SAMPLE), w, h, first.pix_fmt,
                        first.bits) as writer:
            for i in range(n):
                writer.write(blend(s.native(i), full_size(fill, (w, h)), alpha))
        return (time.perf_counter() - t) / n


def bench_cuts() -> None:
    from tam.shots import detect_cuts

    if not DAVIS.exists():
        print("cut detection: no ../shared/data")
        return
    frames, seconds, found = 0, 0.0, 0
    for seq in sorted(DAVIS.iterdir()):
        images = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted((seq / "frames").glob("*.jpg"))]
        t = time.perf_counter()
        found += len(detect_cuts(images, 25))
        seconds += time.perf_counter() - t
        frames += len(images)
    print(f"cut detection: {1000 * seconds / frames:.1f} ms a frame over {frames} frames of "
          f"{len(list(DAVIS.iterdir()))} sequences (decoding excluded); cuts found: {found}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        print(f"baseline RGB composite + H.264 (VideoWriter): {1000 * bench_baseline(args.frames, out):.0f} ms a frame")
        for name, suffix in CODECS:
            ms = 1000 * bench_codec(name, suffix, args.frames, out)
            print(f"{name}: native composite + ClipWriter: {ms:.0f} ms a frame")
    bench_cuts()


if __name__ == "__main__":
    main()
