"""Simulated-click evaluation of a segmenter: ``python -m tam eval-clicks ROOT [--video] [--frames 0,15,30]``.

Protocol (first frame of every sequence, or each of ``--frames``; every object in it):

* click 1 is the object pixel farthest from the object's boundary (distance
  transform of the ground-truth mask, padded so the image border counts as
  boundary);
* every later click goes to the pixel farthest from the boundary of the
  largest error region (a connected component of false negatives or of false
  positives): positive for a miss, negative for a false alarm;
* the segmenter sees all clicks so far and its previous result's ``logits``
  (or its mask when it returns no logits) as ``mask_input``;
* with ``--video`` the frame is prepared with its neighbouring frames
  (:func:`tam.segment.video.neighbour_indices`), without it as a still image.

Reported: IoU per object per click count, mIoU@k, NoC@85 / NoC@90 (objects
that never reach the threshold count as ``max_clicks``), how many later clicks
put right under a tenth of the error region they aimed at (to the user, clicks
that changed nothing), how many later clicks lowered their object's IoU by more
than 0.02 (clicks that did harm), and seconds per click: the median, the 90th percentile
and the slowest.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tam.errors import TamError
from tam.segment.base import Prompt, Segmenter

NOC_THRESHOLDS = (0.85, 0.90)
DEAD_CLICK = 0.1  # a later click that puts right less of its error region than this changed (almost) nothing
HARMFUL_DROP = 0.02  # a later click that lowers its object's IoU by more than this did harm


# ----------------------------------------------------------------------------- click simulator
def interior_point(region: np.ndarray) -> tuple[int, int, float]:
    """(x, y, distance) of the pixel of ``region`` farthest from its boundary.

    The region is padded by one background pixel, so the image border counts
    as boundary. Ties go to the first pixel in raster order.
    """
    region = np.asarray(region, bool)
    if not region.any():
        raise ValueError("empty region has no interior point")
    padded = np.pad(region, 1).astype(np.uint8)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    idx = int(np.argmax(dist))
    y, x = divmod(idx, region.shape[1])
    return x, y, float(dist[y, x])


def largest_error(pred: np.ndarray, gt: np.ndarray) -> tuple[int, np.ndarray] | None:
    """(label, region) of the largest connected error of ``pred`` against ``gt``: a miss (label 1)
    or a false alarm (label 0); None when they agree."""
    pred = np.asarray(pred, bool)
    gt = np.asarray(gt, bool)
    best = None  # (area, label, component mask)
    for label, err in ((1, gt & ~pred), (0, pred & ~gt)):
        if not err.any():
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats(err.astype(np.uint8), connectivity=8)
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[k, cv2.CC_STAT_AREA])
        if best is None or area > best[0]:
            best = (area, label, comp == k)
    return None if best is None else (best[1], best[2])


def next_click(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int] | None:
    """The next simulated click (x, y, label) for ``pred`` against ``gt``; None when they agree."""
    error = largest_error(pred, gt)
    if error is None:
        return None
    x, y, _ = interior_point(error[1])
    return x, y, error[0]


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    pred = np.asarray(pred, bool)
    gt = np.asarray(gt, bool)
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def run_clicks(segmenter: Segmenter, state, gt: np.ndarray, n_clicks: int, mended: list[float] | None = None):
    """Run the protocol on the frame whose image state (from ``segmenter.set_image``) is ``state``.

    Returns (ious, seconds per predict, final mask, clicks). When the mask
    becomes exact before ``n_clicks``, the remaining entries repeat the last one.
    ``mended``, when given, receives for every later click the share of the
    error region it was aimed at that the answer to it put right.
    """
    gt = np.asarray(gt, bool)
    if not gt.any():
        raise TamError("ground-truth mask is empty: nothing to click on")
    x, y, _ = interior_point(gt)
    clicks = [(x, y, 1)]
    ious: list[float] = []
    secs: list[float] = []
    mask_input = None
    mask = np.zeros_like(gt)
    target = None
    while len(ious) < n_clicks:
        t0 = time.perf_counter()
        res = segmenter.predict(state, Prompt.from_clicks(clicks), mask_input=mask_input)
        secs.append(time.perf_counter() - t0)
        mask = np.asarray(res.mask, bool)
        ious.append(iou(mask, gt))
        mask_input = res.logits if res.logits is not None else mask
        if target is not None and mended is not None:
            right = mask == gt
            mended.append(float(np.count_nonzero(right & target) / np.count_nonzero(target)))
        if len(ious) == n_clicks:
            break
        error = largest_error(mask, gt)
        if error is None:  # perfect: later clicks would change nothing
            while len(ious) < n_clicks:
                ious.append(ious[-1])
            break
        label, target = error  # the next click aims at this region, from its deepest pixel
        x, y, _ = interior_point(target)
        clicks.append((x, y, label))
    return ious, secs, mask, clicks


def simulated_clicks_mask(segmenter: Segmenter, image: np.ndarray, gt_bool: np.ndarray,
                          n_clicks: int) -> np.ndarray:
    """First-frame mask from ``n_clicks`` simulated clicks on ``gt_bool`` (TAM protocol)."""
    if n_clicks < 1:
        raise ValueError("n_clicks must be >= 1")
    if image.shape[:2] != np.shape(gt_bool):
        raise TamError(f"mask size {np.shape(gt_bool)} differs from image size {image.shape[:2]}")
    return run_clicks(segmenter, segmenter.set_image(image), gt_bool, n_clicks)[2]


# ----------------------------------------------------------------------------- whole-set evaluation
@dataclass
class ObjectClicks:
    sequence: str  # the sequence's name, with ``@frame`` when the clicked frame is not frame 0
    object_id: int
    ious: list[float]  # IoU after 1..max_clicks clicks
    seconds: list[float]  # predict() wall time per click
    cpu_seconds: list[float] = field(default_factory=list)
    mended: list[float] = field(default_factory=list)  # per later click: share of its error region put right
    frame: int = 0  # the clicked frame

    def harmful(self, drop: float = HARMFUL_DROP) -> list[int]:
        """The later clicks (1-based numbers) after which the IoU fell by more than ``drop``."""
        return [k + 1 for k in range(1, len(self.ious)) if self.ious[k] < self.ious[k - 1] - drop]

    @property
    def name(self) -> str:
        return f"{self.sequence}#{self.object_id}"

    def noc(self, threshold: float) -> tuple[int, bool]:
        """(clicks needed to reach ``threshold``, reached?); max clicks when never reached."""
        for k, v in enumerate(self.ious, 1):
            if v >= threshold:
                return k, True
        return len(self.ious), False


@dataclass
class ClickResults:
    backend: str
    max_clicks: int
    objects: list[ObjectClicks]
    set_image_seconds: list[float]  # one per sequence (wall)
    set_image_cpu_seconds: list[float]

    def miou(self, k: int) -> float:
        return float(np.mean([o.ious[k - 1] for o in self.objects])) if self.objects else float("nan")

    def noc(self, threshold: float) -> tuple[float, int]:
        """(mean clicks to reach ``threshold``, how many objects never reached it)."""
        pairs = [o.noc(threshold) for o in self.objects]
        return float(np.mean([p[0] for p in pairs])), sum(not p[1] for p in pairs)

    def seconds_per_click(self, q: float = 50.0) -> float:
        """Wall seconds per click: the median, or the ``q``-th percentile."""
        return float(np.percentile([s for o in self.objects for s in o.seconds], q))

    def cpu_seconds_per_click(self) -> float:
        return float(np.median([s for o in self.objects for s in o.cpu_seconds]))

    def dead_clicks(self, below: float = DEAD_CLICK) -> tuple[int, int]:
        """(later clicks that put right under ``below`` of the error region they aimed at, later clicks):
        to the user, a click that changes (almost) nothing."""
        shares = [v for o in self.objects for v in o.mended]
        return sum(v < below for v in shares), len(shares)

    def harmful_clicks(self, drop: float = HARMFUL_DROP) -> tuple[int, int, list[str]]:
        """(later clicks that lowered their object's IoU by more than ``drop``, later clicks, where:
        ``object:click`` names)."""
        where = [f"{o.name}:{k}" for o in self.objects for k in o.harmful(drop)]
        return len(where), sum(len(o.ious) - 1 for o in self.objects), where

    def table(self) -> str:
        k_cols = range(1, self.max_clicks + 1)
        lines = [f"{'object':<36}" + "".join(f"  IoU@{k}" for k in k_cols)]
        for o in self.objects:
            lines.append(f"{o.name:<36}" + "".join(f"  {v:5.3f}" for v in o.ious))
        lines.append(f"{'mIoU':<36}" + "".join(f"  {self.miou(k):5.3f}" for k in k_cols))
        for thr in NOC_THRESHOLDS:
            mean, missed = self.noc(thr)
            lines.append(f"NoC@{int(thr * 100)}: {mean:.2f} ({missed} of {len(self.objects)} objects never "
                         f"reached it within {self.max_clicks} clicks, counted as {self.max_clicks})")
        dead, later = self.dead_clicks()
        lines.append(f"later clicks that put right under {DEAD_CLICK:.0%} of the error region they aimed at: "
                     f"{dead} of {later}")
        harm, later, where = self.harmful_clicks()
        lines.append(f"later clicks that lowered their object's IoU by more than {HARMFUL_DROP}: {harm} of {later}"
                     + (f" ({', '.join(where)})" if where else ""))
        lines.append(f"predict: {self.seconds_per_click():.3f} s/click wall, "
                     f"{self.cpu_seconds_per_click():.3f} s/click CPU (median); "
                     f"wall 90th percentile {self.seconds_per_click(90):.3f} s, "
                     f"slowest {self.seconds_per_click(100):.3f} s; "
                     f"set_image: {np.median(self.set_image_seconds):.3f} s wall, "
                     f"{np.median(self.set_image_cpu_seconds):.3f} s CPU per frame (median)")
        return "\n".join(lines)


def _prepare(segmenter: Segmenter, seq, t: int, video: bool):
    """Prepare frame ``t`` of ``seq`` (with its neighbours when ``video``); returns (the frame, its state)."""
    image = seq.frame(t)
    if not video:
        return image, segmenter.set_image(image)
    from tam.segment.video import neighbour_indices

    return image, segmenter.set_frame(image, [seq.frame(i) for i in neighbour_indices(t, len(seq))])


def evaluate_clicks(segmenter: Segmenter, sequences, max_clicks: int = 5, progress=None, frames=(0,),
                    video: bool = False) -> ClickResults:
    """Run the protocol on ``frames`` (default: the first) of each sequence, for each object there; frames a
    sequence does not reach are left out. With ``video`` each frame is prepared with its neighbours.

    The frame is prepared once (the user clicks every object on one prepared
    frame); its time is reported apart from the per-click time.
    """
    if max_clicks < 1:
        raise TamError("--max-clicks must be at least 1")
    objects: list[ObjectClicks] = []
    set_wall: list[float] = []
    set_cpu: list[float] = []
    for t in frames:
        for seq in sequences:
            if t and t >= len(seq):
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            image, state = _prepare(segmenter, seq, t, video)
            set_wall.append(time.perf_counter() - t0)
            set_cpu.append(time.process_time() - c0)
            labels = seq.mask(t)
            if labels.shape != image.shape[:2]:
                raise TamError(f"{seq.name}: mask size {labels.shape} differs from frame size {image.shape[:2]}")
            name = seq.name if t == 0 else f"{seq.name}@{t}"
            for oid in [int(v) for v in np.unique(labels) if v != 0]:
                c0 = time.process_time()
                mended: list[float] = []
                ious, secs, _, _ = run_clicks(segmenter, state, labels == oid, max_clicks, mended)
                cpus = [(time.process_time() - c0) / len(secs)] * len(secs)
                objects.append(ObjectClicks(name, oid, ious, secs, cpus, mended, t))
                if progress is not None:
                    progress(objects[-1])
    if not objects:
        raise TamError("no objects to evaluate: no sequence with frames and masks was found")
    return ClickResults(getattr(segmenter, "name", type(segmenter).__name__), max_clicks, objects,
                        set_wall, set_cpu)


# ----------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="folder of <set>/<sequence>/{frames,masks} (or one sequence)")
    parser.add_argument("--backend", default=None, help="segmenter backend (default: the registry default)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="weights file passed to the backend")
    parser.add_argument("--max-clicks", type=int, default=5, help="clicks per object (default 5)")
    parser.add_argument("--video", action="store_true",
                        help="prepare each clicked frame with its neighbouring frames (motion cues)")
    parser.add_argument("--frames", type=_frame_list, default=(0,), metavar="N[,N...]",
                        help="clicked frames of every sequence (default 0); a sequence too short is left out there")


def _frame_list(text: str) -> tuple[int, ...]:
    try:
        frames = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame numbers, got {text!r}") from None
    if not frames or min(frames) < 0:
        raise argparse.ArgumentTypeError(f"frame numbers must be >= 0, got {text!r}")
    return frames


def main(args: argparse.Namespace) -> int:
    from tam.datasets import find_sequences
    from tam.segment.base import SEGMENTERS

    if not Path(args.root).is_dir():
        raise TamError(f"no such folder: {args.root}")
    sequences = find_sequences(args.root)
    if not sequences:
        raise TamError(f"no sequences with frames and masks under {args.root}")
    kwargs = {} if args.checkpoint is None else {"checkpoint": str(args.checkpoint)}
    segmenter = SEGMENTERS.create(args.backend, **kwargs)
    results = evaluate_clicks(segmenter, sequences, args.max_clicks, frames=args.frames, video=args.video)
    where = "first frames" if args.frames == (0,) else "frames " + ",".join(str(v) for v in args.frames)
    print(f"backend: {results.backend}, {len(results.objects)} objects in {len(sequences)} sequences, "
          f"{where}, {'with neighbouring frames' if args.video else 'still images'}, "
          f"up to {args.max_clicks} simulated clicks")
    print(results.table())
    return 0
