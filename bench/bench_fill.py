"""Benchmark of the keyframe fill of never-seen pixels, and of the single-frame preview.

    python bench/bench_fill.py [ROOT] [--size 854x480] [--sequence NAME ...] [--preview]

1. For the first frame of every sequence under ROOT (default ../shared/data),
   resized to SIZE, the hole is its object mask dilated by 7 px; the exemplar
   filler (``inpaint.exemplar``, the default keyframe filler) and OpenCV's Telea
   fill it. Prints the wall time of each fill (the exemplar's numba kernels are
   compiled, or read from their cache, before timing) and the tex / w1 figures of
   ``inpaint.fill_metrics``; then the time of the exemplar fill with the two other
   views the flow inpainter passes on a keyframe (frames ``VIEW_STEP`` before and
   after: here frames 8 and 16, with their own dilated masks).
2. With ``--preview``: the single-frame preview (the studio's "Preview this
   frame") of the ``flow`` default and of ``flow-smooth`` on frame 0 of each
   sequence, with its real masks dilated by 7 px, at SIZE.

Wall and CPU seconds are both printed: on a shared machine the CPU time is the
steadier figure.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402


VIEW_STEP = 8  # frames between a keyframe and the views it copies from (the flow inpainter's radius)


def _view(seq, size: tuple[int, int], j: int):
    """Frame ``j`` of ``seq`` and its known pixels (outside the object dilated 7 px), at ``size``."""
    from inpaint.evaluate_static import STATIC_DILATION

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * STATIC_DILATION + 1,) * 2)
    rgb = cv2.resize(seq.frame(j), size, interpolation=cv2.INTER_AREA)
    hole = cv2.dilate(cv2.resize((seq.mask(j) > 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST), k)
    return rgb, hole == 0


def fill_section(root: str, size: tuple[int, int], names: list[str] | None) -> None:
    from inpaint.evaluate_static import load_static_cases
    from inpaint.exemplar import complete
    from inpaint.fill_metrics import texture_figures
    from inpaint.spatial import telea
    from tam.datasets import find_sequences

    cases = load_static_cases(root, size, names)
    t0 = time.perf_counter()
    complete(cases[0].frame, cases[0].hole)  # compile or load the kernels
    print(f"first call (numba compile or cache load included): {time.perf_counter() - t0:.2f} s")
    print(f"{'sequence':<30} {'hole%':>6} {'exemplar s':>10} {'cpu s':>6} {'tex':>6} {'w1':>6} "
          f"{'telea s':>8} {'cpu s':>6} {'tex':>6}")
    times, cpus, tt = [], [], []
    for c in cases:
        t0, c0 = time.perf_counter(), time.process_time()
        out = complete(c.frame, c.hole)
        t1, c1 = time.perf_counter(), time.process_time()
        base = telea(c.frame, c.hole)
        t2, c2 = time.perf_counter(), time.process_time()
        tex, w1 = texture_figures(out, c.hole)
        btex, _ = texture_figures(base, c.hole)
        times.append(t1 - t0)
        cpus.append(c1 - c0)
        tt.append(c2 - c1)
        print(f"{c.name:<30} {100 * c.hole.mean():>6.1f} {t1 - t0:>10.2f} {c1 - c0:>6.2f} {tex:>6.2f} {w1:>6.2f} "
              f"{t2 - t1:>8.3f} {c2 - c1:>6.3f} {btex:>6.2f}")
    print(f"exemplar fill at {size[0]}x{size[1]}: median {np.median(times):.2f} s wall, "
          f"{np.median(cpus):.2f} s CPU, max {max(cpus):.2f} s CPU (Telea median {np.median(tt):.3f} s CPU)")
    seqs = {s.name: s for s in find_sequences(root)}
    vcpus = []
    for c in cases:
        seq = seqs[c.name]
        views = [_view(seq, size, j) for j in (VIEW_STEP, 2 * VIEW_STEP) if j < len(seq)]
        c0 = time.process_time()
        complete(c.frame, c.hole, sources=views)
        vcpus.append(time.process_time() - c0)
    print(f"with {VIEW_STEP} and {2 * VIEW_STEP} frames later as two more views: median {np.median(vcpus):.2f} s CPU, "
          f"max {max(vcpus):.2f} s CPU")


def preview_section(root: str, size: tuple[int, int], names: list[str] | None) -> None:
    from inpaint import INPAINTERS
    from tam.datasets import find_sequences
    from tam.frames import IndexedFrames

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    print(f"\npreview of frame 0 at {size[0]}x{size[1]}, radius 6: wall / CPU seconds")
    times = {"flow": [], "flow-smooth": []}
    for seq in sorted(find_sequences(root), key=lambda s: s.name):
        if names and seq.root.name not in names and seq.name not in names:
            continue
        n = len(seq)
        frames = IndexedFrames(n, lambda i, s=seq: cv2.resize(s.frame(i), size, interpolation=cv2.INTER_AREA))
        masks = IndexedFrames(n, lambda i, s=seq: cv2.dilate(cv2.resize(
            (s.mask(i) > 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST), kernel) > 0)
        line = f"  {seq.name:<30}"
        for name in times:
            t0, c0 = time.perf_counter(), time.process_time()
            INPAINTERS.create(name).preview(frames, masks, 0)
            times[name].append((time.perf_counter() - t0, time.process_time() - c0))
            line += f" {name} {times[name][-1][0]:.2f} / {times[name][-1][1]:.2f} s"
        print(line)
    for name, ts in times.items():
        wall, cpu = np.median(np.array(ts), axis=0)
        print(f"preview {name}: median {wall:.2f} s wall, {cpu:.2f} s CPU")


def main(argv=None) -> int:
    from inpaint.evaluate import parse_size

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--size", default="854x480")
    parser.add_argument("--sequence", action="append", default=None)
    parser.add_argument("--preview", action="store_true", help="also time the single-frame preview")
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(f"cpus: {os.cpu_count()}, load average: {' '.join(load)}")
    fill_section(args.root, size, args.sequence)
    if args.preview:
        preview_section(args.root, size, args.sequence)
    return 0


if __name__ == "__main__":
    sys.exit(main())
