"""Peak memory of a removal run against the clip's length: the driver and each worker process.

    python bench/bench_memory.py [--frames 60,240] [--size 1920x1080] [--fps 25] [--workers 2]
                                 [--chunk N] [--verbose]

For each length a synthetic clip is written to a temporary folder: H.264 (libx264, yuv420p) at
``--size``, a smooth random texture panning ``PAN_PX`` pixels a frame, and a solid rectangle
(``OBJECT_SIZE`` at 1920x1080, scaled with the size) drifting across it; next to it the mask folder
``remove`` reads (``00000.png`` ... one 0/255 PNG per frame at the source size). Frames and masks are
made one at a time, so this script's own memory does not grow with the length either.

The real command, ``python3 -m tam remove CLIP --masks DIR --out OUT.mp4 --workers N --quiet``, runs as
a subprocess. A thread samples it and all its descendants every ``SAMPLE_S`` seconds, straight from
``/proc`` (Linux only): children from ``/proc/PID/task/*/children``, the parent from ``PPid`` and the
resident set from ``VmRSS`` in ``/proc/PID/status``, the command line from ``/proc/PID/cmdline``; a
process that ends between two reads is skipped. Each process keeps its largest resident set, raised to
the kernel's high-water mark (``VmHWM``), so short peaks between two samples count too. The processes
are told apart by their place in the tree: the ``remove`` process is the driver; the multiprocessing
forkserver is its child (its command line names ``multiprocessing.forkserver``); the pool's workers are
the forkserver's children and, forked without an exec, carry the forkserver's command line too; the
resource tracker is reported as a helper. RSS counts pages shared with the forkserver (the modules it
preloads), so the sum over processes overstates the total.

Rows: frames, minutes of clip at ``--fps``, wall seconds of the removal (the clip is made before),
the driver's peak RSS, the largest worker peak, and the number of worker processes seen. The last
line gives the ratio longest / shortest clip of the worker peak and of the driver peak.

What bounds the memory (``tam/jobs/removal.py``): the driver decodes the source once into the
project's working-size proxy cache (``ProxyFrames``: JPEG files on disk, an LRU of 24 frames in
memory), saves the masks at working size one by one, and afterwards composites the stored fills into
the source and encodes at full size, frame by frame. Each worker task (a chunk of ``--chunk`` frames,
or an anchor frame) opens the project from disk and reads only the 854x480 (``--proxy``) working
frames and masks of its chunk plus the context the flow inpainter needs on both sides (``radius``
frames after, the restart reach and ``radius`` before), held in a bounded window. What one task holds
therefore depends on the working size and the chunk length, not on the clip's length; a longer clip
only means more tasks.

A worker is reused for many tasks; every executor returns the memory a task freed after it
(``release_memory`` in ``tam/jobs/executors.py``), so a worker's memory does not creep up from task to
task (the measurements are in ``docs/experiments.md``). A chunk near either end of the clip has less
context to read, so a short clip's worker peak can be a little lower.

``DEFAULT_CHUNK`` is 30, not ``remove``'s 60: a clip no longer than one chunk is a single task and
runs in the driver without a pool, so there would be no worker to measure at 60 frames.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DEFAULT_FRAMES = "60,240"
DEFAULT_SIZE = "1920x1080"
DEFAULT_FPS = 25
DEFAULT_WORKERS = 2
DEFAULT_CHUNK = 30  # frames per removal task: even the shortest default clip is two tasks on the pool
SAMPLE_S = 0.2  # seconds between two samples of the process tree
MIB = 1024 * 1024
SEED = 7
REFERENCE_WIDTH = 1920  # OBJECT_SIZE and the speeds are for this width and scale with the clip's
OBJECT_SIZE = (300, 250)  # width, height of the moving rectangle at REFERENCE_WIDTH
OBJECT_RGB = (200, 40, 40)
OBJECT_PX_PER_FRAME = 3.0  # the rectangle's drift at REFERENCE_WIDTH
PAN_PX = 2  # background pan per frame at REFERENCE_WIDTH
TEXTURE_SIGMAS = (4.0, 24.0)  # Gaussian widths (pixels) of the texture's two scales
TEXTURE_WEIGHTS = (0.35, 0.65)
X264_OPTIONS = {"preset": "ultrafast", "crf": "18"}
FLAT_RATIO = 1.1  # a worker peak within this ratio across lengths counts as flat


# -- the synthetic clip ---------------------------------------------------------------

def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, got {text!r}") from None
    if w < 64 or h < 64 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size must be even and at least 64x64, got {text!r}")
    return w, h


def parse_lengths(text: str) -> list[int]:
    try:
        lengths = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"frames must be a list like 60,240, got {text!r}") from None
    if not lengths or lengths[0] < 2:
        raise argparse.ArgumentTypeError("every length must be at least 2 frames")
    return lengths


def periodic_texture(w: int, h: int, seed: int = SEED):
    """A smooth random RGB texture, periodic in both directions (low-passed white noise, by FFT), so a
    pan can wrap around without a seam."""
    import numpy as np

    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    r2 = fy * fy + fx * fx
    out = np.zeros((h, w, 3), np.float32)
    for sigma, weight in zip(TEXTURE_SIGMAS, TEXTURE_WEIGHTS):
        lowpass = np.exp(-2.0 * (np.pi * sigma) ** 2 * r2)  # the spectrum of a Gaussian blur
        for c in range(3):
            band = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((h, w))) * lowpass, s=(h, w))
            out[..., c] += weight * band / (band.std() + 1e-9)
    return np.clip(128 + 40 * out, 0, 255).astype(np.uint8)


def object_box(t: int, w: int, h: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the rectangle at frame ``t``: it drifts right and back (a triangle wave),
    so it stays in view at any length."""
    scale = w / REFERENCE_WIDTH
    ow, oh = round(OBJECT_SIZE[0] * scale), round(OBJECT_SIZE[1] * scale)
    span = max(1, w - ow - 2 * round(0.1 * w))
    travel = int(t * OBJECT_PX_PER_FRAME * scale) % (2 * span)
    x0 = round(0.1 * w) + (travel if travel < span else 2 * span - travel)
    y0 = (h - oh) // 2 + round(0.05 * h * ((t // 50) % 2))  # a small step down and back now and then
    return x0, y0, x0 + ow, y0 + oh


