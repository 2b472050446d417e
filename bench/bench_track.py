"""Benchmark the trackers on every evaluation sequence (semi-supervised, first-frame ground truth).

    python bench/bench_track.py [ROOT ...] [--backend NAME] [--starts 0,0.25,0.5] [--max-frames N]
                                [--threads N] [--only NAME,...] [--set NAME=VALUE ...] [--no-baseline]

ROOT defaults to the public DAVIS sequences with full ground truth next to the
repository (``../shared/data/davis2016`` and ``../shared/data/davis2017_432x240``).
Prints J, F, J&F, wall-clock fps and CPU-time fps per sequence for the chosen
backend and for a plain optical-flow baseline run in the same process: each
frame's labels are the previous frame's labels pulled along DIS optical flow
(OpenCV ``medium`` preset, full resolution), with nothing else.

Each sequence is tracked from every start frame of ``--starts`` (fractions of
its length: 0, a quarter and half way in by default, tracking both ways from
there) and its score is the mean over them: one start frame swings a sequence's
score by up to 0.06 for changes as small as the order of two additions.

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
from tam.track.evaluate import evaluate_sequence, mean_over_starts, start_frames  # noqa: E402

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


FULL_SIZE = (480, 854)


def _settings(pairs: list[str]) -> dict:
    """``NAME=VALUE`` strings as config keyword arguments (numbers parsed, other values kept as text)."""
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        for kind in (int, float):
            try:
                out[name] = kind(value)
                break
            except ValueError:
                continue
        else:
            out[name] = value
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", help="folders of <set>/<sequence>/{frames,masks}")
    parser.add_argument("--backend", default="classical")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--starts", default="0,0.25,0.5",
                        help="start frames as fractions of each sequence's length (default 0,0.25,0.5)")
    parser.add_argument("--only", default=None, help="comma-separated sequence names to keep")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the backend's config (repeatable), e.g. --set area_grow=1.03")
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads (0: OpenCV's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        cv2.setNumThreads(args.threads)
    roots = [Path(r) for r in args.roots] or DEFAULT_ROOTS
    sequences = [s for r in roots for s in find_sequences(r)]
    if args.only:
        keep = set(args.only.split(","))
        sequences = [s for s in sequences if s.name in keep or s.name.split("/")[-1] in keep]
    fractions = [float(x) for x in args.starts.split(",")]
    if not sequences:
        print(f"no sequences under {', '.join(map(str, roots))}", file=sys.stderr)
        return 1
    from tam.track.base import TRACKERS

    trackers = [TRACKERS.create(args.backend, **_settings(args.set))]
    if not args.no_baseline:
        trackers.append(DisWarpBaseline())
    try:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    threads = cv2.getNumThreads()
    print(f"{len(sequences)} sequences, start frames at {args.starts} of each, {os.cpu_count()} CPUs, OpenCV threads {threads}, load average {load}")
    header = f"{'sequence':32s} {'tracker':10s} {'J':>6s} {'F':>6s} {'J&F':>6s} {'fps':>6s} {'cpu fps':>8s}"
    print(header)
    table = {t.name: [] for t in trackers}
    for seq in sequences:
        n = len(seq.frames) if args.max_frames is None else min(args.max_frames, len(seq.frames))
        starts = start_frames(n, fractions)
        for tracker in trackers:
            runs = [evaluate_sequence(tracker, seq, max_frames=args.max_frames, start=st) for st in starts]
            s = mean_over_starts(seq.name, runs)
            table[tracker.name].append(s)
            per_start = " / ".join(f"{r.jf:.3f}" for r in runs)
            print(f"{seq.name:32s} {tracker.name:10s} {s.j:6.3f} {s.f:6.3f} {s.jf:6.3f} "
                  f"{s.fps:6.1f} {s.cpu_fps:8.1f}   starts {','.join(map(str, starts))}: {per_start}", flush=True)
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
        one = [s for s in scores if s.size == FULL_SIZE and len(s.objects) == 1]
        if one:
            frames, wall, cpu = (sum(x) for x in zip(*((s.frames, s.seconds, s.cpu_seconds) for s in one)))
            print(f"{'one object at 854x480':32s} {name:10s} {'':6s} {'':6s} {'':6s} {frames / wall:6.1f} "
                  f"{frames / cpu:8.1f}   over {len(one)} sequences")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
