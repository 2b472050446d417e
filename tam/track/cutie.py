"""Cutie (Cheng et al., CVPR 2024) as a :class:`Tracker`, from a local checkpoint.

Cutie is the successor of XMem, the memory tracker of the Track Anything paper. We
use the ``rf-cutie`` package's network and its ``InferenceCore`` (memory reading,
object transformer, working and long-term memory), and build the network ourselves
from the package's own config files: its ``get_default_model`` downloads ImageNet
backbones and calls ``.cuda()``; here nothing is downloaded, the official checkpoint
(``python -m tam weights download cutie-base-mega``) is loaded with strict keys and
``weights_only``, and the CPU works too.

One propagation (``start`` towards ``stop``) runs one ``InferenceCore``:

* the keyframes nearest to ``start`` (at most ``max_keyframes_in_memory``, ``start``
  included) go into its permanent memory, ``start`` last so that the short-term
  (sensory) memory begins there. Every object of every keyframe gets a mask on every
  keyframe, empty where it is absent, so objects added or removed mid-clip are
  followed from the keyframes that show them and kept out by those that do not;
* then the frames are segmented one by one, away from ``start``, forwards or
  backwards alike. The working memory takes a frame every ``mem_every`` frames and
  holds at most ``max_mem_frames`` (or is consolidated into a bounded long-term
  memory with ``long_term=True``), so memory stays flat on long clips.

Frames are read ahead on a thread and uploaded as uint8 (:mod:`tam.track.feed`); each
label map is copied to the host while the next frame runs, so the generator works one
frame ahead of what it has yielded. The tracker holds only the network and settings;
the state that :meth:`CutieTracker.init_state` returns belongs to the caller.
"""
from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tam import weights
from tam.errors import BackendError, MaskError
from tam.frames import FrameSequence
from tam.track.base import Tracker, check_propagate_call

DEFAULT_CHECKPOINT = "cutie-base-mega"
PACKAGES = ("torch", "cutie", "omegaconf")
INSTALL_HINT = "torch and rf-cutie (pip install rf-cutie)"
_BUILD_LOCK = threading.Lock()  # the backbone builders are swapped while a network is built


@dataclass(frozen=True)
class CutieSettings:
    """Inference settings (the names of Cutie's own config; its defaults for video).

    ``max_internal_size``: frames whose shorter side is larger are processed at this
    shorter side and the masks scaled back (-1: full size). ``mem_every``: a frame goes
    into working memory every this many frames. ``max_mem_frames``: working-memory
    frames kept (FIFO) without long-term memory. ``long_term``: consolidate old working
    memory into at most ``long_term_max_tokens`` prototypes instead of dropping it.
    """

    max_internal_size: int = 480
    mem_every: int = 5
    max_mem_frames: int = 5
    long_term: bool = False
    long_term_max_tokens: int = 10000
    top_k: int = 30
    stagger_updates: int = 5
    chunk_size: int = -1

    def __post_init__(self):
        if self.max_internal_size != -1 and self.max_internal_size < 16:
            raise ValueError("max_internal_size must be -1 (full size) or at least 16")
        if self.mem_every < 1 or self.max_mem_frames < 2 or self.top_k < 1 or self.stagger_updates < 1:
            raise ValueError("mem_every, top_k and stagger_updates must be >= 1, max_mem_frames >= 2")


@dataclass
class CutieVideoState:
    """Per-video state: the clip's size and how many keyframe masks were encoded."""

    num_frames: int
    height: int
    width: int
    object_ids: tuple[int, ...] = ()
    encoded_keyframes: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)  # per propagation: memory sizes seen


def cutie_config(model: str = "base", model_overrides: Mapping | None = None,
                 settings: CutieSettings = CutieSettings()):
    """The OmegaConf config that Cutie's network and InferenceCore read.

    ``model`` names one of the package's model configs (``base``, ``small``);
    ``model_overrides`` is merged into it (tests shrink the network with it).
    """
    from importlib.resources import files

    from omegaconf import OmegaConf

    root = files("cutie") / "config"
    base = OmegaConf.load(str(root / "eval_config.yaml"))
    for key in ("defaults", "hydra", "datasets"):
        base.pop(key, None)
    model_cfg = _model_config(root / "model", model)
    if model_overrides:
        model_cfg = OmegaConf.merge(model_cfg, OmegaConf.create(dict(model_overrides)))
    base.model = model_cfg
    base.max_internal_size = settings.max_internal_size
    base.mem_every = settings.mem_every
    base.max_mem_frames = settings.max_mem_frames
    base.use_long_term = settings.long_term
    base.long_term.max_num_tokens = settings.long_term_max_tokens
    base.top_k = settings.top_k
    base.stagger_updates = settings.stagger_updates
    base.chunk_size = settings.chunk_size
    base.amp = False
    OmegaConf.resolve(base)
    return base


