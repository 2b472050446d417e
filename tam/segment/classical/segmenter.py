"""The classical segmenter: ``set_image`` prepares a frame, ``predict`` runs the stages on a prompt.

The segmenter holds its configuration only; the prepared frame
(:class:`~.frame.PreparedFrame`: superpixels, colour models, motion) is the
image state that ``set_image`` returns and the caller passes to ``predict``.

Stages of ``predict`` (each in its own module):

1. candidates (:mod:`.candidates`): geodesic evidence from the clicks, the box
   and the image border; the newest click's own region, where it overrides the
   previous mask;
2. the cut (:mod:`.cut`): a graph cut over the superpixels with colour/texture
   models, the evidence and the previous mask; clicks are hard constraints;
3. the polish (:mod:`.refine`, :mod:`.polish`): a pixel cut in a band around
   the outline, edits kept to the click's region, a GrabCut polish, the first
   click's box stage, the click's sign, the pieces connected to the clicks.
"""
from __future__ import annotations

import cv2
import numpy as np

from tam.errors import MaskError
from tam.segment.base import Prompt, Segmenter, SegmentResult
from tam.segment.classical import polish
from tam.segment.classical.candidates import Clicks, box_region, geodesic_evidence, newest_click_region, read_clicks
from tam.segment.classical.config import ClassicalSegmenterConfig
from tam.segment.classical.cut import LOGIT_CAP, moves_apart, solve
from tam.segment.classical.frame import PreparedFrame, looks_like, prepare_frame
from tam.segment.classical.refine import refine_keeping_pieces

EMPTY_LOGIT = -4.0  # logits of an answer with nothing asked for


