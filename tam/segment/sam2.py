"""SAM 2.1 image predictor as a :class:`Segmenter`, from a local checkpoint.

The model comes from ``sam2.build_sam.build_sam2(config, ckpt_path=None)`` (random
weights from the package's own hydra config), and our checkpoint is loaded into it
with strict keys. As with :mod:`tam.segment.sam`, the image features of the last
few frames are cached, so each click only runs the prompt encoder and decoder.

torch and sam2 are imported in :meth:`Sam2Segmenter.load`, never at module import.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tam import weights
from tam.errors import BackendError
from tam.neural import (
    LRU, MASK_LOGIT, best_result, check_image, checkpoint_problem, earlier_logits, image_digest, prompt_arrays,
)
from tam.segment.base import Prompt, Segmenter, SegmentResult

# Hiera trunk width and depth of each official SAM 2.1 checkpoint.
_TRUNK_TO_MODEL = {(96, 12): "sam2.1-tiny", (96, 16): "sam2.1-small",
                   (112, 24): "sam2.1-base-plus", (144, 48): "sam2.1-large"}
_SHORT = {"t": "tiny", "s": "small", "b+": "base-plus", "b": "base-plus", "base_plus": "base-plus",
          "l": "large"}


def normalize_model(model: str | None) -> str | None:
    """Accept "sam2.1-tiny", "tiny", "t", "base_plus", "b+"; None stays None."""
    if model is None:
        return None
    m = str(model).strip().lower()
    if m in weights.MANIFEST:
        return m
    m = m.removeprefix("sam2.1-").removeprefix("sam2.1_").removeprefix("hiera_")
    return "sam2.1-" + _SHORT.get(m, m.replace("_", "-"))


@dataclass(frozen=True)
class Sam2Config:
    """What every SAM 2 backend (segmenter and tracker) needs to build its model."""

    model: str | None = None  # a manifest name (sam2.1-tiny ...); None: from the checkpoint or installed
    checkpoint: str | None = None  # a file; None: the cached official checkpoint of ``model``
    device: str | None = None  # None/"auto": CUDA when present, else CPU
    config: str | None = None  # sam2 hydra config name; None: the model's own
    overrides: tuple[str, ...] = ()  # extra hydra overrides ("++model.image_size=512")


def resolve_sam2(cfg: Sam2Config) -> tuple[Path, str | None]:
    """(checkpoint file, hydra config name or None to read it from the checkpoint)."""
    if cfg.checkpoint is not None:
        p = Path(cfg.checkpoint).expanduser()
        if not p.is_file():
            raise BackendError(f"SAM 2 checkpoint {p} does not exist")
        if cfg.config is not None:
            return p, cfg.config
        return p, None if cfg.model is None else _manifest_entry(cfg.model).arch
    if cfg.model is not None:
        entry = _manifest_entry(cfg.model)
        return weights.path(entry), cfg.config or entry.arch
    have = weights.installed("sam2")
    if not have:
        raise BackendError("no SAM 2.1 checkpoint installed; get one with: "
                           "python -m tam weights download sam2.1-tiny")
    import torch

    # Smallest on CPU (interactive speed), largest on a GPU (quality).
    entry = weights.get(have[-1] if torch.cuda.is_available() else have[0])
    return weights.path(entry), cfg.config or entry.arch


def _manifest_entry(model: str) -> weights.Checkpoint:
    entry = weights.MANIFEST.get(model)
    if entry is None or entry.family != "sam2":
        raise BackendError(f"unknown SAM 2 model {model!r} (known: {', '.join(weights.names('sam2'))})")
    return entry


def infer_config(state: dict, source) -> str:
    """The hydra config of an official SAM 2.1 checkpoint, from its trunk's shape."""
    w = state.get("image_encoder.trunk.patch_embed.proj.weight")
    blocks = {k.split(".")[3] for k in state if k.startswith("image_encoder.trunk.blocks.")}
    name = None if w is None else _TRUNK_TO_MODEL.get((int(w.shape[0]), len(blocks)))
    if name is None:
        raise BackendError(f"cannot tell which SAM 2.1 model {source} holds; pass its config "
                           "(e.g. configs/sam2.1/sam2.1_hiera_t.yaml)")
    return weights.MANIFEST[name].arch


