"""The classical tracker: optical flow and appearance models, no learned weights.

Per frame, walking away from an annotated frame, at a reduced working size:

1. motion (:mod:`.motion`): the previous per-label probabilities pulled along
   the optical flow and moved with each whole object, blurred where the flow is
   inconsistent; a pixel the previous frame hid is unlikely to carry the label
   that hid it;
2. appearance, global (:mod:`.appearance`, :mod:`tam.track.forest`): colour-
   texture histograms and a random forest learned from the annotated frames,
   weighing more where the flow is inconsistent (fast, blurred, thin parts);
3. appearance, local: per-pixel colour models from the previous frame; and
   motion against the camera (:mod:`tam.track.camera`): objects that move
   unlike the camera are penalised where a pixel moves with it, and, on the
   sides of an object whose surroundings stood still with the camera there, the
   background is penalised where a pixel moves like the object;
4. fusion (:mod:`.fusion`): the cues' product, an edge-aware guided filter, the
   area balance, the arg-max and a graph cut on thick objects' boundaries;
5. recovery (:mod:`.recovery`): objects whose colour or motion says they were
   lost are searched for again.

Probabilities are upsampled (bilinear) to the frames' size before the arg-max,
so the answer is at full size. The per-pixel loops of the motion prior, the
camera cue and the fusion run compiled (:mod:`.kernels`). How each step was
measured, and what was tried and dropped, is in docs/experiments.md.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import cv2
import numpy as np

from tam.errors import MaskError
from tam.frames import FrameSequence, IndexedFrames
from tam.track.base import Tracker
from tam.track.camera import ResidualModel, camera_homography, flow_texture, residual_and_bins
from tam.track.classical import appearance, fusion, motion, recovery
from tam.track.classical.config import ClassicalTrackerConfig
from tam.track.classical.state import (
    ClassicalTrackerState, WorkFrame, forget_other_keyframes, keyframe_digest, new_state, soft_labels, to_work,
    work_frame,
)


@dataclass
class Segment:
    """What one ``propagate`` call carries from frame to frame (working size h x w, L labels)."""

    ids: list[int]                 # object ids, in label order after the background
    labels_all: list[int]          # 0 then ids
    colours: appearance.ColourModels
    prob: np.ndarray               # L x h x w probabilities on ``prev`` (the next prior's start)
    prev: WorkFrame
    ref_area: np.ndarray           # objects' areas on the annotated frame (working px)
    prev_area: np.ndarray          # objects' areas on the previous frame (working px)
    memory: list                   # recovery.ObjectMemory or None per object ([] when off)
    watch: list[recovery.Watch]
    forest: object | None          # tam.track.forest.ForestModel
    residuals: ResidualModel | None
    grid: motion.Grid
    blur_sigma: float              # the motion prior's blur (working px)


class ClassicalTracker(Tracker):
    name = "classical"
    Config = ClassicalTrackerConfig

    def __init__(self, **config):
        self.config = ClassicalTrackerConfig(**config)

    # ------------------------------------------------------------------ state and models
    def init_state(self, frames: FrameSequence) -> ClassicalTrackerState:
        return new_state(frames, self.config)

    def _frame(self, state: ClassicalTrackerState, frames: FrameSequence, i: int) -> WorkFrame:
        return work_frame(state, frames, i, self.config)

    def _keyframe_models(self, state, frames, keyframes) -> dict[int, np.ndarray]:
        """Colour-texture histograms averaged over every keyframe where each label appears (cached)."""
        cfg = self.config
        digest = keyframe_digest(keyframes)
        key = ("histograms", digest)
        if key not in state.models:
            sums: dict[int, np.ndarray] = {}
            for k in sorted(keyframes):
                frame = self._frame(state, frames, k)
                lab = to_work(state, keyframes[k])
                present = [int(v) for v in np.unique(lab) if v != 0]
                for label, hist in appearance.label_histograms(frame.bins, lab, present, cfg.n_bins,
                                                               cfg.band).items():
                    sums[label] = sums.get(label, 0) + hist
            forget_other_keyframes(state.models, digest)
            state.models[key] = {k: appearance.smooth_hist(v / max(v.sum(), 1e-12), cfg.bins, cfg.texture_bins)
                                 for k, v in sums.items()}
        return state.models[key]

    def _forest(self, state, frames, keyframes, labels_all: list[int]):
        """The random forest trained on every keyframe (cached with the colour models)."""
        from tam.track.forest import ForestModel

        cfg = self.config
        digest = keyframe_digest(keyframes)
        key = ("forest", digest, tuple(labels_all))
        if key not in state.models:
            forget_other_keyframes(state.models, digest)
            # the near-background band in the same pixels as the histograms' (cfg.band at the working size)
            model = ForestModel(labels_all, side=cfg.forest_side, trees=cfg.forest_trees, depth=cfg.forest_depth,
                                samples=cfg.forest_samples, band=cfg.band / max(state.work), budget=cfg.forest_budget)
            images = IndexedFrames(len(frames), lambda k: self._frame(state, frames, k).rgb)  # read one at a time
            state.models[key] = model.fit(images, {k: to_work(state, v) for k, v in keyframes.items()})
        return state.models[key]

    def _segment(self, state, frames, keyframes, start: int, ids: list[int]) -> Segment:
        cfg = self.config
        labels_all = [0] + ids
        colours = appearance.ColourModels.from_keyframes(self._keyframe_models(state, frames, keyframes),
                                                         labels_all, cfg.n_bins)
        h, w = state.work
        prob = soft_labels(state, keyframes[start], ids)
        area = prob[1:].reshape(len(ids), -1).sum(1)
        prev = self._frame(state, frames, start)
        return Segment(
            ids=ids, labels_all=labels_all, colours=colours, prob=prob, prev=prev,
            ref_area=area, prev_area=area.copy(),
            memory=recovery.remember(prev, prob, colours.keyframe) if cfg.redetect_ratio > 0 else [],
            watch=[recovery.Watch() for _ in ids],
            forest=self._forest(state, frames, keyframes, labels_all) if cfg.forest_trees > 0 else None,
            residuals=(ResidualModel(len(labels_all), cfg.residual_rate, cfg.band, cfg.residual_bg_gate,
                                     cfg.residual_bg_sectors) if cfg.residual_weight > 0 else None),
            grid=motion.Grid.of(h, w),
            blur_sigma=max(1.0, cfg.prior_blur * float(np.hypot(h, w))),
        )

    # ------------------------------------------------------------------ tracking
    def propagate(self, state, frames, keyframes: Mapping[int, np.ndarray], start: int, stop: int
                  ) -> Iterator[tuple[int, np.ndarray]]:
        if start not in keyframes:
            raise MaskError(f"frame {start} has no mask to track from")
        if state is None:
            state = self.init_state(frames)
        step = 1 if stop > start else -1
        stop = max(-1, min(stop, len(frames)))
        ids = [int(v) for v in np.unique(keyframes[start]) if v != 0]
        if not ids:
            for t in range(start + step, stop, step):
                yield t, np.zeros(state.size, np.uint8)
            return
        seg = self._segment(state, frames, keyframes, start, ids)
        with motion.FlowPair(self.config.flow_preset, self.config.flow_finest, self.config.check_finest) as flows:
            for t in range(start + step, stop, step):
                cur = self._frame(state, frames, t)
                smooth = self._step(seg, cur, flows)
                yield t, fusion.full_size_answer(smooth, state.size, seg.labels_all)
                seg.prev = cur

    def _step(self, seg: Segment, cur: WorkFrame, flows: motion.FlowPair) -> np.ndarray:
        """Track one frame: updates ``seg`` and returns the smoothed probabilities (L x h x w)."""
        cfg = self.config
        mo = motion.motion_cue(flows, seg.prev, cur, seg.prob, seg.grid, seg.blur_sigma, cfg)
        cues = fusion.Cues(mo.log_prior)
        forest_job = self._appearance_cues(seg, cur, mo, cues, flows)
        # the guided filters' set-up needs only this frame and the last areas: the worker prepares them
        radii = fusion.smoothing_radii(seg.prev_area, cfg)
        filters_job = flows.submit(fusion.guided_filters, cur.guide, radii, cfg.guided_eps)
        resid = rbins = None
        if seg.residuals is not None:
            resid, rbins, cues.camera_penalty = self._camera_cue(seg, cur, mo)
        if cfg.local_weight > 0:
            cues.local = self._local_cue(seg, cur, mo)
        if forest_job is not None:
            cues.forest_posterior = forest_job.result()
        smooth = fusion.guided_smooth(fusion.fuse(cues, cfg), filters_job.result(), radii)
        if cfg.area_shrink < 1 or cfg.area_grow > 1:
            # the reference area follows the flow: an object leaving the frame shrinks, one coming closer grows
            seg.prev_area = fusion.balance_areas(smooth, seg.prev_area * mo.growth,
                                                 cfg.area_shrink, cfg.area_grow)
        arg = fusion.argmax(smooth)
        if cfg.cut_weight > 0:
            arg = fusion.cut_boundaries(cur.lab, smooth, arg, cfg)
        self._remember(seg, cur, smooth, arg, mo, rbins)
        if resid is not None and cfg.lost_frames > 0:
            recovery.find_moving(cur, resid, seg.residuals.slow, arg, seg.prob, seg.colours.keyframe,
                                 seg.memory, seg.watch, cfg)
        if cfg.redetect_ratio > 0:
            recovery.recover_by_template(cur, arg, seg.prob, seg.colours.keyframe, seg.memory, cfg)
        return smooth

    def _appearance_cues(self, seg: Segment, cur: WorkFrame, mo: motion.Motion, cues: fusion.Cues,
                         flows: motion.FlowPair) -> Future | None:
        """Fill the colour cue; start the forest's posterior on the flow thread (idle by now)."""
        cfg = self.config
        if max(cfg.appearance_weight, cfg.appearance_uncertain) <= 0:
            return None
        cues.colour_lut, cues.bins = seg.colours.current, cur.bins
        # where the flow is inconsistent (fast, blurred or thin parts, occlusions) the warped prior
        # is only "near here", so appearance decides more of the answer
        cues.appearance_weight = (cfg.appearance_weight
                                  + (cfg.appearance_uncertain - cfg.appearance_weight) * (1 - mo.conf))
        if seg.forest is None:
            return None
        h, w = cur.gray.shape
        return flows.submit(seg.forest.posterior, cur.rgb, (h, w), mo.blurred[1:].sum(0))

    def _camera_cue(self, seg: Segment, cur: WorkFrame, mo: motion.Motion):
        """(residual px, residual bins, penalty L x h x w) of motion against the camera, or Nones."""
        cfg = self.config
        hom = camera_homography(mo.back, mo.conf, mo.warped[0])
        if hom is None:
            return None, None, None
        resid, rbins = residual_and_bins(mo.back, hom)
        trust = mo.conf * flow_texture(cur.gray, cfg.residual_texture) if cfg.residual_texture > 0 else mo.conf
        pen = seg.residuals.penalty(rbins, trust, cfg.residual_clip, cfg.residual_moving, near=mo.present)
        return resid, rbins, pen

    def _local_cue(self, seg: Segment, cur: WorkFrame, mo: motion.Motion) -> np.ndarray:
        """Local colour log-likelihoods (L x h x w), computed at ``local_scale`` of the working size."""
        cfg = self.config
        h, w = cur.gray.shape
        prev_lab = cv2.remap(seg.prev.lab, mo.map_x, mo.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        weights = mo.warped * mo.conf
        if cfg.local_scale >= 1:
            return appearance.local_loglik(cur.lab, prev_lab, weights, cfg.local_radius, cfg.local_sigma)
        # window statistics vary slowly: computed at a reduced size, the boundary is the guided
        # filter's and the cut's job
        sw, sh = max(motion.MIN_SIDE, int(w * cfg.local_scale)), max(motion.MIN_SIDE, int(h * cfg.local_scale))

        def shrink(a):
            return cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)

        small_ll = appearance.local_loglik(shrink(cur.lab), shrink(prev_lab), np.stack([shrink(p) for p in weights]),
                                           max(1, round(cfg.local_radius * cfg.local_scale)), cfg.local_sigma)
        return np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in small_ll])

    def _remember(self, seg: Segment, cur: WorkFrame, smooth: np.ndarray, arg: np.ndarray, mo: motion.Motion,
                  rbins: np.ndarray | None) -> None:
        """The next frame's prior (the sharpened answer) and the models' updates from this frame."""
        cfg = self.config
        n = len(seg.labels_all)
        onehot = np.stack([(arg == i).astype(np.float32) for i in range(n)])
        seg.prob = cfg.sharpen * onehot + (1 - cfg.sharpen) * smooth
        # conservative appearance update from frames whose areas stayed plausible
        area = onehot[1:].reshape(len(seg.ids), -1).sum(1)
        lo, hi = appearance.UPDATE_AREA_RANGE
        if cfg.update_rate > 0 and np.all(area > lo * seg.ref_area) and np.all(area < hi * seg.ref_area):
            labels = np.asarray(seg.labels_all, np.uint8)[arg]
            seg.colours.update(cur.bins, labels, seg.ids, seg.labels_all, cfg)
        if rbins is not None:
            seg.residuals.update(rbins, mo.conf, arg)
