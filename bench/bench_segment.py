"""Click-to-mask benchmark: the classical segmenter against a plain GrabCut baseline.

    python bench/bench_segment.py [ROOT] [--max-clicks 5] [--backend classical] [--frames 0,15,30]
                                  [--video] [--no-baseline] [--threads 2]

ROOT defaults to the public evaluation set (../shared/data), restricted to the
sequences with exact object masks (davis2016 and davis2017_432x240). Both
segmenters run the simulated-click protocol of ``tam.segment.evaluate`` in the
same process, so their timings are comparable.

The protocol's own figures use frame 0 only: twelve objects, where moving one
superpixel can swing a single object's IoU by 0.2 and the mean by 0.01-0.02.
``--frames`` repeats the protocol on other frames of the same sequences (each
start frame counts as its own set of objects, named ``sequence@frame``; a
sequence too short for a frame is left out there), which is what it takes to
tell a real change from that noise.

``--video`` runs the segmenter twice in the same process: on still images (the
protocol's own figures) and with each clicked frame's neighbouring frames
given (``eval-clicks --video``), and prints both.

For a segmenter built on superpixels (the classical default) it also prints,
per object, the IoU of the best labelling of its superpixels: a ceiling that no
choice of labels can pass before the pixel-level stages, next to the IoU the
clicks reached.

``--threads`` sets OpenCV's thread count (default 2, the core count the speed
target is stated for); use 1 on a shared machine, where a second thread only
measures the neighbour's load.
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

from tam.datasets import find_sequences  # noqa: E402
from tam.segment.base import SEGMENTERS, Prompt, Segmenter, SegmentResult  # noqa: E402
from tam.segment.evaluate import evaluate_clicks, iou  # noqa: E402

DEFAULT_ROOT = REPO.parent / "shared" / "data"
DEFAULT_SETS = ("davis2016", "davis2017_432x240")
CLICK_TARGET_S = 0.5  # the speed target: wall seconds per click at 854x480


class GrabCutBaseline(Segmenter):
    """GrabCut from clicks: probable background everywhere, definite disks at the clicks."""

    name = "grabcut"

    def __init__(self, radius: int = 5, iterations: int = 5):
        self.radius = radius
        self.iterations = iterations

    def set_image(self, image: np.ndarray) -> np.ndarray:
        """The image state: the frame in OpenCV's BGR order."""
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)

    def predict(self, bgr: np.ndarray, prompt: Prompt, mask_input=None) -> SegmentResult:
        h, w = bgr.shape[:2]
        prompt.validate(w, h)
        gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        for (x, y), lab in zip(prompt.points, prompt.labels):
            cv2.circle(gc, (int(x), int(y)), self.radius, int(cv2.GC_FGD if lab else cv2.GC_BGD), -1)
        if not (gc == cv2.GC_FGD).any():
            return SegmentResult(np.zeros((h, w), bool), 0.0)
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        cv2.grabCut(bgr, gc, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        mask = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        return SegmentResult(mask, 1.0)


def load_sequences(root: Path):
    if root == DEFAULT_ROOT:
        seqs = [s for name in DEFAULT_SETS for s in find_sequences(root / name)]
    else:
        seqs = find_sequences(root)
    if not seqs:
        raise SystemExit(f"no sequences with frames and masks under {root}")
    return seqs


def print_ceiling(seg, seqs, res, frames) -> None:
    """IoU of the best labelling of the segmenter's superpixels, per object: how much of the gap to a
    perfect mask no choice of superpixels could close, next to what the clicks reached."""
    print("\n== superpixel ceiling (each superpixel takes the ground truth's majority label)")
    print(f"{'object':<36}  ceiling  IoU@{res.max_clicks}")
    reached = {o.name: o.ious[-1] for o in res.objects}
    ceil = []
    for t in frames:
        for seq in seqs:
            if t >= len(seq):
                continue
            labels = seq.mask(t)
            state = seg.set_image(seq.frame(t))
            for oid in [int(v) for v in np.unique(labels) if v != 0]:
                gt = labels == oid
                ceil.append(iou(seg.superpixel_ceiling(state, gt), gt))
                name = (seq.name if t == 0 else f"{seq.name}@{t}") + f"#{oid}"
                print(f"{name:<36}  {ceil[-1]:7.3f}  {reached[name]:6.3f}")
    print(f"{'mean':<36}  {np.mean(ceil):7.3f}  {res.miou(res.max_clicks):6.3f}")


def print_comparison(runs: dict, seqs, starts, max_clicks: int) -> None:
    """Every run side by side: mIoU@k, NoC, harmful clicks, time per click (overall and per frame size)."""
    labels = list(runs)
    print("\n== " + " vs ".join(labels))
    print(f"{'':<12}" + "".join(f"{v:>20}" for v in labels))
    for k in range(1, max_clicks + 1):
        print(f"{'mIoU@' + str(k):<12}" + "".join(f"{runs[v].miou(k):>20.3f}" for v in labels))
    for thr in (0.85, 0.90):
        print(f"{'NoC@' + str(int(thr * 100)):<12}" + "".join(f"{runs[v].noc(thr)[0]:>20.2f}" for v in labels))
    print(f"{'harmful':<12}" + "".join(f"{runs[v].harmful_clicks()[0]:>20d}" for v in labels)
          + "   (later clicks lowering an IoU by > 0.02)")
    print(f"{'s/click':<12}" + "".join(f"{runs[v].seconds_per_click():>20.3f}" for v in labels) + "   (wall, median)")
    print(f"{'cpu/click':<12}" + "".join(f"{runs[v].cpu_seconds_per_click():>20.3f}" for v in labels)
          + "   (CPU, median)")
    # per frame size: the 854x480 figures are the ones the speed target is about
    sizes = {}
    for seq in seqs:
        size = "x".join(str(v) for v in seq.frame(0).shape[1::-1])
        for k in starts:
            sizes[seq.name if k == 0 else f"{seq.name}@{k}"] = size
    for size in sorted(set(sizes.values())):
        for label in labels:
            obs = [o for o in runs[label].objects if sizes[o.sequence] == size]
            wall = [t for o in obs for t in o.seconds]
            cpu = [t for o in obs for t in o.cpu_seconds]
            print(f"{size}: {label:<20} {np.median(wall):.3f} s/click wall, {np.median(cpu):.3f} CPU "
                  f"(median; 90th percentile {np.percentile(wall, 90):.3f}, max {np.max(wall):.3f}; "
                  f"{np.count_nonzero(np.asarray(wall) > CLICK_TARGET_S)} of {len(wall)} clicks over "
                  f"{CLICK_TARGET_S} s) over {len(obs)} objects")
    for label in labels:
        print(f"set_image/set_frame {label}: {np.median(runs[label].set_image_seconds):.3f} s wall, "
              f"{np.median(runs[label].set_image_cpu_seconds):.3f} s CPU (median per frame)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--max-clicks", type=int, default=5)
    ap.add_argument("--backend", default="classical")
    ap.add_argument("--frames", default="0",
                    help="comma-separated start frames, each run as its own first frame (default 0: the protocol)")
    ap.add_argument("--video", action="store_true",
                    help="also run with each clicked frame's neighbouring frames given (motion cues)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the (slow) GrabCut baseline")
    ap.add_argument("--threads", type=int, default=2,
                    help="OpenCV threads (default 2: the speed target is for 2 cores)")
    args = ap.parse_args(argv)
    if args.threads < 1:
        raise SystemExit("--threads must be at least 1")
    # the speed figure is for a given core count: OpenCV would otherwise use every core it sees
    cv2.setNumThreads(args.threads)
    try:
        starts = [int(v) for v in args.frames.split(",")]
    except ValueError:
        raise SystemExit(f"--frames takes comma-separated frame numbers, got {args.frames!r}")
    seqs = load_sequences(args.root)
    short = [f"{seq.name}@{k}" for k in starts for seq in seqs if k >= len(seq)]
    if short:
        print(f"left out (the sequence is shorter): {', '.join(short)}")
    load = os.getloadavg()
    print(f"{len(seqs)} sequences x frames {args.frames} under {args.root}; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs, {args.threads} OpenCV thread(s)")

    runs = {}
    plan = [(args.backend, SEGMENTERS.create(args.backend), False)]
    if args.video:
        plan.append((f"{args.backend} --video", SEGMENTERS.create(args.backend), True))
    if not args.no_baseline:
        plan.append(("grabcut", GrabCutBaseline(), False))
    for label, seg, video in plan:
        t0 = time.perf_counter()
        res = evaluate_clicks(seg, seqs, args.max_clicks, frames=starts, video=video)
        print(f"\n== {label} ({time.perf_counter() - t0:.1f} s)")
        print(res.table())
        runs[label] = res
    ours = runs[args.backend]
    if len(starts) > 1:
        for label in runs:
            if label == "grabcut":
                continue
            print(f"\n== {label} per start frame (mIoU@1 / mIoU@{args.max_clicks})")
            for k in starts:
                obs = [o for o in runs[label].objects if o.frame == k]
                print(f"frame {k:>3}: {np.mean([o.ious[0] for o in obs]):.3f} / "
                      f"{np.mean([o.ious[-1] for o in obs]):.3f} over {len(obs)} objects")
    if hasattr(plan[0][1], "superpixel_ceiling"):
        print_ceiling(plan[0][1], seqs, ours, starts)
    print_comparison(runs, seqs, starts, args.max_clicks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