def _model_config(folder, name: str):
    from omegaconf import OmegaConf

    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise BackendError(f"unknown Cutie model config {name!r} (known: base, small)")
    cfg = OmegaConf.load(str(path))
    parents = [d for d in cfg.pop("defaults", []) if isinstance(d, str) and d != "_self_"]
    merged = OmegaConf.create()
    for parent in parents:
        merged = OmegaConf.merge(merged, _model_config(folder, parent))
    return OmegaConf.merge(merged, cfg)


@contextmanager
def _backbones_without_download():
    """Cutie's modules build their ResNets with ``pretrained=True`` (an ImageNet download);
    every weight is replaced by our checkpoint, so build them empty."""
    from cutie.model.utils import resnet

    with _BUILD_LOCK:
        saved = resnet.resnet18, resnet.resnet50
        resnet.resnet18 = lambda pretrained=True, **kw: saved[0](pretrained=False, **kw)
        resnet.resnet50 = lambda pretrained=True, **kw: saved[1](pretrained=False, **kw)
        try:
            yield
        finally:
            resnet.resnet18, resnet.resnet50 = saved


def build_cutie(cfg):
    """Cutie's network from ``cfg`` with untrained weights, on the CPU, in eval mode."""
    from cutie.model.cutie import CUTIE

    with _backbones_without_download():
        return CUTIE(cfg).eval()


