from tam.segment.base import SEGMENTERS, Prompt, Segmenter, SegmentResult

__all__ = ["SEGMENTERS", "Prompt", "Segmenter", "SegmentResult"]
