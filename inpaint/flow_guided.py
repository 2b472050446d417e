"""Flow-guided video completion without learned weights.

For each frame to fill, the backend looks at a window of ``radius`` frames on
either side, streamed from the caller's sequences (never more than the window is
held, so memory does not grow with the video's length):

1. **Flow.** Each frame's hole is pre-filled by a cheap smooth fill (so the object
   does not drag the estimate) and DIS optical flow is computed between
   neighbouring frames, forward and backward.
2. **Flow completion.** Wherever either frame of a pair is a hole (grown by a
   margin), the flow is replaced by the membrane (Laplace) interpolation of the
   flow around it, solved at half resolution.
3. **Propagation.** Every hole pixel follows the completed flow, frame by frame,
   forward and backward; a step whose forward and backward flows disagree ends
   the chain. The first frame where the chain lands on a known pixel gives a
   candidate, sampled once from that original frame (no resampling along the
   chain, so no blur accumulates).
   The forward and backward candidates are combined by temporal distance.
4. **Never-seen pixels.** What no frame of the window shows comes from the
   current *keyframe*: a completed frame whose content is carried along the flow
   (a dense coordinate chain, so no blur accumulates; sampled bicubically, since a
   new keyframe takes the carried pixels over and a bilinear sample at every new
   keyframe softens them generation after generation). Where even the keyframe
   cannot help, the frame becomes a new keyframe and its remaining pixels are
   filled by the spatial ``keyframe_filler``. The fill therefore stays put over
   time instead of being re-invented on every frame. A filler that takes views
   (the exemplar filler) also gets the frames ``radius`` away to copy from, and,
   once the camera has zoomed in ``REFRESH_ZOOM`` times since the keyframe (the
   carried fill is then soft), the carried fill as a draft to sharpen
   (:mod:`inpaint.keyframes`). Known pixels in narrow
   notches of that region (usually a part of the object the mask missed, such as
   a shadowed crevice) are kept out of the spatial fill, which would smear them.
5. **Temporal smoothing.** Each propagated fill is mixed with the previous output
   frame carried along the flow (``smoothing``), which damps frame-to-frame
   jitter. Pixels from the keyframe are not: they already follow the flow, and
   mixing them with their own resampled copy would blur them a little more at
   every frame.
6. **Blending.** The hole is reconstructed in the gradient domain (a Poisson
   solve guided by the sources' own gradients, fixed by the known pixels around
   the hole), which removes exposure seams between sources.
7. **Further passes** (``passes``, default 2). Interpolated flow cannot follow
   content that moves differently inside the hole (a partly hidden person, a
   tree in front of a wall). A second pass therefore estimates the flow again on
   the first pass's output, where the holes now hold plausible moving content,
   and propagates the original known pixels once more along that flow; what it
   still cannot reach keeps the first pass's fill (no new keyframes). The passes
   are chained generators: the second runs ``radius`` frames behind the first, so
   memory stays bounded, and a hole's factorisation is shared by both.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from inpaint.base import Inpainter
from inpaint.keyframes import REFRESH_ZOOM, magnification
from inpaint.solve import HoleSolver, push_pull
from tam.errors import MaskError, TamError, VideoError
from tam.frames import FrameSequence

MIN_FLOW_SIZE = 16  # frames smaller than this (either side) get zero flow
MAX_SOLVER_ENTRIES = 4_000_000  # non-zeros of the cached factorisations of each kind (~120 MB)
NOTCH_FRACTION = 0.01  # half-width of the known gaps closed before a spatial fill, per longest side
PREVIEW_RADIUS = 6  # frames on each side used by preview() unless told otherwise
RESTART_WARMUP = 8  # frames over which a restarted chain takes over from the old one (see restarts_at)
KeyframeFiller = Callable[[np.ndarray, np.ndarray], np.ndarray]

_FLOW_PRESETS = {  # name -> (DIS preset, finest pyramid level or None for the preset's)
    "ultrafast": (cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, None),
    "fast": (cv2.DISOPTICAL_FLOW_PRESET_FAST, None),
    "medium": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, None),
    "fine": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, 0),  # medium, refined down to full resolution
}
_COMBINE = ("nearest", "weighted", "equal")
_FILLERS = ("exemplar", "telea", "ns")


@dataclass(frozen=True)
class FlowGuidedConfig:
    """Settings of :class:`FlowGuidedInpainter` (pass them as keyword arguments)."""

    passes: int = 2  # 1: flow in holes interpolated from their border; 2+: re-estimated on the last fill
    radius: int = 10  # frames searched on each side for known pixels (look-ahead: passes*radius+1 frames)
    flow_preset: str = "medium"  # DIS preset: ultrafast, fast, medium or fine
    prefill: str = "pushpull"  # how holes are hidden from the flow estimator: pushpull or telea
    flow_region: str = "union"  # where flow is re-interpolated: union of both holes, or warped
    flow_margin: int = 8  # pixels the holes are grown by before their flow is re-interpolated
    flow_scale: int = 2  # flow completion is solved at 1/flow_scale resolution (it is smooth)
    consistency: float = 4.0  # forward-backward flow disagreement (pixels) that ends a chain
    consistency_rel: float = 0.2  # ... plus this fraction of the flow's length
    candidates: int = 1  # known landings averaged per direction
    combine: str = "weighted"  # nearest: closest frame wins; weighted: both sides by 1/distance; equal
    interpolation: str = "linear"  # sampling of source colours: linear or cubic
    smoothing: float = 0.4  # weight of the previous output (carried by the flow) in each fill
    poisson: bool = True  # gradient-domain blending of the fill
    filler: str = "exemplar"  # keyframe filler: exemplar (patch-based), or telea / ns (OpenCV, smooth)
    filler_radius: int = 5  # telea / ns only
    filler_seed: int = 0  # exemplar only: seed of its random search
    restart: int = 0  # >0: the carried state restarts every ``restart`` frames (see restarts_at); 0: never

    def __post_init__(self):
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1, got {self.passes}")
        if self.radius < 1:
            raise ValueError(f"radius must be >= 1, got {self.radius}")
        if self.flow_preset not in _FLOW_PRESETS:
            raise ValueError(f"flow_preset must be one of {sorted(_FLOW_PRESETS)}, got {self.flow_preset!r}")
        if self.prefill not in ("pushpull", "telea"):
            raise ValueError(f"prefill must be pushpull or telea, got {self.prefill!r}")
        if self.flow_region not in ("union", "warped"):
            raise ValueError(f"flow_region must be union or warped, got {self.flow_region!r}")
        if self.flow_margin < 0 or self.flow_scale < 1:
            raise ValueError("flow_margin must be >= 0 and flow_scale >= 1")
        if self.consistency <= 0 or self.consistency_rel < 0:
            raise ValueError("consistency must be > 0 and consistency_rel >= 0")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if self.combine not in _COMBINE:
            raise ValueError(f"combine must be one of {_COMBINE}, got {self.combine!r}")
        if self.interpolation not in ("linear", "cubic"):
            raise ValueError(f"interpolation must be linear or cubic, got {self.interpolation!r}")
        if not 0 <= self.smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing}")
        if self.filler not in _FILLERS:
            raise ValueError(f"filler must be one of {_FILLERS}, got {self.filler!r}")
        if self.filler_radius < 1:
            raise ValueError("filler_radius must be >= 1")
        if self.filler_seed < 0:
            raise ValueError(f"filler_seed must be >= 0, got {self.filler_seed}")
        if self.restart < 0:
            raise ValueError(f"restart must be >= 0, got {self.restart}")


def default_filler(cfg: FlowGuidedConfig) -> KeyframeFiller:
    """The keyframe filler named by ``cfg.filler``."""
    if cfg.filler == "exemplar":
        from inpaint.exemplar import ExemplarConfig, exemplar_filler

        return exemplar_filler(ExemplarConfig(seed=cfg.filler_seed))
    return opencv_filler(cfg.filler, cfg.filler_radius)


def opencv_filler(method: str = "telea", radius: int = 5) -> KeyframeFiller:
    """A keyframe filler backed by ``cv2.inpaint`` (Telea or Navier-Stokes)."""
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS

    def fill(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if not hole.any():
            return rgb.copy()
        return cv2.inpaint(rgb, hole.astype(np.uint8) * 255, radius, flag)

    return fill


# ----------------------------------------------------------------------------- sampling


def _sample(image: np.ndarray, pts: np.ndarray, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
    """Bilinear samples of ``image`` (HxW[xC] float32) at ``pts`` (N x 2, x/y): N[xC]."""
    n = len(pts)
    if n == 0:
        shape = (0,) + image.shape[2:]
        return np.zeros(shape, np.float32)
    cols = 1024  # cv2.remap wants maps smaller than 32767 on each side
    rows = -(-n // cols)
    mx = np.zeros(rows * cols, np.float32)
    my = np.zeros(rows * cols, np.float32)
    mx[:n], my[:n] = pts[:, 0], pts[:, 1]
    out = cv2.remap(image, mx.reshape(rows, cols), my.reshape(rows, cols), interpolation,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape((rows * cols,) + image.shape[2:])[:n]


def _lands_in(hole: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Pixels whose ``flow`` ends inside ``hole`` (of the other frame)."""
    h, w = hole.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    hit = cv2.remap(hole.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return hit > 0.01


def _inside(pts: np.ndarray, w: int, h: int) -> np.ndarray:
    return (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)


def _close_notches(hole: np.ndarray) -> np.ndarray:
    """``hole`` plus the narrow gaps and notches of known pixels that cut into it.

    A spatial fill spreads whatever it finds deep inside a hole over a wide area,
    and known pixels there are usually part of the removed object that the mask
    missed (a crevice, a shadowed gap between two parts): a morphological closing
    keeps them from seeding the fill.
    """
    r = max(1, int(round(NOTCH_FRACTION * max(hole.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.morphologyEx(hole.astype(np.uint8), cv2.MORPH_CLOSE, kernel) > 0


# ----------------------------------------------------------------------------- window


class _Source:
    """The caller's frames and holes, validated, read once each and shared by the passes.

    Frames below the lowest bound any pass still needs are dropped (:meth:`evict`).
    """

    def __init__(self, frames: FrameSequence, masks: FrameSequence, solver_capacity: int = 4):
        self.frames, self.masks = frames, masks
        self.n = len(frames)
        self.shape: tuple[int, int] | None = None
        self._rgb: dict[int, np.ndarray] = {}
        self._hole: dict[int, np.ndarray] = {}
        self._valid: dict[int, np.ndarray] = {}
        self._rgbf: dict[int, np.ndarray] = {}
        self._lows: dict[int, int] = {}  # pass -> lowest frame it still needs
        self.free: dict[int, np.ndarray | None] = {}  # frame -> known pixels its blend ignores
        self._blends: dict[bytes, HoleSolver] = {}  # recent hole factorisations, by region
        self._regions: dict[bytes, HoleSolver] = {}  # recent flow-region factorisations
        self._solver_capacity = solver_capacity

    def _load(self, i: int) -> None:
        if i in self._rgb:
            return
        rgb = np.asarray(self.frames[i])
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise VideoError(f"frame {i} must be RGB uint8 HxWx3, got {rgb.dtype} {rgb.shape}")
        if self.shape is None:
            self.shape = rgb.shape[:2]
        elif rgb.shape[:2] != self.shape:
            raise VideoError(f"frame {i} is {rgb.shape[1]}x{rgb.shape[0]}, "
                             f"earlier frames are {self.shape[1]}x{self.shape[0]}")
        hole = np.asarray(self.masks[i])
        if hole.ndim != 2 or hole.shape != self.shape:
            raise MaskError(f"mask {i} has shape {hole.shape}, expected {self.shape} (the frame's HxW)")
        hole = hole.astype(bool, copy=False)
        if hole.all():
            raise MaskError(f"mask {i} covers the whole frame: nothing is left to fill it from")
        self._rgb[i], self._hole[i] = rgb, hole

    def rgb(self, i: int) -> np.ndarray:
        self._load(i)
        return self._rgb[i]

    def hole(self, i: int) -> np.ndarray:
        self._load(i)
        return self._hole[i]

    def rgbf(self, i: int) -> np.ndarray:
        if i not in self._rgbf:
            self._rgbf[i] = self.rgb(i).astype(np.float32)
        return self._rgbf[i]

    def valid(self, i: int) -> np.ndarray:
        """1.0 where frame ``i`` is known (bilinear samples > 0.999 touch only known pixels)."""
        if i not in self._valid:
            self._valid[i] = (~self.hole(i)).astype(np.float32)
        return self._valid[i]

    def solver(self, region: np.ndarray, free: np.ndarray | None = None, blend: bool = False,
               final: bool = False) -> HoleSolver:
        """A :class:`HoleSolver` for ``region`` (known pixels in ``free`` fix nothing),
        reused while both repeat: a static mask, or the same frame's hole blended
        again by a later pass (``blend``; the ``final`` pass's use makes it the first
        to go). Flow regions are kept apart, a few at a time."""
        key = np.packbits(region).tobytes() + (b"" if free is None else np.packbits(free).tobytes())
        digest = hashlib.blake2b(key + bytes(str(region.shape), "ascii"), digest_size=16).digest()
        cache = self._blends if blend else self._regions
        solver = cache.pop(digest, None) or HoleSolver(region, free=free)
        if final and len(cache) >= 4:  # no later pass needs it, unless the hole repeats
            cache = {digest: solver, **cache}
            if blend:
                self._blends = cache
        else:
            cache[digest] = solver  # most recent last
        capacity = self._solver_capacity if blend else 4
        # the count covers the lag between passes; the size cap bounds memory at large working sizes
        while len(cache) > 1 and (len(cache) > capacity
                                  or sum(v.size for v in cache.values()) > MAX_SOLVER_ENTRIES):
            del cache[next(iter(cache))]
        return solver

    def evict(self, owner: int, lo: int) -> None:
        self._lows[owner] = lo
        lo = min(self._lows.values())
        for store in (self._rgb, self._rgbf, self._hole, self._valid, self.free):
            for k in [k for k in store if k < lo]:
                del store[k]


class _Window:
    """Holes' pre-fills and completed flows for the frames near one pass's current target.

    Everything is computed on first use and dropped by :meth:`evict`; nothing
    refers to frames outside ``[lo, hi]`` after an eviction. With a ``guide`` (the
    previous pass's output, a :class:`_Filled`), the flow is estimated on those
    filled frames as they are: inside the holes it then follows the content the
    previous pass put there instead of being interpolated from the border.
    """

    def __init__(self, source: _Source, cfg: FlowGuidedConfig, guide: _Filled | None = None,
                 owner: int = 0):
        self.source, self.cfg, self.guide, self.owner = source, cfg, guide, owner
        self.n = source.n
        preset, finest = _FLOW_PRESETS[cfg.flow_preset]
        self.dis = cv2.DISOpticalFlow_create(preset)
        if finest is not None:
            self.dis.setFinestScale(finest)
        self.rgb, self.hole, self.rgbf, self.valid = source.rgb, source.hole, source.rgbf, source.valid
        self._gray: dict[int, np.ndarray] = {}
        self._fwd: dict[int, np.ndarray] = {}  # completed flow i -> i+1
        self._bwd: dict[int, np.ndarray] = {}  # completed flow i -> i-1
        self.solver = source.solver

    @property
    def shape(self) -> tuple[int, int] | None:
        return self.source.shape

    def gray(self, i: int) -> np.ndarray:
        if i not in self._gray and self.guide is not None:
            self._gray[i] = cv2.cvtColor(self.guide[i], cv2.COLOR_RGB2GRAY)
        if i not in self._gray:
            hole = self.hole(i)
            g = cv2.cvtColor(self.rgb(i), cv2.COLOR_RGB2GRAY)
            if hole.any():
                grown = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
                if self.cfg.prefill == "telea":
                    g = cv2.inpaint(g, grown.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
                else:
                    g = push_pull(g, grown)
            self._gray[i] = g
        return self._gray[i]

    def _region_solver(self, region: np.ndarray) -> HoleSolver | None:
        """The membrane solver for a flow's unreliable ``region``, grown by ``flow_margin``
        and taken at 1/``flow_scale`` size."""
        if not region.any():
            return None
        s = self.cfg.flow_scale
        small = region
        if s > 1:
            h, w = region.shape
            small = cv2.resize(region.astype(np.uint8) * 255, (-(-w // s), -(-h // s)),
                               interpolation=cv2.INTER_AREA) > 0
        m = -(-self.cfg.flow_margin // s)
        grown = cv2.dilate(small.astype(np.uint8), np.ones((2 * m + 1, 2 * m + 1), np.uint8)) > 0 if m else small
        if grown.all():  # keep a border for the membrane where the hole allows it
            grown = small
        return self.solver(grown)

    def _complete(self, solver: HoleSolver | None, flow: np.ndarray) -> np.ndarray:
        """Replace ``flow`` inside the solver's region by the membrane fill of its border."""
        if solver is None:
            return flow
        s = self.cfg.flow_scale
        h, w = flow.shape[:2]
        if s == 1:
            return solver.laplace(flow).astype(np.float32)
        hs, ws = solver.hole.shape
        small = cv2.resize(flow, (ws, hs), interpolation=cv2.INTER_AREA) / s
        filled = solver.laplace(small).astype(np.float32)
        up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR) * s
        region = cv2.resize(solver.hole.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        out = flow.copy()
        out[region] = up[region]
        return out

    def _pair(self, i: int) -> None:
        """Completed flows between frames ``i`` and ``i + 1``, both directions.

        A flow from frame a to b is unreliable where a is a hole and where it
        points into b's hole (the estimator matched pre-filled pixels there). A
        first completion over the union of both holes gives the flow that locates
        the second set; with ``flow_region="warped"`` each direction is then
        completed again over exactly its own unreliable region.
        """
        a, b = self.gray(i), self.gray(i + 1)
        if min(a.shape) < MIN_FLOW_SIZE:  # too small for DIS's patches: assume no motion
            raw_f = raw_b = np.zeros(a.shape + (2,), np.float32)
        else:
            raw_f, raw_b = self.dis.calc(a, b, None), self.dis.calc(b, a, None)
        if self.guide is not None:  # the holes hold the previous pass's fill: keep the flow it gives
            self._fwd[i], self._bwd[i + 1] = raw_f, raw_b
            return
        ha, hb = self.hole(i), self.hole(i + 1)
        solver = self._region_solver(ha | hb)
        fwd, bwd = self._complete(solver, raw_f), self._complete(solver, raw_b)
        if self.cfg.flow_region == "warped" and solver is not None:
            fwd = self._complete(self._region_solver(ha | _lands_in(hb, fwd)), raw_f)
            bwd = self._complete(self._region_solver(hb | _lands_in(ha, bwd)), raw_b)
        self._fwd[i], self._bwd[i + 1] = fwd, bwd

    def fwd(self, i: int) -> np.ndarray:
        if i not in self._fwd:
            self._pair(i)
        return self._fwd[i]

    def bwd(self, i: int) -> np.ndarray:
        if i not in self._bwd:
            self._pair(i - 1)
        return self._bwd[i]

    def evict(self, lo: int, hi: int) -> None:
        for store in (self._gray, self._fwd, self._bwd):
            for k in [k for k in store if k < lo or k > hi]:
                del store[k]
        self.source.evict(self.owner, lo)
        if self.guide is not None:
            self.guide.evict(lo)


class _Filled:
    """Random access, in increasing order, to the frames a pass yields (the next pass's guide).

    The pass runs only as far as the highest frame asked for; frames below
    :meth:`evict`'s bound are dropped.
    """

    def __init__(self, stream: Iterator[tuple[int, np.ndarray]]):
        self._stream = stream
        self._frames: dict[int, np.ndarray] = {}

    def __getitem__(self, i: int) -> np.ndarray:
        while i not in self._frames:
            try:
                j, rgb = next(self._stream)
            except StopIteration:
                raise TamError(f"frame {i} was not filled by the previous pass") from None
            self._frames[j] = rgb
        return self._frames[i]

    def evict(self, lo: int) -> None:
        for k in [k for k in self._frames if k < lo]:
            del self._frames[k]


# ----------------------------------------------------------------------------- backend


_OFFSETS = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)  # x, y
# _DIRECTIONS in inpaint.solve are (dy, dx): (0,1), (0,-1), (1,0), (-1,0) -> offsets 1..4 here


class FlowGuidedInpainter(Inpainter):
    """Flow-guided video completion (see the module docstring for the method).

    ``FlowGuidedInpainter(keyframe_filler=None, **config)``: ``config`` holds the
    fields of :class:`FlowGuidedConfig`.

    **Keyframe filler hook.** Pixels that no frame within ``radius`` shows, and
    that the current keyframe cannot supply, are filled on a keyframe by
    ``keyframe_filler(rgb, hole) -> rgb``: ``rgb`` is the keyframe (HxWx3 uint8,
    with every pixel the video could supply already filled in), ``hole`` is a
    bool HxW mask of the never-seen pixels (with the narrow notches of known
    pixels that cut into them, see the module docstring); it returns an HxWx3
    uint8 image whose never-seen pixels are used (those outside ``hole`` are
    ignored). It is called rarely, by the first pass only (when new content must
    be invented), and the fill it returns is carried along the flow to the
    following frames. A filler with a true ``takes_views`` attribute is called as
    ``keyframe_filler(rgb, hole, sources=[(rgb, known), ...], start=mask)``: other
    frames of the window to copy from, and the hole pixels that hold a carried fill
    to sharpen (see the module docstring). The default (``filler="exemplar"``)
    copies patches from the rest of the frame and those views (:mod:`inpaint.exemplar`); ``telea`` and ``ns`` are OpenCV's
    smooth fills; a generative model (e.g. Stable Diffusion inpainting) can be plugged
    in here without touching the propagation.
    """

    name = "flow"

    def __init__(self, keyframe_filler: KeyframeFiller | None = None, **config):
        self.config = FlowGuidedConfig(**config)
        self.keyframe_filler = keyframe_filler or default_filler(self.config)

    # -- public API ---------------------------------------------------------

    def inpaint(self, frames: FrameSequence, masks: FrameSequence,
                indices: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        n = len(frames)
        if len(masks) != n:
            raise MaskError(f"{len(masks)} masks for {n} frames")
        if indices is None:
            targets = range(n)
        else:
            targets = sorted(set(int(i) for i in indices))
            bad = [i for i in targets if not 0 <= i < n]
            if bad:
                raise IndexError(f"frame index {bad[0]} out of range for a video of {n} frames")
        return self._run(frames, masks, targets)

    def preview(self, frames: FrameSequence, masks: FrameSequence, index: int,
                radius: int | None = None) -> np.ndarray:
        """Frame ``index`` filled using only frames within ``passes * radius + 1`` of it.

        The default radius is ``min(config.radius, PREVIEW_RADIUS)``: a couple of
        seconds at 480p. The full run may fill some pixels differently (it reaches
        further and carries keyframes along).
        """
        radius = min(self.config.radius, PREVIEW_RADIUS) if radius is None else radius
        runner = FlowGuidedInpainter(self.keyframe_filler, **{**self.config.__dict__, "radius": radius})
        for _, rgb in runner.inpaint(frames, masks, [index]):
            return rgb
        raise TamError("no frame was produced")  # unreachable: inpaint yields once per index

    # -- the work -----------------------------------------------------------

    def _run(self, frames, masks, targets) -> Iterator[tuple[int, np.ndarray]]:
        cfg = self.config
        n = len(frames)
        # a later pass blends the hole that the pass before it blended ``radius`` frames earlier
        source = _Source(frames, masks, 4 + (cfg.passes - 1) * (cfg.radius + 2))
        stream = None
        for p in range(cfg.passes):
            # this pass fills the targets and, for each later pass, the frames within its reach
            reach = cfg.radius * (cfg.passes - 1 - p)
            back = reach if not cfg.restart else self.restart_reach(p) + RESTART_WARMUP
            needed = sorted({j for t in targets for j in range(max(0, t - back), min(n, t + reach + 1))})
            guide = _Filled(stream) if stream is not None else None
            stream = self._pass(source, needed, guide, p)
        return stream

    def _pass(self, source: _Source, targets: Sequence[int], guide: _Filled | None,
              owner: int) -> Iterator[tuple[int, np.ndarray]]:
        """One pass over ``targets``: the first completes the flow by interpolation and makes
        keyframes; a later one re-estimates the flow on ``guide`` (the previous pass's output)."""
        cfg = self.config
        win = _Window(source, cfg, guide, owner)
        prev_t = None
        # a chain's state: (keyframe, previous output). The keyframe is (rgb float32, coordinate map HxWx2
        # into it) or None; the previous output (float32) feeds the temporal smoothing
        state = (None, None)  # the chain whose output is yielded
        warm = None  # the chain begun RESTART_WARMUP frames before the next restart, inside that warm-up
        chain = None  # where the yielded chain started
        for t in targets:
            win.evict(t - cfg.radius, t + cfg.radius)
            rgb, hole = win.rgb(t), win.hole(t)
            consecutive = prev_t is not None and t == prev_t + 1
            prev_t = t
            if not hole.any() or not consecutive:
                state, warm, chain = (None, None), None, t
            else:
                if self.restarts_at(t, owner):
                    if chain < t - RESTART_WARMUP:  # else the yielded chain began in the warm-up: the same
                        state = warm
                    warm, chain = None, t - RESTART_WARMUP
                state = self._carry(state, win, t)
                warm = self._carry(warm, win, t)
            if not hole.any():
                yield t, rgb.copy()
                continue
            g = None if guide is None else guide[t]
            start = self._warmup_start(t, owner)
            dual = start is not None and chain < start
            if dual:
                warm_out, warm = self._step(win, t, (None, None) if t == start else warm, g)
            out, state = self._step(win, t, state, g)
            if dual and owner == 0:  # cross-fade to the chain the restart keeps (its own keyframe fill)
                a = (t - start + 1) / (RESTART_WARMUP + 1)
                out = np.clip(out * (1.0 - a) + warm_out * a + 0.5, 0, 255).astype(np.uint8)
            yield t, out

    def _carry(self, state, win: _Window, t: int):
        """A chain's state carried from frame t - 1 to ``t`` (its keyframe follows the flow)."""
        if state is None or state[0] is None:
            return state
        key, prev = state
        return (key[0], self._advance(key[1], win.bwd(t))), prev

    def _step(self, win: _Window, t: int, state, guide: np.ndarray | None):
        """Fill frame ``t`` from a chain's state; returns (output, the chain's new state)."""
        key, prev = state
        out, keyframe = self._fill(win, t, key, prev, guide)
        prev = out.astype(np.float32) if self.config.smoothing > 0 else None
        if keyframe and guide is None:
            h, w = out.shape[:2]
            grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
            key = (out.astype(np.float32), grid)
        return out, (key, prev)

    def restart_reach(self, owner: int = 0) -> int:
        """Frames from pass ``owner``'s restarts to the last pass's (see :meth:`restarts_at`)."""
        cfg = self.config
        return (cfg.passes - 1 - owner) * (cfg.radius + RESTART_WARMUP)

    def restarts_at(self, t: int, owner: int) -> bool:
        """Whether pass ``owner`` restarts its carried state at frame ``t``.

        With ``restart`` = R > 0 the last pass restarts at every multiple of R and
        each earlier pass :meth:`restart_reach` frames earlier. ``RESTART_WARMUP``
        frames before a restart, each pass begins a second chain from nothing (a
        new keyframe, no smoothing history) and at the restart keeps that one only;
        the first pass cross-fades its output to it over the warm-up, a later pass
        switches when its smoothing has converged, so the output does not jump. The
        output of frames [kR, (k+1)R) then depends only on frames from
        kR - restart_reach(0) - RESTART_WARMUP - radius on: a run asked for those
        frames alone (a chunk of a parallel job) yields them bit for bit as the
        whole run does.
        """
        cfg = self.config
        k = t + self.restart_reach(owner)
        return cfg.restart > 0 and k > 0 and k % cfg.restart == 0

    def _warmup_start(self, t: int, owner: int) -> int | None:
        """The first frame of the warm-up before pass ``owner``'s next restart when ``t`` lies in it."""
        cfg = self.config
        if not cfg.restart or (owner > 0 and cfg.smoothing <= 0):
            return None
        reach = self.restart_reach(owner)
        nxt = ((t + reach) // cfg.restart + 1) * cfg.restart - reach  # the next restart after t
        start = nxt - RESTART_WARMUP
        return start if start <= t else None

    @staticmethod
    def _advance(coords: np.ndarray, bwd: np.ndarray) -> np.ndarray:
        """Carry a coordinate map one frame forward: C_t(x) = C_{t-1}(x + bwd_t(x))."""
        h, w = bwd.shape[:2]
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        return cv2.remap(coords, gx + bwd[..., 0], gy + bwd[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(-1e6, -1e6))

    def _samples(self, image: np.ndarray, pts: np.ndarray, interp: int | None = None) -> np.ndarray:
        """Colours at ``pts`` and at its four neighbours: N x 5 x 3 (``interp``: the config's by default)."""
        if interp is None:
            interp = cv2.INTER_CUBIC if self.config.interpolation == "cubic" else cv2.INTER_LINEAR
        h, w = image.shape[:2]
        q = (pts[:, None, :] + _OFFSETS[None]).reshape(-1, 2)  # one remap for all five
        np.clip(q[:, 0], 0, w - 1, out=q[:, 0])
        np.clip(q[:, 1], 0, h - 1, out=q[:, 1])
        return _sample(image, q, interp).reshape(len(pts), len(_OFFSETS), 3)

    def _fill(self, win: _Window, t: int, key, previous: np.ndarray | None,
              guide: np.ndarray | None) -> tuple[np.ndarray, bool]:
        cfg = self.config
        rgb, hole = win.rgb(t), win.hole(t)
        h, w = hole.shape
        ys, xs = np.nonzero(hole)
        pts = np.stack([xs, ys], axis=1).astype(np.float32)
        npts = len(pts)

        # the nearest known landings forward and backward in time
        results = []
        for step in (1, -1):
            samples = np.zeros((npts, len(_OFFSETS), 3), np.float32)
            found, dist = self._chain_into(win, t, pts, step, samples)
            results.append((found, dist, samples))
        (ff, df, fsm), (bf, db, bsm) = results
        if cfg.combine == "nearest":
            wf = (ff & (~bf | (df <= db))).astype(np.float32)
            wb = (bf & ~(wf > 0)).astype(np.float32)
        elif cfg.combine == "equal":
            wf, wb = ff.astype(np.float32), bf.astype(np.float32)
        else:
            wf = np.where(ff, 1.0 / np.maximum(df, 1), 0).astype(np.float32)
            wb = np.where(bf, 1.0 / np.maximum(db, 1), 0).astype(np.float32)
        total = wf + wb
        seen = total > 0
        samples = np.zeros((npts, len(_OFFSETS), 3), np.float32)
        samples[seen] = (fsm[seen] * wf[seen, None, None] + bsm[seen] * wb[seen, None, None]) / total[seen, None, None]

        unseen = ~seen
        made_keyframe = False
        if unseen.any() and guide is not None:
            # a later pass: what no frame shows keeps the previous pass's fill (no new keyframes)
            idx = np.nonzero(unseen)[0]
            samples[idx] = self._samples(guide.astype(np.float32), pts[idx])
            unseen[idx] = False
        carried = np.zeros(npts, bool)  # never-seen pixels carried from the keyframe, to be refreshed
        views = getattr(self.keyframe_filler, "takes_views", False)
        if unseen.any() and key is not None:
            kimg, coords = key
            c = coords[ys[unseen], xs[unseen]]
            ok = _inside(c, w, h)
            idx = np.nonzero(unseen)[0][ok]
            if len(idx):
                samples[idx] = self._samples(kimg, c[ok], cv2.INTER_CUBIC)  # no blur piles up over keyframes
                if views and magnification(coords, ys[idx], xs[idx]) > REFRESH_ZOOM:
                    carried[idx] = True  # blurred by the zoom: refined by the filler below
                else:
                    unseen[idx] = False
        if unseen.any():
            made_keyframe = True
            draft = rgb.copy()
            has = ~unseen | carried
            draft[ys[has], xs[has]] = np.clip(samples[has, 0] + 0.5, 0, 255).astype(np.uint8)
            never = np.zeros((h, w), bool)
            never[ys[unseen], xs[unseen]] = True
            never = _close_notches(never)
            if views:
                start = np.zeros((h, w), bool)
                start[ys[carried], xs[carried]] = True
                filled = np.asarray(self.keyframe_filler(draft, never, sources=self._views(win, t, never),
                                                         start=start))
            else:
                filled = np.asarray(self.keyframe_filler(draft, never))
            if filled.shape != rgb.shape:
                raise TamError(f"keyframe filler returned shape {filled.shape}, expected {rgb.shape}")
            idx = np.nonzero(unseen)[0]
            samples[idx] = self._samples(filled.astype(np.float32), pts[idx])

        if previous is not None and cfg.smoothing > 0 and t > 0:
            # recursive temporal smoothing: blend with the previous output, carried by the flow.
            # Only propagated pixels: a keyframe's fill is already carried along the same flow,
            # and blending it with its own resampled copy would only blur it frame after frame
            back = pts + _sample(win.bwd(t), pts)
            ok = _inside(back, w, h) & seen
            samples[ok] = (1 - cfg.smoothing) * samples[ok] + cfg.smoothing * self._samples(previous, back[ok])

        out = rgb.copy()
        if cfg.poisson:
            # known pixels in narrow notches of the spatially filled part are most likely
            # object pixels the mask missed: the blend must not drag the fill towards them.
            # Later passes keep the first pass's choice, so they reuse its factorisation.
            if guide is None:
                spatial = np.zeros((h, w), bool)
                spatial[ys[~seen], xs[~seen]] = True
                free = _close_notches(spatial) & ~hole if spatial.any() else None
                win.source.free[t] = free if free is not None and free.any() else None
            values = self._blend(win.solver(hole, win.source.free.get(t), blend=True,
                                            final=win.owner == cfg.passes - 1), rgb, samples)
        else:
            values = samples[:, 0]
        out[ys, xs] = np.clip(values + 0.5, 0, 255).astype(np.uint8)
        return out, made_keyframe

    def _views(self, win: _Window, t: int, never: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Other frames of the window that a keyframe filler may copy patches from: the two
        farthest (``radius`` frames away), as (rgb, known pixels), if they show some of ``never``."""
        views = []
        for j in sorted({max(0, t - self.config.radius), min(win.n - 1, t + self.config.radius)} - {t}):
            hole = win.hole(j)
            if (never & win.hole(t) & ~hole).any():
                views.append((win.rgb(j), ~hole))
        return views

    def _chain_into(self, win: _Window, t: int, pts: np.ndarray, step: int, samples: np.ndarray):
        """Follow hole pixels of ``t`` along the completed flow in one direction.

        A pixel's chain ends when a step fails the forward-backward check, leaves
        the frame, or has collected ``candidates`` known landings. ``samples``
        (N x 5 x 3) receives the mean of the landings' colours (with neighbours,
        for the blending gradients); returns (found, mean temporal distance).
        """
        cfg = self.config
        h, w = win.shape
        npts = len(pts)
        hits = np.zeros(npts, np.int32)
        dist = np.zeros(npts, np.float32)
        alive = np.ones(npts, bool)
        cur = pts.copy()
        s = t
        while True:
            nxt = s + step
            if not 0 <= nxt < win.n or abs(nxt - t) > cfg.radius:
                break
            active = np.nonzero(alive & (hits < cfg.candidates))[0]
            if not len(active):
                break
            p = cur[active]
            flow = win.fwd(s) if step > 0 else win.bwd(s)
            back = win.bwd(nxt) if step > 0 else win.fwd(nxt)
            f = _sample(flow, p)
            q = p + f
            r = _sample(back, q)
            err = np.linalg.norm(f + r, axis=1)
            ok = _inside(q, w, h) & (err <= cfg.consistency + cfg.consistency_rel * np.linalg.norm(f, axis=1))
            alive[active[~ok]] = False
            cur[active] = q
            good = active[ok]
            if len(good):
                known = _sample(win.valid(nxt), cur[good]) > 0.999
                hit = good[known]
                if len(hit):
                    hits[hit] += 1
                    dist[hit] += abs(nxt - t)
                    samples[hit] += self._samples(win.rgbf(nxt), cur[hit])
            s = nxt
        found = hits > 0
        samples[found] /= hits[found, None, None]
        dist[found] /= hits[found]
        return found, dist

    @staticmethod
    def _blend(solver: HoleSolver, rgb: np.ndarray, samples: np.ndarray) -> np.ndarray:
        """Poisson reconstruction of the hole guided by each pixel's source gradients."""
        centre = samples[:, 0].astype(np.float64)
        # one-sided source gradients towards each direction of inpaint.solve._DIRECTIONS
        own = [samples[:, k].astype(np.float64) - centre for k in (1, 2, 3, 4)]
        opposite = (1, 0, 3, 2)
        guidance = []
        for k, (inside, nb, _, _) in enumerate(solver.links):
            g = own[k].copy()
            both = inside & (nb >= 0)
            # the neighbour's own estimate of the same difference, seen from its side
            g[both] = 0.5 * (g[both] - own[opposite[k]][nb[both]])
            guidance.append(g)
        return solver.poisson(rgb.astype(np.float64), guidance, centre)


class SmoothFlowInpainter(FlowGuidedInpainter):
    """Flow-guided completion whose never-seen pixels get OpenCV's smooth Telea fill.

    The previous default, kept for comparison: faster on keyframes, but a large
    hole that no frame reveals becomes a textureless smear.
    """

    name = "flow-smooth"

    def __init__(self, keyframe_filler: KeyframeFiller | None = None, **config):
        super().__init__(keyframe_filler, **{"filler": "telea", **config})
