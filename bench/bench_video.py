"""Peak memory and speed of streaming a long 1080p clip through VideoSource and the proxy resize.

Usage: python bench/bench_video.py [--minutes 1 10] [--size 1920x1080]

Each length is encoded once into a temporary H.264 file (synthetic moving texture),
then read frame by frame in a fresh process; the script prints frames, seconds,
decode fps and the reader process's peak RSS. Flat memory means the 10-minute
figure matches the 1-minute one.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def encode(path: Path, frames: int, width: int, height: int, fps: int = 25) -> None:
    import av
    import numpy as np

    base = (np.random.default_rng(0).integers(0, 255, (height // 8, width // 8, 3))).astype(np.uint8)
    base = np.kron(base, np.ones((8, 8, 1), np.uint8))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.roll(base, 4 * i, axis=1), format="rgb24")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


READER = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
import cv2
from tam.video import open_source, proxy_size
t = time.perf_counter()
with open_source(sys.argv[1]) as src:
    w, h = proxy_size(*src.size)
    for i in range(len(src)):
        cv2.resize(src[i], (w, h), interpolation=cv2.INTER_AREA)
    n = len(src)
dt = time.perf_counter() - t
print(json.dumps({"frames": n, "seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    ap.add_argument("--size", default="1920x1080")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(f"{'length':>8} {'frames':>7} {'read s':>8} {'fps':>7} {'peak RSS MB':>12}")
    with tempfile.TemporaryDirectory() as d:
        for minutes in args.minutes:
            path = Path(d) / f"clip_{minutes}.mp4"
            t = time.perf_counter()
            encode(path, int(minutes * 60 * 25), width, height)
            enc = time.perf_counter() - t
            out = subprocess.run([sys.executable, "-c", READER, str(path), str(REPO)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
            print(f"{minutes:>6g} m {r['frames']:>7d} {r['seconds']:>8.1f} {r['frames'] / r['seconds']:>7.1f} "
                  f"{r['peak_rss_mb']:>12.0f}   (encode {enc:.0f} s)")
            path.unlink()


if __name__ == "__main__":
    main()
