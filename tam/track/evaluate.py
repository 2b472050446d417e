"""Semi-supervised video object segmentation scores: ``python -m tam eval-vos ROOT``.

Protocol (DAVIS semi-supervised): every sequence under ROOT is tracked from its
first frame (or from several start frames, ``--starts``, tracking both ways
from each and averaging: one start frame swings a sequence's score by up to
0.06 for changes as small as the order of two additions), whose masks are either the ground truth (``--init mask``) or made
by a segmenter from simulated clicks (``--init clicks``, 5 per object). The
first frame is excluded from the scores. Tracking goes through
:func:`tam.track.propagation.track`, the code path the product uses.

* J: region similarity, the intersection over union of a predicted and a
  ground-truth object mask (1 when both are empty).
* F: boundary F-measure. Boundaries are the pixels whose label differs from the
  right, lower or lower-right neighbour; a boundary pixel matches when the other
  boundary lies within a disk of radius ``ceil(0.008 * image diagonal)``.
* J&F: their mean. A sequence's score is the mean over its objects; the overall
  score is the mean over sequences.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from tam.errors import TamError
from tam.frames import IndexedFrames

BOUND_TH = 0.008
CLICKS_PER_OBJECT = 5


# ----------------------------------------------------------------------------- measures
def j_measure(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity (IoU) of two boolean masks; 1.0 when both are empty."""
    pred = np.asarray(pred, bool)
    gt = np.asarray(gt, bool)
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` whose value differs from the right, lower or lower-right neighbour.

    Neighbours outside the image count as equal, so the border is not a boundary.
    """
    m = np.asarray(mask, bool)
    b = np.zeros_like(m)
    b[:, :-1] |= m[:, :-1] != m[:, 1:]
    b[:-1, :] |= m[:-1, :] != m[1:, :]
    b[:-1, :-1] |= m[:-1, :-1] != m[1:, 1:]
    return b


def _disk(radius: int) -> np.ndarray:
    d = 2 * radius + 1
    yy, xx = np.mgrid[:d, :d] - radius
    return (xx * xx + yy * yy <= radius * radius).astype(np.uint8)


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """DAVIS boundary F-measure of two boolean masks (1.0 when both are empty)."""
    pred = np.asarray(pred, bool)
    gt = np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {gt.shape}")
    radius = bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*pred.shape))
    bp, bg = boundary_map(pred), boundary_map(gt)
    n_p, n_g = int(np.count_nonzero(bp)), int(np.count_nonzero(bg))
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    disk = _disk(int(radius))
    gt_dil = cv2.dilate(bg.astype(np.uint8), disk).astype(bool)
    pred_dil = cv2.dilate(bp.astype(np.uint8), disk).astype(bool)
    precision = np.count_nonzero(bp & gt_dil) / n_p
    recall = np.count_nonzero(bg & pred_dil) / n_g
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


# ----------------------------------------------------------------------------- one sequence
@dataclass
class SequenceScore:
    name: str
    objects: dict[int, tuple[float, float]] = field(default_factory=dict)  # id -> (J, F)
    frames: int = 0          # frames tracked (first frame excluded)
    seconds: float = 0.0     # wall time spent in the tracker
    cpu_seconds: float = 0.0  # process CPU time spent in the tracker
    init_j: dict[int, float] = field(default_factory=dict)  # first-frame IoU of click-made masks
    refined: int = 0  # frames re-segmented by the refinement step
    size: tuple[int, int] = (0, 0)  # frames' (height, width)

    @property
    def j(self) -> float:
        return float(np.mean([v[0] for v in self.objects.values()])) if self.objects else 0.0

    @property
    def f(self) -> float:
        return float(np.mean([v[1] for v in self.objects.values()])) if self.objects else 0.0

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    @property
    def cpu_fps(self) -> float:
        return self.frames / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")


def score_frames(pred_frames, gt_frames, object_ids) -> dict[int, tuple[float, float]]:
    """Mean (J, F) per object over paired label maps."""
    sums = {k: [0.0, 0.0] for k in object_ids}
    n = 0
    for pred, gt in zip(pred_frames, gt_frames):
        n += 1
        for k in object_ids:
            p, g = pred == k, gt == k
            sums[k][0] += j_measure(p, g)
            sums[k][1] += f_measure(p, g)
    return {k: (s[0] / max(n, 1), s[1] / max(n, 1)) for k, s in sums.items()}


def evaluate_sequence(tracker, sequence, init: str = "mask", segmenter=None,
                      first_masks: np.ndarray | None = None, max_frames: int | None = None,
                      start: int = 0, refiner=None) -> SequenceScore:
    """Track ``sequence`` from frame ``start`` (both ways) and score every other frame.

    ``first_masks`` overrides the initial label map (otherwise ground truth, or
    simulated clicks through ``segmenter`` when ``init == "clicks"``).
    ``max_frames`` truncates the sequence (for quick checks). A ``refiner``
    (:class:`tam.track.refine.Refiner`) adds TAM's refinement step; its time counts.
    """
    from tam.track.propagation import track

    frames = sequence.frames
    masks = sequence.masks
    if max_frames is not None and max_frames < len(frames):
        frames = IndexedFrames(max_frames, frames.__getitem__)
        masks = IndexedFrames(max_frames, masks.__getitem__)
    gt0 = masks[start]
    ids = [int(v) for v in np.unique(gt0) if v != 0]
    score = SequenceScore(sequence.name if hasattr(sequence, "name") else str(sequence))
    score.size = tuple(gt0.shape[:2])
    if first_masks is None:
        if init == "mask":
            first_masks = gt0
        elif init == "clicks":
            first_masks, score.init_j = clicks_mask(segmenter, frames[start], gt0, ids)
        else:
            raise TamError(f"unknown --init {init!r}: use mask or clicks")
    first_masks = np.asarray(first_masks, np.uint8)

    preds: dict[int, np.ndarray] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    state = tracker.init_state(frames)
    refined_before = refiner.refined_frames if refiner is not None else 0
    for index, labels in track(tracker, state, frames, {start: first_masks}, refiner=refiner):
        if index != start:
            preds[index] = labels
    score.seconds = time.perf_counter() - t0
    score.cpu_seconds = time.process_time() - c0
    if refiner is not None:
        score.refined = refiner.refined_frames - refined_before
    order = sorted(preds)
    score.frames = len(order)
    score.objects = score_frames((preds[i] for i in order), (masks[i] for i in order), ids)
    return score


def start_frames(length: int, fractions: list[float]) -> list[int]:
    """Start frames at ``fractions`` (each within [0, 1)) of a sequence of ``length`` frames, sorted, unique."""
    if not fractions or any(not 0 <= x < 1 for x in fractions):
        raise TamError("start frames are fractions within [0, 1) of the sequence's length")
    return sorted({int(x * length) for x in fractions})


def mean_over_starts(name: str, runs: list[SequenceScore]) -> SequenceScore:
    """One sequence's score over its start frames: per-object J and F averaged, frames and times summed."""
    out = SequenceScore(name)
    ids = sorted({k for r in runs for k in r.objects})
    out.objects = {k: (float(np.mean([r.objects[k][0] for r in runs if k in r.objects])),
                       float(np.mean([r.objects[k][1] for r in runs if k in r.objects]))) for k in ids}
    out.frames = sum(r.frames for r in runs)
    out.seconds = sum(r.seconds for r in runs)
    out.cpu_seconds = sum(r.cpu_seconds for r in runs)
    out.refined = sum(r.refined for r in runs)
    out.size = runs[0].size
    return out


def clicks_mask(segmenter, image: np.ndarray, gt: np.ndarray, ids, n_clicks: int = CLICKS_PER_OBJECT):
    """First-frame label map made from simulated clicks per object, and each object's IoU."""
    from tam.segment.evaluate import simulated_clicks_mask

    out = np.zeros(gt.shape, np.uint8)
    ious = {}
    for k in ids:
        m = np.asarray(simulated_clicks_mask(segmenter, image, gt == k, n_clicks), bool)
        out[m & (out == 0)] = k
        ious[k] = j_measure(m, gt == k)
    return out, ious


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="folder of <set>/<sequence>/{frames,masks} (or one sequence)")
    parser.add_argument("--backend", default=None, help="tracker backend (default: classical)")
    parser.add_argument("--init", choices=("mask", "clicks"), default="mask",
                        help="first-frame masks: ground truth, or 5 simulated clicks per object")
    parser.add_argument("--checkpoint", default=None, help="model checkpoint for a learned backend")
    parser.add_argument("--segmenter", default="classical",
                        help="segmenter for --init clicks and --refine (default: classical)")
    parser.add_argument("--segmenter-checkpoint", default=None, help="checkpoint for a neural segmenter")
    parser.add_argument("--refine", action="store_true",
                        help="TAM's refinement: re-prompt the segmenter where a tracked mask degrades")
    parser.add_argument("--max-frames", type=int, default=None, help="score only the first N frames")
    parser.add_argument("--starts", default="0",
                        help="start frames as fractions of each sequence's length, e.g. 0,0.25,0.5 (default 0)")


def create_tracker(backend: str | None, checkpoint: str | None = None):
    from tam.track.base import TRACKERS

    name = backend or TRACKERS.default
    kwargs = {"checkpoint": checkpoint} if checkpoint else {}
    return TRACKERS.create(name, **kwargs)


def main(args: argparse.Namespace) -> int:
    from tam.datasets import find_sequences

    sequences = find_sequences(args.root)
    if not sequences:
        raise TamError(f"no sequences with frames/ and masks/ under {args.root}")
    tracker = create_tracker(args.backend, args.checkpoint)
    segmenter = refiner = None
    if args.init == "clicks" or args.refine:
        from tam.segment import SEGMENTERS
        kwargs = {"checkpoint": args.segmenter_checkpoint} if args.segmenter_checkpoint else {}
        segmenter = SEGMENTERS.create(args.segmenter, **kwargs)
    if args.refine:
        from tam.track.refine import Refiner
        refiner = Refiner(segmenter)
    scores = []
    print(f"tracker: {getattr(tracker, 'name', type(tracker).__name__)}   init: {args.init}"
          + (f"   refine: {args.segmenter}" if refiner is not None else ""))
    print(f"{'sequence':40s} {'obj':>4s} {'J':>6s} {'F':>6s} {'J&F':>6s} {'fps':>7s} {'cpu fps':>8s}")
    try:
        fractions = [float(x) for x in args.starts.split(",")]
    except ValueError:
        raise TamError(f"--starts {args.starts!r}: comma-separated fractions such as 0,0.25,0.5") from None
    for seq in sequences:
        n = len(seq.frames) if args.max_frames is None else min(args.max_frames, len(seq.frames))
        runs = [evaluate_sequence(tracker, seq, init=args.init, segmenter=segmenter, max_frames=args.max_frames,
                                  start=st, refiner=refiner) for st in start_frames(n, fractions)]
        s = runs[0] if len(runs) == 1 else mean_over_starts(runs[0].name, runs)
        scores.append(s)
        extra = f"   refined {s.refined} frames" if refiner is not None else ""
        print(f"{s.name:40s} {'all':>4s} {s.j:6.3f} {s.f:6.3f} {s.jf:6.3f} {s.fps:7.1f} {s.cpu_fps:8.1f}{extra}")
        if len(s.objects) > 1 or s.init_j:
            for k, (j, f) in sorted(s.objects.items()):
                extra = f"   first-frame IoU {s.init_j[k]:.3f}" if k in s.init_j else ""
                print(f"{'':40s} {k:4d} {j:6.3f} {f:6.3f} {(j + f) / 2:6.3f}{extra}")
    mean_j = float(np.mean([s.j for s in scores]))
    mean_f = float(np.mean([s.f for s in scores]))
    frames = sum(s.frames for s in scores)
    wall = sum(s.seconds for s in scores)
    cpu = sum(s.cpu_seconds for s in scores)
    print(f"{'mean over ' + str(len(scores)) + ' sequences':40s} {'':>4s} {mean_j:6.3f} {mean_f:6.3f} "
          f"{(mean_j + mean_f) / 2:6.3f} {frames / max(wall, 1e-9):7.1f} {frames / max(cpu, 1e-9):8.1f}")
    return 0
