"""Segment Anything (ViT-B/L/H) as a :class:`Segmenter`, from a local checkpoint.

The model is built with ``segment_anything``'s own builder (random weights), then
our checkpoint is loaded into it with strict keys (:func:`tam.weights.load_into`).
``set_image`` runs the image encoder once per frame; embeddings of the last few
frames are kept (keyed by the frame's content), so more clicks on the same frame,
or going back to a recent frame, cost only the small prompt decoder.

torch and segment_anything are imported in :meth:`SamSegmenter.load`, never at
module import.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tam import weights
from tam.errors import BackendError
from tam.neural import (
    LRU, MASK_LOGIT, best_result, check_image, checkpoint_problem, earlier_logits, image_digest, prompt_arrays,
)
from tam.segment.base import Prompt, Segmenter, SegmentResult

MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
# Encoder width of each official model, to tell them apart from a checkpoint alone.
_WIDTH_TO_TYPE = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}
# A given binary mask becomes low-resolution logits of +/- this value.


def normalize_model_type(model_type: str | None) -> str | None:
    """Accept "vit_b", "vit-b", "sam-vit-b", "B"; None stays None."""
    if model_type is None:
        return None
    t = str(model_type).strip().lower().replace("-", "_")
    t = t[4:] if t.startswith("sam_") else t
    if t in ("b", "l", "h"):
        t = "vit_" + t
    return t


def checkpoint_name(model_type: str) -> str:
    return "sam-" + model_type.replace("_", "-")


@dataclass(frozen=True)
class SamConfig:
    model_type: str | None = None  # vit_b / vit_l / vit_h; None: from the checkpoint or what is installed
    checkpoint: str | None = None  # a file; None: the cached official checkpoint of model_type
    device: str | None = None  # None/"auto": CUDA when present, else CPU
    cache_size: int = 4  # image embeddings kept (one per recently used frame)

    def __post_init__(self):
        if self.cache_size < 1:
            raise ValueError("cache_size must be at least 1")


class SamSegmenter(Segmenter):
    """Click/box/mask prompts to a mask with Segment Anything."""

    name = "sam"

    def __init__(self, model_type: str | None = None, checkpoint: str | Path | None = None,
                 device: str | None = None, cache_size: int = 4):
        self.config = SamConfig(normalize_model_type(model_type),
                                None if checkpoint is None else str(checkpoint), device, cache_size)
        self.checkpoint, self.model_type = self._resolve(self.config)
        self.model = None  # the torch module once loaded
        self._predictor = None
        self._device = None
        self._cache = LRU(cache_size)
        self._current = None  # digest of the image set last
        self._hw = None

    # ------------------------------------------------------------------ availability

    @classmethod
    def is_available(cls, checkpoint: str | Path | None = None) -> bool:
        return not cls.unavailable_reason(checkpoint)

    @classmethod
    def unavailable_reason(cls, checkpoint: str | Path | None = None) -> str:
        return checkpoint_problem(("torch", "torchvision", "segment_anything"), "torch, torchvision and segment-anything (pip install segment-anything)", "sam", "SAM", "sam-vit-b", checkpoint)

    @staticmethod
    def _resolve(cfg: SamConfig) -> tuple[Path, str | None]:
        if cfg.checkpoint is not None:
            p = Path(cfg.checkpoint).expanduser()
            if not p.is_file():
                raise BackendError(f"SAM checkpoint {p} does not exist")
            return p, cfg.model_type  # None: read from the checkpoint in load()
        if cfg.model_type is not None:
            if cfg.model_type not in MODEL_TYPES:
                raise BackendError(f"unknown SAM model type {cfg.model_type!r} (use vit_b, vit_l or vit_h)")
            return weights.path(checkpoint_name(cfg.model_type)), cfg.model_type
        have = [t for t in MODEL_TYPES if weights.is_installed(checkpoint_name(t))]
        if not have:
            raise BackendError("no SAM checkpoint installed; get one with: "
                               "python -m tam weights download sam-vit-b")
        # Smallest on CPU (interactive speed), largest on a GPU (quality).
        t = have[-1] if _cuda_visible() else have[0]
        return weights.path(checkpoint_name(t)), t

    # ------------------------------------------------------------------ model

    def load(self):
        """Build the model and load the checkpoint (once); returns the predictor."""
        if self._predictor is not None:
            return self._predictor
        from segment_anything import SamPredictor, sam_model_registry

        from tam.neural import pick_device

        state = weights.load_state_dict(self.checkpoint)
        model_type = self.model_type or _infer_model_type(state, self.checkpoint)
        if model_type not in sam_model_registry:
            raise BackendError(f"unknown SAM model type {model_type!r} (use vit_b, vit_l or vit_h)")
        device = pick_device(self.config.device)
        model = sam_model_registry[model_type](checkpoint=None)
        weights.load_into(model, state, source=str(self.checkpoint))
        del state
        model.to(device).eval()
        self.model, self.model_type, self._device = model, model_type, device
        self._predictor = SamPredictor(model)
        return self._predictor

    # ------------------------------------------------------------------ Segmenter

    def set_image(self, image: np.ndarray) -> None:
        check_image(image)
        predictor = self.load()
        key = image_digest(image)
        if key == self._current:
            return
        cached = self._cache.get(key)
        if cached is None:
            predictor.set_image(image, image_format="RGB")
            cached = (predictor.features, predictor.original_size, predictor.input_size)
            self._cache.put(key, cached)
        else:
            predictor.reset_image()
            predictor.features, predictor.original_size, predictor.input_size = cached
            predictor.is_image_set = True
        self._current = key
        self._hw = image.shape[:2]

    def predict(self, prompt: Prompt, mask_input: np.ndarray | None = None) -> SegmentResult:
        if self._current is None:
            raise BackendError("call set_image before predict")
        import torch

        h, w = self._hw
        prompt.validate(w, h)
        predictor = self._predictor
        points, labels, box, multimask = prompt_arrays(prompt)
        low = None if mask_input is None else self._mask_input(mask_input)
        with torch.inference_mode():
            masks, scores, logits = predictor.predict(
                point_coords=points, point_labels=labels, box=box, mask_input=low,
                multimask_output=multimask,
            )
        return best_result(masks, scores, logits)

    # ------------------------------------------------------------------ helpers

    @property
    def low_res_size(self) -> int:
        """Side of the low-resolution logits (256 for the official models)."""
        self.load()
        return 4 * self.model.prompt_encoder.image_embedding_size[0]

    def _mask_input(self, mask: np.ndarray) -> np.ndarray:
        """Previous logits (1xLxL or LxL floats) pass through; a full-size mask is converted."""
        import torch
        import torch.nn.functional as F

        side = self.low_res_size
        given = earlier_logits(mask, side, self._hw)
        if given is not None:
            return given
        m = np.asarray(mask)
        # Same geometry as the image: longest side resized to the encoder size, padded
        # bottom/right to a square, then taken down to the logits' resolution.
        ih, iw = self._predictor.input_size
        size = self.model.image_encoder.img_size
        t = torch.from_numpy((m > 0).astype(np.float32))[None, None]
        t = F.interpolate(t, size=(ih, iw), mode="bilinear", align_corners=False)
        t = F.pad(t, (0, size - iw, 0, size - ih))
        t = F.interpolate(t, size=(side, side), mode="area")
        return np.where(t[0].numpy() > 0.5, MASK_LOGIT, -MASK_LOGIT).astype(np.float32)


def _infer_model_type(state: dict, source) -> str:
    pos = state.get("image_encoder.pos_embed")
    width = None if pos is None else int(pos.shape[-1])
    if width not in _WIDTH_TO_TYPE:
        raise BackendError(f"cannot tell which SAM model {source} holds; pass model_type (vit_b, vit_l or vit_h)")
    return _WIDTH_TO_TYPE[width]


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()
