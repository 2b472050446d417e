"""The video-completion protocol (as used by E2FGVI and ProPainter) on DAVIS 2016 sequences.

Every ``davis2016`` sequence under ROOT is resized to the working size (432x240
by default). The hole in frame ``i`` is the ground-truth object mask of the next
sequence (sorted by name, cyclic; its frame ``i`` modulo its length),
nearest-resized and dilated by a 9x9 square. The original frames are the truth,
so the score measures how well the background is completed:

* PSNR and SSIM over whole frames (``skimage.metrics``); PSNR leaves out frames whose hole is empty
  (nothing to complete, and an infinite PSNR);
* ``flicker``: the mean absolute difference, inside the holes of two consecutive
  frames, between the output's temporal change and the truth's
  (``|(O[i+1]-O[i]) - (T[i+1]-T[i])|``, grey levels). A per-frame fill that
  changes its mind every frame scores high; a perfect completion scores 0;
* frames per second of the backend alone (wall and CPU time).

Run as ``python -m tam eval-inpaint ROOT [--backend NAME] [--baseline NAME] [--size 432x240]
[--out DIR]``. The baseline backend (default ``flow-smooth``, the smooth keyframe
fill) is scored in the same run, and a side-by-side PNG of each sequence's middle
frame (hole, baseline, ours, truth) goes to ``--out``. ``--protocol static``
runs the static-shot protocol instead (:mod:`inpaint.evaluate_static`).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tam.errors import TamError

HOLE_DILATION = 9  # side of the square structuring element applied to the moved masks
PROTOCOL_SET = "davis2016"


@dataclass
class Case:
    """One protocol sequence, held at the working size (short clips: a few MB)."""

    name: str
    frames: list[np.ndarray]  # RGB uint8, the truth
    holes: list[np.ndarray]  # bool


@dataclass
class CaseResult:
    name: str
    frames: int
    hole_fraction: float
    psnr: float
    ssim: float
    flicker: float
    wall_s: float
    cpu_s: float

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else float("inf")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise TamError(f"size must look like 432x240, got {text!r}") from None
    if w < 16 or h < 16:
        raise TamError(f"size {text!r} is too small")
    return w, h


def load_cases(root: str | Path, size: tuple[int, int] = (432, 240),
               max_frames: int | None = None, names: list[str] | None = None) -> list[Case]:
    """The protocol's sequences under ``root`` with their moved, dilated holes."""
    import cv2

    from tam.datasets import find_sequences

    seqs = [s for s in find_sequences(root) if s.root.parent.name == PROTOCOL_SET]
    if not seqs:
        seqs = [s for s in find_sequences(root) if len(s.object_ids()) == 1]
    if not seqs:
        raise TamError(f"no {PROTOCOL_SET} (or single-object) sequences with masks under {root}")
    seqs.sort(key=lambda s: s.name)
    kernel = np.ones((HOLE_DILATION, HOLE_DILATION), np.uint8)
    cases = []
    for k, seq in enumerate(seqs):
        short = seq.root.name
        if names and short not in names and seq.name not in names:
            continue
        donor = seqs[(k + 1) % len(seqs)]
        n = len(seq) if max_frames is None else min(len(seq), max_frames)
        frames, holes = [], []
        for i in range(n):
            frames.append(cv2.resize(seq.frame(i), size, interpolation=cv2.INTER_AREA))
            m = donor.mask(i % len(donor)) > 0
            m = cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
            holes.append(cv2.dilate(m, kernel) > 0)
        cases.append(Case(short, frames, holes))
    if not cases:
        raise TamError(f"none of the sequences {names} found under {root}")
    return cases


def flicker_error(prev_out, out, prev_true, true, region) -> tuple[float, int]:
    """Sum and count of ``|dO - dT|`` over ``region`` (HxW bool), channels averaged."""
    if not region.any():
        return 0.0, 0
    d_out = out[region].astype(np.int16) - prev_out[region].astype(np.int16)
    d_true = true[region].astype(np.int16) - prev_true[region].astype(np.int16)
    return float(np.abs(d_out - d_true).mean(axis=1).sum()), int(region.sum())


