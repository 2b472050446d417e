"""The Inpainter interface: frames plus hole masks to frames with the holes filled.

An inpainter reads frames and masks through random-access sequences (see
``tam.frames``) at the working (proxy) resolution and yields filled frames in
increasing index order. It chooses its own temporal windows, so memory is bounded
by its configuration, never by the video's length. Compositing the fill back
into full-resolution source frames is ``inpaint.render``'s job, not the backend's.

Who owns what: an inpainter instance owns its configuration and, for a neural
backend, its loaded weights (loaded once under the instance's own lock), and is
shared by every session; everything about one video (flow fields, filled
frames, temporal windows) is per-call state that lives inside one ``inpaint``
generator and goes with it. The frames and masks belong to the project on disk
(:mod:`tam.project`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np

from tam.frames import FrameSequence
from tam.registry import Backend, Registry


class Inpainter(Backend, ABC):
    @abstractmethod
    def inpaint(
        self,
        frames: FrameSequence,
        masks: FrameSequence,
        indices: Sequence[int] | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, rgb)`` for ``indices`` (default: every frame), in increasing order.

        ``frames[i]`` is RGB uint8 HxWx3; ``masks[i]`` is bool HxW, True where the
        pixels must be replaced. Pixels outside the hole may be returned unchanged or
        not; the renderer only takes the hole region (with feathering).
        """


INPAINTERS: Registry[Inpainter] = Registry("inpainter", default="flow")
INPAINTERS.register(
    "flow", "inpaint.flow_guided:FlowGuidedInpainter",
    "flow-guided video completion: propagate seen pixels, fill the never-seen rest on keyframes "
    "with patches from the frame (no weights)",
)
INPAINTERS.register(
    "flow-smooth", "inpaint.flow_guided:SmoothFlowInpainter",
    "flow-guided video completion with a smooth (Telea) fill of never-seen pixels (faster, no texture)",
)
INPAINTERS.register(
    "telea", "inpaint.spatial:TeleaInpainter",
    "per-frame OpenCV Telea inpainting (fast, flickers; a baseline)",
)
INPAINTERS.register(
    "diffusion", "inpaint.diffusion:DiffusionInpainter",
    "flow-guided completion with Stable Diffusion keyframe fills from a local model",
    needs=("torch", "diffusers"),
)