class CutieTracker(Tracker):
    """Mask propagation with Cutie's memory network."""

    name = "cutie"

    def __init__(self, checkpoint: str | Path | None = None, device: str | None = None,
                 model: str = "base", model_overrides: Mapping | None = None,
                 max_keyframes_in_memory: int = 4, **settings):
        if max_keyframes_in_memory < 1:
            raise ValueError("max_keyframes_in_memory must be at least 1")
        self.settings = CutieSettings(**settings)
        self.model = model
        self.model_overrides = dict(model_overrides or {})
        self.max_keyframes_in_memory = max_keyframes_in_memory
        self.device_name = device
        self.checkpoint = self._resolve(checkpoint)
        self.network = None
        self._cfg = None
        self._device = None

    @staticmethod
    def _resolve(checkpoint) -> Path:
        if checkpoint is not None:
            p = Path(checkpoint).expanduser()
            if not p.is_file():
                raise BackendError(f"Cutie checkpoint {p} does not exist")
            return p
        return weights.path(DEFAULT_CHECKPOINT)

    @classmethod
    def is_available(cls, checkpoint: str | Path | None = None) -> bool:
        return not cls.unavailable_reason(checkpoint)

    @classmethod
    def unavailable_reason(cls, checkpoint: str | Path | None = None) -> str:
        from tam.neural import checkpoint_problem

        return checkpoint_problem(PACKAGES, INSTALL_HINT, "cutie", "Cutie", DEFAULT_CHECKPOINT, checkpoint)

    def load(self):
        """Build the network and load the checkpoint (once)."""
        if self.network is not None:
            return self.network
        from tam.neural import pick_device

        device = pick_device(self.device_name)
        cfg = cutie_config(self.model, self.model_overrides, self.settings)
        network = build_cutie(cfg)
        weights.load_into(network, weights.load_state_dict(self.checkpoint), source=str(self.checkpoint))
        network.to(device).eval()
        self.network, self._cfg, self._device = network, cfg, device
        return network

    # ------------------------------------------------------------------ Tracker

    def init_state(self, frames: FrameSequence) -> CutieVideoState:
        if len(frames) == 0:
            raise MaskError("the video has no frames")
        height, width = np.asarray(frames[0]).shape[:2]
        return CutieVideoState(len(frames), int(height), int(width))

    def propagate(
        self,
        state: CutieVideoState,
        frames: FrameSequence,
        keyframes: Mapping[int, np.ndarray],
        start: int,
        stop: int,
    ) -> Iterator[tuple[int, np.ndarray]]:
        check_propagate_call(state, CutieVideoState, frames, keyframes, start)
        step = 1 if stop > start else -1
        if abs(stop - start) <= 1:
            return
        ids = _object_ids(state, keyframes)
        state.object_ids = ids
        if not ids:  # nothing annotated anywhere: nothing to follow
            for index in range(start + step, stop, step):
                yield index, np.zeros((state.height, state.width), np.uint8)
            return
        yield from self._run(state, frames, keyframes, ids, start, stop, step)

    # ------------------------------------------------------------------ helpers

    def memory_keyframes(self, keyframes: Mapping[int, np.ndarray], start: int) -> list[int]:
        """The keyframes put into permanent memory for a run from ``start``: the nearest
        ones (ties: the earlier), ``start`` last."""
        others = sorted((k for k in keyframes if k != start), key=lambda k: (abs(k - start), k))
        chosen = others[: self.max_keyframes_in_memory - 1]
        return sorted(chosen, key=lambda k: -abs(k - start)) + [start]

    def _run(self, state, frames, keyframes, ids, start, stop, step):
        from tam.track.feed import FrameFeed, HostLabels, unit_float

        self.load()
        run = {"keyframes": [], "work_tokens": 0}
        state.runs.append(run)
        pending = None
        with FrameFeed(frames, range(start + step, stop, step), self._device) as feed:
            with self._compute():
                core, lut = self._prime(state, feed, keyframes, ids, start, run)
            for index in range(start + step, stop, step):
                # Autocast and inference mode are entered per frame, never across a yield.
                with self._compute():
                    prob = core.step(unit_float(feed.get(index)), end=index + step == stop)
                    labels = HostLabels(lut[prob.argmax(dim=0)])
                run["work_tokens"] = max(run["work_tokens"], _work_tokens(core))
                if pending is not None:
                    yield pending[0], pending[1].result()
                pending = (index, labels)
            if pending is not None:
                yield pending[0], pending[1].result()

    def _prime(self, state, feed, keyframes, ids, start, run):
        """A fresh InferenceCore with the chosen keyframes in its permanent memory, and the
        lookup table from its object slots to our ids."""
        import torch
        from cutie.inference.inference_core import InferenceCore

        from tam.track.feed import unit_float

        core = InferenceCore(self.network, cfg=self._cfg)
        # Memory reading keeps the top_k best matches; a small frame has fewer tokens.
        core.memory.top_k = min(core.memory.top_k, self._tokens_per_frame(state.height, state.width))
        objects = list(ids)
        for k in self.memory_keyframes(keyframes, start):
            mask = torch.from_numpy(np.ascontiguousarray(keyframes[k])).to(self._device).long()
            core.step(unit_float(feed.get(k)), mask, objects, force_permanent=True)
            state.encoded_keyframes += len(objects)
            run["keyframes"].append(k)
        lut = torch.zeros(len(objects) + 1, dtype=torch.uint8, device=self._device)
        for slot, info in core.object_manager.tmp_id_to_obj.items():
            lut[slot] = info.id
        return core, lut

    def _tokens_per_frame(self, height: int, width: int) -> int:
        """Memory tokens one frame gives: its processed size (after Cutie's internal
        resize, padded to a multiple of 16) divided by the stride 16."""
        size = self.settings.max_internal_size
        short = min(height, width)
        if 0 < size < short:
            height, width = int(height / short * size), int(width / short * size)
        return -(-height // 16) * -(-width // 16)

    @contextmanager
    def _compute(self):
        """Inference mode, and bfloat16 autocast on GPUs that support it (float32 elsewhere);
        the package's warnings about torch's renamed autocast API are not the user's concern."""
        import torch

        from tam.neural import autocast

        with torch.inference_mode(), autocast(self._device), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*autocast")
            yield


def _work_tokens(core) -> int:
    """How many working-memory tokens Cutie holds now (all buckets)."""
    store = core.memory.work_mem
    return int(sum(store.size(b) for b in store.buckets))


def _object_ids(state: CutieVideoState, keyframes: Mapping[int, np.ndarray]) -> tuple[int, ...]:
    ids: set[int] = set()
    for k, labels in keyframes.items():
        labels = np.asarray(labels)
        if labels.shape != (state.height, state.width):
            raise MaskError(f"keyframe {k} mask is {labels.shape[1::-1]}, the video is "
                            f"{state.width}x{state.height}")
        ids.update(int(v) for v in np.unique(labels) if v != 0)
    return tuple(sorted(ids))