def evaluate_case(inpainter, case: Case, keep: int | None = None) -> CaseResult:
    """Figures of ``inpainter`` on ``case``; with ``keep``, that output frame is in ``.kept``."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from tam.frames import ArrayFrames

    psnrs, ssims = [], []
    fl_sum, fl_n = 0.0, 0
    prev = kept = None
    wall = cpu = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    for i, out in inpainter.inpaint(ArrayFrames(case.frames), ArrayFrames(case.holes)):
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        truth = case.frames[i]
        if case.holes[i].any():  # a frame with no hole equals its truth: its PSNR is infinite
            psnrs.append(peak_signal_noise_ratio(truth, out, data_range=255))
        ssims.append(structural_similarity(truth, out, data_range=255, channel_axis=-1))
        if prev is not None:
            region = case.holes[i] | case.holes[i - 1]
            s, n = flicker_error(prev, out, case.frames[i - 1], truth, region)
            fl_sum, fl_n = fl_sum + s, fl_n + n
        prev = out
        if i == keep:
            kept = out
        t0, c0 = time.perf_counter(), time.process_time()
    hole_fraction = float(np.mean([h.mean() for h in case.holes]))
    psnr = float(np.mean(psnrs)) if psnrs else float("nan")
    result = CaseResult(case.name, len(ssims), hole_fraction, psnr, float(np.mean(ssims)),
                        fl_sum / max(fl_n, 1), wall, cpu)
    if keep is not None:
        result.kept = kept
    return result


def summary(results: list[CaseResult]) -> CaseResult:
    frames = sum(r.frames for r in results)
    return CaseResult(
        "mean", frames, float(np.mean([r.hole_fraction for r in results])),
        float(np.mean([r.psnr for r in results])), float(np.mean([r.ssim for r in results])),
        float(np.mean([r.flicker for r in results])),
        sum(r.wall_s for r in results), sum(r.cpu_s for r in results),
    )


HEADER = f"{'sequence':<12} {'frames':>6} {'hole%':>6} {'PSNR':>7} {'SSIM':>7} {'flicker':>8} {'fps':>6} {'cpu fps':>8}"


def format_row(r: CaseResult) -> str:
    cpu_fps = r.frames / r.cpu_s if r.cpu_s > 0 else float("inf")
    return (f"{r.name:<12} {r.frames:>6d} {100 * r.hole_fraction:>6.2f} {r.psnr:>7.2f} {r.ssim:>7.4f} "
            f"{r.flicker:>8.2f} {r.fps:>6.2f} {cpu_fps:>8.2f}")


def run_protocol(inpainter, cases: list[Case], echo=print, keep_middle: bool = False) -> list[CaseResult]:
    """Score ``inpainter`` on every case; ``keep_middle`` keeps each middle output in ``.kept``."""
    echo(HEADER)
    results = []
    for case in cases:
        r = evaluate_case(inpainter, case, len(case.frames) // 2 if keep_middle else None)
        results.append(r)
        echo(format_row(r))
    echo(format_row(summary(results)))
    return results


def write_pictures(out_dir: Path, cases: list[Case], baseline: list[CaseResult] | None,
                   ours: list[CaseResult]) -> None:
    """One PNG per case: its middle frame's hole, the baseline's and our fills, the truth."""
    from inpaint.fill_metrics import show_hole, side_by_side

    out_dir.mkdir(parents=True, exist_ok=True)
    for k, case in enumerate(cases):
        mid = len(case.frames) // 2
        columns = [("hole", show_hole(case.frames[mid], case.holes[mid]))]
        if baseline is not None:
            columns.append(("baseline", baseline[k].kept))
        columns += [("ours", ours[k].kept), ("truth", case.frames[mid])]
        side_by_side(out_dir / f"{case.name}.png", columns)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="data folder holding davis2016/<sequence>/{frames,masks}")
    parser.add_argument("--protocol", choices=("moving", "static"), default="moving",
                        help="moving: holes moved from the next sequence, scored against the truth (default); "
                             "static: each sequence's first frame repeated, its own object as the hole, "
                             "scored by how the fill looks (tex, w1, flicker)")
    parser.add_argument("--backend", default=None, help="inpainter backend (default: the registry's default)")
    parser.add_argument("--baseline", default="flow-smooth",
                        help="backend scored in the same run for comparison ('none': skip; default flow-smooth)")
    parser.add_argument("--out", default=None,
                        help="folder for the side-by-side PNGs (default eval-inpaint-<protocol>; '' for none)")
    parser.add_argument("--size", default="432x240", help="working size WxH (default 432x240)")
    parser.add_argument("--max-frames", type=int, default=None, help="use only the first N frames of each sequence")
    parser.add_argument("--sequence", action="append", default=None,
                        help="evaluate only this sequence (repeatable)")


def main(args: argparse.Namespace) -> int:
    from inpaint import INPAINTERS

    size = parse_size(args.size)
    inpainter = INPAINTERS.create(args.backend)
    baseline = None if args.baseline in ("", "none") else INPAINTERS.create(args.baseline)
    out = None if args.out == "" else Path(args.out or f"eval-inpaint-{args.protocol}")
    if args.protocol == "static":
        return _main_static(args, size, inpainter, baseline, out)
    cases = load_cases(args.root, size, args.max_frames, args.sequence)
    print(f"video completion, backend {inpainter.name or args.backend}, {size[0]}x{size[1]}, "
          f"holes: next sequence's masks dilated {HOLE_DILATION}x{HOLE_DILATION}")
    base_rows = None
    if baseline is not None:
        print(f"\nbaseline {baseline.name or args.baseline}")
        base_rows = run_protocol(baseline, cases, keep_middle=out is not None)
        print(f"\nours {inpainter.name or args.backend}")
    rows = run_protocol(inpainter, cases, keep_middle=out is not None)
    if base_rows is not None:
        o, b = summary(rows), summary(base_rows)
        print(f"ours vs baseline: PSNR {o.psnr - b.psnr:+.3f} dB, SSIM {o.ssim - b.ssim:+.4f}, "
              f"flicker {o.flicker - b.flicker:+.3f}, speed x{o.fps / b.fps:.2f}")
    if out is not None:
        write_pictures(out, cases, base_rows, rows)
        print(f"pictures: {out}/")
    return 0


def _main_static(args, size, inpainter, baseline, out) -> int:
    from inpaint.evaluate_static import (STATIC_DILATION, STATIC_FRAMES, PerFrame, load_static_cases,
                                         run_static, shiftmap, telea)

    cases = load_static_cases(args.root, size, args.sequence)
    print(f"static shots, {len(cases)} sequences at {size[0]}x{size[1]}: frame 0 repeated {STATIC_FRAMES} "
          f"times, hole = its object mask dilated {STATIC_DILATION} px; figures on frame {STATIC_FRAMES // 2}")
    fills = {"telea": PerFrame("telea", telea), "shiftmap": PerFrame("shiftmap", shiftmap)}
    if baseline is not None:
        fills[f"base:{baseline.name or args.baseline}"] = baseline
    fills[f"ours:{inpainter.name or args.backend}"] = inpainter
    run_static(fills, cases, out)
    if out is not None:
        print(f"pictures: {out}/")
    return 0
