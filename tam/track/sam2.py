"""SAM 2.1 video predictor as a :class:`Tracker`, from a local checkpoint.

Our keyframes (label maps with any ids) become ``add_new_mask`` inputs, one per
object per keyframe; every object gets a mask on every keyframe (empty where it is
absent), so each keyframe says where each object is and is not. ``propagate`` runs
``propagate_in_video`` from ``start`` towards ``stop`` and turns the per-object
logits into a label map: the object with the highest logit wins where it is > 0.

Memory stays bounded on long clips:

* frames are read from our :class:`FrameSequence` a few frames ahead on a thread,
  uploaded as uint8 and resized and normalised on the model's device, overlapped with
  the model (sam2's own loader would stack the whole clip, resized on the CPU);
* tracked frames' memories older than the model's memory window are dropped as
  propagation moves on, so the state holds the keyframes plus a fixed number of
  recent frames however long the clip is;
* keyframes' encodings are kept between calls and recomputed only for keyframes
  whose label map changed, so a correction costs one encoding, not all of them.

Each frame's label map is copied to the host while the next frame is computed, so the
GPU does not wait for the caller; the generator is therefore one frame ahead of what
it has yielded.

The state returned by :meth:`Sam2Tracker.init_state` belongs to the caller; the
tracker holds only the model.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tam.cache import content_digest
from tam.errors import MaskError
from tam.frames import FrameSequence
from tam.registry import packages_present
from tam.segment.sam2 import Sam2Config, build_sam2_model, normalize_model, resolve_sam2
from tam.track.base import Tracker, check_propagate_call
from tam.track.feed import FrameFeed, HostLabels, channel_constants, frame_array, square_normalised

IMG_MEAN = (0.485, 0.456, 0.406)
IMG_STD = (0.229, 0.224, 0.225)


@dataclass
class Sam2VideoState:
    """Per-video state: sam2's inference dict plus what we need to keep it in sync."""

    inference: dict[str, Any]
    num_frames: int
    height: int
    width: int
    object_ids: tuple[int, ...] = ()
    keyframe_digests: dict[int, str] = field(default_factory=dict)
    encoded_keyframes: int = 0  # how many (keyframe, object) masks were encoded so far


class _FrameTensors:
    """What sam2 expects in ``inference_state["images"]``, read lazily from our frames.

    Item i is a float32 3xSxS tensor on the model's device, resized (bicubic,
    antialiased, like sam2's own loader) and normalised with ImageNet statistics there.
    During a propagation the frames come from a :class:`FrameFeed` that reads ahead on a
    thread; otherwise (keyframes) they are read on the spot. Nothing is kept: the
    FrameSequence does the caching.
    """

    def __init__(self, frames: FrameSequence, size: int, device):
        self.frames = frames
        self.size = size
        self.device = device
        self.feed: FrameFeed | None = None
        self._mean = channel_constants(IMG_MEAN, device)
        self._std = channel_constants(IMG_STD, device)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int):
        if self.feed is not None:
            frame = self.feed.get(index)
        else:
            import torch

            array = frame_array(self.frames, index)
            frame = torch.from_numpy(array if array.flags.writeable else array.copy()).to(self.device)
        return square_normalised(frame, self.size, self._mean, self._std)


