"""Which neighbouring frames a click on frame t looks at, and preparing a segmenter with them."""
from __future__ import annotations


NEIGHBOUR_STEP = 3  # frames between the clicked frame and each neighbour


def neighbour_indices(t: int, length: int, step: int = NEIGHBOUR_STEP) -> list[int]:
    """Frames around ``t`` in a video of ``length`` frames: t - step and t + step; at either end of the
    video the missing one is replaced by the frame twice as far on the other side. Empty for a single frame.

    >>> neighbour_indices(10, 50), neighbour_indices(0, 50), neighbour_indices(49, 50)
    ([7, 13], [3, 6], [46, 43])
    """
    if not 0 <= t < length:
        raise IndexError(f"frame {t} is outside 0..{length - 1}")
    if length < 2:
        return []
    step = max(1, min(step, (length - 1) // 2 or 1))
    out = [i for i in (t - step, t + step) if 0 <= i < length]
    if len(out) == 1:
        far = t + 2 * step if out[0] > t else t - 2 * step
        if 0 <= far < length:
            out.append(far)
    return out


def prepare_video_frame(segmenter, frames, t: int, step: int = NEIGHBOUR_STEP):
    """Prepare frame ``t`` of ``frames`` (anything with ``len`` and indexing that gives RGB uint8 frames: a
    VideoSource, a project's frames) with its neighbours; returns (frame ``t``, the segmenter's image state)."""
    image = frames[t]
    return image, segmenter.set_frame(image, [frames[i] for i in neighbour_indices(t, len(frames), step)])
