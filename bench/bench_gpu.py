"""Speed and memory of every neural backend on a CUDA GPU, with full-size random weights.

    python bench/bench_gpu.py [--frames N] [--long-frames N] [--skip NAME ...] [--out FILE]

Random weights make the masks noise but the work real: every model is built at its
published size, saved and loaded back through our own loading path. Frames are
synthetic (a textured background with moving squares), generated in this script.
Prints one line per figure as it goes, so a run cut short still reports what it did:

* SAM 2.1 tiny and large, 1 object, ``--frames`` frames at 854x480: our ``Sam2Tracker``
  against the sam2 package's own loop on the same JPEG frames and the same predictor
  (``init_state`` on the folder, ``add_new_mask``, ``propagate_in_video``, each mask
  taken to the host as its notebook does), both under bf16 autocast;
* SAM 2.1 large at 1920x1080 with 1 and 3 objects, and a ``--long-frames`` 1080p clip
  streamed, GPU memory (allocated, reserved) and host memory (RSS) sampled as it goes;
* Cutie base (our ``CutieTracker``) at 854x480 with 1 and 3 objects, and 1080p streamed;
* the segmenters: SAM ViT-H and SAM 2.1 large ``set_image`` at 1080p and one click;
* a UNet of Stable Diffusion 2 inpainting's size: 25 denoising steps with guidance
  (batch 2) at 512x512 in fp16, the work of one diffusion keyframe.

CUDA only: without a GPU it stops at once with a one-line message.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

SD = (480, 854)
FULL_HD = (1080, 1920)
SAM2_CONFIGS = {"tiny": "configs/sam2.1/sam2.1_hiera_t.yaml", "large": "configs/sam2.1/sam2.1_hiera_l.yaml"}
MEMORY_SAMPLES = (100, 300, 600, 900)  # frames of the long clip at which memory is read
SEGMENT_REPEATS = 3
UNET_STEPS = 25
UNET_SD2_INPAINT = dict(  # the published Stable Diffusion 2 inpainting UNet's shape
    sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
    cross_attention_dim=1024, use_linear_projection=True,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
)


def say(line: str, out=None) -> None:
    print(line, flush=True)
    if out is not None:
        out.write(line + "\n")
        out.flush()


# ---------------------------------------------------------------------------- synthetic clip


class SyntheticClip:
    """A FrameSequence of ``n`` HxW RGB frames: a fixed texture panned slowly, with
    ``objects`` squares moving across it; ``labels(i)`` gives their label map (ids 1..)."""

    def __init__(self, n: int, hw: tuple[int, int], objects: int = 1, seed: int = 0):
        self.n, (self.h, self.w), self.objects = n, hw, objects
        rng = np.random.default_rng(seed)
        small = rng.integers(0, 256, (self.h // 8 + 2, self.w // 8 + 2, 3), dtype=np.uint8)
        import cv2

        self._texture = cv2.resize(small, (self.w + 16 * 8, self.h + 16), interpolation=cv2.INTER_CUBIC)
        self._colours = rng.integers(0, 256, (objects, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return self.n

    def _boxes(self, i: int):
        side = self.h // 5
        for k in range(self.objects):
            x = int((0.1 + 0.25 * k) * self.w + 3 * i) % (self.w - side)
            y = int((0.2 + 0.2 * k) * self.h)
            yield k + 1, y, x, side

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < self.n:
            raise IndexError(i)
        dx = (i // 4) % 128
        frame = self._texture[: self.h, dx: dx + self.w].copy()
        for k, y, x, side in self._boxes(i):
            frame[y: y + side, x: x + side] = self._colours[k - 1]
        return frame

    def labels(self, i: int) -> np.ndarray:
        lab = np.zeros((self.h, self.w), np.uint8)
        for k, y, x, side in self._boxes(i):
            lab[y: y + side, x: x + side] = k
        return lab


class JpegFrames:
    """A FrameSequence over a folder of JPEGs, decoded on access (like an image-folder source)."""

    def __init__(self, paths):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        import cv2

        return cv2.cvtColor(cv2.imread(str(self.paths[i])), cv2.COLOR_BGR2RGB)


def write_jpegs(clip, folder: Path) -> list[Path]:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(clip)):
        p = folder / f"{i:05d}.jpg"
        cv2.imwrite(str(p), cv2.cvtColor(clip[i], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(p)
    return paths


# ---------------------------------------------------------------------------- measuring


def host_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def gpu_mb() -> tuple[float, float]:
    import torch

    if not torch.cuda.is_available():
        return float("nan"), float("nan")
    return torch.cuda.memory_allocated() / 2**20, torch.cuda.memory_reserved() / 2**20


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


@contextlib.contextmanager
def timed(box: list):
    sync()
    t0 = time.perf_counter()
    yield
    sync()
    box.append(time.perf_counter() - t0)


def release() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------- SAM 2


def sam2_checkpoint(size: str, tmp: Path) -> Path:
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    path = tmp / f"sam2.1_{size}_random.pt"
    if path.is_file():  # the tracker's section made it already
        return path
    torch.manual_seed(0)
    model = build_sam2_video_predictor(SAM2_CONFIGS[size], None, device="cpu")
    torch.save({"model": model.state_dict()}, path)
    return path


def run_ours(tracker, frames, keyframes) -> tuple[float, int]:
    """End-to-end seconds (state, keyframe encoding, propagation, masks on the host)."""
    box: list = []
    count = 0
    with timed(box):
        state = tracker.init_state(frames)
        for _index, labels in tracker.propagate(state, frames, keyframes, 0, len(frames)):
            count += int(labels.shape[0] > 0)
    return box[0], count


def run_package(predictor, folder: Path, mask: np.ndarray, device: str) -> tuple[float, float, int]:
    """The sam2 package's own loop: (seconds to load the clip, seconds end to end, frames)."""
    import torch

    from tam.track.sam2 import logits_to_labels

    box: list = []
    count = 0
    with timed(box), torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
        t0 = time.perf_counter()
        state = predictor.init_state(str(folder))
        load_s = time.perf_counter() - t0
        for obj_id in sorted(int(v) for v in np.unique(mask) if v):
            predictor.add_new_mask(state, 0, obj_id, mask == obj_id)
        for index, obj_ids, logits in predictor.propagate_in_video(state, start_frame_idx=0):
            if index:
                count += int(logits_to_labels(logits, obj_ids).shape[0] > 0)
    del state
    return load_s, box[0], count


