"""Neural tier: Stable Diffusion fills the pixels that no frame ever shows.

Flow-guided completion (``inpaint.flow_guided``) copies every hole pixel that
some other frame reveals. What is left (background hidden for the whole clip)
must be invented. :class:`DiffusionKeyframeFiller` invents it with a
Stable Diffusion inpainting model read from a local diffusers-format directory;
the flow-guided inpainter calls it on a few keyframes only and propagates the
result, so the invented texture does not flicker from frame to frame.

The filler works on a crop: a square-ish context box around the hole, resized
to the model's working size, run through the pipeline, resized back. Only hole
pixels are written into the frame; a feathered colour correction, measured on
a ring just outside the hole, hides the seam that the VAE round trip leaves.

torch, diffusers and transformers are imported only when a model is loaded.
"""
from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields as dataclass_fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inpaint.base import Inpainter
from tam.errors import BackendError, MaskError
from tam.frames import FrameSequence
from tam.neural import pick_device

MODEL_ENV = "TAM_INPAINT_MODEL"
REQUIRED_MODULES = ("torch", "diffusers", "transformers")
HOW_TO_GET_A_MODEL = (
    "download a diffusers-format Stable Diffusion inpainting model directory "
    "(for example stabilityai/stable-diffusion-2-inpainting, the folder holding model_index.json) "
    f"and point {MODEL_ENV} or --model-dir at it"
)

DEFAULT_PROMPT = (
    "empty background, seamless continuation of the surrounding scene, "
    "natural lighting, consistent texture, high quality photo"
)
DEFAULT_NEGATIVE_PROMPT = (
    "person, people, animal, vehicle, object, text, watermark, logo, frame, "
    "blurry, distorted, artifacts, duplicate"
)
_DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DiffusionConfig:
    """Settings of the Stable Diffusion keyframe filler.

    ``model_dir`` None means the directory named by ``$TAM_INPAINT_MODEL``.
    ``working_size`` None means the model's own sample size (512 for SD 2 inpainting).
    ``context`` is the margin added on each side of the hole's bounding box, as a
    fraction of its longer side; ``min_context`` is the smallest crop side in pixels
    (small holes still get enough surroundings). ``feather`` is the width in pixels,
    at the frame's resolution, of the colour correction that hides the seam. Holes of
    fewer than ``small_hole`` pixels (specks left by the flow) are filled by OpenCV's
    Telea method instead: a model run would cost seconds for an invisible difference.
    """

    model_dir: str | None = None
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    seed: int = 0
    steps: int = 25
    guidance: float = 6.0
    device: str = "auto"
    working_size: int | None = None
    context: float = 0.5
    min_context: int = 128
    feather: int = 8
    small_hole: int = 64

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        base = self.device.split(":", 1)[0]
        if base not in _DEVICES or (":" in self.device and not self.device.split(":", 1)[1].isdigit()):
            raise ValueError(f"device must be one of auto, cpu, cuda, cuda:N; got {self.device!r}")
        if self.working_size is not None and (self.working_size < 64 or self.working_size % 8):
            raise ValueError(f"working_size must be a multiple of 8 and >= 64, got {self.working_size}")
        if self.context < 0:
            raise ValueError(f"context must be >= 0, got {self.context}")
        if self.min_context < 8:
            raise ValueError(f"min_context must be >= 8, got {self.min_context}")
        if self.feather < 0:
            raise ValueError(f"feather must be >= 0, got {self.feather}")
        if self.small_hole < 0:
            raise ValueError(f"small_hole must be >= 0, got {self.small_hole}")


def modules_missing() -> list[str]:
    """The packages the neural tier needs that are not importable here (nothing is imported)."""
    missing = []
    for name in REQUIRED_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


