"""Random-forest appearance model learned on the fly from the annotated frames.

The classical tracker's colour histograms judge each pixel by its colour (and a
coarse texture bin) alone. A dog's leg and the path it runs on, or a car's tyre
and its shadow, share colours; what tells them apart is the pixel's surroundings.
This model describes every pixel by a small patch descriptor (Lab colour, Lab
blurred at two scales, gradients at two scales, local contrast) and trains an
OpenCV random forest on the annotated frames: each object's pixels against the
background near the objects (plus a little of the far background). Nothing is
pretrained: the forest is fitted to this video's keyframes, in about a second,
and never updated from tracked frames, so it cannot drift (it is the tracker's
long-term memory of what each object looks like).

How it was measured, and the variants dropped: docs/experiments.md.
"""
from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

# Gaussian scales (pixels at the forest's working size) of the blurred colour and of the gradients
_COLOUR_SIGMAS = (2.0, 5.0)
_GRADIENT_SIGMAS = (1.0, 3.0)
_CONTRAST_SIGMA = 3.0
# share of training pixels taken from the background far from every object
_FAR_SHARE = 0.25
# the forest is asked only on a band around the objects: where the motion prior's object mass is
# above _DEEP_INSIDE it has no opinion, below _FAR_OUTSIDE it answers background (inside a large
# object is the costliest place to ask it)
_DEEP_INSIDE = 0.9
_FAR_OUTSIDE = 0.05
# context around the asked pixels kept when features are computed on a crop: three of the widest blur's sigmas
_MARGIN = int(3 * max(_COLOUR_SIGMAS + _GRADIENT_SIGMAS + (_CONTRAST_SIGMA,)))