def bench_sam2(args, tmp: Path, out) -> None:
    from tam.track.sam2 import Sam2Tracker

    clip = SyntheticClip(args.frames, SD)
    folder = tmp / "clip480"
    frames = JpegFrames(write_jpegs(clip, folder))
    keyframes = {0: clip.labels(0)}
    for size in args.sam2_sizes:
        ckpt = sam2_checkpoint(size, tmp)
        tracker = Sam2Tracker(checkpoint=ckpt, config=SAM2_CONFIGS[size], device=args.device)
        tracker.load()
        warm = JpegFrames(frames.paths[:6])
        run_ours(tracker, warm, keyframes)  # kernels and allocator warmed up, not timed
        ours = [run_ours(tracker, frames, keyframes)[0] for _ in range(args.repeats)]
        pkg = [run_package(tracker.predictor, folder, keyframes[0], args.device) for _ in range(args.repeats)]
        n = len(frames) - 1
        ours_s, pkg_s = min(ours), min(p[1] for p in pkg)
        load_s = min(p[0] for p in pkg)
        say(f"sam2.1-{size} 1 object 854x480 {len(frames)} frames: ours {n / ours_s:.1f} frames/s "
            f"({ours_s:.2f} s end to end) | package {n / pkg_s:.1f} frames/s ({pkg_s:.2f} s, "
            f"{load_s:.2f} s of it in init_state: loading the clip, encoding frame 0) | "
            f"ours/package speed {pkg_s / ours_s:.2f}x", out)
        if size == args.sam2_sizes[-1]:
            bench_sam2_full_hd(args, tracker, f"sam2.1-{size}", out)
        del tracker
        release()