def model_dir_problem(model_dir: str | os.PathLike | None) -> str:
    """Why ``model_dir`` (None: ``$TAM_INPAINT_MODEL``) cannot serve as an inpainting model; '' if it can."""
    if model_dir is None or str(model_dir) == "":
        model_dir = os.environ.get(MODEL_ENV) or None
        if model_dir is None:
            return f"no Stable Diffusion inpainting model configured: {HOW_TO_GET_A_MODEL}"
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        return f"inpainting model directory {str(path)!r} does not exist: {HOW_TO_GET_A_MODEL}"
    index = path / "model_index.json"
    if not index.is_file():
        return f"{str(path)!r} is not a diffusers model directory (no model_index.json): {HOW_TO_GET_A_MODEL}"
    unet_config = path / "unet" / "config.json"
    try:
        json.loads(index.read_text())
        unet = json.loads(unet_config.read_text())
    except (OSError, ValueError) as exc:
        return f"{str(path)!r} is not a readable diffusers model ({type(exc).__name__}: {exc})".splitlines()[0]
    if not isinstance(unet, dict) or unet.get("in_channels") != 9:
        channels = unet.get("in_channels") if isinstance(unet, dict) else None
        return (f"{str(path)!r} is not an inpainting model (its UNet takes {channels} "
                f"input channels, an inpainting UNet takes 9): {HOW_TO_GET_A_MODEL}")
    return ""


def resolve_model_dir(model_dir: str | os.PathLike | None) -> Path:
    """The model directory to load, or a one-line :class:`BackendError` saying how to get one."""
    problem = model_dir_problem(model_dir)
    if problem:
        raise BackendError(problem)
    return Path(model_dir or os.environ[MODEL_ENV]).expanduser()


def weights_variant(model_dir: Path) -> str | None:
    """'fp16' when the UNet's weights exist only as the fp16 variant (``*.fp16.safetensors``)."""
    unet = model_dir / "unet"
    names = [p.name for p in unet.iterdir()] if unet.is_dir() else []
    weights = [n for n in names if n.startswith("diffusion_pytorch_model") and n.endswith((".safetensors", ".bin"))]
    if weights and all(".fp16" in n for n in weights):
        return "fp16"
    return None


def _dtype_keyword() -> str:
    """``from_pretrained``'s name for the weights' dtype: newer diffusers renamed ``torch_dtype``
    to ``dtype`` (the old name warns), older releases know only ``torch_dtype``."""
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence diffusers' and transformers' loading chatter and progress bars, then restore them."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    saved = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled())
             for lib in (diffusers_logging, transformers_logging)]
    for lib, _, _ in saved:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, verbosity, bars in saved:
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()


# --- geometry: the context box and the feathered paste (numpy / OpenCV only) ---------------