def frames_and_masks(n: int, w: int, h: int):
    """Yield (rgb, mask) for frames 0..n-1, made one at a time."""
    import numpy as np

    texture = periodic_texture(w, h)
    pan = max(1, round(PAN_PX * w / REFERENCE_WIDTH))
    columns = np.arange(w)
    for t in range(n):
        rgb = texture[:, (columns + t * pan) % w]
        x0, y0, x1, y1 = object_box(t, w, h)
        rgb[y0:y1, x0:x1] = OBJECT_RGB
        mask = np.zeros((h, w), np.uint8)
        mask[y0:y1, x0:x1] = 255
        yield rgb, mask


def write_clip(folder: Path, n: int, size: tuple[int, int], fps: int) -> tuple[Path, Path]:
    """The clip ``folder/clip.mp4`` and its mask folder ``folder/masks``."""
    import av
    import cv2

    w, h = size
    clip, masks = folder / "clip.mp4", folder / "masks"
    masks.mkdir(parents=True)
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options=X264_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for t, (rgb, mask) in enumerate(frames_and_masks(n, w, h)):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            if not cv2.imwrite(str(masks / f"{t:05d}.png"), mask):
                raise SystemExit(f"error: could not write mask {t}")
        out.mux(stream.encode(None))
    return clip, masks


# -- sampling the process tree ----------------------------------------------------------

@dataclass
class Peak:
    pid: int
    ppid: int
    cmdline: str
    rss: int = 0  # bytes: the largest sampled RSS, or the high-water mark when larger


@dataclass
class Peaks:
    root: int
    by_pid: dict[int, Peak] = field(default_factory=dict)


