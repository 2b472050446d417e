"""SAM 2.1 image predictor as a :class:`Segmenter`, from a local checkpoint.

The model comes from ``sam2.build_sam.build_sam2(config, ckpt_path=None)`` (random
weights from the package's own hydra config), and our checkpoint is loaded into it
with strict keys. As with :mod:`tam.segment.sam`, ``set_image`` returns the image
features as the image state (:mod:`tam.segment.sam_base`), so each click only runs
the prompt encoder and decoder.

torch and sam2 are imported in ``load``, never at module import.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tam import weights
from tam.errors import BackendError
from tam.segment.sam_base import SamFamilySegmenter, SamImageState

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


class Sam2Segmenter(SamFamilySegmenter):
    """Click/box/mask prompts to a mask with the SAM 2.1 image predictor."""

    name = "sam2"
    PACKAGES = ("torch", "torchvision", "sam2")
    INSTALL = "torch, torchvision and sam2 (pip install sam2)"
    FAMILY, LABEL, DEFAULT_CHECKPOINT = "sam2", "SAM 2.1", "sam2.1-tiny"

    def __init__(self, model: str | None = None, checkpoint: str | Path | None = None,
                 device: str | None = None, config: str | None = None,
                 overrides: tuple[str, ...] | list[str] = ()):
        super().__init__()
        self.config = Sam2Config(normalize_model(model), None if checkpoint is None else str(checkpoint),
                                 device, config, tuple(overrides))
        self.checkpoint, self._config_name = resolve_sam2(self.config)

    # ------------------------------------------------------------------ hooks

    def _build(self):
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
        self.model, self._device = model, device
        return predictor

    def _precision(self):
        from tam.neural import autocast

        return autocast(self._device)

    def _embed(self, predictor, image: np.ndarray) -> None:
        predictor.set_image(image)

    def _state_of(self, predictor, hw: tuple[int, int]) -> SamImageState:
        # SAM 2 resizes the whole frame to the model's square: no padding to undo
        return SamImageState(predictor._features, tuple(hw), tuple(hw), id(self))

    def _restore(self, predictor, state: SamImageState) -> None:
        predictor.reset_predictor()
        predictor._features, predictor._orig_hw = state.features, [state.hw]
        predictor._is_image_set = True

    @property
    def low_res_size(self) -> int:
        self.load()
        return self.model.image_size // 4

    def _mask_to_low_res(self, state: SamImageState, mask: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        # SAM 2 resizes the whole frame to a square (no padding), so does the mask.
        side = self.low_res_size
        t = torch.from_numpy(mask.astype(np.float32))[None, None]
        return F.interpolate(t, size=(side, side), mode="area")[0].numpy()