def context_box(hole: np.ndarray, context: float, min_side: int) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: a square-ish box around every hole pixel, inside the image.

    The box is the hole's bounding box grown by ``context`` times its longer side on
    each side, at least ``min_side`` pixels wide, centred on the hole and shifted
    (never shrunk below the hole) to stay inside the image.
    """
    height, width = hole.shape
    ys, xs = np.nonzero(hole)
    by0, by1, bx0, bx1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    extent = max(by1 - by0, bx1 - bx0)
    side = max(int(round(extent * (1.0 + 2.0 * context))), min_side)

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        size = min(max(side, hi - lo), limit)
        start = (lo + hi - size) // 2
        start = min(max(start, 0), limit - size)
        return start, start + size

    y0, y1 = span(by0, by1, height)
    x0, x1 = span(bx0, bx1, width)
    return y0, y1, x0, x1


def working_shape(height: int, width: int, size: int, multiple: int) -> tuple[int, int]:
    """Scale ``height x width`` so the longer side is ``size``; both sides a multiple of ``multiple``."""
    scale = size / max(height, width)

    def snap(n: int) -> int:
        return max(multiple, int(round(n * scale / multiple)) * multiple)

    return snap(height), snap(width)


def feathered_paste(original: np.ndarray, generated: np.ndarray, hole: np.ndarray,
                    feather: int) -> np.ndarray:
    """Copy of ``original`` with its ``hole`` pixels taken from ``generated`` (same size).

    The generated colours are corrected near the hole's edge by the mismatch measured
    on a ring of width ``feather`` just outside the hole, fading with the distance into
    the hole, so no seam shows where the fill meets the untouched frame.
    """
    out = original.copy()
    if not hole.any():
        return out
    fill = generated.astype(np.float32)
    if feather > 0 and not hole.all():
        hole8 = hole.astype(np.uint8)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * feather + 1, 2 * feather + 1))
        ring = (cv2.dilate(hole8, kernel) > 0) & ~hole
        if ring.any():
            residual = (original.astype(np.float32) - fill) * ring[..., None]
            weight = ring.astype(np.float32)
            sigma = float(feather)
            num = cv2.GaussianBlur(residual, (0, 0), sigma)
            den = cv2.GaussianBlur(weight, (0, 0), sigma)
            # the correction fades into the hole; past the blur's reach it is zero
            reach = den > 1e-3
            correction = np.zeros_like(num)
            correction[reach] = num[reach] / den[reach][:, None]
            distance = cv2.distanceTransform(hole8, cv2.DIST_L2, 3)
            fade = np.exp(-distance / sigma) * reach
            fill = fill + correction * fade[..., None]
    out[hole] = np.clip(np.rint(fill[hole]), 0, 255).astype(np.uint8)
    return out


# --- the model -------------------------------------------------------------------------------


class DiffusionKeyframeFiller:
    """``filler(rgb, hole) -> rgb``: Stable Diffusion inpainting of one frame's hole.

    The pipeline loads on first use (or :meth:`load`); one filler may be shared by
    several inpainters, and calls are serialised. Each call seeds its own generator
    with ``config.seed``, so the same frame and hole always give the same fill.
    """

    def __init__(self, config: DiffusionConfig | None = None, **fields: Any):
        config = config or DiffusionConfig()
        self.config = replace(config, **fields) if fields else config
        self.model_dir = resolve_model_dir(self.config.model_dir)
        self._pipe: Any = None
        self._device: str = ""
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        """The torch device the pipeline runs on ('' until loaded)."""
        return self._device

    def load(self) -> None:
        """Load the pipeline from the local model directory (never from the network)."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._pipe is not None:
            return
        missing = modules_missing()
        if missing:
            raise BackendError(f"the diffusion inpainter needs the Python package(s) {', '.join(missing)}")
        import torch
        from diffusers import StableDiffusionInpaintPipeline

        device = str(pick_device(self.config.device))
        dtype = torch.float16 if device.startswith("cuda") else torch.float32  # half precision on GPUs only
        try:
            with _quiet_loading():
                pipe = StableDiffusionInpaintPipeline.from_pretrained(
                    str(self.model_dir), local_files_only=True, variant=weights_variant(self.model_dir),
                    safety_checker=None, requires_safety_checker=False, **{_dtype_keyword(): dtype},
                )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendError(f"cannot load the inpainting model from {str(self.model_dir)!r}: {first}") from exc
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._pipe, self._device = pipe, device

    def _working_size(self) -> int:
        if self.config.working_size is not None:
            return self.config.working_size
        return int(self._pipe.unet.config.sample_size) * int(self._pipe.vae_scale_factor)

    def _size_multiple(self) -> int:
        # latents must survive every UNet downsampling without rounding
        levels = len(self._pipe.unet.config.block_out_channels) - 1
        return max(8, int(self._pipe.vae_scale_factor) * 2 ** levels)

    def __call__(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 HxWx3 frame, got {rgb.dtype} {rgb.shape}")
        hole = np.asarray(hole, dtype=bool)
        if hole.shape != rgb.shape[:2]:
            raise MaskError(f"hole mask is {hole.shape[1]}x{hole.shape[0]}, frame is {rgb.shape[1]}x{rgb.shape[0]}")
        area = int(np.count_nonzero(hole))
        if area == 0:
            return rgb.copy()
        if area < self.config.small_hole:
            filled = cv2.inpaint(rgb, hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
            out = rgb.copy()
            out[hole] = filled[hole]
            return out
        with self._lock:
            self._load_locked()
            return self._fill(rgb, hole)

    def _fill(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import torch
        from PIL import Image

        cfg = self.config
        y0, y1, x0, x1 = context_box(hole, cfg.context, cfg.min_context)
        crop, crop_hole = rgb[y0:y1, x0:x1], hole[y0:y1, x0:x1]
        ch, cw = crop_hole.shape
        wh, ww = working_shape(ch, cw, self._working_size(), self._size_multiple())

        image = cv2.resize(crop, (ww, wh), interpolation=cv2.INTER_AREA if wh < ch else cv2.INTER_CUBIC)
        # any coverage counts as hole, then one latent cell more so thin parts survive the
        # pipeline's own downsampling of the mask to latent resolution
        mask = cv2.resize(crop_hole.astype(np.float32), (ww, wh), interpolation=cv2.INTER_AREA) > 0
        grow = int(self._pipe.vae_scale_factor)
        mask = cv2.dilate(mask.astype(np.uint8) * 255, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))

        generator = torch.Generator(device=self._device).manual_seed(cfg.seed)
        try:
            result = self._pipe(
                prompt=cfg.prompt, negative_prompt=cfg.negative_prompt or None,
                image=Image.fromarray(image), mask_image=Image.fromarray(mask),
                height=wh, width=ww, num_inference_steps=cfg.steps, guidance_scale=cfg.guidance,
                generator=generator, output_type="np",
            )
        except torch.cuda.OutOfMemoryError as exc:
            raise BackendError(
                f"out of GPU memory inpainting a {ww}x{wh} crop: lower the working size or use --device cpu"
            ) from exc
        fill = np.clip(np.rint(np.asarray(result.images[0], dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
        fill = cv2.resize(fill, (cw, ch), interpolation=cv2.INTER_AREA if ch < wh else cv2.INTER_CUBIC)

        out = rgb.copy()
        out[y0:y1, x0:x1] = feathered_paste(crop, fill, crop_hole, cfg.feather)
        return out


# --- the backend -----------------------------------------------------------------------------

_CONFIG_FIELDS = frozenset(f.name for f in dataclass_fields(DiffusionConfig))


class DiffusionInpainter(Inpainter):
    """Flow-guided video completion whose never-seen pixels come from Stable Diffusion.

    ``DiffusionInpainter(model_dir=..., prompt=..., seed=..., radius=...)``: keyword
    arguments naming :class:`DiffusionConfig` fields configure the keyframe filler,
    those naming ``inpaint.flow_guided.FlowGuidedConfig`` fields configure the
    flow-guided part. ``config`` / ``flow`` pass whole configs instead;
    ``keyframe_filler`` lets a caller share one loaded filler between inpainters.
    The model itself loads on the first keyframe that needs it.
    """

    name = "diffusion"

    def __init__(self, config: DiffusionConfig | None = None, *, flow: Any = None,
                 keyframe_filler: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                 **options: Any):
        from inpaint.flow_guided import FlowGuidedConfig, FlowGuidedInpainter

        flow_names = {f.name for f in dataclass_fields(FlowGuidedConfig)}
        unknown = set(options) - _CONFIG_FIELDS - flow_names
        if unknown:
            raise TypeError(f"unknown diffusion inpainter option(s): {', '.join(sorted(unknown))}")
        mine = {k: v for k, v in options.items() if k in _CONFIG_FIELDS}
        config = config or DiffusionConfig()
        self.config = replace(config, **mine) if mine else config

        if flow is None:
            flow_options = {}
        elif isinstance(flow, FlowGuidedConfig):
            flow_options = {f.name: getattr(flow, f.name) for f in dataclass_fields(FlowGuidedConfig)}
        else:
            flow_options = dict(flow)
        flow_options.update({k: v for k, v in options.items() if k in flow_names})

        self.keyframe_filler = keyframe_filler or DiffusionKeyframeFiller(self.config)
        self._flow = FlowGuidedInpainter(keyframe_filler=self.keyframe_filler, **flow_options)

    @property
    def flow_config(self) -> Any:
        """The ``FlowGuidedConfig`` of the flow-guided part."""
        return self._flow.config

    @classmethod
    def is_available(cls, model_dir: str | None = None) -> bool:
        """The packages import and a model directory is there (``model_dir``, else ``$TAM_INPAINT_MODEL``).

        Nothing heavy is imported: this only looks for the packages and reads two JSON files.
        """
        return not modules_missing() and not model_dir_problem(model_dir)

    @classmethod
    def unavailable_reason(cls, model_dir: str | None = None) -> str:
        missing = modules_missing()
        if missing:
            return (f"the diffusion inpainter needs the Python package(s) {', '.join(missing)} "
                    "(pip install torch diffusers transformers)")
        return model_dir_problem(model_dir)

    def inpaint(self, frames: FrameSequence, masks: FrameSequence,
                indices: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        return self._flow.inpaint(frames, masks, indices)

    def preview(self, frames: FrameSequence, masks: FrameSequence, index: int,
                radius: int | None = None) -> np.ndarray:
        """Frame ``index`` filled from the frames within ``radius`` of it (see FlowGuidedInpainter)."""
        return self._flow.preview(frames, masks, index, radius)
