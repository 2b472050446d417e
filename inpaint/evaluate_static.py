"""The static-shot protocol: fills of background that no frame ever shows.

Every sequence under ROOT (any set) gives one static shot: its first frame,
resized to the working size (432x240 by default) and repeated ``STATIC_FRAMES``
times; the hole is that frame's own object mask (all objects) dilated by
``STATIC_DILATION`` px, so nothing behind the object is ever seen. There is no
truth: the figures say how the fill looks (:mod:`inpaint.fill_metrics`) on the
middle frame's hole,

* ``tex`` and ``w1`` (detail inside the hole against the ring around it);
* ``flicker``: the mean absolute change, inside the hole, between consecutive
  output frames (grey levels; the truth does not change),

for the chosen backend, the baseline backend, and OpenCV's shift-map
(``cv2.xphoto.inpaint(..., INPAINT_SHIFTMAP)``, exemplar-based) and Telea fills
applied to each frame (the middle one and the one before it), all in the same run. A side-by-side PNG per sequence
(hole, Telea, shift-map, baseline, ours) goes to the output folder.

Run as ``python -m tam eval-inpaint ROOT --protocol static``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inpaint.fill_metrics import show_hole, side_by_side, texture_figures
from tam.errors import TamError

STATIC_FRAMES = 8
STATIC_DILATION = 7  # px, elliptical


@dataclass
class StaticCase:
    name: str
    frame: np.ndarray  # RGB uint8 at the working size
    hole: np.ndarray  # bool


@dataclass
class StaticResult:
    name: str
    tex: float
    w1: float
    flicker: float
    seconds: float  # wall time for the whole shot


def load_static_cases(root: str | Path, size: tuple[int, int] = (432, 240),
                      names: list[str] | None = None) -> list[StaticCase]:
    """One static shot per sequence with masks under ``root`` (sorted by set/name)."""
    from tam.datasets import find_sequences

    seqs = sorted(find_sequences(root), key=lambda s: s.name)
    k = STATIC_DILATION
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    cases = []
    for seq in seqs:
        if names and seq.root.name not in names and seq.name not in names:
            continue
        frame = cv2.resize(seq.frame(0), size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize((seq.mask(0) > 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        hole = cv2.dilate(mask, kernel) > 0
        if hole.any() and not hole.all():
            cases.append(StaticCase(seq.name, frame, hole))
    if not cases:
        raise TamError(f"no sequences with an object in frame 0 under {root}" +
                       (f" named {names}" if names else ""))
    return cases


def shiftmap(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV's shift-map fill of ``hole`` (its mask marks the known pixels)."""
    dst = np.zeros_like(rgb)
    cv2.xphoto.inpaint(rgb, (~hole).astype(np.uint8) * 255, dst, cv2.xphoto.INPAINT_SHIFTMAP)
    out = rgb.copy()
    out[hole] = dst[hole]
    return out


def telea(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return cv2.inpaint(rgb, hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)


class PerFrame:
    """A per-frame image fill presented as an inpainter (``inpaint(frames, masks)``).

    Only the middle frame and the one before it are filled (shift-map takes
    seconds a frame): the flicker of a per-frame fill is that one pair's change.
    """

    def __init__(self, name: str, fill):
        self.name, self.fill = name, fill

    def inpaint(self, frames, masks, indices=None):
        middle = len(frames) // 2
        for i in (middle - 1, middle):
            yield i, self.fill(frames[i], masks[i])


def evaluate_static(inpainter, case: StaticCase) -> tuple[StaticResult, np.ndarray]:
    """Figures of ``inpainter`` on ``case``, and its middle output frame."""
    from tam.frames import ArrayFrames

    frames = ArrayFrames([case.frame] * STATIC_FRAMES)
    holes = ArrayFrames([case.hole] * STATIC_FRAMES)
    middle = STATIC_FRAMES // 2
    prev = mid = None
    change, pairs = 0.0, 0
    t0 = time.perf_counter()
    for i, out in inpainter.inpaint(frames, holes):
        if prev is not None:
            diff = np.abs(out[case.hole].astype(np.int16) - prev[case.hole].astype(np.int16))
            change += float(diff.mean())
            pairs += 1
        if i == middle:
            mid = out
        prev = out
    seconds = time.perf_counter() - t0
    tex, w1 = texture_figures(mid, case.hole)
    return StaticResult(case.name, tex, w1, change / max(pairs, 1), seconds), mid


HEADER = f"{'sequence':<28} " + " ".join(f"{k:>8}" for k in ("tex", "w1", "flicker", "s/shot"))


def _row(r: StaticResult) -> str:
    return f"{r.name:<28} {r.tex:>8.3f} {r.w1:>8.3f} {r.flicker:>8.3f} {r.seconds:>8.2f}"


def _mean(name: str, rows: list[StaticResult]) -> StaticResult:
    return StaticResult(name, *(float(np.nanmean([getattr(r, f) for r in rows]))
                                for f in ("tex", "w1", "flicker", "seconds")))


def run_static(fills: dict[str, object], cases: list[StaticCase], out_dir: Path | None,
               echo=print) -> dict[str, StaticResult]:
    """Every fill (name -> inpainter, the last one is "ours") on every case; returns the means."""
    rows: dict[str, list[StaticResult]] = {name: [] for name in fills}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for case in cases:
        echo(f"\n{case.name} (hole {100 * case.hole.mean():.1f}% of the frame)")
        echo("  " + HEADER)
        columns = [("hole", show_hole(case.frame, case.hole))]
        for name, inpainter in fills.items():
            r, mid = evaluate_static(inpainter, case)
            r.name = name
            rows[name].append(r)
            columns.append((name, mid))
            echo("  " + _row(r))
        if out_dir is not None:
            side_by_side(out_dir / f"{case.name.replace('/', '_')}.png", columns)
    means = {name: _mean(name, rs) for name, rs in rows.items()}
    echo(f"\nmeans over {len(cases)} static shots")
    echo("  " + HEADER)
    for r in means.values():
        echo("  " + _row(r))
    return means