def _check_rgb(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")
    return image


def _check_state(state) -> PreparedFrame:
    if not isinstance(state, PreparedFrame):
        raise TypeError(f"expected the PreparedFrame that set_image() returned, got {type(state).__name__}")
    return state


class ClassicalSegmenter(Segmenter):
    """Superpixel graph cut driven by clicks, a box and the previous mask. Always available."""

    name = "classical"
    Config = ClassicalSegmenterConfig

    def __init__(self, **config):
        self.config = ClassicalSegmenterConfig(**config)

    def set_image(self, image: np.ndarray) -> PreparedFrame:
        return self.set_frame(image)

    def set_frame(self, image: np.ndarray, neighbours=()) -> PreparedFrame:
        """Prepare ``image`` (RGB uint8 H x W x 3); ``neighbours``, frames of the same size near it in time,
        add motion cues (optical flow towards each)."""
        image = _check_rgb(image)
        neighbours = [_check_rgb(v) for v in neighbours]
        for v in neighbours:
            if v.shape != image.shape:
                raise ValueError(f"a neighbouring frame is {v.shape[1]}x{v.shape[0]}, the frame "
                                 f"{image.shape[1]}x{image.shape[0]}")
        return prepare_frame(image, self.config, neighbours)

    def predict(self, state: PreparedFrame, prompt: Prompt, mask_input: np.ndarray | None = None) -> SegmentResult:
        """Mask for the prepared frame ``state``; ``mask_input`` is a previous answer's logits, a mask or a
        probability map at image size. The answer's ``logits`` (float32, image size, positive = object) can
        be passed back."""
        f, cfg = _check_state(state), self.config
        H, W = f.shape
        prompt.validate(W, H)
        clicks = read_clicks(f, prompt)
        box = box_region(f, prompt.box)
        if not len(clicks.pos_sp) and prompt.box is None:  # only negative clicks: nothing was asked for
            return SegmentResult(np.zeros((H, W), bool), 0.0, np.full((H, W), EMPTY_LOGIT, np.float32))
        prev, prev_px = (None, None) if mask_input is None else self._prev_fraction(f, mask_input)
        ev = geodesic_evidence(f, cfg, clicks, box)
        region = newest_click_region(f, cfg, clicks, ev, box, prev)
        cut = solve(f, cfg, clicks, ev, region, box.inside, prev)
        veto = moves_apart(f, cfg, cut.labels)[f.labels]
        mask = self._pixel_stages(f, cut.labels[f.labels], clicks, region.infl, prev_px, box.pixels, veto)
        logits = cut.logits()[f.labels].astype(np.float32)
        logits = np.where(mask, np.abs(logits), -np.abs(logits)).astype(np.float32)
        if f.scale != 1.0:
            logits = cv2.resize(logits, (W, H), interpolation=cv2.INTER_LINEAR)
            mask = logits > 0
        conf = float(np.clip(np.mean(np.abs(cut.logits()[cut.labels])) / LOGIT_CAP, 0, 1)) if cut.labels.any() else 0.0
        return SegmentResult(mask=mask, score=conf, logits=logits)

    def _pixel_stages(self, f: PreparedFrame, mask, clicks: Clicks, infl, prev_px, box_px, veto) -> np.ndarray:
        """The superpixel answer ``mask`` (h x w bool) through the pixel stages, in order; ``veto`` (h x w
        bool) is where the stages after the band refinement may not add to the cut's answer."""
        cfg = self.config
        pts, labs = clicks.pts, clicks.labs
        if cfg.refine and mask.any():
            mask = refine_keeping_pieces(f, cfg, mask)
        region = None
        if prev_px is not None and cfg.local_edits and len(pts):
            # a click edits the region it belongs to; the rest of the previous mask stays as it was
            region = (infl > 0.5)[f.labels].astype(np.uint8)
            region = cv2.dilate(region, np.ones((2 * cfg.refine_band + 1,) * 2, np.uint8)).astype(bool)
            mask = np.where(region, mask, prev_px)
        decided = mask
        if cfg.grabcut_iters and np.count_nonzero(mask) >= cfg.grabcut_min_area:
            trusted = self._trusted_removals(f, mask, prev_px, region, labs)
            mask = polish.grabcut_polish(f, cfg, mask, pts, labs, inside_px=box_px, definite_bg=trusted)
        if cfg.box_grow > 0 and cfg.box_iters and prev_px is None and box_px is None and mask.any() \
                and clicks.any_positive:
            mask = polish.box_grabcut(f, cfg, mask, pts, labs)
        mask = mask & ~(veto & ~decided)
        if cfg.monotone and prev_px is not None and len(pts):
            mask = polish.keep_to_sign(mask, prev_px, int(labs[-1]))
            if cfg.click_decides and region is not None and labs[-1] == 0:
                alike = looks_like(f, cfg, int(f.labels[pts[-1, 1], pts[-1, 0]]))[f.labels]
                mask = polish.keep_click_decision(mask, decided, region & alike, int(labs[-1]))
        if cfg.keep_connected and mask.any() and (clicks.any_positive or prev_px is not None):
            mask = polish.keep_anchored(mask, pts, labs, prev_px)
        if cfg.click_radius > 0 and len(pts):
            polish.force_click_discs(mask, pts, labs, cfg.click_radius)
        return mask

    def _trusted_removals(self, f: PreparedFrame, mask, prev_px, region, labs) -> np.ndarray | None:
        """After a negative click with neighbouring frames: what the cut took out of the previous mask in
        the click's ``region`` (h x w bool), which the colour-only polish may not put back; else None."""
        if not self.config.neg_trust_cut or f.motion is None or region is None or labs[-1] != 0:
            return None
        return region & prev_px & ~mask

    def superpixel_ceiling(self, state: PreparedFrame, gt: np.ndarray) -> np.ndarray:
        """The mask a perfect labelling of the prepared frame ``state``'s superpixels gives: each superpixel
        takes the majority label of ``gt`` (a bool mask at image size). Its IoU with ``gt`` bounds what
        the superpixel cut can reach before the pixel-level stages; ``bench/bench_segment.py`` prints it."""
        f = _check_state(state)
        frac, _ = self._prev_fraction(f, np.asarray(gt, bool))
        mask = (frac > 0.5)[f.labels]
        if f.scale != 1.0:
            mask = cv2.resize(mask.astype(np.uint8), f.shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
        return mask

    @staticmethod
    def _prev_fraction(f: PreparedFrame, mask_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(each superpixel's share of ``mask_input``, the mask at working size): a mask, a probability
        map or logits at image size."""
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
