"""Benchmark the trackers on every evaluation sequence (semi-supervised, first-frame ground truth).

    python bench/bench_track.py [ROOT ...] [--backend NAME] [--max-frames N] [--threads N]

ROOT defaults to the public DAVIS sequences with full ground truth next to the
repository (``../shared/data/davis2016`` and ``../shared/data/davis2017_432x240``).
Prints J, F, J&F, wall-clock fps and CPU-time fps per sequence for the chosen
backend and for a plain optical-flow baseline run in the same process: each
frame's labels are the previous frame's labels pulled along DIS optical flow
(OpenCV ``medium`` preset, full resolution), with nothing else.

Speed targets are stated for 2 cores, so OpenCV is limited to ``--threads``
(default 2) and CPU-time fps is the figure to compare across machines and loads.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tam.datasets import find_sequences  # noqa: E402
from tam.track.base import Tracker  # noqa: E402
from tam.track.evaluate import create_tracker, evaluate_sequence  # noqa: E402

DEFAULT_ROOTS = [REPO.parent / "shared" / "data" / "davis2016",
                 REPO.parent / "shared" / "data" / "davis2017_432x240"]


class DisWarpBaseline(Tracker):
    """Previous labels warped by backward DIS optical flow, nearest-neighbour, frame after frame."""

    name = "dis-warp"

    def propagate(self, state, frames, keyframes, start, stop):
        step = 1 if stop > start else -1
        labels = np.asarray(keyframes[start], np.uint8)
        prev = cv2.cvtColor(np.asarray(frames[start]), cv2.COLOR_RGB2GRAY)
        h, w = prev.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        for t in range(start + step, stop, step):
            cur = cv2.cvtColor(np.asarray(frames[t]), cv2.COLOR_RGB2GRAY)
            flow = dis.calc(cur, prev, None)
            labels = cv2.remap(labels, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_REPLICATE)
            yield t, labels.copy()
            prev = cur


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", help="folders of <set>/<sequence>/{frames,masks}")
    parser.add_argument("--backend", default="classical")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads (0: OpenCV's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        cv2.setNumThreads(args.threads)
    roots = [Path(r) for r in args.roots] or DEFAULT_ROOTS
    sequences = [s for r in roots for s in find_sequences(r)]
    if not sequences:
        print(f"no sequences under {', '.join(map(str, roots))}", file=sys.stderr)
        return 1
    trackers = [create_tracker(args.backend)]
    if not args.no_baseline:
        trackers.append(DisWarpBaseline())
    try:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    threads = cv2.getNumThreads()
    print(f"{len(sequences)} sequences, {os.cpu_count()} CPUs, OpenCV threads {threads}, load average {load}")
    header = f"{'sequence':32s} {'tracker':10s} {'J':>6s} {'F':>6s} {'J&F':>6s} {'fps':>6s} {'cpu fps':>8s}"
    print(header)
    table = {t.name: [] for t in trackers}
    for seq in sequences:
        for tracker in trackers:
            s = evaluate_sequence(tracker, seq, max_frames=args.max_frames)
            table[tracker.name].append(s)
            print(f"{seq.name:32s} {tracker.name:10s} {s.j:6.3f} {s.f:6.3f} {s.jf:6.3f} "
                  f"{s.fps:6.1f} {s.cpu_fps:8.1f}", flush=True)
            if len(s.objects) > 1:
                per = "  ".join(f"{k}:{(j + f) / 2:.2f}" for k, (j, f) in sorted(s.objects.items()))
                print(f"{'':32s} {'':10s} per object J&F  {per}")
    print("-" * len(header))
    for name, scores in table.items():
        j = float(np.mean([s.j for s in scores]))
        f = float(np.mean([s.f for s in scores]))
        frames = sum(s.frames for s in scores)
        wall = sum(s.seconds for s in scores)
        cpu = sum(s.cpu_seconds for s in scores)
        worst = min(scores, key=lambda s: s.jf)
        print(f"{'mean':32s} {name:10s} {j:6.3f} {f:6.3f} {(j + f) / 2:6.3f} {frames / wall:6.1f} "
              f"{frames / cpu:8.1f}   worst {worst.name} {worst.jf:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
