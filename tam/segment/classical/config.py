"""Settings of the classical click-to-mask segmenter (one frozen, validated dataclass)."""
from __future__ import annotations

from dataclasses import dataclass

EXTENT_FRACTIONS = (0.002, 0.004, 0.007, 0.01, 0.015, 0.02, 0.03, 0.045, 0.06, 0.08, 0.1, 0.13, 0.17, 0.22)


@dataclass(frozen=True)
class ClassicalSegmenterConfig:
    """Every tunable of the classical segmenter; distances in Lab units or geo-scales, sizes in working pixels."""

    max_side: int = 960  # frames larger than this are processed downscaled
    superpixels: int = 2500  # target number of SLIC superpixels
    palette: int = 48  # colours in the k-means palette
    palette_sigma: float = 6.0  # Lab smoothing between palette colours in the colour models
    geo_edge: float = 40.0  # geodesic cost of crossing a full-strength edge (Lab units)
    geo_scale: float = 0.08  # fraction of the image's mean geodesic spread used to scale distances
    border_offset: float = 0.5  # border seeds start at this many geo-scales (weaker than negative clicks)
    w_colour: float = 1.0  # weight of the colour/texture log-ratio in the cut's unary score
    w_geo: float = 2.0  # weight of the geodesic evidence
    w_prev: float = 2.0  # weight of the previous mask outside the newest click's region
    w_new: float = 6.0  # weight of the newest click's own region
    extent_tolerance: float = 1.0  # accept a wider front whose edge score is this close to the best
    union_extent: bool = True  # a positive click's growth is judged with the previous mask it joins
    growth_cap: float = 2.0  # a later click adds at most this many times the previous mask's area
    adapt_growth: float = 1.0  # a later positive click grows at least this many times the mask's own
    #                            geodesic spread (0: off) ...
    adapt_q: float = 50.0  # ... the spread being this percentile of the geodesic distance from the earlier
    #                        positive clicks over the previous mask ...
    adapt_cap: float = 0.5  # ... adding at most this many times the previous mask's area
    depth_cap: float = 2.5  # a later positive click grows over at most this many times pi D^2, D being its
    #                         distance to the previous mask (a click beside the mask asks for a sliver; 0: off)
    neg_surface: float = 25.0  # a negative click's region fades with the colour distance (Lab) from the clicked
    #                           surface over this scale (0: off)
    split_softness: float = 0.25  # geo-scales over which a negative click's split fades
    local_edits: bool = True  # later clicks change only the region around them
    monotone: bool = True  # a positive click only adds to the previous mask, a negative one only takes away
    click_decides: bool = True  # within a negative click's region, on the clicked surface (``alike_lab``), the
    #                             polish does not undo the cut's removals (a click on a same-coloured fence
    #                             left a pinhole)
    neg_trust_cut: bool = True  # with neighbouring frames, what the cut removes in a negative click's region is
    #                             definite background in the GrabCut polish (the cut sees motion, the polish
    #                             colour only: it put back grass the cut had taken from under a dog)
    alike_lab: float = 12.0  # superpixels whose mean colour is within this many Lab units count as one surface
    keep_connected: bool = True  # keep only the pieces connected to a positive click or to the previous mask
    w_pair: float = 1.5  # superpixel cut: weight of the smoothness term
    rounds: int = 1  # colour-model re-estimation rounds
    click_radius: int = 3  # pixels around a click forced to its label
    refine: bool = True  # pixel-level boundary refinement
    refine_band: int = 6  # half-width (pixels) of the refinement band
    refine_pair: float = 6.0  # pixel cut: weight of the smoothness term
    refine_keep: float = 0.25  # a piece the refinement shrinks below this share of its area stays as the cut drew it
    grabcut_iters: int = 1  # pixel GrabCut polish of the mask in its neighbourhood (0: off)
    grabcut_min_area: int = 4000  # only for masks of at least this many (working) pixels
    grabcut_margin: float = 0.3  # neighbourhood: the mask's box grown by this fraction + 15 px
    grabcut_band: int = 30  # in a large neighbourhood, pixels farther than this outside the mask stay
    #                         background (0: off) ...
    grabcut_band_above: int = 150_000  # ... large: more than this many undecided pixels (about 0.6 s of cut)
    box_grow: float = 0.5  # first click: GrabCut in the mask's bounding box grown by this fraction (0: off) ...
    box_iters: int = 2  # ... with this many iterations ...
    box_touch: float = 0.1  # ... dropped when it covers more than this share of the box's inner frame ...
    box_side: int = 480  # ... on the crop downscaled to at most this many pixels a side (0: full size) ...
    box_coarse_side: int = 240  # ... the first iteration at most this many (0: as the others): a quarter of
    #                             the pixels, and a start for the others nearer their answer
    motion_edge: float = 3.0  # with neighbouring frames: displacement difference (working-size pixels) between
    #                           adjacent superpixels that counts as a full-strength edge
    motion_relative: float = 0.5  # ... plus this share of how fast the pair moves against the camera
    geo_motion: float = 40.0  # geodesic cost of crossing a full motion edge, on top of it counting as an edge
    motion_sigma: float = 1.0  # smoothing (pixels) between displacement codes in the motion models
    w_motion: float = 1.0  # weight of the motion log-ratio in the cut's unary score
    motion_veto: float = 1.0  # the pixel stages may not add superpixels whose motion the object's model rejects
    #                           by more than this (log-odds; 0: off)
    w_motion_prior: float = 0.0  # with neighbouring frames: weight of the motion prior grown from the positive
    #                              clicks (``motion_prior``: moving against the camera; 0: off) ...
    prior_relative: float = 0.35  # ... a superpixel counts as moving above this share of the click's own residual
    #                               speed (working-size pixels) ...
    prior_max_share: float = 0.5  # ... and only when what it grows covers at most this share of the frame ...
    prior_gain: float = 3.0  # ... log-odds per unit of log(residual speed / threshold) ...
    prior_cap: float = 3.0  # ... its log-odds clipped to this ...
    prior_min_px: float = 1.0  # ... and above this many pixels; the prior is used only for a click moving that much ...
    prior_init: bool = True  # ... and also in the first colour models' object weights
    seed: int = 0  # seeds the palette's k-means and GrabCut's mixtures
    extent_fractions: tuple[float, ...] = EXTENT_FRACTIONS  # candidate growth areas, shares of the frame

    def __post_init__(self):
        if self.max_side < 64:
            raise ValueError("max_side must be >= 64")
        if self.superpixels < 16:
            raise ValueError("superpixels must be >= 16")
        if not 4 <= self.palette <= 256:
            raise ValueError("palette must be in 4..256")
        if self.rounds < 1:
            raise ValueError("rounds must be >= 1")
        for name in ("palette_sigma", "geo_scale", "w_colour", "w_geo", "w_pair", "refine_pair", "motion_edge",
                     "motion_sigma", "prior_cap"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if not 0 <= self.adapt_q <= 100:
            raise ValueError("adapt_q must be in 0..100")
        for name in ("geo_edge", "border_offset", "w_prev", "click_radius", "refine_band", "grabcut_iters",
                     "grabcut_min_area", "grabcut_margin", "grabcut_band", "grabcut_band_above",
                     "adapt_growth", "adapt_cap", "depth_cap", "box_grow",
                     "box_iters",
                     "box_side", "box_coarse_side", "box_touch", "refine_keep", "w_motion", "motion_relative", "motion_veto", "geo_motion", "alike_lab",
                     "neg_surface", "w_motion_prior", "prior_min_px", "prior_relative",
                     "prior_max_share", "prior_gain"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