def bench_sam2_full_hd(args, tracker, name: str, out) -> None:
    for objects in (1, 3):
        clip = SyntheticClip(args.frames, FULL_HD, objects=objects)
        seconds, _ = run_ours(tracker, clip, {0: clip.labels(0)})
        say(f"{name} {objects} object(s) 1920x1080 {len(clip)} frames (generated): "
            f"{(len(clip) - 1) / seconds:.1f} frames/s", out)
    long_clip(args, tracker, name, out)


def long_clip(args, tracker, name: str, out) -> None:
    """Stream a long 1080p clip; memory read at MEMORY_SAMPLES frames."""
    import torch

    clip = SyntheticClip(args.long_frames, FULL_HD)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    state = tracker.init_state(clip)
    marks = [m for m in MEMORY_SAMPLES if m < len(clip)] + [len(clip) - 1]
    readings = []
    t0 = time.perf_counter()
    for index, _labels in tracker.propagate(state, clip, {0: clip.labels(0)}, 0, len(clip)):
        if index in marks:
            alloc, reserved = gpu_mb()
            readings.append(f"frame {index}: GPU {alloc:.0f}/{reserved:.0f} MB, host {host_rss_mb():.0f} MB")
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
    say(f"{name} 1 object 1920x1080 {len(clip)} frames streamed: {(len(clip) - 1) / seconds:.1f} frames/s; "
        f"GPU allocated/reserved and host RSS: " + "; ".join(readings) + f"; GPU peak {peak:.0f} MB", out)


# ---------------------------------------------------------------------------- Cutie


def bench_cutie(args, tmp: Path, out) -> None:
    import torch

    from tam.track.cutie import CutieTracker, build_cutie, cutie_config

    torch.manual_seed(0)
    ckpt = tmp / "cutie_base_random.pth"
    torch.save(build_cutie(cutie_config()).state_dict(), ckpt)
    tracker = CutieTracker(checkpoint=ckpt, device=args.device)
    tracker.load()
    for objects in (1, 3):
        clip = SyntheticClip(args.frames, SD, objects=objects)
        folder = tmp / f"cutie{objects}"
        frames = JpegFrames(write_jpegs(clip, folder))
        keyframes = {0: clip.labels(0)}
        run_ours(tracker, JpegFrames(frames.paths[:6]), keyframes)
        seconds = min(run_ours(tracker, frames, keyframes)[0] for _ in range(args.repeats))
        say(f"cutie-base {objects} object(s) 854x480 {len(frames)} frames: "
            f"{(len(frames) - 1) / seconds:.1f} frames/s ({seconds:.2f} s end to end)", out)
    long_clip(args, tracker, "cutie-base (480p internal)", out)
    del tracker
    release()


# ---------------------------------------------------------------------------- segmenters


def time_segmenter(segmenter, name: str, out) -> None:
    from tam.segment.base import Prompt

    clip = SyntheticClip(SEGMENT_REPEATS + 1, FULL_HD)
    state = segmenter.set_image(clip[SEGMENT_REPEATS])  # warm-up
    segmenter.predict(state, Prompt.from_clicks([(500, 400, 1)]))
    embed, click = [], []
    for i in range(SEGMENT_REPEATS):
        with timed(embed):
            state = segmenter.set_image(clip[i])
        with timed(click):
            segmenter.predict(state, Prompt.from_clicks([(500 + 10 * i, 400, 1)]))
    say(f"{name} 1920x1080: set_image {min(embed):.3f} s, one click {1000 * min(click):.1f} ms", out)


