"""Classical click-to-mask segmentation: superpixel graph cut, no weights.

``set_image`` does the per-frame work once: SLIC superpixels on the Lab image,
a k-means colour palette with one palette histogram per superpixel (colour
and a little texture), an edge map, and the superpixel adjacency graph with
the contrast and edge strength along every shared boundary.

``predict`` is then cheap. It builds, per superpixel, three pieces of evidence:

* geodesic distance over the adjacency graph (steps cost colour change plus
  edge strength) from the positive clicks, against the negative clicks and a
  weak "background" seed on the image border or outside the box;
* colour/texture likelihood of the superpixel's palette histogram under a
  foreground and a background model weighted by that geodesic evidence
  (optionally re-estimated from the cut, GrabCut-style, on a few thousand nodes);
* the previous mask (``mask_input``), overridden only inside the newest click's
  own region: a positive click's geodesic growth (its extent chosen where the
  growth front's outline follows the strongest edges, but at least the
  previous mask's own geodesic spread around its positive clicks, so a click in
  the middle of a large miss takes in the miss rather than the nearest closed
  contour, capped by the previous mask's area), or for a negative click
  the part of the previous mask geodesically closer to it than to any positive
  click. Outside that region the previous mask is kept, so a click never
  undoes far-away work;

solves a graph cut over the superpixel graph (click superpixels are hard
constraints), then refines the boundary at pixel level with a second graph cut
restricted to a narrow band around the superpixel boundary (a piece of the
cut that the band would all but erase stays as the cut drew it), and, for masks
large enough to fit colour mixtures, polishes it with a few GrabCut iterations
in a window around the mask (mask as probable labels, clicks as definite).
The answer keeps only its pieces connected to a positive click or to the
previous mask: GrabCut's colour mixtures also take in far-away patches of the
object's colours (a strip of pavement beside a car) that no click asked for.
A later click's answer also keeps to the click's sign: a positive click only
adds to the previous mask and a negative click only takes away from it.

The first click alone (no ``mask_input``, no box) says nothing about how far
the object reaches beyond the region around it, and that region is one part of
the object (a shirt, a car's body) far more often than too much. So its answer
is grown once more by GrabCut in a box: the mask's bounding box grown by half
its size, everything inside it probable object, a margin of context around it
definite background (on a crop of at most ``box_side`` pixels a side). The
parts of other colours that lie within the box and match nothing in the
context around it (shorts, windows, wheels) are added, in the pieces connected
to the click. The box assumes the object fits in it; an answer larger than
the mask's own bounding box ran into the background and is dropped.

Measured with ``bench/bench_segment.py --frames 0,15,30 --threads 1`` (36
objects: frame 0, 15 and 30 of the public sequences), mIoU@1..5 went from
0.396 / 0.487 / 0.562 / 0.620 / 0.646 to 0.429 / 0.507 / 0.555 / 0.621 / 0.651
(frame 0 alone: 0.438 / 0.551 / 0.613 / 0.675 / 0.689 to 0.503 / 0.551 / 0.603
/ 0.648 / 0.679); the large DAVIS 2016 objects gain most at one click (0.418 to
0.498), the small, touching schoolgirls not at all (0.380). The grown first
mask reaches further from the click than the geodesic growth would, so the
spread a later positive click grows by (``adapt_q``) is the median distance
over the mask, not the 90th percentile (with 90, full-resolution box stage:
mIoU@5 0.634 against 0.646 before). Left to do: a later negative click on a
false alarm next to a part the box stage added (a car's shadow next to its
wheels) can take that part back, because it is geodesically closer to the
negative click than to the first one (car-shadow frame 0: 0.84 after one
click, 0.58 after five; 0.66 with the later changes below). At 854x480 the
median click went from 0.17 to 0.24 s (one thread); the box stage adds up to
0.85 s to a first click on a large object (blackswan: 0.34 to 1.19 s).
Full-resolution GrabCut scored 0.435 / 0.652 but added up to 3.6 s there.
Keeping only the pieces connected to a positive click or the previous mask
then took the 36-object mIoU@1..5 to 0.432 / 0.526 / 0.568 / 0.628 / 0.661
(frame 0: 0.502 / 0.554 / 0.602 / 0.654 / 0.687); doing it to the GrabCut
polish's additions alone lost a first click (0.421 at one click). Holding a
later click to its sign (the GrabCut polish after a click on a car's wheel took
back half of the car) gave 0.432 / 0.530 / 0.583 / 0.642 / 0.669 (frame 0:
0.502 / 0.554 / 0.613 / 0.659 / 0.687); rejecting a polish that changes the
mask much instead lost (0.625 at five clicks): most of its large changes help.
Narrower negative-click regions all mend the frame-0 cases above (a dog's far
half behind a pole, a car's wheels, mIoU@2 on frame 0 up to 0.59) but lose
more on frames 15 and 30, where a negative click must take back a large leak
(a swan's reflection, flowers behind a dog). 36-object mIoU@5: a min-cut
inside the region 0.56-0.59, its extent picked by the remaining outline's
edges 0.63-0.66, a colour term against the background or against the click's
own basin 0.62-0.66, seeds in the mask's deep interior 0.65-0.67, a flood fill
from the click that stops at strong edges 0.65. Dropping a box-stage answer
that runs along more than a tenth of the box's inner frame (it leaked into the
background: a swan's reflection) then gave 0.442 / 0.529 / 0.587 / 0.642 /
0.669 (frame 0 unchanged; blackswan from frame 15, first click 0.54 to 0.79).
The band refinement's colour models are the whole mask's, so a small, separate
part of another colour that a click had added (a girl's face above her dark
trousers) could vanish in it, leaving a click that changed nothing; keeping
every piece the band would shrink below a quarter of its area gave 0.442 /
0.531 / 0.592 / 0.645 / 0.669 (frame 0: 0.502 / 0.561 / 0.620 / 0.662 /
0.689), and the later clicks that mend under a tenth of the error region they
were aimed at went from 8 to 6 of 144 (the other six: a click on a wheel or a
shoe inside a large miss takes in only that closed outline).

How far the superpixels themselves allow: labelling each of them with the
ground truth's majority scores 0.798 on the twelve frame-0 objects (0.94 on
blackswan and car-shadow, 0.48 on schoolgirls' arm, #2), against 0.689 after
five clicks; ``bench/bench_segment.py`` prints it per object. Finer or zoomed-in
superpixels raise that ceiling (a crop around each schoolgirl at 480 pixels:
0.75 to 0.89 on their seven objects) but scored lower after five clicks (36
objects: 0.63-0.66 against 0.669).

The result's ``logits`` is a float32 map at image size (positive means
object), ready to be passed back as ``mask_input``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import maxflow
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from tam.errors import MaskError
from tam.segment.base import Prompt, Segmenter, SegmentResult


@dataclass(frozen=True)
class ClassicalSegmenterConfig:
    max_side: int = 960  # frames larger than this are processed downscaled
    superpixels: int = 2500  # target number of SLIC superpixels
    palette: int = 48  # colours in the k-means palette
    palette_sigma: float = 6.0  # Lab smoothing between palette colours in the colour models
    geo_edge: float = 40.0  # geodesic cost of crossing a full-strength edge (Lab units)
    geo_scale: float = 0.08  # fraction of the image's mean geodesic spread used to scale distances
    border_offset: float = 0.5  # border seeds start at this many geo-scales (weaker than negative clicks)
    w_colour: float = 1.0
    w_geo: float = 2.0
    w_prev: float = 2.0
    w_new: float = 6.0
    extent_tolerance: float = 1.0  # accept a wider front whose edge score is this close to the best
    union_extent: bool = True  # a positive click's growth is judged with the previous mask it joins
    growth_cap: float = 2.0  # a later click adds at most this many times the previous mask's area
    adapt_growth: float = 1.0  # a later positive click grows at least this many times the mask's own
    #                            geodesic spread (0: off) ...
    adapt_q: float = 50.0  # ... the spread being this percentile of the geodesic distance from the earlier
    #                        positive clicks over the previous mask ...
    adapt_cap: float = 0.5  # ... adding at most this many times the previous mask's area
    split_softness: float = 0.25  # geo-scales over which a negative click's split fades
    local_edits: bool = True  # later clicks change only the region around them
    monotone: bool = True  # a positive click only adds to the previous mask, a negative one only takes away:
    #                        the stages after the cut (GrabCut's colour models above all) otherwise also
    #                        undo earlier work far from the click, against the click's own sign
    keep_connected: bool = True  # the answer keeps only the pieces connected to a positive click or to the
    #                              previous mask: the GrabCut stages' colour models also take in far-away
    #                              patches of the object's colours that nothing asked for
    w_pair: float = 1.5
    rounds: int = 1  # colour-model re-estimation rounds
    click_radius: int = 3  # pixels around a click forced to its label
    refine: bool = True  # pixel-level boundary refinement
    refine_band: int = 6  # half-width (pixels) of the refinement band
    refine_pair: float = 6.0
    refine_keep: float = 0.25  # a piece of the cut that the refinement shrinks below this share of its area is
    #                            kept as the cut drew it: the band's colour models are the whole mask's, and a
    #                            small part of another colour (a face above a shirt) would vanish, leaving a
    #                            click that changes nothing
    grabcut_iters: int = 1  # pixel GrabCut polish of the mask in its neighbourhood (0: off)
    grabcut_min_area: int = 4000  # only for masks of at least this many (working) pixels: its
    #                               colour mixtures need enough samples to help
    grabcut_margin: float = 0.3  # neighbourhood: the mask's box grown by this fraction + 15 px
    box_grow: float = 0.5  # first click: GrabCut in the mask's bounding box grown by this fraction (0: off) ...
    box_iters: int = 2  # ... with this many iterations ...
    box_touch: float = 0.1  # ... and dropped when it covers more than this share of the box's inner frame
    #                         (an object fits inside its box; an answer along the frame leaked into the background)
    box_side: int = 480  # ... on the crop downscaled to at most this many pixels a side (0: full size)
    seed: int = 0
    extent_fractions: tuple[float, ...] = (0.002, 0.004, 0.007, 0.01, 0.015, 0.02, 0.03, 0.045, 0.06, 0.08, 0.1, 0.13,
                               0.17, 0.22)

    def __post_init__(self):
        if self.max_side < 64:
            raise ValueError("max_side must be >= 64")
        if self.superpixels < 16:
            raise ValueError("superpixels must be >= 16")
        if not 4 <= self.palette <= 256:
            raise ValueError("palette must be in 4..256")
        if self.rounds < 1:
            raise ValueError("rounds must be >= 1")
        for name in ("palette_sigma", "geo_scale", "w_colour", "w_geo", "w_pair", "refine_pair"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if not 0 <= self.adapt_q <= 100:
            raise ValueError("adapt_q must be in 0..100")
        for name in ("geo_edge", "border_offset", "w_prev", "click_radius", "refine_band", "grabcut_iters",
                     "grabcut_min_area", "grabcut_margin", "adapt_growth", "adapt_cap", "box_grow", "box_iters",
                     "box_side", "box_touch", "refine_keep"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass
class _Frame:
    """Everything ``predict`` needs about one prepared frame (working resolution)."""

    shape: tuple[int, int]  # original H, W
    rgb: np.ndarray  # h x w x 3 uint8 working image
    scale: float  # working / original
    lab: np.ndarray  # h x w x 3 float32
    edges: np.ndarray  # h x w float32 in [0, 1]
    labels: np.ndarray  # h x w int32 superpixel ids
    n: int
    size: np.ndarray  # n pixel counts
    mean: np.ndarray  # n x 3 mean Lab
    hist: np.ndarray  # n x K palette histograms (rows sum to 1)
    pix_palette: np.ndarray  # h x w palette index
    palette: np.ndarray  # K x 3 Lab
    kernel: np.ndarray  # K x K palette smoothing
    ei: np.ndarray  # adjacency pairs
    ej: np.ndarray
    blen: np.ndarray  # shared boundary length
    bedge: np.ndarray  # mean edge strength along the boundary
    dcol: np.ndarray  # Lab distance of the means
    geo_cost: np.ndarray  # geodesic step cost per pair
    border: np.ndarray  # bool n: superpixel touches the image border
    geo_unit: float  # distance scale for geodesic terms
    graph: object  # sparse n x n matrix of geodesic step costs


def _kmeans(x: np.ndarray, k: int, rng: np.random.RandomState, iters: int = 8) -> np.ndarray:
    """Plain k-means++ / Lloyd on a small sample; deterministic for a given ``rng``."""
    centres = [x[rng.randint(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else None
        c = x[rng.choice(len(x), p=p)]
        centres.append(c)
        d2 = np.minimum(d2, ((x - c) ** 2).sum(1))
    c = np.array(centres, np.float32)
    for _ in range(iters):
        a = _nearest(x, c)
        for j in range(k):
            sel = a == j
            if sel.any():
                c[j] = x[sel].mean(0)
    return c


def _nearest(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :]
    return np.argmin(d, axis=1).astype(np.int32)


def _to_lab(image: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return lab


def _softplus(x):
    return np.logaddexp(0.0, x)


class ClassicalSegmenter(Segmenter):
    """Superpixel graph cut driven by clicks, a box and the previous mask. Always available."""

    name = "classical"
    Config = ClassicalSegmenterConfig

    def __init__(self, **config):
        self.config = ClassicalSegmenterConfig(**config)
        self._frame: _Frame | None = None

    # ------------------------------------------------------------------ per frame
    def set_image(self, image: np.ndarray) -> None:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")
        cfg = self.config
        H, W = image.shape[:2]
        scale = min(1.0, cfg.max_side / max(H, W))
        work = image if scale == 1.0 else cv2.resize(
            image, (max(1, round(W * scale)), max(1, round(H * scale))), interpolation=cv2.INTER_AREA)
        h, w = work.shape[:2]
        lab = _to_lab(work)

        # edges: gradient magnitude of the lightly smoothed Lab image, robustly normalised
        sm = cv2.GaussianBlur(lab, (0, 0), 1.0)
        gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)
        mag = np.sqrt((gx * gx + gy * gy).sum(2))
        edges = np.clip(mag / (np.percentile(mag, 95) + 1e-6), 0, 1).astype(np.float32)

        # superpixels
        region = max(4, int(round(np.sqrt(h * w / cfg.superpixels))))
        lab8 = cv2.cvtColor(work, cv2.COLOR_RGB2Lab)
        slic = cv2.ximgproc.createSuperpixelSLIC(lab8, algorithm=cv2.ximgproc.SLICO, region_size=region)
        slic.iterate(10)
        slic.enforceLabelConnectivity(25)
        labels = slic.getLabels().astype(np.int32)
        _, labels = np.unique(labels.ravel(), return_inverse=True)
        labels = labels.reshape(h, w).astype(np.int32)
        n = int(labels.max()) + 1
        flat = labels.ravel()
        size = np.bincount(flat, minlength=n).astype(np.float64)
        mean = np.stack([np.bincount(flat, lab[..., c].ravel(), n) for c in range(3)], 1) / size[:, None]

        # palette and per-superpixel histograms
        rng = np.random.RandomState(cfg.seed)
        px = lab.reshape(-1, 3)
        sample = px[rng.choice(len(px), min(len(px), 12000), replace=False)]
        palette = _kmeans(sample, cfg.palette, rng)
        pix_palette = np.concatenate([_nearest(px[i:i + 65536], palette)
                                      for i in range(0, len(px), 65536)]).reshape(h, w)
        K = cfg.palette
        hist = np.bincount(flat * K + pix_palette.ravel(), minlength=n * K).reshape(n, K).astype(np.float64)
        hist /= hist.sum(1, keepdims=True)
        pd2 = ((palette[:, None, :] - palette[None, :, :]) ** 2).sum(2)
        kernel = np.exp(-pd2 / (2 * cfg.palette_sigma ** 2))
        kernel /= kernel.sum(1, keepdims=True)

        # adjacency with boundary length and strength
        pairs, strength = [], []
        for a, b, ea, eb in ((labels[:, :-1], labels[:, 1:], edges[:, :-1], edges[:, 1:]),
                             (labels[:-1, :], labels[1:, :], edges[:-1, :], edges[1:, :])):
            diff = a != b
            lo = np.minimum(a[diff], b[diff]).astype(np.int64)
            hi = np.maximum(a[diff], b[diff]).astype(np.int64)
            pairs.append(lo * n + hi)
            strength.append(np.maximum(ea[diff], eb[diff]))
        key = np.concatenate(pairs)
        strength = np.concatenate(strength)
        uniq, inv = np.unique(key, return_inverse=True)
        blen = np.bincount(inv).astype(np.float64)
        bedge = np.bincount(inv, strength).astype(np.float64) / blen
        ei, ej = (uniq // n).astype(np.int64), (uniq % n).astype(np.int64)
        dcol = np.linalg.norm(mean[ei] - mean[ej], axis=1)
        geo_cost = dcol + cfg.geo_edge * bedge + 1e-3

        border = np.zeros(n, bool)
        border[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True

        # distance unit: typical geodesic spread of this image (median distance from the centre node)
        centre = labels[h // 2, w // 2]
        graph = coo_matrix((np.concatenate([geo_cost, geo_cost]),
                            (np.concatenate([ei, ej]), np.concatenate([ej, ei]))), shape=(n, n)).tocsr()
        spread = dijkstra(graph, directed=False, indices=[int(centre)])[0]
        geo_unit = float(np.median(spread[np.isfinite(spread)])) * cfg.geo_scale + 1e-6

        self._frame = _Frame((H, W), np.ascontiguousarray(work), scale, lab, edges, labels, n, size, mean, hist,
                             pix_palette, palette, kernel, ei, ej, blen, bedge, dcol, geo_cost, border, geo_unit,
                             graph)

    # ------------------------------------------------------------------ per prompt
    def predict(self, prompt: Prompt, mask_input: np.ndarray | None = None) -> SegmentResult:
        if self._frame is None:
            raise RuntimeError("call set_image() before predict()")
        f, cfg = self._frame, self.config
        H, W = f.shape
        prompt.validate(W, H)
        h, w = f.labels.shape
        n = f.n
        pts = np.asarray(prompt.points, np.float64).reshape(-1, 2) * f.scale
        pts = np.clip(np.floor(pts), 0, [w - 1, h - 1]).astype(int)
        labs = np.asarray(prompt.labels).reshape(-1)
        pos_sp = np.unique(f.labels[pts[labs == 1, 1], pts[labs == 1, 0]])
        neg_sp = np.unique(f.labels[pts[labs == 0, 1], pts[labs == 0, 0]])
        neg_sp = np.setdiff1d(neg_sp, pos_sp)  # conflicting clicks: the positive one wins

        # box: outside is background, the box frame acts like the image border
        inside = np.ones(n, bool)
        box_ring = f.border.copy()
        if prompt.box is not None:
            x0, y0, x1, y1 = (v * f.scale for v in prompt.box)
            ys, xs = np.mgrid[0:h, 0:w]
            in_box = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
            frac = np.bincount(f.labels.ravel(), in_box.ravel(), n) / f.size
            inside = frac > 0.5
            ring_px = in_box & ~cv2.erode(in_box.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            box_ring = np.zeros(n, bool)
            box_ring[np.unique(f.labels[ring_px])] = True
            box_ring &= inside

        if not len(pos_sp) and prompt.box is None:
            # only negative clicks: nothing was asked for
            return SegmentResult(np.zeros((H, W), bool), 0.0, np.full((H, W), -4.0, np.float32))

        # previous mask as a per-superpixel fraction
        prev = prev_px = None
        if mask_input is not None:
            prev, prev_px = self._prev_fraction(mask_input)

        unit = f.geo_unit
        big = 1e9
        # geodesic distances
        if len(pos_sp):
            d_pos = dijkstra(f.graph, directed=False, indices=pos_sp, min_only=True)
        else:  # box only
            d_pos = None
        d_neg = (dijkstra(f.graph, directed=False, indices=neg_sp, min_only=True)
                 if len(neg_sp) else np.full(n, np.inf))
        ring = np.flatnonzero(box_ring & ~np.isin(np.arange(n), pos_sp))
        d_ring = (dijkstra(f.graph, directed=False, indices=ring, min_only=True) + cfg.border_offset * unit
                  if len(ring) else np.full(n, np.inf))
        d_bg = np.minimum(d_neg, d_ring)

        if d_pos is None:
            # no positive click: fg evidence is "far from the box frame"
            geo = np.clip(d_bg / unit - 1.0, -3, 3)
        else:
            limit = self._extent(d_pos, d_bg, inside)
            geo = np.clip((np.minimum(np.minimum(d_bg, 1e6), limit) - d_pos) / unit, -3, 3)
        geo = np.where(np.isfinite(geo), geo, -3.0)

        # initial foreground weights for the colour models
        fg_w = 1.0 / (1.0 + np.exp(-2.0 * geo))
        if prev is not None:
            fg_w = 0.5 * fg_w + 0.5 * prev
        fg_w[~inside] = 0.0
        fg_w0 = fg_w.copy()

        # the newest click's own region: where it overrides the previous mask
        prev_w = None
        new_term = np.zeros(n)
        if len(pts):
            sp_new = int(f.labels[pts[-1, 1], pts[-1, 0]])
            lab_new = int(labs[-1])
            d_new = dijkstra(f.graph, directed=False, indices=[sp_new])[0]
            d_opp = d_bg if lab_new == 1 else (d_pos if d_pos is not None else np.full(n, np.inf))
            if lab_new == 0 and prev is not None and d_pos is not None:
                # a negative click takes back the part of the previous mask that is
                # geodesically closer to it than to any positive click
                gap = np.clip((d_pos - d_new) / (cfg.split_softness * unit), -30, 30)
                infl = (prev > 0.5) / (1.0 + np.exp(-gap))
                perm = infl
            else:
                base = (prev > 0.5) if (prev is not None and cfg.union_extent) else None
                lim = self._extent(d_new, d_opp, inside, base)
                if lab_new == 1 and cfg.adapt_growth > 0 and prev is not None:
                    old_sp = np.unique(f.labels[pts[:-1][labs[:-1] == 1, 1], pts[:-1][labs[:-1] == 1, 0]])
                    lim = max(lim, self._spread_extent(d_new, d_opp, inside, prev > 0.5, old_sp))
                infl = 1.0 / (1.0 + np.exp(-2.0 * np.clip((np.minimum(lim, d_opp) - d_new) / unit, -6, 6)))
                perm = infl
            new_term = cfg.w_new * (1.0 if lab_new else -1.0) * infl
        else:
            infl = perm = np.zeros(n)
        if prev is not None:
            prev_w = cfg.w_prev * (1.0 - perm)

        # pairwise weights (symmetric)
        beta = 1.0 / (2.0 * np.mean(f.dcol ** 2) + 1e-6)
        pair = cfg.w_pair * np.sqrt(f.blen) * np.exp(-beta * f.dcol ** 2) * (1.0 - f.bedge) ** 2

        labels_fg = fg_w > 0.5
        for _ in range(cfg.rounds):
            colour = self._colour_logratio(fg_w)
            score = cfg.w_colour * colour + cfg.w_geo * geo + new_term
            if prev_w is not None:
                score = score + prev_w * (2 * prev - 1) * 3.0
            area = np.sqrt(f.size)
            cost_fg = _softplus(-score) * area  # paid when labelled foreground
            cost_bg = _softplus(score) * area
            cost_fg[~inside] = big
            cost_fg[neg_sp] = big
            cost_bg[pos_sp] = big
            labels_fg = self._cut(cost_fg, cost_bg, pair)
            if not labels_fg.any():
                break
            fg_w = 0.5 * labels_fg + 0.5 * fg_w0

        sp_score = np.where(labels_fg, 1.0, -1.0) * np.minimum(np.abs(score) + 0.5, 4.0)
        logits = sp_score[f.labels].astype(np.float32)
        mask = labels_fg[f.labels]
        if cfg.refine and mask.any():
            mask = self._refine_keeping_pieces(mask)
        if prev_px is not None and cfg.local_edits and len(pts):
            # a click edits the region it belongs to; the rest of the previous mask stays as it was
            region = (perm > 0.5)[f.labels].astype(np.uint8)
            region = cv2.dilate(region, np.ones((2 * cfg.refine_band + 1,) * 2, np.uint8)).astype(bool)
            mask = np.where(region, mask, prev_px)
        if cfg.grabcut_iters and np.count_nonzero(mask) >= cfg.grabcut_min_area:
            mask = self._grabcut(mask, pts, labs, inside_px=None if prompt.box is None else in_box)
        if cfg.box_grow > 0 and cfg.box_iters and prev_px is None and prompt.box is None and mask.any() \
                and (labs == 1).any():
            mask = self._box_grabcut(mask, pts, labs)
        if cfg.monotone and prev_px is not None and len(pts):
            mask = (mask | prev_px) if labs[-1] == 1 else (mask & prev_px)
        if cfg.keep_connected and mask.any() and ((labs == 1).any() or prev_px is not None):
            anchor = np.zeros_like(mask) if prev_px is None else prev_px.copy()
            for x, y in pts[labs == 1]:
                anchor[y, x] = True
            mask = self._connected_to(mask, anchor)
        # clicks: force a small disc to the click's label
        if cfg.click_radius > 0 and len(pts):
            for (x, y), lab in zip(pts, labs):
                cv2.circle(mask.view(np.uint8), (int(x), int(y)), cfg.click_radius, int(lab), -1)
        logits = np.where(mask, np.abs(logits), -np.abs(logits)).astype(np.float32)
        if f.scale != 1.0:
            logits = cv2.resize(logits, (W, H), interpolation=cv2.INTER_LINEAR)
            mask = logits > 0
        conf = float(np.clip(np.mean(np.abs(sp_score[labels_fg])) / 4.0, 0, 1)) if labels_fg.any() else 0.0
        return SegmentResult(mask=mask, score=conf, logits=logits)

    def superpixel_ceiling(self, gt: np.ndarray) -> np.ndarray:
        """The mask a perfect labelling of the prepared frame's superpixels gives: each superpixel
        takes the majority label of ``gt`` (a bool mask at image size). Its IoU with ``gt`` bounds what
        the superpixel cut can reach before the pixel-level stages; ``bench/bench_segment.py`` prints it."""
        if self._frame is None:
            raise RuntimeError("call set_image() before superpixel_ceiling()")
        f = self._frame
        frac, _ = self._prev_fraction(np.asarray(gt, bool))
        mask = (frac > 0.5)[f.labels]
        if f.scale != 1.0:
            mask = cv2.resize(mask.astype(np.uint8), f.shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
        return mask

    # ------------------------------------------------------------------ helpers
    def _extent(self, d_pos, d_bg, inside, base=None, tolerance=None) -> float:
        """Geodesic radius of the growth around a click: among a few candidate
        areas, the front for which the outline of ``base | grown region`` (``base``
        is the previous mask, if any) follows the strongest edges."""
        f, cfg = self._frame, self.config
        grow = np.isfinite(d_pos) & (d_pos < d_bg) & inside
        if base is not None:
            grow &= ~base
        order = np.argsort(np.where(grow, d_pos, np.inf), kind="stable")[: int(grow.sum())]
        cum = np.cumsum(f.size[order]) / f.size.sum()
        cap = np.inf
        if base is not None and base.any():
            cap = cfg.growth_cap * f.size[base].sum() / f.size.sum() + 0.002
        cands = []
        for frac in cfg.extent_fractions:
            if frac > cap:
                break
            k = int(np.searchsorted(cum, frac))
            if k >= len(order):
                break
            t = d_pos[order[k]]
            region = grow & (d_pos <= t)
            if base is not None:
                region |= base
            cross = region[f.ei] != region[f.ej]
            if not cross.any():
                continue
            cands.append((t, float((f.blen[cross] * f.bedge[cross]).sum() / f.blen[cross].sum())))
        if not cands:
            return float(d_pos[order[0]]) if len(order) else 0.0
        best = max(c[1] for c in cands)
        # the widest front whose outline is nearly as strong as the best one
        tol = cfg.extent_tolerance if tolerance is None else tolerance
        return max(t for t, sc in cands if sc >= tol * best)

    @staticmethod
    def _connected_to(mask: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """The 8-connected pieces of ``mask`` that overlap ``anchor``."""
        n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        keep = np.zeros(n, bool)
        keep[np.unique(comp[anchor & mask])] = True
        keep[0] = False
        return keep[comp]

    def _spread_extent(self, d_new, d_opp, inside, inner, old_sp) -> float:
        """Geodesic radius for a positive click outside the mask: the mask's own spread
        (a percentile of the geodesic distance from the earlier positive clicks over
        the mask) times ``adapt_growth``, limited so that the growth adds at most
        ``adapt_cap`` times the mask's area. 0 when there is no mask to measure."""
        f, cfg = self._frame, self.config
        if not len(old_sp) or not inner.any():
            return 0.0
        d_old = dijkstra(f.graph, directed=False, indices=old_sp, min_only=True)
        vals = d_old[inner & np.isfinite(d_old)]
        if not len(vals):
            return 0.0
        t = cfg.adapt_growth * float(np.percentile(vals, cfg.adapt_q))
        grow = np.isfinite(d_new) & (d_new < d_opp) & inside & ~inner
        order = np.argsort(np.where(grow, d_new, np.inf), kind="stable")[: int(grow.sum())]
        k = int(np.searchsorted(np.cumsum(f.size[order]), cfg.adapt_cap * f.size[inner].sum()))
        if k < len(order):
            t = min(t, float(d_new[order[k]]))
        return t

    def _prev_fraction(self, mask_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(each superpixel's share of ``mask_input``, the mask at working size): a mask, a probability
        map or logits at image size."""
        f = self._frame
        m = np.asarray(mask_input)
        if m.shape[:2] != f.shape:
            raise MaskError(f"mask has size {m.shape[:2]}, the image is {f.shape}")
        if m.dtype == bool or np.issubdtype(m.dtype, np.integer):
            p = (m > 0).astype(np.float32)
        else:
            m = m.astype(np.float32)
            if m.min() >= 0.0 and m.max() <= 1.0:
                p = m
            else:
                p = 1.0 / (1.0 + np.exp(-np.clip(m, -30, 30)))
        if f.scale != 1.0:
            p = cv2.resize(p, f.labels.shape[::-1], interpolation=cv2.INTER_AREA)
        return np.bincount(f.labels.ravel(), p.ravel(), f.n) / f.size, p > 0.5

    def _colour_logratio(self, fg_w: np.ndarray) -> np.ndarray:
        """log p(hist | fg) - log p(hist | bg) per superpixel, both models palette histograms."""
        f = self._frame
        wf = fg_w * f.size
        wb = (1.0 - fg_w) * f.size
        mf = (wf @ f.hist) @ f.kernel + 1e-3
        mb = (wb @ f.hist) @ f.kernel + 1e-3
        mf /= mf.sum()
        mb /= mb.sum()
        return f.hist @ (np.log(mf) - np.log(mb))

    def _cut(self, cost_fg, cost_bg, pair) -> np.ndarray:
        f = self._frame
        g = maxflow.Graph[float]()
        g.add_nodes(f.n)
        g.add_edges(f.ei, f.ej, pair, pair)
        # source side = foreground: capacity to sink is paid when node is fg
        g.add_grid_tedges(np.arange(f.n), cost_bg, cost_fg)
        g.maxflow()
        seg = g.get_grid_segments(np.arange(f.n))  # True = sink side
        return ~seg

    def _grabcut(self, mask, pts, labs, inside_px=None) -> np.ndarray:
        """GrabCut seeded with the mask (probable labels) and the clicks (definite), in a window."""
        f, cfg = self._frame, self.config
        h, w = mask.shape
        ys, xs = np.nonzero(mask)
        xs = np.concatenate([xs, pts[labs == 1, 0]])
        ys = np.concatenate([ys, pts[labs == 1, 1]])
        pad = 15
        fx = int(cfg.grabcut_margin * (xs.max() - xs.min()) + pad)
        fy = int(cfg.grabcut_margin * (ys.max() - ys.min()) + pad)
        x0, x1 = max(0, xs.min() - fx), min(w, xs.max() + fx + 1)
        y0, y1 = max(0, ys.min() - fy), min(h, ys.max() + fy + 1)
        # a little context beyond the window feeds the background model
        bx0, bx1, by0, by1 = max(0, x0 - pad), min(w, x1 + pad), max(0, y0 - pad), min(h, y1 + pad)
        gc = np.where(mask[by0:by1, bx0:bx1], cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        window = np.zeros_like(gc, bool)
        window[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0] = True
        gc[~window] = cv2.GC_BGD
        if inside_px is not None:
            gc[~inside_px[by0:by1, bx0:bx1]] = cv2.GC_BGD
        self._seed_clicks(gc, pts, labs, (bx0, by0))
        fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        if fg.all() or not fg.any():
            return mask
        out = np.zeros_like(mask)
        out[by0:by1, bx0:bx1] = self._run_grabcut(f.rgb[by0:by1, bx0:bx1], gc, cfg.grabcut_iters)
        return out

    def _seed_clicks(self, gc: np.ndarray, pts, labs, origin: tuple[int, int],
                     values: tuple[int, int] = (cv2.GC_BGD, cv2.GC_FGD)) -> None:
        """Mark a disc around every click in a label crop: by default definite background or object
        for GrabCut; ``values`` gives the (negative, positive) values to write instead."""
        for (x, y), lab in zip(pts, labs):
            cv2.circle(gc, (int(x) - origin[0], int(y) - origin[1]), max(1, self.config.click_radius),
                       int(values[1] if lab else values[0]), -1)

    def _run_grabcut(self, image: np.ndarray, gc: np.ndarray, iters: int) -> np.ndarray:
        """GrabCut from the labels ``gc`` (updated in place), seeded for repeatable answers; the object."""
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(self.config.seed)
        cv2.grabCut(np.ascontiguousarray(image), gc, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
        return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)

    def _box_grabcut(self, mask, pts, labs) -> np.ndarray:
        """First click only: GrabCut in the mask's bounding box grown by ``box_grow``.

        Inside the box everything starts as probable object, outside (a margin of
        context) as definite background; what GrabCut keeps, in the connected
        pieces holding a positive click, is added to the mask. The box assumes
        the object fits inside it: an answer larger than the mask's own bounding
        box (a share of the grown box above 1 / (1 + box_grow)^2) ran into the
        background, and the mask is returned unchanged.
        """
        f, cfg = self._frame, self.config
        h, w = mask.shape
        ys, xs = np.nonzero(mask)
        cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
        bh = (ys.max() - ys.min() + 1) * (1 + cfg.box_grow)
        bw = (xs.max() - xs.min() + 1) * (1 + cfg.box_grow)
        x0, x1 = int(max(0, cx - bw / 2)), int(min(w, cx + bw / 2 + 1))
        y0, y1 = int(max(0, cy - bh / 2)), int(min(h, cy + bh / 2 + 1))
        # background context: half the box on each side, plus a few pixels
        px, py = int(0.5 * bw) + 10, int(0.5 * bh) + 10
        bx0, bx1, by0, by1 = max(0, x0 - px), min(w, x1 + px), max(0, y0 - py), min(h, y1 + py)
        gc = np.full((by1 - by0, bx1 - bx0), cv2.GC_BGD, np.uint8)
        gc[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0] = cv2.GC_PR_FGD
        if np.count_nonzero(gc == cv2.GC_BGD) < 50:
            return mask  # the box fills the image: no background to learn from
        self._seed_clicks(gc, pts, labs, (bx0, by0))
        crop = np.ascontiguousarray(f.rgb[by0:by1, bx0:bx1])
        ch, cw = gc.shape
        ds = cfg.box_side / max(ch, cw) if cfg.box_side else 1.0
        if ds < 1.0:
            size = (max(8, round(cw * ds)), max(8, round(ch * ds)))
            small = cv2.resize(gc, size, interpolation=cv2.INTER_NEAREST)
            fg = self._run_grabcut(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), small,
                                   cfg.box_iters).astype(np.float32)
            fg = (cv2.resize(fg, (cw, ch), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)
        else:
            fg = self._run_grabcut(crop, gc, cfg.box_iters).astype(np.uint8)
        self._seed_clicks(fg, pts, labs, (bx0, by0), values=(0, 1))
        anchor = np.zeros(fg.shape, bool)
        pos = pts[labs == 1] - [bx0, by0]
        pos = pos[(pos[:, 0] >= 0) & (pos[:, 0] < bx1 - bx0) & (pos[:, 1] >= 0) & (pos[:, 1] < by1 - by0)]
        anchor[pos[:, 1], pos[:, 0]] = True
        grown = self._connected_to(fg.astype(bool), anchor)
        inner = grown[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]  # the answer within the box itself
        if inner.mean() > 1.0 / (1.0 + cfg.box_grow) ** 2:
            return mask
        if cfg.box_touch < 1.0:
            ring = []
            if y0 > 0:
                ring.append(inner[:2].ravel())
            if y1 < h:
                ring.append(inner[-2:].ravel())
            if x0 > 0:
                ring.append(inner[:, :2].ravel())
            if x1 < w:
                ring.append(inner[:, -2:].ravel())
            if ring and np.concatenate(ring).mean() > cfg.box_touch:
                return mask
        out = mask.copy()
        out[by0:by1, bx0:bx1] |= grown
        return out

    def _refine_keeping_pieces(self, mask: np.ndarray) -> np.ndarray:
        """``_refine``, except that a connected piece it would shrink below ``refine_keep`` of its area
        stays as it was: the refinement moves outlines, it does not decide which parts belong."""
        refined = self._refine(mask)
        if self.config.refine_keep <= 0:
            return refined
        n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        area = np.bincount(comp.ravel(), minlength=n)
        kept = np.bincount(comp[refined & mask], minlength=n)
        lost = np.flatnonzero(kept < self.config.refine_keep * area)
        lost = lost[lost > 0]
        return refined | np.isin(comp, lost) if len(lost) else refined

    def _refine(self, mask: np.ndarray) -> np.ndarray:
        """Pixel graph cut in a band around the superpixel boundary."""
        f, cfg = self._frame, self.config
        b = cfg.refine_band
        k = np.ones((2 * b + 1, 2 * b + 1), np.uint8)
        m8 = mask.astype(np.uint8)
        outer = cv2.dilate(m8, k).astype(bool)
        inner = cv2.erode(m8, k).astype(bool)
        band = outer & ~inner
        ys, xs = np.nonzero(outer)
        y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, mask.shape[0])
        x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, mask.shape[1])
        sl = (slice(y0, y1), slice(x0, x1))
        # pixel colour models from the superpixel result
        K = len(f.palette)
        pal = f.pix_palette[sl]
        hf = np.bincount(f.pix_palette[mask], minlength=K) @ f.kernel + 1.0
        # background: the ring just outside the mask, mixed with all of the background
        hb = np.bincount(f.pix_palette[band & ~mask], minlength=K) @ f.kernel + 1.0
        hb2 = np.bincount(f.pix_palette[~mask], minlength=K) @ f.kernel + 1.0
        hb = hb / hb.sum() + hb2 / hb2.sum()
        llr = np.log(hf / hf.sum()) - np.log(hb / hb.sum())
        u = llr[pal].astype(np.float64)
        # keep the superpixel answer as a soft prior, plus hard inside/outside of the band
        u += np.where(mask[sl], 0.5, -0.5)
        cost_fg = _softplus(-u)
        cost_bg = _softplus(u)
        big = 1e9
        cost_fg[~outer[sl]] = big
        cost_bg[inner[sl]] = big
        lab = f.lab[sl]
        g = maxflow.Graph[float]()
        ids = g.add_grid_nodes(cost_fg.shape)
        for dy, dx in ((0, 1), (1, 0)):
            d = np.zeros_like(cost_fg)
            diff = lab[dy:, dx:] - lab[:lab.shape[0] - dy, :lab.shape[1] - dx]
            d2 = (diff ** 2).sum(2)
            d[: d2.shape[0], : d2.shape[1]] = d2
            beta = 1.0 / (2.0 * d2.mean() + 1e-6)
            wts = cfg.refine_pair * np.exp(-beta * d)
            st = np.zeros((3, 3))
            st[1 + dy, 1 + dx] = 1
            g.add_grid_edges(ids, weights=wts, structure=st, symmetric=True)
        g.add_grid_tedges(ids, cost_bg, cost_fg)
        g.maxflow()
        out = mask.copy()
        out[sl] = ~g.get_grid_segments(ids)
        return out
