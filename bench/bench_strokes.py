"""Brush benchmark: strokes that snap to edges against plain paint, after one click.

    python bench/bench_strokes.py [ROOT] [--strokes 3] [--frames 0,15,30] [--no-clicks] [--threads 1]

On every object of the public sequences with exact masks (davis2016 and
davis2017_432x240 under ROOT, default ../shared/data), from each start frame:
one simulated click (the object's deepest pixel) gives the classical
segmenter's mask; then a simulated editor paints up to ``--strokes`` strokes,
each aimed at the largest error region (a miss gets an add stroke, a false
alarm an erase stroke). A stroke runs through the region's deepest pixel along
its longest axis and stays inside it, with a brush half as wide as the region
is deep there (at most MAX_RADIUS px): an editor covers part of the region,
not all of it.

Printed: mean IoU after 0..N strokes for the stroke cut (:mod:`tam.segment.strokes`)
and, from the same strokes in the same run, for plain paint (the brush's
footprint set or cleared); the strokes that lowered an object's IoU by more than
0.02; the cut's time per stroke. With clicks (default) the same number of
further simulated clicks is run too, for comparison.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tam.datasets import find_sequences  # noqa: E402
from tam.segment.base import SEGMENTERS  # noqa: E402
from tam.segment.evaluate import interior_point, iou, largest_error, run_clicks  # noqa: E402
from tam.segment.strokes import Stroke, apply_strokes, footprint  # noqa: E402

DEFAULT_ROOT = REPO.parent / "shared" / "data"
DEFAULT_SETS = ("davis2016", "davis2017_432x240")
MAX_RADIUS = 8.0  # px: the widest brush the simulated editor uses
MIN_RADIUS = 1.0
REACH = 0.8  # a stroke spans this share of the region's extent along its axis, where inside it
HURT = 0.02  # a stroke that lowers IoU by more than this hurt


def simulated_stroke(pred: np.ndarray, gt: np.ndarray) -> Stroke | None:
    """The editor's next stroke at the largest error of ``pred``; None when pred is exact."""
    error = largest_error(pred, gt)
    if error is None:
        return None
    label, region = error
    x, y, depth = interior_point(region)
    ys, xs = np.nonzero(region)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    centred = pts - pts.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(pts) > 2 else np.array([1.0, 0.0])
    half = int(REACH * np.abs(centred @ axis).max())
    path = []
    for t in range(-half, half + 1):  # t = 0 is the deepest pixel, inside the region
        px, py = x + t * axis[0], y + t * axis[1]
        inside = 0 <= px < gt.shape[1] and 0 <= py < gt.shape[0] and region[int(py), int(px)]
        path.append((px, py) if inside else None)
    run = _longest_run_through(path, half)
    radius = float(np.clip(depth / 2, MIN_RADIUS, MAX_RADIUS))
    return Stroke(np.array(run), label, radius)


def _longest_run_through(path: list, middle: int) -> list:
    """The contiguous stretch of non-None points around ``middle`` (the deepest pixel)."""
    lo = hi = middle
    while lo > 0 and path[lo - 1] is not None:
        lo -= 1
    while hi < len(path) - 1 and path[hi + 1] is not None:
        hi += 1
    return path[lo:hi + 1]


def paint(mask: np.ndarray, stroke: Stroke) -> np.ndarray:
    """Plain paint: the brush's footprint set (add) or cleared (erase)."""
    f = footprint(stroke, mask.shape)
    return mask | f if stroke.label else mask & ~f


def run_object(segmenter, state, image, gt, n_strokes, with_clicks):
    """IoU lists (cut, paint, clicks), strokes that hurt (cut, paint), cut seconds per stroke; ``state`` is
    ``image``'s state from ``segmenter.set_image``."""
    first = run_clicks(segmenter, state, gt, 1)[2]
    click_ious = run_clicks(segmenter, state, gt, 1 + n_strokes)[0] if with_clicks else []
    out = {"cut": [iou(first, gt)], "paint": [iou(first, gt)], "clicks": click_ious, "secs": []}
    hurt = {"cut": 0, "paint": 0}
    masks = {"cut": first, "paint": first}
    for _ in range(n_strokes):
        for kind in ("cut", "paint"):
            stroke = simulated_stroke(masks[kind], gt)
            if stroke is None:
                out[kind].append(out[kind][-1])
                continue
            t0 = time.perf_counter()
            masks[kind] = apply_strokes(image, masks[kind], [stroke]) if kind == "cut" else paint(masks[kind], stroke)
            if kind == "cut":
                out["secs"].append(time.perf_counter() - t0)
            out[kind].append(iou(masks[kind], gt))
            hurt[kind] += out[kind][-1] < out[kind][-2] - HURT
    return out, hurt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--strokes", type=int, default=3)
    ap.add_argument("--frames", default="0,15,30", help="comma-separated start frames")
    ap.add_argument("--no-clicks", action="store_true", help="skip the further-clicks comparison")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    cv2.setNumThreads(args.threads)
    starts = [int(v) for v in args.frames.split(",")]
    seqs = [s for name in DEFAULT_SETS for s in find_sequences(args.root / name)]
    if not seqs:
        raise SystemExit(f"no sequences with frames and masks under {args.root}")
    segmenter = SEGMENTERS.create("classical")
    rows, hurt, secs, sizes = [], {"cut": 0, "paint": 0}, [], set()
    for seq in seqs:
        for start in starts:
            if start >= len(seq):
                continue
            image, labels = seq.frame(start), seq.mask(start)
            sizes.add(f"{image.shape[1]}x{image.shape[0]}")
            state = segmenter.set_image(image)
            for oid in [int(v) for v in np.unique(labels) if v]:
                out, h = run_object(segmenter, state, image, labels == oid, args.strokes, not args.no_clicks)
                rows.append(out)
                secs += out["secs"]
                for k in hurt:
                    hurt[k] += h[k]
                print(f"{seq.name}@{start} object {oid}: cut " + " ".join(f"{v:.3f}" for v in out["cut"])
                      + " | paint " + " ".join(f"{v:.3f}" for v in out["paint"])
                      + ("" if args.no_clicks else " | clicks " + " ".join(f"{v:.3f}" for v in out["clicks"])),
                      flush=True)
    print(f"\n{len(rows)} objects on {len(seqs)} sequences, start frames {starts}, frames {sorted(sizes)}")
    for kind in ("cut", "paint") + (() if args.no_clicks else ("clicks",)):
        means = np.mean([r[kind] for r in rows], axis=0)
        label = {"cut": "stroke cut", "paint": "plain paint", "clicks": "more clicks"}[kind]
        print(f"  {label:12s} mIoU after the click and 0..{args.strokes} more: " + " / ".join(f"{v:.3f}" for v in means))
    print(f"  strokes that lowered IoU by > {HURT}: cut {hurt['cut']}, paint {hurt['paint']}")
    if secs:
        print(f"  stroke cut time: median {1000 * np.median(secs):.0f} ms, max {1000 * np.max(secs):.0f} ms "
              f"({len(secs)} strokes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
