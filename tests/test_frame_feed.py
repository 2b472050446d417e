"""The read-ahead frame feed of the neural trackers, and the preprocessing on the device."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tam.frames import IndexedFrames

torch = pytest.importorskip("torch", reason="torch is not installed")


def _frames(n, reads, h=6, w=8, fail_at=None):
    def get(i):
        reads.append(i)
        if i == fail_at:
            raise OSError(f"cannot decode frame {i}")
        return np.full((h, w, 3), i, np.uint8)

    return IndexedFrames(n, get)


def test_frames_come_in_any_order_and_reading_stays_ahead_by_a_bounded_amount():
    from tam.track.feed import FrameFeed

    reads: list[int] = []
    frames = _frames(50, reads)
    with FrameFeed(frames, range(10, 0, -1), "cpu", depth=2) as feed:
        assert int(feed.get(10)[0, 0, 0]) == 10
        time.sleep(0.2)
        assert len(reads) <= 1 + 2 + 1  # the frame handed out, the queue, one in the reader's hand
        assert int(feed.get(3)[0, 0, 0]) == 3  # frames 9..4 are skipped, 3 comes from the queue
        assert int(feed.get(40)[0, 0, 0]) == 40  # not in the order: read on the spot
        assert feed.get(2).dtype == torch.uint8 and feed.get(2).shape == (6, 8, 3)
    assert not any(t.name == "tam-frame-feed" for t in threading.enumerate())
    assert reads.count(40) == 1


def test_a_frame_that_cannot_be_read_raises_where_it_is_asked_for():
    from tam.track.feed import FrameFeed

    with FrameFeed(_frames(5, [], fail_at=2), range(5), "cpu") as feed:
        assert int(feed.get(1)[0, 0, 0]) == 1
        with pytest.raises(OSError, match="frame 2"):
            feed.get(2)
    grey = IndexedFrames(1, lambda i: np.zeros((4, 4), np.uint8))
    with FrameFeed(grey, [], "cpu") as feed, pytest.raises(ValueError, match="RGB uint8"):
        feed.get(0)


def test_square_normalised_matches_pil_bicubic_within_rounding():
    from PIL import Image

    from tam.track.feed import channel_constants, square_normalised

    rng = np.random.default_rng(0)
    img = (rng.random((48, 80, 3)) * 255).astype(np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ours = square_normalised(torch.from_numpy(img), 32, channel_constants(mean, "cpu"),
                             channel_constants(std, "cpu")).numpy()
    pil = np.asarray(Image.fromarray(img).resize((32, 32)), np.float32) / 255.0
    want = ((pil - np.array(mean, np.float32)) / np.array(std, np.float32)).transpose(2, 0, 1)
    assert ours.shape == (3, 32, 32) and ours.dtype == np.float32
    assert np.abs(ours - want).max() < 3 / 255 / 0.224  # a few grey levels at most
