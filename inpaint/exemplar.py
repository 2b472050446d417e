"""Exemplar-based image completion: the classical filler for pixels no frame shows.

:func:`complete` fills a hole with patches copied from the rest of the frame, by
multi-scale expectation-maximisation (Wexler et al. 2007) over PatchMatch
nearest-neighbour fields (Barnes et al. 2009):

1. An image pyramid is built down to the level where the hole is a few patches
   thick; a hole pixel of a coarser level covers any hole pixel below it.
2. At the coarsest level the hole starts from an onion-peel fill: pixel by pixel
   from the border inwards, each takes the centre of the source patch that best
   matches what is already known around it (a smooth start would lead the search
   to flat sources of the averaged colour).
3. At every level, EM iterations alternate a PatchMatch search (each patch that
   touches the hole finds its most similar patch among the allowed sources,
   compared over known and current hole pixels alike) and a vote (each hole pixel
   takes what the best-matching patch covering it proposes; Wexler's weighted
   mean of all proposals is an option, but it blurs). Structure
   that enters the hole at a coarse level is continued there and refined below.
4. The field is carried one level down (coordinates doubled) and a vote gives
   the finer level's start, so the finer level refines the coarse layout instead
   of inventing a new one.

**Texture.** Patches are compared on colour and on two texture channels (local
means of the absolute grey gradients, Newson et al. 2014), so a flat source of
the right mean colour does not win over a textured one where the fill is still
uncertain, which is what turns plain EM fills into smears.

**Locality.** A source's distance adds a small cost growing with the square of
its offset from the target, so near sources win between similar ones, while
distant ones stay reachable where nothing near matches.

**Sources.** A source patch must lie wholly outside the hole and outside an
excluded band around it: the ``ring`` pixels nearest the hole (mask edges and
anti-aliased object borders) and a band that grows with the hole's size
(``band`` times the radius of a disc of the hole's area) on the lower part of the
hole, where the object's own shadow and contact zone usually lie; above an
object's middle only the ring is excluded, so a horizon or a wall next to its top
can continue behind it. If too few source patches are left, the band is narrowed
(then the ring) until enough are.

**Other views.** Other frames of the clip can be searched too (``sources``): they
are stacked under the frame, each padded to a height that every pyramid level
halves exactly, and a source's offset cost is taken within its own view. Behind
a moving object, or after a zoom, they show material the frame itself lacks.

**Refinement.** Hole pixels marked as a ``start`` (a fill carried from an earlier
frame, blurred by a zoom) keep their coarse layout: the onion start fills only the
rest, and the EM iterations sharpen everything with copied patches.

Everything is deterministic for a given ``seed``. Loops are numba-compiled
(:mod:`inpaint.patchmatch`); nothing here imports torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from inpaint.solve import push_pull

MIN_SOURCES = 64  # fewest source patches worth searching; below this the band narrows
TEXTURE_WINDOW = 5  # side of the box over which texture features are averaged (pixels)
MIN_LEVEL_SIDE = 24  # no pyramid level is smaller than this (shorter side, pixels)


@dataclass(frozen=True)
class ExemplarConfig:
    """Settings of :func:`complete`.

    ``patch``: side of the square patches (odd, pixels). ``ring``: width in pixels
    of the band next to the hole never used as a source. ``band``: extra excluded
    width as a fraction of the hole's equivalent radius (sqrt(area / pi)), capped
    at ``band_max`` pixels, and only on rows below ``band_from`` of the height of
    the nearest part of the hole (0: all around): a shadow falls on the ground, while
    what lies above and beside an object's top (sky, hills, a wall) continues behind
    it. ``coarse_iterations`` / ``fine_iterations``: EM
    iterations at the coarsest / finest level (interpolated between);
    ``search_iterations``: PatchMatch sweeps per EM iteration. ``vote``: ``best``
    (each pixel copies its best covering patch's colour: sharp) or ``mean``
    (Wexler's weighted mean, weights exp(-d / 2 sigma^2) with sigma^2 the
    ``sigma_percentile`` of the distances; ``sharp_final`` still copies on the last
    iteration). ``texture_weight``: weight of the two texture channels (local mean
    |gradient| of the grey image, grey levels) next to the colour channels in patch
    distances; 0 compares colour alone. ``locality``: cost per squared pixel of
    offset between a target patch and its source (in full-resolution pixels, added
    to the patch distance), so that of two similar sources the nearer one wins:
    the material next to a hole is more often the one behind it. ``row_bias``: factor
    on the cost of row offsets (above 1 prefers sources in the same rows, so a band that
    enters the hole from the side, such as a kerb or a line of hills, runs on through it).
    ``seed`` makes the random search reproducible.
    """

    patch: int = 7
    ring: int = 3
    band: float = 0.3
    band_max: int = 24
    band_from: float = 0.5
    coarse_iterations: int = 8
    fine_iterations: int = 2
    search_iterations: int = 2
    vote: str = "best"
    sharp_final: bool = True
    sigma_percentile: float = 75.0
    texture_weight: float = 3.0
    locality: float = 2.0
    row_bias: float = 8.0
    start: str = "onion"  # coarsest level's first fill: onion (patch-based, border inwards) or pushpull
    start_candidates: int = 400  # random source patches tried per pixel by the onion start
    seed: int = 0

    def __post_init__(self):
        if self.patch < 3 or self.patch % 2 == 0:
            raise ValueError(f"patch must be odd and >= 3, got {self.patch}")
        if self.ring < 0 or self.band < 0 or self.band_max < 0:
            raise ValueError("ring, band and band_max must be >= 0")
        if not 0 <= self.band_from <= 1:
            raise ValueError(f"band_from must be in [0, 1], got {self.band_from}")
        if min(self.coarse_iterations, self.fine_iterations, self.search_iterations) < 1:
            raise ValueError("iteration counts must be >= 1")
        if self.vote not in ("best", "mean"):
            raise ValueError(f"vote must be best or mean, got {self.vote!r}")
        if self.start not in ("onion", "pushpull"):
            raise ValueError(f"start must be onion or pushpull, got {self.start!r}")
        if self.locality < 0 or self.row_bias <= 0:
            raise ValueError("locality must be >= 0 and row_bias > 0")
        if self.start_candidates < 1:
            raise ValueError("start_candidates must be >= 1")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")


def excluded_sources(hole: np.ndarray, cfg: ExemplarConfig) -> np.ndarray:
    """Known pixels never used as a source (bool HxW): within ``ring`` px of ``hole``,
    and within ``ring + band`` px of it on rows below ``band_from`` of the height of
    the nearest part of the hole (where an object's shadow and contact zone lie)."""
    area = float(hole.sum())
    width = cfg.ring + min(cfg.band_max, cfg.band * math.sqrt(area / math.pi))
    ring = _grow(hole, cfg.ring) & ~hole
    band = _grow(hole, int(round(width))) & ~hole
    if cfg.band_from <= 0 or not band.any():
        return band
    _, labels = cv2.distanceTransformWithLabels((~hole).astype(np.uint8), cv2.DIST_L2, 3,
                                                labelType=cv2.DIST_LABEL_CCOMP)
    rows = np.arange(hole.shape[0])[:, None].repeat(hole.shape[1], axis=1)
    top = np.full(labels.max() + 1, hole.shape[0], np.int64)
    bottom = np.zeros(labels.max() + 1, np.int64)
    np.minimum.at(top, labels[hole], rows[hole])
    np.maximum.at(bottom, labels[hole], rows[hole])
    start = top + cfg.band_from * (bottom - top)
    return ring | (band & (rows >= start[labels]))


def _grow(mask: np.ndarray, r: int) -> np.ndarray:
    if r <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _source_centres(blocked: np.ndarray, half: int) -> np.ndarray:
    """uint8 HxW: 1 where a patch centred there lies inside the image and touches no blocked pixel."""
    h, w = blocked.shape
    side = 2 * half + 1
    near = cv2.dilate(blocked.astype(np.uint8), np.ones((side, side), np.uint8))
    valid = (near == 0).astype(np.uint8)
    valid[:half], valid[h - half:], valid[:, :half], valid[:, w - half:] = 0, 0, 0, 0
    return valid


def _levels(hole: np.ndarray, shape: tuple[int, int], patch: int) -> int:
    """Pyramid levels below the full size: until the hole is about two patches thick."""
    thickness = 2.0 * float(cv2.distanceTransform(np.pad(hole, 1).astype(np.uint8), cv2.DIST_L2, 5).max())
    n = 0
    while thickness / 2 ** n > 2 * patch and min(shape) / 2 ** (n + 1) >= MIN_LEVEL_SIDE:
        n += 1
    return n


def _down(img: np.ndarray, hole: np.ndarray, blocked: np.ndarray):
    h, w = hole.shape
    size = ((w + 1) // 2, (h + 1) // 2)
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    small_blocked = cv2.resize(blocked.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    return small, small_hole, small_blocked


class _Level:
    """One pyramid level: image, hole, allowed source centres, target patches."""

    def __init__(self, img: np.ndarray, hole: np.ndarray, blocked: np.ndarray, half: int):
        self.img = np.ascontiguousarray(img, dtype=np.float32)
        self.hole = hole
        self.hole_u8 = hole.astype(np.uint8)
        self.valid = _source_centres(blocked | hole, half)
        side = 2 * half + 1
        touched = cv2.dilate(self.hole_u8, np.ones((side, side), np.uint8)) > 0
        ys, xs = np.nonzero(touched)
        self.targets = np.stack([ys, xs], axis=1).astype(np.int32)
        self.index = np.full(hole.shape, -1, np.int32)
        self.index[ys, xs] = np.arange(len(ys), dtype=np.int32)
        vy, vx = np.nonzero(self.valid)
        self.valid_list = np.stack([vy, vx], axis=1).astype(np.int32)


def _pyramid(img: np.ndarray, hole: np.ndarray, other: np.ndarray, depth: int,
             cfg: ExemplarConfig) -> list[_Level]:
    """Levels from finest to coarsest (at most ``depth`` below the finest).

    ``other``: pixels never used as a source besides the hole's excluded band (the
    other views' holes, the padding between views). The band narrows if too few
    sources remain.
    """
    half = cfg.patch // 2
    for scale in (1.0, 0.5, 0.0):
        narrowed = ExemplarConfig(**{**cfg.__dict__, "band": cfg.band * scale,
                                     "ring": cfg.ring if scale > 0 else 0})
        blocked = excluded_sources(hole, narrowed) | other
        levels = [_Level(img, hole, blocked, half)]
        if len(levels[0].valid_list) >= MIN_SOURCES:
            break
    small, h, b = levels[0].img, hole, blocked
    for _ in range(depth):
        small, h, b = _down(small, h, b)
        level = _Level(small, h, b, half)
        if len(level.valid_list) < MIN_SOURCES:
            break
        levels.append(level)
    if cfg.texture_weight > 0:
        for level in levels:
            level.img = _with_texture(level.img, level.hole, cfg.texture_weight)
    return levels


def _stack(rgb: np.ndarray, hole: np.ndarray, sources, depth: int, ring: int):
    """The frame and the other views stacked one above the other, each padded to ``period`` rows.

    ``period`` is a multiple of ``2 ** depth`` with at least one padding row, so
    every pyramid level keeps the views apart. Returns (image float32, hole,
    unusable pixels: the views' unknown pixels grown by ``ring`` and the padding,
    period).
    """
    h, w = hole.shape
    if not sources:
        return rgb.astype(np.float32), hole, np.zeros_like(hole), h
    step = 2 ** depth
    period = -(-(h + 1) // step) * step
    pad = period - h
    imgs, holes, others = [], [], []
    for k, (view, known) in enumerate([(rgb, ~hole)] + list(sources)):
        view, known = np.asarray(view), np.asarray(known, bool)
        if view.shape != rgb.shape or known.shape != hole.shape:
            raise ValueError(f"a source view has shape {view.shape} / {known.shape}, expected {rgb.shape}")
        imgs.append(np.pad(view, ((0, pad), (0, 0), (0, 0)), mode="edge"))
        holes.append(np.pad(hole if k == 0 else np.zeros_like(hole), ((0, pad), (0, 0))))
        unusable = np.zeros_like(hole) if k == 0 else _grow(~known, ring)
        others.append(np.pad(unusable, ((0, pad), (0, 0)), constant_values=True))
    return (np.concatenate(imgs).astype(np.float32), np.concatenate(holes), np.concatenate(others), period)


def _with_texture(rgb: np.ndarray, hole: np.ndarray, weight: float) -> np.ndarray:
    """``rgb`` plus two texture channels: local means of |d/dx| and |d/dy| of the grey image.

    Patches compared with these channels tell a textured region from a flat one of
    the same mean colour (Newson et al. 2014), which keeps flat sources from
    winning wherever the fill is still uncertain. The hole's values come from a
    smooth fill first, so known pixels next to it see no garbage.
    """
    grey = rgb.mean(axis=2).astype(np.float32)
    grey = push_pull(grey, hole)
    gx = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)) / 4
    gy = np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) / 4
    feats = [cv2.blur(g, (TEXTURE_WINDOW, TEXTURE_WINDOW)) * weight for g in (gx, gy)]
    return np.ascontiguousarray(np.dstack([rgb] + feats), dtype=np.float32)


def _weights(dist: np.ndarray, percentile: float) -> np.ndarray:
    """Vote weights exp(-d / 2 sigma^2), sigma^2 the given percentile of the distances."""
    sigma2 = float(np.percentile(dist, percentile)) + 1e-3
    return np.exp(-dist / (2.0 * sigma2)).astype(np.float32)


def complete(rgb: np.ndarray, hole: np.ndarray, config: ExemplarConfig | None = None,
             sources=(), start: np.ndarray | None = None) -> np.ndarray:
    """``rgb`` (HxWx3 uint8) with ``hole`` (bool HxW) filled from patches of the rest of the frame.

    ``sources``: other views of the scene (frames of the same clip) as pairs
    (RGB uint8 HxWx3, bool HxW of their usable pixels); their patches are searched
    too, the offset cost taken within each view. ``start`` (bool HxW): hole
    pixels whose values in ``rgb`` are a draft to refine (a fill carried from an
    earlier frame): the coarse layout is taken from them instead of being made
    anew. Pixels outside ``hole`` are
    returned unchanged. Raises ValueError on bad shapes. A frame without a single
    wholly known patch gets a smooth push-pull fill.
    """
    from inpaint import patchmatch as pm

    cfg = config or ExemplarConfig()
    rgb = np.asarray(rgb)
    hole = np.asarray(hole, bool)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 HxWx3, got {rgb.dtype} {rgb.shape}")
    if hole.shape != rgb.shape[:2]:
        raise ValueError(f"hole has shape {hole.shape}, expected {rgb.shape[:2]}")
    if not hole.any():
        return rgb.copy()
    half = cfg.patch // 2
    h = hole.shape[0]
    depth = _levels(hole, hole.shape, cfg.patch)
    img, stacked, other, period = _stack(rgb, hole, sources, depth, cfg.ring)
    levels = _pyramid(img, stacked, other, depth, cfg)
    if len(levels[0].valid_list) == 0:  # no whole patch is known (a tiny or nearly covered frame)
        return push_pull(rgb, hole)
    keep = None
    if start is not None and np.any(start & hole):
        keep = np.zeros(stacked.shape, np.float32)
        keep[:h] = start & hole
        for _ in range(len(levels) - 1):
            keep = cv2.resize(keep, ((keep.shape[1] + 1) // 2, (keep.shape[0] + 1) // 2),
                              interpolation=cv2.INTER_AREA)
        keep = keep > 0.999
    _start(levels[-1], cfg, len(levels) - 1, period, keep)
    nnf = None
    depth = len(levels)
    for li in range(depth - 1, -1, -1):
        rows = np.int64(period // 2 ** li)
        lv = levels[li]
        seed = cfg.seed * 1000 + li * 17 + 1
        n = len(lv.targets)
        if nnf is None:
            nnf = pm.random_field(lv.valid_list, n, seed)
        else:
            nnf = _upsample(nnf, levels[li + 1], lv, seed)
        dist = np.empty(n, np.float32)
        lam_x = np.float32(cfg.locality * 4.0 ** li)
        lam = (np.float32(lam_x * cfg.row_bias), lam_x, rows)  # (rows, columns, view period)
        pm.distances(lv.img, lv.targets, nnf, half, dist, *lam)
        if li < depth - 1:  # the field from the level above gives this level's start
            pm.vote(lv.img, lv.hole_u8, lv.targets, nnf, _weights(dist, cfg.sigma_percentile), half, lv.img)
            pm.distances(lv.img, lv.targets, nnf, half, dist, *lam)
        frac = li / (depth - 1) if depth > 1 else 0.0
        iterations = int(round(cfg.fine_iterations + frac * (cfg.coarse_iterations - cfg.fine_iterations)))
        for it in range(iterations):
            pm.patchmatch(lv.img, lv.valid, lv.targets, lv.index, nnf, dist, half,
                          cfg.search_iterations, seed + 101 * (it + 1), *lam)
            last = li == 0 and it == iterations - 1
            if cfg.vote == "best" or (last and cfg.sharp_final):
                pm.vote_best(lv.img, lv.hole_u8, lv.targets, nnf, dist, half, lv.img)
            else:
                pm.vote(lv.img, lv.hole_u8, lv.targets, nnf, _weights(dist, cfg.sigma_percentile), half, lv.img)
            pm.distances(lv.img, lv.targets, nnf, half, dist, *lam)
    out = rgb.copy()
    out[hole] = np.clip(levels[0].img[:h, :, :3][hole] + 0.5, 0, 255).astype(np.uint8)
    return out


def _start(level: _Level, cfg: ExemplarConfig, li: int, period: int, keep: np.ndarray | None) -> None:
    """The coarsest level's first fill: onion peel from the border inwards, else push-pull.

    Hole pixels in ``keep`` already hold a start and serve as known context.
    """
    from inpaint import patchmatch as pm

    todo = level.hole if keep is None else level.hole & ~keep
    if not todo.any():
        return
    if cfg.start == "pushpull":
        start = push_pull(level.img, todo)
        level.img[todo] = start[todo]
        return
    todo_u8 = todo.astype(np.uint8)
    depth = cv2.distanceTransform(np.pad(todo_u8, 1, constant_values=1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    ys, xs = np.nonzero(todo)
    rank = np.lexsort((xs, ys, np.floor(depth[ys, xs])))  # layer by layer, raster order within
    order = np.stack([ys[rank], xs[rank]], axis=1).astype(np.int32)
    lam_x = np.float32(cfg.locality * 4.0 ** li / cfg.patch ** 2)  # per compared pixel
    pm.onion_fill(level.img, todo_u8, order, level.valid_list, cfg.patch // 2, cfg.start_candidates,
                  cfg.seed * 1000 + 7, np.float32(lam_x * cfg.row_bias), lam_x, np.int64(period // 2 ** li))


def _upsample(nnf: np.ndarray, coarse: _Level, fine: _Level, seed: int) -> np.ndarray:
    """The coarse field carried to the finer level's targets: source = 2 * coarse match + offset."""
    from inpaint import patchmatch as pm

    ty, tx = fine.targets[:, 0], fine.targets[:, 1]
    cy = np.minimum(ty // 2, coarse.index.shape[0] - 1)
    cx = np.minimum(tx // 2, coarse.index.shape[1] - 1)
    k = coarse.index[cy, cx]
    out = pm.random_field(fine.valid_list, len(ty), seed)
    has = k >= 0
    sy = 2 * nnf[k[has], 0] + (ty[has] - 2 * cy[has])
    sx = 2 * nnf[k[has], 1] + (tx[has] - 2 * cx[has])
    h, w = fine.valid.shape
    ok = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
    ok[ok] = fine.valid[sy[ok], sx[ok]] > 0
    idx = np.nonzero(has)[0][ok]
    out[idx, 0], out[idx, 1] = sy[ok], sx[ok]
    return out


def exemplar_filler(config: ExemplarConfig | None = None):
    """A keyframe filler (``fill(rgb, hole) -> rgb``) for :class:`inpaint.flow_guided.FlowGuidedInpainter`."""
    cfg = config or ExemplarConfig()

    def fill(rgb: np.ndarray, hole: np.ndarray, sources=(), start: np.ndarray | None = None) -> np.ndarray:
        return complete(rgb, hole, cfg, sources, start)

    fill.takes_views = True  # the flow inpainter passes other frames and carried drafts

    return fill