def bench_segmenters(args, tmp: Path, out) -> None:
    import torch

    from tam.segment.sam import SamSegmenter
    from tam.segment.sam2 import Sam2Segmenter

    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    path = tmp / "sam_vit_h_random.pth"
    torch.save(sam_model_registry["vit_h"](checkpoint=None).state_dict(), path)
    time_segmenter(SamSegmenter(model_type="vit_h", checkpoint=path, device=args.device), "SAM ViT-H", out)
    path.unlink()
    release()
    size = args.sam2_sizes[-1]
    ckpt = sam2_checkpoint(size, tmp)
    seg = Sam2Segmenter(checkpoint=ckpt, config=SAM2_CONFIGS[size], device=args.device)
    time_segmenter(seg, f"SAM 2.1 {size}", out)
    del seg
    release()


# ---------------------------------------------------------------------------- diffusion


def bench_unet(args, tmp: Path, out) -> None:
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    dtype = torch.float16 if args.device == "cuda" else torch.float32
    with torch.device(args.device):
        unet = UNet2DConditionModel(**UNET_SD2_INPAINT).to(dtype).eval()
    latents = torch.randn(2, 9, 64, 64, device=args.device, dtype=dtype)
    text = torch.randn(2, 77, 1024, device=args.device, dtype=dtype)
    params = sum(p.numel() for p in unet.parameters()) / 1e6
    with torch.inference_mode():
        unet(latents, 999, encoder_hidden_states=text)  # warm-up
        runs = []
        for _ in range(args.repeats):
            with timed(runs):
                for t in range(UNET_STEPS):
                    unet(latents, 999 - 40 * t, encoder_hidden_states=text)
    say(f"UNet of SD 2 inpainting's shape ({params:.0f}M parameters), {UNET_STEPS} steps with guidance "
        f"(batch 2) at 512x512 in {str(dtype).removeprefix('torch.')}: {min(runs):.2f} s a keyframe", out)
    del unet
    release()


# ---------------------------------------------------------------------------- main


SECTIONS = {"sam2": bench_sam2, "cutie": bench_cutie, "segmenters": bench_segmenters, "unet": bench_unet}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=50, help="frames of the short clips (default 50)")
    p.add_argument("--long-frames", type=int, default=900, help="frames of the streamed 1080p clip")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats per figure; the best is kept")
    p.add_argument("--skip", nargs="*", default=[], choices=list(SECTIONS), help="sections to leave out")
    p.add_argument("--out", type=Path, help="also write the figures to this file")
    p.add_argument("--sam2-sizes", nargs="+", default=["tiny", "large"], choices=list(SAM2_CONFIGS),
                   help="SAM 2.1 models to time; the last one also does 1080p and the segmenter")
    p.add_argument("--dry-run-on-cpu", dest="device", action="store_const", const="cpu", default="cuda",
                   help="run the plumbing on the CPU (use tiny --frames; the figures mean nothing)")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench_gpu: torch is not installed", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: needs a CUDA GPU; this torch sees none", file=sys.stderr)
        return 2
    out = open(args.out, "w") if args.out else None
    try:
        gpu = torch.cuda.get_device_name() if args.device == "cuda" else "none (dry run on the CPU)"
        say(f"GPU: {gpu}, torch {torch.__version__}, "
            f"{os.cpu_count()} CPU threads; random weights at full size", out)
        with tempfile.TemporaryDirectory(prefix="tam-bench-gpu-") as tmp:
            for name, section in SECTIONS.items():
                if name in args.skip:
                    continue
                t0 = time.perf_counter()
                try:
                    section(args, Path(tmp), out)
                except Exception as exc:  # one section failing must not hide the others' figures
                    say(f"{name}: FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", out)
                say(f"({name} took {time.perf_counter() - t0:.0f} s)", out)
                release()
    finally:
        if out is not None:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
