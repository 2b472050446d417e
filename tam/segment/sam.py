"""Segment Anything (ViT-B/L/H) as a :class:`Segmenter`, from a local checkpoint.

The model is built with ``segment_anything``'s own builder (random weights), then
our checkpoint is loaded into it with strict keys (:func:`tam.weights.load_into`).
``set_image`` runs the image encoder and returns the embedding as the image state
(:mod:`tam.segment.sam_base`); every click on that state costs only the small
prompt decoder.

torch and segment_anything are imported in ``load``, never at module import.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tam import weights
from tam.errors import BackendError
from tam.segment.sam_base import SamFamilySegmenter, SamImageState

MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
# Encoder width of each official model, to tell them apart from a checkpoint alone.
_WIDTH_TO_TYPE = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}


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


class SamSegmenter(SamFamilySegmenter):
    """Click/box/mask prompts to a mask with Segment Anything."""

    name = "sam"
    PACKAGES = ("torch", "torchvision", "segment_anything")
    INSTALL = "torch, torchvision and segment-anything (pip install segment-anything)"
    FAMILY, LABEL, DEFAULT_CHECKPOINT = "sam", "SAM", "sam-vit-b"

    def __init__(self, model_type: str | None = None, checkpoint: str | Path | None = None,
                 device: str | None = None):
        super().__init__()
        self.config = SamConfig(normalize_model_type(model_type), None if checkpoint is None else str(checkpoint),
                                device)
        self.checkpoint, self.model_type = self._resolve(self.config)

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

    # ------------------------------------------------------------------ hooks

    def _build(self):
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
        return SamPredictor(model)

    def _embed(self, predictor, image: np.ndarray) -> None:
        predictor.set_image(image, image_format="RGB")

    def _state_of(self, predictor, hw: tuple[int, int]) -> SamImageState:
        return SamImageState(predictor.features, tuple(hw), tuple(predictor.input_size), id(self))

    def _restore(self, predictor, state: SamImageState) -> None:
        predictor.reset_image()
        predictor.features, predictor.original_size, predictor.input_size = state.features, state.hw, state.input_hw
        predictor.is_image_set = True

    @property
    def low_res_size(self) -> int:
        """Side of the low-resolution logits (256 for the official models)."""
        self.load()
        return 4 * self.model.prompt_encoder.image_embedding_size[0]

    def _mask_to_low_res(self, state: SamImageState, mask: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        # Same geometry as the image: longest side resized to the encoder size, padded
        # bottom/right to a square, then taken down to the logits' resolution.
        side = self.low_res_size
        ih, iw = state.input_hw
        size = self.model.image_encoder.img_size
        t = torch.from_numpy(mask.astype(np.float32))[None, None]
        t = F.interpolate(t, size=(ih, iw), mode="bilinear", align_corners=False)
        t = F.pad(t, (0, size - iw, 0, size - ih))
        return F.interpolate(t, size=(side, side), mode="area")[0].numpy()


def _infer_model_type(state: dict, source) -> str:
    pos = state.get("image_encoder.pos_embed")
    width = None if pos is None else int(pos.shape[-1])
    if width not in _WIDTH_TO_TYPE:
        raise BackendError(f"cannot tell which SAM model {source} holds; pass model_type (vit_b, vit_l or vit_h)")
    return _WIDTH_TO_TYPE[width]


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()
