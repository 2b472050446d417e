"""Shared helpers for the neural backends: device choice, precision, prompts and answers.

Everything here imports torch lazily (inside functions), so importing this module
costs nothing on the classical path.
"""
from __future__ import annotations

import contextlib

import numpy as np

from tam.errors import BackendError


MASK_LOGIT = 10.0  # a given mask fed back as confident low-resolution logits: +10 inside, -10 out


def prompt_arrays(prompt):
    """``(points, labels, box, multimask)`` in the arrays the SAM predictors take.

    One click is ambiguous (part, object, group): ask for several masks then and
    keep the one the model rates best; more prompts pin it down to one mask.
    """
    points = labels = box = None
    if len(prompt.points):
        points = np.asarray(prompt.points, np.float32).reshape(-1, 2)
        labels = np.asarray(prompt.labels, np.int32).reshape(-1)
    if prompt.box is not None:
        box = np.asarray(prompt.box, np.float32).reshape(4)
    multimask = box is None and points is not None and len(points) == 1
    return points, labels, box, multimask


def best_result(masks, scores, logits):
    """The predictor's best-scored mask as a SegmentResult, its logits kept to feed back."""
    from tam.segment.base import SegmentResult

    best = int(np.argmax(scores))
    return SegmentResult(
        mask=np.asarray(masks[best] > 0, dtype=bool),
        score=float(np.clip(scores[best], 0.0, 1.0)),
        logits=np.asarray(logits[best: best + 1], dtype=np.float32),
    )


def check_image(image) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("image must be an RGB uint8 array of shape HxWx3")


def earlier_logits(mask, side: int, hw) -> np.ndarray | None:
    """``mask`` as 1xLxL logits when it already is low-resolution logits; None when it is a
    mask of the image's size (the caller converts it); BackendError for anything else."""
    m = np.asarray(mask)
    if m.dtype.kind == "f" and m.shape[-2:] == (side, side) and m.ndim in (2, 3):
        return m.reshape(1, side, side).astype(np.float32)
    if m.shape != tuple(hw):
        raise BackendError(f"mask_input must be {side}x{side} logits or a mask of the image size "
                           f"{hw[1]}x{hw[0]}, got shape {m.shape}")
    return None


def checkpoint_problem(packages: tuple[str, ...], install: str, family: str, label: str, default: str,
                       checkpoint=None) -> str:
    """Why a checkpoint-based backend cannot run here, in one line ('' when it can).

    ``family`` is the weights family (``sam``, ``sam2``), ``label`` its name for
    people, ``default`` the checkpoint that ``weights download`` should fetch.
    """
    from pathlib import Path

    from tam import weights
    from tam.registry import packages_present

    if not packages_present(*packages):
        return f"the {family} backend needs {install}"
    if checkpoint is not None:
        return "" if Path(checkpoint).is_file() else f"{label} checkpoint {checkpoint} does not exist"
    if not weights.installed(family):
        return (f"no {label} checkpoint installed: run python -m tam weights download {default} "
                "(or pass --checkpoint FILE)")
    return ""


def pick_device(requested: str | None = None):
    """A ``torch.device``: the requested one, else CUDA when present, else CPU."""
    import torch

    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as exc:
        raise BackendError(f"unknown device {requested!r} (use auto, cpu or cuda[:N])") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device {requested!r} asked for, but this torch sees no CUDA GPU")
    if device.type not in ("cpu", "cuda"):
        raise BackendError(f"device {requested!r} is not supported (use auto, cpu or cuda[:N])")
    return device


def autocast(device):
    """bfloat16 autocast on CUDA GPUs that support it; plain float32 elsewhere (CPU)."""
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