def _resized(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(1.0, side / max(h, w))
    if s < 1.0:
        image = cv2.resize(image, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    return image


def patch_features(image: np.ndarray, side: int) -> np.ndarray:
    """Per-pixel descriptors (h x w x 16 float32) of an RGB uint8 image resized to ``side`` longest side."""
    return _features(_resized(image, side))


def _features(image: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    feats = [lab] + [cv2.GaussianBlur(lab, (0, 0), sigma) for sigma in _COLOUR_SIGMAS]
    light = lab[..., 0]
    for sigma in _GRADIENT_SIGMAS:
        smooth = cv2.GaussianBlur(light, (0, 0), sigma)
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
        # signed gradients too: which side of an edge is lighter tells an object's rim from the background's
        feats += [cv2.magnitude(gx, gy)[..., None], gx[..., None], gy[..., None]]
    mean = cv2.GaussianBlur(light, (0, 0), _CONTRAST_SIGMA)
    var = cv2.GaussianBlur(light * light, (0, 0), _CONTRAST_SIGMA) - mean * mean
    feats.append(np.sqrt(np.maximum(var, 0))[..., None])
    return np.concatenate(feats, axis=2)


class ForestModel:
    """A multi-class forest over ``patch_features``: class 0 is the background, class i the i-th object."""

    def __init__(self, labels: list[int], side: int = 320, trees: int = 20, depth: int = 12,
                 samples: int = 6000, band: float = 0.05, budget: int = 0, seed: int = 0):
        self.labels = list(labels)  # label value of each class, 0 first
        self.side = side
        self.trees = trees
        self.depth = depth
        self.samples = samples
        self.band = band  # near background: within this fraction of the image's longest side
        # posterior() asks the forest on at most about this many pixels per object (0: no limit), on a coarser
        # grid where the band around the objects is larger, and interpolates
        self.budget = budget
        self.seed = seed
        self._forest = None

    def fit(self, frames: Mapping[int, np.ndarray], label_maps: Mapping[int, np.ndarray]) -> ForestModel:
        """Train on every annotated frame: ``frames[k]`` RGB, ``label_maps[k]`` the label values."""
        rng = np.random.RandomState(self.seed)
        xs, ys = [], []
        for k in sorted(label_maps):
            feat = patch_features(np.asarray(frames[k]), self.side)
            fh, fw = feat.shape[:2]
            flat = feat.reshape(-1, feat.shape[2])
            lab = cv2.resize(np.asarray(label_maps[k]).astype(np.uint8), (fw, fh), interpolation=cv2.INTER_NEAREST)
            r = max(3, round(self.band * max(fh, fw)))
            disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            near = cv2.dilate((lab > 0).astype(np.uint8), disk) > 0
            for cls, value in enumerate(self.labels):
                if value == 0:
                    picks = [self._pick(rng, (lab == 0) & near, self.samples),
                             self._pick(rng, ~near, int(self.samples * _FAR_SHARE))]
                else:
                    picks = [self._pick(rng, lab == value, self.samples)]
                sel = np.concatenate(picks)
                xs.append(flat[sel])
                ys.append(np.full(len(sel), cls, np.int32))
        y = np.concatenate(ys)
        if len(np.unique(y)) < 2:
            self._forest = None  # nothing to tell apart: posterior() stays uninformative
            return self
        forest = cv2.ml.RTrees_create()
        forest.setMaxDepth(self.depth)
        forest.setMinSampleCount(5)
        forest.setTermCriteria((cv2.TERM_CRITERIA_MAX_ITER, self.trees, 0))
        cv2.setRNGSeed(self.seed)  # OpenCV's forests draw their feature subsets from its global RNG
        forest.train(np.ascontiguousarray(np.concatenate(xs), np.float32), cv2.ml.ROW_SAMPLE, y)
        self._forest = forest
        return self

    @staticmethod
    def _pick(rng: np.random.RandomState, where: np.ndarray, n: int) -> np.ndarray:
        idx = np.flatnonzero(where.ravel())
        if len(idx) > n:
            idx = rng.choice(idx, n, replace=False)
        return idx

    def posterior(self, image: np.ndarray, size: tuple[int, int], object_mass: np.ndarray | None = None
                  ) -> np.ndarray:
        """Per-class probabilities (classes x h x w float32, ``size`` = (h, w)) for an RGB frame.

        ``object_mass`` (h x w, the motion prior's summed object probability)
        limits the work: far from every object (mass at most 5%) the answer is
        background; deep inside them (above 90%) it is uninformative (uniform).
        """
        n = len(self.labels)
        h, w = size
        if self._forest is None:
            return np.full((n, h, w), 1.0 / n, np.float32)
        small = _resized(np.asarray(image), self.side)
        if object_mass is None:
            mass = np.full(small.shape[:2], 0.5, np.float32)  # everywhere in the band: ask every pixel
        else:
            mass = cv2.resize(object_mass.astype(np.float32), small.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        ask = (mass > _FAR_OUTSIDE) & (mass <= _DEEP_INSIDE)
        stride = 1
        if self.budget:
            # the forest is asked on a coarser grid where the band is large; the features keep their
            # full-density context
            stride = max(1, int(np.ceil(np.sqrt(np.count_nonzero(ask) / (self.budget * (n - 1))))))
            mass, ask = mass[::stride, ::stride], ask[::stride, ::stride]
        fh, fw = mass.shape
        mass, ask = mass.ravel(), ask.ravel()
        votes = np.zeros((n, fh * fw), np.float32)
        votes[0, mass <= _FAR_OUTSIDE] = self.trees
        votes[:, mass > _DEEP_INSIDE] = self.trees / n
        idx = np.flatnonzero(ask)
        if len(idx):
            # features only on the band's bounding box, with a margin for their widest blur
            ys, xs = (idx // fw) * stride, (idx % fw) * stride
            y0, x0 = max(0, ys.min() - _MARGIN), max(0, xs.min() - _MARGIN)
            y1, x1 = min(small.shape[0], ys.max() + 1 + _MARGIN), min(small.shape[1], xs.max() + 1 + _MARGIN)
            feat = _features(np.ascontiguousarray(small[y0:y1, x0:x1]))[ys - y0, xs - x0]
            raw = self._forest.getVotes(np.ascontiguousarray(feat), 0)
            # the first row names the classes of the columns (only classes seen in training appear)
            for col, cls in enumerate(raw[0]):
                votes[int(cls), idx] = raw[1:, col]
        # a vote-count prior keeps every class possible (no log of zero downstream)
        probs = (votes + 0.5 / n) / (votes.sum(0, keepdims=True) + 0.5)
        probs = probs.reshape(n, fh, fw)
        if (fh, fw) == (h, w):
            return probs
        return np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in probs])