class Sam2Tracker(Tracker):
    """Mask propagation with the SAM 2.1 video predictor."""

    name = "sam2"

    def __init__(self, model: str | None = None, checkpoint: str | Path | None = None,
                 device: str | None = None, config: str | None = None,
                 overrides: tuple[str, ...] | list[str] = (), max_keyframes_in_memory: int = 4,
                 offload_state_to_cpu: bool = False):
        if max_keyframes_in_memory != -1 and max_keyframes_in_memory < 2:
            raise ValueError("max_keyframes_in_memory must be -1 (all) or at least 2")
        self.config = Sam2Config(normalize_model(model), None if checkpoint is None else str(checkpoint),
                                 device, config, tuple(overrides))
        self.max_keyframes_in_memory = max_keyframes_in_memory
        self.offload_state_to_cpu = offload_state_to_cpu
        self.checkpoint, self._config_name = resolve_sam2(self.config)
        self.predictor = None
        self._device = None

    @classmethod
    def is_available(cls, checkpoint: str | Path | None = None) -> bool:
        from tam.segment.sam2 import Sam2Segmenter

        return Sam2Segmenter.is_available(checkpoint)

    @classmethod
    def unavailable_reason(cls, checkpoint: str | Path | None = None) -> str:
        from tam.segment.sam2 import Sam2Segmenter

        return Sam2Segmenter.unavailable_reason(checkpoint)

    def load(self):
        """Build the video predictor and load the checkpoint (once)."""
        if self.predictor is not None:
            return self.predictor
        from tam.neural import pick_device

        device = pick_device(self.config.device)
        predictor = build_sam2_model(self.config, self.checkpoint, self._config_name, video=True)
        _silence_sam2_progress()
        predictor.max_cond_frames_in_attn = self.max_keyframes_in_memory
        if predictor.fill_hole_area > 0 and (device.type != "cuda" or not _has_sam2_extension()):
            # The hole filler needs sam2's compiled CUDA extension and a GPU; without
            # them sam2 would warn on every frame and skip it, so skip it once here.
            predictor.fill_hole_area = 0
        predictor.to(device).eval()
        self.predictor, self._device = predictor, device
        return predictor

    @property
    def memory_window(self) -> int:
        """How many tracked frames behind the current one the model can still read."""
        p = self.load()
        return max(p.num_maskmem * p.memory_temporal_stride_for_eval, p.max_obj_ptrs_in_encoder) + 1

    # ------------------------------------------------------------------ Tracker

    def init_state(self, frames: FrameSequence) -> Sam2VideoState:
        import torch

        predictor = self.load()
        if len(frames) == 0:
            raise MaskError("the video has no frames")
        height, width = np.asarray(frames[0]).shape[:2]
        device = self._device
        storage = torch.device("cpu") if self.offload_state_to_cpu else device
        # The same fields as SAM2VideoPredictor.init_state, with our lazy frames in
        # place of a stacked clip (no feature warm-up: nothing runs until needed).
        inference = {
            "images": _FrameTensors(frames, predictor.image_size, device),
            "num_frames": len(frames),
            "offload_video_to_cpu": True,
            "offload_state_to_cpu": self.offload_state_to_cpu,
            "video_height": int(height),
            "video_width": int(width),
            "device": device,
            "storage_device": storage,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }
        return Sam2VideoState(inference, len(frames), int(height), int(width))

    def propagate(
        self,
        state: Sam2VideoState,
        frames: FrameSequence,
        keyframes: Mapping[int, np.ndarray],
        start: int,
        stop: int,
    ) -> Iterator[tuple[int, np.ndarray]]:
        check_propagate_call(state, Sam2VideoState, frames, keyframes, start)
        step = 1 if stop > start else -1
        if abs(stop - start) <= 1:
            return
        ids = self._object_ids(state, keyframes)
        if not ids:  # nothing annotated anywhere: nothing to follow
            for index in range(start + step, stop, step):
                yield index, np.zeros((state.height, state.width), np.uint8)
            return
        from tam.neural import autocast

        predictor = self.load()
        with autocast(self._device):
            self._sync(state, keyframes, ids)
        inference = state.inference
        window = self.memory_window
        generator = predictor.propagate_in_video(
            inference, start_frame_idx=start, max_frame_num_to_track=abs(stop - start) - 1,
            reverse=step < 0,
        )
        images = inference["images"]
        pending: tuple[int, HostLabels] | None = None
        with FrameFeed(frames, range(start + step, stop, step), self._device) as feed:
            images.feed = feed
            try:
                while True:
                    with autocast(self._device):
                        try:
                            index, obj_ids, logits = next(generator)
                        except StopIteration:
                            break
                        labels = HostLabels(logits_to_labels_on_device(logits, obj_ids))
                    self._forget(inference, index - step * window)
                    # Hand out the previous frame only now: its copy to the host overlapped
                    # with this frame's work, and the GPU never waits for the caller.
                    if pending is not None:
                        yield pending[0], pending[1].result()
                    pending = None if index == start else (index, labels)
                if pending is not None:
                    yield pending[0], pending[1].result()
            finally:
                images.feed = None
                generator.close()

    # ------------------------------------------------------------------ helpers

    def _object_ids(self, state: Sam2VideoState, keyframes: Mapping[int, np.ndarray]) -> tuple[int, ...]:
        ids: set[int] = set()
        for k, labels in keyframes.items():
            labels = np.asarray(labels)
            if labels.shape != (state.height, state.width):
                raise MaskError(f"keyframe {k} mask is {labels.shape[1::-1]}, the video is "
                                f"{state.width}x{state.height}")
            ids.update(int(v) for v in np.unique(labels) if v != 0)
        return tuple(sorted(ids))

    def _sync(self, state: Sam2VideoState, keyframes: Mapping[int, np.ndarray], ids: tuple[int, ...]) -> None:
        """Make the predictor's conditioning match ``keyframes``; drop earlier tracking results."""
        predictor, inference = self.predictor, state.inference
        if ids != state.object_ids:  # objects added or removed: encode everything again
            predictor.reset_state(inference)
            state.keyframe_digests.clear()
            state.object_ids = ids
        digests = {k: content_digest(np.asarray(v)) for k, v in keyframes.items()}
        for obj_idx in list(inference["output_dict_per_obj"]):
            inference["output_dict_per_obj"][obj_idx]["non_cond_frame_outputs"].clear()
            inference["temp_output_dict_per_obj"][obj_idx]["non_cond_frame_outputs"].clear()
            inference["frames_tracked_per_obj"][obj_idx].clear()
        for k in list(state.keyframe_digests):
            if digests.get(k) != state.keyframe_digests[k]:  # edited or deleted keyframe
                for obj_idx in list(inference["output_dict_per_obj"]):
                    inference["output_dict_per_obj"][obj_idx]["cond_frame_outputs"].pop(k, None)
                    inference["temp_output_dict_per_obj"][obj_idx]["cond_frame_outputs"].pop(k, None)
                    inference["mask_inputs_per_obj"][obj_idx].pop(k, None)
                    inference["point_inputs_per_obj"][obj_idx].pop(k, None)
                del state.keyframe_digests[k]
        for k in sorted(digests):
            if k in state.keyframe_digests:
                continue
            labels = np.asarray(keyframes[k])
            for obj_id in ids:
                predictor.add_new_mask(inference, k, obj_id, labels == obj_id)
                state.encoded_keyframes += 1
            state.keyframe_digests[k] = digests[k]

    @staticmethod
    def _forget(inference: dict, index: int) -> None:
        """Drop a tracked frame's memory once it is out of the model's reach."""
        for per_obj in inference["output_dict_per_obj"].values():
            per_obj["non_cond_frame_outputs"].pop(index, None)