def read_status(pid: int) -> dict[str, str] | None:
    """The fields of ``/proc/PID/status`` as text, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:  # gone (ENOENT, ESRCH) or not ours to read
        return None


def kib_field(status: dict[str, str], name: str) -> int:
    """A ``VmRSS``-like field (``"123 kB"``) in bytes; 0 where absent (a zombie has none)."""
    try:
        return int(status[name].split()[0]) * 1024
    except (KeyError, ValueError, IndexError):
        return 0


def read_cmdline(pid: int) -> str | None:
    """The command line, arguments joined by spaces; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """The children of ``pid``: the union over its threads' ``/proc/PID/task/TID/children`` (a child
    is listed under the thread that forked it). Empty once the process is gone."""
    found: set[int] = set()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(v) for v in f.read().split())
        except (OSError, ValueError):  # the thread or the process ended meanwhile
            continue
    return sorted(found)


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, parents before children."""
    tree, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        tree.append(pid)
        todo.extend(c for c in children(pid) if c not in tree)
    return tree


def sample(peaks: Peaks) -> None:
    """One sample of the root process and its descendants: each one's resident set (``VmRSS``), raised
    to its high-water mark (``VmHWM``). A process that ends between two reads is skipped."""
    for pid in process_tree(peaks.root):
        status = read_status(pid)
        if status is None:
            continue
        rss = max(kib_field(status, "VmRSS"), kib_field(status, "VmHWM"))
        if pid not in peaks.by_pid:
            cmdline = read_cmdline(pid)
            try:
                ppid = int(status["PPid"])
            except (KeyError, ValueError):
                continue
            if cmdline is None or read_status(pid) is None:  # gone: a pid read later may be another process
                continue
            peaks.by_pid[pid] = Peak(pid, ppid, cmdline)
        peak = peaks.by_pid[pid]
        peak.rss = max(peak.rss, rss)


def sample_until(peaks: Peaks, stop: threading.Event) -> None:
    while not stop.is_set():
        sample(peaks)
        stop.wait(SAMPLE_S)


def role(peak: Peak, peaks: Peaks) -> str:
    """driver, forkserver, worker, helper (resource tracker) or other."""
    parent = peaks.by_pid.get(peak.ppid)
    if peak.pid == peaks.root:
        return "driver"
    if "resource_tracker" in peak.cmdline:
        return "helper"
    if "spawn_main" in peak.cmdline or "multiprocessing.spawn" in peak.cmdline:
        return "worker"
    if "forkserver" in peak.cmdline:
        return "worker" if parent is not None and "forkserver" in parent.cmdline else "forkserver"
    return "other"


# -- one run ----------------------------------------------------------------------------

@dataclass
class Run:
    frames: int
    seconds: float
    peaks: Peaks

    def mib(self, which: str) -> list[float]:
        return sorted((p.rss / MIB for p in self.peaks.by_pid.values() if role(p, self.peaks) == which),
                      reverse=True)


def remove_command(clip: Path, masks: Path, out: Path, workers: int, chunk: int) -> list[str]:
    return [sys.executable, "-m", "tam", "remove", str(clip), "--masks", str(masks), "--out", str(out),
            "--workers", str(workers), "--chunk", str(chunk), "--quiet"]


def measure(cmd: list[str], folder: Path) -> tuple[float, Peaks]:
    """Run ``cmd`` while sampling its process tree; exits with its stderr if it fails."""
    log = folder / "remove.log"
    with open(log, "wb") as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=errors)
        peaks, stop = Peaks(proc.pid), threading.Event()
        sampler = threading.Thread(target=sample_until, args=(peaks, stop), daemon=True)
        sampler.start()
        code = proc.wait()
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
    if code != 0:
        sys.stderr.write(log.read_text(errors="replace"))
        raise SystemExit(f"error: `{' '.join(cmd)}` exited with {code}")
    return seconds, peaks


def run_length(n: int, args) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = Path(tmp)
        clip, masks = write_clip(folder, n, args.size, args.fps)
        cmd = remove_command(clip, masks, folder / "out.mp4", args.workers, args.chunk)
        seconds, peaks = measure(cmd, folder)
    return Run(n, seconds, peaks)


# -- the report -------------------------------------------------------------------------

def print_row(run: Run, fps: int) -> None:
    driver, workers = run.mib("driver"), run.mib("worker")
    worker_peak = workers[0] if workers else float("nan")
    print(f"{run.frames:>7} {run.frames / fps / 60:>8.2f} {run.seconds:>8.1f} {driver[0]:>12.0f} "
          f"{worker_peak:>12.0f} {len(workers):>8}", flush=True)


def print_processes(run: Run) -> None:
    for p in sorted(run.peaks.by_pid.values(), key=lambda p: p.pid):
        print(f"    {run.frames:>6} frames  pid {p.pid:>7} (parent {p.ppid:>7})  "
              f"{role(p, run.peaks):10} {p.rss / MIB:>7.0f} MiB  {p.cmdline[:140]}")


def print_ratios(runs: list[Run]) -> None:
    first, last = runs[0], runs[-1]
    workers = [r.mib("worker")[0] if r.mib("worker") else float("nan") for r in (first, last)]
    drivers = [r.mib("driver")[0] for r in (first, last)]
    worker_ratio, driver_ratio = workers[1] / workers[0], drivers[1] / drivers[0]
    verdict = "flat" if worker_ratio <= FLAT_RATIO else f"over {FLAT_RATIO}"
    print(f"peak ratio {last.frames}/{first.frames} frames: worker {worker_ratio:.2f} ({verdict}), "
          f"driver {driver_ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=parse_lengths, default=parse_lengths(DEFAULT_FRAMES),
                    help=f"clip lengths in frames, comma-separated (default {DEFAULT_FRAMES})")
    ap.add_argument("--size", type=parse_size, default=parse_size(DEFAULT_SIZE),
                    help=f"clip size WxH (default {DEFAULT_SIZE})")
    ap.add_argument("--fps", type=int, default=DEFAULT_FPS, help=f"frame rate (default {DEFAULT_FPS})")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                    help=f"worker processes of the removal (default {DEFAULT_WORKERS})")
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK,
                    help=f"frames per removal task (default {DEFAULT_CHUNK}; remove's own default is 60)")
    ap.add_argument("--verbose", action="store_true", help="also print every process's peak and command line")
    args = ap.parse_args(argv)
    w, h = args.size
    print(f"removal of a {w}x{h} clip at {args.fps} fps, {args.workers} workers; peak RSS in MiB")
    print(f"{'frames':>7} {'minutes':>8} {'wall s':>8} {'driver MiB':>12} {'worker MiB':>12} {'workers':>8}")
    runs = []
    for n in args.frames:
        runs.append(run_length(n, args))
        print_row(runs[-1], args.fps)
    if args.verbose:
        print("processes:")
        for run in runs:
            print_processes(run)
    if len(runs) > 1:
        print_ratios(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