def build_sam2_model(cfg: Sam2Config, checkpoint: Path, config: str | None, *, video: bool):
    """Build through sam2's own builder (random weights), then load ``checkpoint`` strictly."""
    from sam2.build_sam import build_sam2, build_sam2_video_predictor

    state = weights.load_state_dict(checkpoint)
    config = config or infer_config(state, checkpoint)
    builder = build_sam2_video_predictor if video else build_sam2
    try:
        model = builder(config, ckpt_path=None, device="cpu", hydra_overrides_extra=list(cfg.overrides))
    except Exception as exc:  # hydra: unknown config name or bad override
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BackendError(f"cannot build SAM 2 from config {config!r}: {first[:200]}") from exc
    weights.load_into(model, state, source=str(checkpoint))
    return model


class Sam2Segmenter(Segmenter):
    """Click/box/mask prompts to a mask with the SAM 2.1 image predictor."""

    name = "sam2"

    def __init__(self, model: str | None = None, checkpoint: str | Path | None = None,
                 device: str | None = None, config: str | None = None,
                 overrides: tuple[str, ...] | list[str] = (), cache_size: int = 4):
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.config = Sam2Config(normalize_model(model), None if checkpoint is None else str(checkpoint),
                                 device, config, tuple(overrides))
        self.checkpoint, self._config_name = resolve_sam2(self.config)
        self.model = None
        self._predictor = None
        self._device = None
        self._cache = LRU(cache_size)
        self._current = None
        self._hw = None

    @classmethod
    def is_available(cls, checkpoint: str | Path | None = None) -> bool:
        return not cls.unavailable_reason(checkpoint)

    @classmethod
    def unavailable_reason(cls, checkpoint: str | Path | None = None) -> str:
        return checkpoint_problem(("torch", "torchvision", "sam2"), "torch, torchvision and sam2 (pip install sam2)", "sam2", "SAM 2.1", "sam2.1-tiny", checkpoint)

    def load(self):
        if self._predictor is not None:
            return self._predictor
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        from tam.neural import pick_device

        device = pick_device(self.config.device)
        model = build_sam2_model(self.config, self.checkpoint, self._config_name, video=False)
        model.to(device).eval()
        with warnings.catch_warnings():  # torch.jit.script deprecation inside SAM2Transforms
            warnings.simplefilter("ignore", FutureWarning)
            predictor = SAM2ImagePredictor(model)
        s = model.image_size
        # The predictor assumes a 1024 input; feature sizes follow the model's own size.
        predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        self.model, self._predictor, self._device = model, predictor, device
        return predictor

    def set_image(self, image: np.ndarray) -> None:
        check_image(image)
        predictor = self.load()
        key = image_digest(image)
        if key == self._current:
            return
        cached = self._cache.get(key)
        if cached is None:
            from tam.neural import autocast

            with autocast(self._device):
                predictor.set_image(image)
            cached = (predictor._features, predictor._orig_hw)
            self._cache.put(key, cached)
        else:
            predictor.reset_predictor()
            predictor._features, predictor._orig_hw = cached
            predictor._is_image_set = True
        self._current = key
        self._hw = image.shape[:2]

    def predict(self, prompt: Prompt, mask_input: np.ndarray | None = None) -> SegmentResult:
        if self._current is None:
            raise BackendError("call set_image before predict")
        import torch

        from tam.neural import autocast

        h, w = self._hw
        prompt.validate(w, h)
        points, labels, box, multimask = prompt_arrays(prompt)
        low = None if mask_input is None else self._mask_input(mask_input)
        with torch.inference_mode(), autocast(self._device):
            masks, scores, logits = self._predictor.predict(
                point_coords=points, point_labels=labels, box=box, mask_input=low,
                multimask_output=multimask,
            )
        return best_result(masks, scores, logits)

    @property
    def low_res_size(self) -> int:
        self.load()
        return self.model.image_size // 4

    def _mask_input(self, mask: np.ndarray) -> np.ndarray:
        """Previous logits (1xLxL or LxL floats) pass through; a full-size mask is converted."""
        import torch
        import torch.nn.functional as F

        side = self.low_res_size
        given = earlier_logits(mask, side, self._hw)
        if given is not None:
            return given
        m = np.asarray(mask)
        # SAM 2 resizes the whole frame to a square (no padding), so does the mask.
        t = torch.from_numpy((m > 0).astype(np.float32))[None, None]
        t = F.interpolate(t, size=(side, side), mode="area")
        return np.where(t[0].numpy() > 0.5, MASK_LOGIT, -MASK_LOGIT).astype(np.float32)
