"""What the SAM and SAM 2 segmenters share: loading once, embedding, prompting.

A :class:`SamFamilySegmenter` owns its model (built and loaded once, under a
lock, then only read) and nothing per image: ``set_image`` runs the image
encoder on a private copy of the package's predictor and returns the features
as a :class:`SamImageState`; ``predict`` puts a state into another private copy
and runs the prompt encoder and decoder. The caller keeps the states it wants
to click on again (a studio session keeps a few), so concurrent sessions never
see each other's frames.

A subclass says how its package's predictor is built, how features go in and
out of it, how a full-size mask becomes the model's low-resolution logits, and
under which precision it runs. torch and the packages are imported in ``load``
and the methods it enables, never at module import.
"""
from __future__ import annotations

import contextlib
import copy
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from tam.errors import BackendError
from tam.neural import MASK_LOGIT, best_result, check_image, checkpoint_problem, earlier_logits, prompt_arrays
from tam.segment.base import Prompt, Segmenter, SegmentResult


@dataclass(frozen=True)
class SamImageState:
    """One frame prepared by a SAM-family segmenter (read-only once made)."""

    features: Any  # the encoder's output, in the form the package's predictor keeps it
    hw: tuple[int, int]  # the image's (height, width)
    input_hw: tuple[int, int]  # the image's size as resized for the encoder, before any padding
    owner: int  # id() of the segmenter that made it: a state is read only by its maker


class SamFamilySegmenter(Segmenter):
    """Click, box and mask prompts to a mask with a SAM-family image predictor."""

    PACKAGES: tuple[str, ...] = ()  # modules the backend needs
    INSTALL = ""  # how to get them, for the one-line reason
    FAMILY = ""  # the weights family (tam.weights)
    LABEL = ""  # the model's name for people
    DEFAULT_CHECKPOINT = ""  # what ``weights download`` should fetch

    def __init__(self):
        self.model = None  # the torch module once loaded
        self._predictor = None  # the package's predictor over it, holding no image: copied per call
        self._device = None
        self._load_lock = threading.Lock()

    # ------------------------------------------------------------------ availability

    @classmethod
    def is_available(cls, checkpoint=None) -> bool:
        return not cls.unavailable_reason(checkpoint)

    @classmethod
    def unavailable_reason(cls, checkpoint=None) -> str:
        return checkpoint_problem(cls.PACKAGES, cls.INSTALL, cls.FAMILY, cls.LABEL, cls.DEFAULT_CHECKPOINT,
                                  checkpoint)

    # ------------------------------------------------------------------ model

    def load(self):
        """Build the model and load the checkpoint (once, whoever asks first); returns the predictor."""
        with self._load_lock:
            if self._predictor is None:
                self._predictor = self._build()
        return self._predictor

    def _build(self):
        """Build and load the model; set ``model`` and ``_device``; return the package's predictor."""
        raise NotImplementedError

    # ------------------------------------------------------------------ Segmenter

    def set_image(self, image: np.ndarray) -> SamImageState:
        check_image(image)
        predictor = copy.copy(self.load())
        with self._precision():
            self._embed(predictor, image)
        return self._state_of(predictor, image.shape[:2])

    def predict(self, state: SamImageState, prompt: Prompt, mask_input: np.ndarray | None = None) -> SegmentResult:
        import torch

        if not isinstance(state, SamImageState) or state.owner != id(self):
            raise BackendError("predict takes the image state that this segmenter's set_image returned")
        h, w = state.hw
        prompt.validate(w, h)
        predictor = copy.copy(self.load())
        self._restore(predictor, state)
        points, labels, box, multimask = prompt_arrays(prompt)
        low = None if mask_input is None else self._mask_input(state, mask_input)
        with torch.inference_mode(), self._precision():
            masks, scores, logits = predictor.predict(
                point_coords=points, point_labels=labels, box=box, mask_input=low,
                multimask_output=multimask,
            )
        return best_result(masks, scores, logits)

    # ------------------------------------------------------------------ hooks

    def _precision(self):
        """The context the model runs in (a subclass may autocast)."""
        return contextlib.nullcontext()

    def _embed(self, predictor, image: np.ndarray) -> None:
        """Run the image encoder on ``image`` into ``predictor`` (a private copy)."""
        raise NotImplementedError

    def _state_of(self, predictor, hw: tuple[int, int]) -> SamImageState:
        """The state of the image ``predictor`` was just given."""
        raise NotImplementedError

    def _restore(self, predictor, state: SamImageState) -> None:
        """Put ``state`` into ``predictor`` (a private copy) as if its image had just been set."""
        raise NotImplementedError

    def _mask_to_low_res(self, state: SamImageState, mask: np.ndarray) -> np.ndarray:
        """A full-size mask as a 1 x L x L float share of each low-resolution cell, with the image's geometry."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers

    @property
    def low_res_size(self) -> int:
        """Side of the low-resolution logits."""
        raise NotImplementedError

    def _mask_input(self, state: SamImageState, mask: np.ndarray) -> np.ndarray:
        """Previous logits (1xLxL or LxL floats) pass through; a full-size mask is converted."""
        given = earlier_logits(mask, self.low_res_size, state.hw)
        if given is not None:
            return given
        share = self._mask_to_low_res(state, np.asarray(mask) > 0)
        return np.where(share > 0.5, MASK_LOGIT, -MASK_LOGIT).astype(np.float32)