def logits_to_labels_on_device(logits, obj_ids):
    """(N, 1, H, W) per-object logits to a uint8 HxW label tensor on their device:
    the highest logit wins where it is > 0. (Ids are filled in one by one from Python
    ints: a lookup tensor made from Python values would wait for the GPU.)"""
    import torch

    scores = logits[:, 0].float()
    best, which = torch.max(scores, dim=0)
    labels = torch.zeros(best.shape, dtype=torch.uint8, device=best.device)
    positive = best > 0
    for k, obj_id in enumerate(obj_ids):
        labels.masked_fill_(positive & (which == k), int(obj_id))
    return labels


def logits_to_labels(logits, obj_ids) -> np.ndarray:
    """(N, 1, H, W) per-object logits to a uint8 label map: highest logit wins where > 0."""
    return logits_to_labels_on_device(logits, obj_ids).cpu().numpy().astype(np.uint8)


def _silence_sam2_progress() -> None:
    """sam2 draws its own tqdm bar per propagation; our callers draw theirs (CLI, UI)."""
    import sam2.sam2_video_predictor as module

    if getattr(module.tqdm, "__name__", "") != "_no_progress":
        module.tqdm = _no_progress


def _no_progress(iterable, *args, **kwargs):
    return iterable


def _has_sam2_extension() -> bool:
    return packages_present("sam2._C")
