"""Settings of the classical tracker (one frozen dataclass, validated on creation).

Units: "working px" are pixels at the working size (longest side ``work_side``);
shares and rates lie in [0, 1]; weights are exponents on likelihoods, i.e.
factors on log-likelihoods. docs/experiments.md tells how each was measured.
"""
from __future__ import annotations

from dataclasses import dataclass

DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


@dataclass(frozen=True)
class ClassicalTrackerConfig:
    work_side: int = 512          # longest side of the internal working size (pixels)
    flow_preset: str = "medium"   # DIS preset: ultrafast, fast, medium ...
    flow_finest: int = 0          # ... its finest pyramid level (0: the preset's; 2: a quarter of the size) ...
    check_finest: int = 0         # ... and that of the forward flow, used only for the consistency check
    bins: int = 16                # colour histogram bins per channel
    texture_bins: int = 4         # gradient-magnitude bins joined to the colour bins (1: colour only)
    texture_sigma: float = 1.5    # smoothing of the gradient magnitude (working px)
    band: int = 25                # background model: pixels within this distance of an object
    motion_weight: float = 0.8    # exponent of the motion prior
    appearance_weight: float = 0.3  # exponent of the colour likelihood where the flow is consistent ...
    appearance_uncertain: float = 0.8  # ... and where it is not (motion says little there)
    prior_blur: float = 0.04      # blur of the motion prior, fraction of the working diagonal
    prior_floor: float = 0.1      # share of the label-agnostic local prior mixed into the warped prior
    reveal_level: float = 0.5     # a pixel onto which the forward flow carries fewer previous pixels than
                                  # this was hidden behind the label the backward flow brings: its prior
                                  # moves to the labels nearby in proportion (1 - coverage / this) (0: off)
    near_level: float = 0.05      # blurred mass at which a label counts as present nearby
    consistency_px: float = 1.5   # forward/backward flow error (working px) still trusted
    guided_radius: int = 4        # largest guided filter radius (working px) ...
    guided_scale: float = 25.0    # ... an object's radius is sqrt(its area) / guided_scale, at least 1
    guided_eps: float = 1e-3      # guided filter regulariser (image in [0, 1])
    local_radius: int = 12        # window of the local colour models (working px)
    local_weight: float = 0.25    # exponent of the local colour likelihood
    local_sigma: float = 0.03     # colour noise floor of the local models (Lab / 255)
    local_scale: float = 0.5      # ... computed at this fraction of the working size
    area_shrink: float = 0.95     # an object keeps at least this share of its previous area ...
    area_grow: float = 1.05       # ... and at most this multiple, unless the evidence is overwhelming;
    area_flow_growth: float = 1.3  # ... the previous area times the growth its flow predicts, at most this (1: none)
    shift_weight: float = 0.8     # share of the whole-object shift (template match) in the motion prior
    shift_scale: float = 0.5      # template matching runs at this fraction of the working size
    redetect_ratio: float = 0.6   # an object whose colour fit falls under this share of its
                                  # annotated fit is searched for again over the whole frame
    redetect_margin: float = 0.0  # ... and moved when the found place fits better by this much
    redetect_accept: float = 0.25 # ... and at least this share of the annotated fit (else: gone)
    sharpen: float = 0.5          # share of the hard result in the next frame's prior
    update_rate: float = 0.1      # weight of a confident tracked frame in the colour models
    cut_weight: float = 1.0       # boundary cost of the graph-cut refinement (0: arg-max only) ...
    cut_thickness: float = 25.0   # ... at full strength for objects this thick (working px), less
                                  # for thinner ones (a cut's boundary cost shrinks thin parts)
    cut_min_thickness: float = 10.0  # ... and none below this
    cut_band: int = 6             # ... moving the boundary by at most this much (working px)
    cache_frames: int = 6         # working-size frames kept per video
    forest_trees: int = 14        # random-forest appearance model (tam.track.forest); 0: off
    forest_depth: int = 12        # ... tree depth
    forest_samples: int = 4000    # ... training pixels per label and keyframe
    forest_side: int = 320        # ... working size (longest side, pixels) of its features
    forest_weight: float = 0.7    # ... its log-posterior counts this many times the colour histograms'
    forest_budget: int = 6000     # ... asked on at most about this many pixels per object and frame (0: all)
    residual_weight: float = 0.7  # motion against the camera (tam.track.camera): penalty weight (0: off) ...
    residual_clip: float = 1.5    # ... at most this many nats per pixel ...
    residual_texture: float = 8.0  # ... in full where the grey level's local spread reaches this (0-255) ...
    residual_moving: float = 0.25  # ... on objects with at most this share of pixels moving with the camera ...
    residual_rate: float = 0.5    # ... whose residual histograms follow each tracked frame at this rate;
    residual_bg_gate: float = 0.25  # ... and the background near an object moving against the camera, if
                                  # under this share of the background around it moved too (a shadow or a
                                  # reflection does) in its first tracked frames (0: objects only), ...
    residual_bg_sectors: int = 4  # ... judged per direction: in this many angular sectors around the object
                                  # (a reflection or a shadow lies on one side; 1: the whole ring at once)
    lost_frames: int = 3          # a moving object whose mask moves with the camera this many frames running
                                  # was left on the background (0: never looked for) ...
    lost_slow: float = 0.8        # ... "with the camera": this share of its pixels within 1 px of it ...
    lost_moving: float = 0.2      # ... "moving": a median share under this over five frames running, once ...
    lost_fast_px: float = 2.0     # ... and it is looked for among regions moving this far off the camera

    def __post_init__(self):
        if self.flow_preset not in DIS_PRESETS:
            raise ValueError(f"flow_preset must be one of {sorted(DIS_PRESETS)}")
        if not 0 <= self.flow_finest <= 4 or not 0 <= self.check_finest <= 4:
            raise ValueError("flow_finest and check_finest must be within 0..4")
        if self.work_side < 64:
            raise ValueError("work_side must be at least 64")
        if not 4 <= self.bins <= 64:
            raise ValueError("bins must be within 4..64")
        if not 1 <= self.texture_bins <= 16:
            raise ValueError("texture_bins must be within 1..16")
        if (self.forest_trees < 0 or self.forest_depth < 1 or self.forest_samples < 10 or self.forest_side < 32
                or self.forest_weight < 0 or self.forest_budget < 0):
            raise ValueError("forest_trees must be >= 0, forest_depth >= 1, forest_samples >= 10, "
                             "forest_side >= 32, forest_weight >= 0 and forest_budget >= 0")
        if (self.residual_weight < 0 or self.residual_clip <= 0 or self.residual_texture < 0
                or not 0 <= self.residual_moving <= 1 or not 0 < self.residual_rate <= 1
                or not 0 <= self.residual_bg_gate <= 1):
            raise ValueError("residual_weight must be >= 0, residual_clip > 0, residual_texture >= 0, "
                             "residual_moving within 0..1, residual_rate within (0, 1] and "
                             "residual_bg_gate within 0..1")
        if self.lost_frames < 0 or not 0 < self.lost_slow <= 1 or not 0 < self.lost_moving < 1 \
                or self.lost_fast_px <= 0:
            raise ValueError("lost_frames must be >= 0, lost_slow within (0, 1], lost_moving within (0, 1) "
                             "and lost_fast_px > 0")
        if self.residual_bg_sectors < 1:
            raise ValueError("residual_bg_sectors must be >= 1")
        if self.reveal_level < 0:
            raise ValueError("reveal_level must be >= 0")
        if self.area_flow_growth < 1:
            raise ValueError("area_flow_growth must be >= 1")
        if self.cut_weight < 0 or self.cut_band < 1 or not 0 <= self.cut_min_thickness < self.cut_thickness:
            raise ValueError("cut_weight must be >= 0, cut_band >= 1 and "
                             "0 <= cut_min_thickness < cut_thickness")

    @property
    def n_bins(self) -> int:
        return self.bins ** 3 * self.texture_bins
