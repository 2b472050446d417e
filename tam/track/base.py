"""The Tracker interface: masks on some frames to masks on every frame.

Masks are label maps: uint8 HxW, 0 background, 1..255 object ids. The tracker
model holds nothing per video; ``init_state`` returns a state that the caller
owns and passes back to every ``propagate`` call, so two videos, or two browser
tabs, never share anything.

Who owns what: the tracker instance owns its configuration and weights and is
shared (one per settings in the studio, under the tracker lock of
:class:`tam.ui_state.SharedBackends` while a job runs); the per-video state
(working frames, colour models, the forest, a network's memory) is owned by a
studio (:class:`tam.studio.Studio`, which a browser session keeps for its open
project between jobs) or by one CLI call; the keyframes and the tracked masks
are owned by the project on disk (:mod:`tam.project`). A state stays valid
across keyframe edits: what it learned is keyed by the keyframes' content.

``propagate`` runs one segment: from an annotated frame ``start`` towards
``stop`` (exclusive; ``stop < start`` means backwards). ``keyframes`` holds every
user-annotated frame, which a tracker may use as long-term memory. Which
segments to run after an edit is decided once, in :mod:`tam.track.propagation`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from tam.errors import MaskError
from tam.frames import FrameSequence
from tam.registry import Backend, Registry


class Tracker(Backend, ABC):
    def init_state(self, frames: FrameSequence) -> Any:
        """Per-video state (caches, model memory). The caller keeps it; default: none."""
        return None

    @abstractmethod
    def propagate(
        self,
        state: Any,
        frames: FrameSequence,
        keyframes: Mapping[int, np.ndarray],
        start: int,
        stop: int,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, labels)`` for each frame strictly between ``start`` and ``stop``,
        walking away from ``start`` (which must be in ``keyframes``)."""


def check_propagate_call(state: Any, state_type: type, frames: FrameSequence,
                         keyframes: Mapping[int, np.ndarray], start: int) -> None:
    """Raise when ``propagate`` is called with a state of another tracker (TypeError), a video of another
    length than the state's ``num_frames`` (MaskError), or a start frame that has no mask (MaskError)."""
    if not isinstance(state, state_type):
        raise TypeError(f"state must come from the tracker's init_state, not {type(state).__name__}")
    if len(frames) != state.num_frames:
        raise MaskError(f"the state was made for {state.num_frames} frames, not {len(frames)}")
    if start not in keyframes:
        raise MaskError(f"frame {start} has no mask to track from")


TRACKERS: Registry[Tracker] = Registry("tracker", default="classical")
TRACKERS.register(
    "classical", "tam.track.classical:ClassicalTracker",
    "optical flow + online appearance models with keyframe memory (no weights)",
)
TRACKERS.register(
    "sam2", "tam.track.sam2:Sam2Tracker",
    "SAM 2.1 video predictor from a local checkpoint", needs=("torch", "sam2"),
)
TRACKERS.register(
    "cutie", "tam.track.cutie:CutieTracker",
    "Cutie memory network (XMem's successor) from a local checkpoint", needs=("torch", "cutie", "omegaconf"),
)
