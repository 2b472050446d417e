"""Benchmark of video inpainting: the completion protocol, and memory on long streams.

    python bench/bench_inpaint.py [ROOT] [--max-frames N] [--skip-protocol]
                                  [--minutes 1] [--ten-minutes] [--skip-memory]

1. The video-completion protocol (see ``inpaint.evaluate``) on the davis2016
   sequences under ROOT (default ../shared/data) for the ``flow`` backend and the
   per-frame ``telea`` baseline in the same run, with their differences per
   sequence and overall.
2. Memory: a synthetic 432x240 stream at 25 fps (a textured pan with a moving
   hole, generated frame by frame: no frame list exists) is inpainted by ``flow``
   in a fresh process per length; peak RSS is printed at checkpoints, so a flat
   profile shows that memory does not grow with the video's length (a child's
   peak RSS includes its parent's at the fork, so run it with --skip-protocol
   for the inpainter's own figure). The
   1-minute stream always runs (unless --skip-memory); the 10-minute one with
   --ten-minutes (it takes about ten times as long).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from tam.frames import IndexedFrames  # noqa: E402

WIDTH, HEIGHT, FPS = 432, 240, 25


class SyntheticStream:
    """A lazy 432x240 video: a fixed texture panned sideways, a hole moving around.

    ``frames[i]`` and ``masks[i]`` are generated on demand from ``i`` alone.
    """

    def __init__(self, n: int, seed: int = 0):
        import cv2

        self.n = n
        rng = np.random.default_rng(seed)
        period = 4 * WIDTH
        coarse = rng.integers(0, 256, (HEIGHT // 6, period // 6, 3), dtype=np.uint8)
        tex = cv2.resize(coarse, (period, HEIGHT), interpolation=cv2.INTER_CUBIC)
        fine = rng.integers(0, 60, (HEIGHT, period, 1), dtype=np.uint8)
        self.texture = np.concatenate([tex, tex[:, :WIDTH]], axis=1)  # wraps around
        self.texture[:, :period] = np.clip(self.texture[:, :period].astype(np.int16) + fine - 30, 0, 255)
        self.texture[:, period:] = self.texture[:, :WIDTH]
        self.period = period

    def __len__(self) -> int:
        return self.n

    def frame(self, i: int) -> np.ndarray:
        if not 0 <= i < self.n:
            raise IndexError(i)
        x = (2 * i) % self.period  # pan by 2 px per frame
        return self.texture[:, x:x + WIDTH].copy()

    def mask(self, i: int) -> np.ndarray:
        import cv2

        if not 0 <= i < self.n:
            raise IndexError(i)
        m = np.zeros((HEIGHT, WIDTH), np.uint8)
        cx = int(WIDTH / 2 + WIDTH / 3 * np.sin(i / 40.0))
        cy = int(HEIGHT / 2 + HEIGHT / 4 * np.sin(i / 23.0))
        cv2.ellipse(m, (cx, cy), (40, 55), (i * 3) % 180, 0, 360, 1, -1)
        return m > 0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def memory_run(n: int) -> None:
    """Child process: inpaint a synthetic stream of ``n`` frames, print RSS checkpoints."""
    from inpaint import INPAINTERS

    stream = SyntheticStream(n)
    frames, masks = IndexedFrames(n, stream.frame), IndexedFrames(n, stream.mask)
    inpainter = INPAINTERS.create("flow")
    checkpoints = sorted({min(n, c) for c in (50, n // 10, n // 2, n)} - {0})
    t0, c0 = time.perf_counter(), time.process_time()
    err, count = 0.0, 0
    for i, out in inpainter.inpaint(frames, masks):
        if i % 25 == 0:  # a cheap quality check on the way
            hole = masks[i]
            err += float(np.abs(out[hole].astype(np.int16) - stream.frame(i)[hole]).mean())
            count += 1
        if i + 1 in checkpoints:
            print(f"  frame {i + 1:>6d}: peak RSS {peak_rss_mib():7.1f} MiB, "
                  f"{(i + 1) / (time.perf_counter() - t0):5.2f} fps (cpu {(i + 1) / (time.process_time() - c0):5.2f})",
                  flush=True)
    print(f"  mean abs error inside the hole (every 25th frame): {err / max(count, 1):.2f} grey levels", flush=True)


def memory_section(minutes: list[float]) -> None:
    print(f"\nmemory: synthetic {WIDTH}x{HEIGHT} stream at {FPS} fps, backend flow, one fresh process per length")
    for m in minutes:
        n = int(round(m * 60 * FPS))
        print(f"{m:g}-minute stream ({n} frames):", flush=True)
        subprocess.run([sys.executable, __file__, "--memory-run", str(n)], check=True)


def protocol_section(root: str, max_frames: int | None) -> None:
    from inpaint import INPAINTERS
    from inpaint.evaluate import HOLE_DILATION, load_cases, run_protocol, summary

    cases = load_cases(root, (WIDTH, HEIGHT), max_frames)
    print(f"video completion protocol: {len(cases)} davis2016 sequences at {WIDTH}x{HEIGHT}, "
          f"holes = next sequence's masks dilated {HOLE_DILATION}x{HOLE_DILATION}")
    rows, means = {}, {}
    for name in ("flow", "telea"):
        print(f"\nbackend {name}")
        rows[name] = run_protocol(INPAINTERS.create(name), cases)
        means[name] = summary(rows[name])
    print("\nflow vs telea per sequence:")
    for f, t in zip(rows["flow"], rows["telea"]):
        print(f"  {f.name:<12} PSNR {f.psnr - t.psnr:+6.2f} dB, SSIM {f.ssim - t.ssim:+.4f}, "
              f"flicker x{f.flicker / t.flicker:.2f}")
    f, t = means["flow"], means["telea"]
    print(f"flow vs telea: PSNR {f.psnr - t.psnr:+.2f} dB, SSIM {f.ssim - t.ssim:+.4f}, "
          f"flicker x{f.flicker / t.flicker:.2f}, speed x{f.fps / t.fps:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--max-frames", type=int, default=None, help="protocol: first N frames of each sequence")
    parser.add_argument("--skip-protocol", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--minutes", type=float, default=1.0, help="length of the short memory stream")
    parser.add_argument("--ten-minutes", action="store_true", help="also run the 10-minute stream")
    parser.add_argument("--memory-run", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_run is not None:
        memory_run(args.memory_run)
        return 0
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(f"cpus: {os.cpu_count()}, load average: {' '.join(load)}")
    if not args.skip_protocol:
        protocol_section(args.root, args.max_frames)
    if not args.skip_memory:
        memory_section([args.minutes] + ([10.0] if args.ten_minutes else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
