"""Classical click-to-mask segmentation: a superpixel graph cut, no weights.

``set_image`` prepares a frame once (:mod:`.frame`); ``predict`` turns a prompt
into a mask through the candidates (:mod:`.candidates`), the cut (:mod:`.cut`)
and the polish (:mod:`.refine`, :mod:`.polish`). The measured history of these
stages, and of the ideas that were tried and dropped, is in docs/experiments.md.
"""
from tam.segment.classical.config import ClassicalSegmenterConfig
from tam.segment.classical.segmenter import ClassicalSegmenter

__all__ = ["ClassicalSegmenter", "ClassicalSegmenterConfig"]
