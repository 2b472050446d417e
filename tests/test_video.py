"""Video in: codecs, seeking, rotation, variable frame rate, 10-bit, alpha, folders, proxy, memory."""
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from tam.errors import VideoError
from tam.video import open_source, proxy_size
from tests.media import SAMPLE, block_index, frame_pattern, make_video

CODECS = [
    ("h264.mp4", dict(codec="libx264")),
    ("hevc.mp4", dict(codec="libx265")),
    ("vp9.webm", dict(codec="libvpx-vp9")),
    ("prores.mov", dict(codec="prores_ks", pix_fmt="yuv422p10le")),
    ("mpeg4.mp4", dict(codec="mpeg4", options={"qmin": "1", "qmax": "3"})),
    ("h264-10bit.mkv", dict(codec="libx264", pix_fmt="yuv420p10le")),
]


@pytest.mark.parametrize("name,kw", CODECS, ids=[c[0] for c in CODECS])
def test_codecs_decode_every_frame_in_order_and_by_seek(tmp_path, name, kw):
    path = make_video(tmp_path / name, n=12, **kw)
    with open_source(path, cache_frames=1) as src:
        assert len(src) == 12 and src.size == (64, 48)
        assert src.probe.fps == pytest.approx(25.0)
        seq = [src[i].copy() for i in range(12)]
        assert all(f.dtype == np.uint8 and f.shape == (48, 64, 3) for f in seq)
        assert [block_index(f) for f in seq] == list(range(12))
        for i in (9, 2, 11, 0, 5):  # random access gives the same pixels as reading in order
            assert np.array_equal(src[i], seq[i])


def test_sample_clip_probe():
    with open_source(SAMPLE) as src:
        p = src.probe
        assert (p.width, p.height, p.num_frames) == (1280, 720, 132)
        assert p.fps == pytest.approx(25.0) and p.has_audio and p.audio_codec == "aac"
        assert src[131].shape == (720, 1280, 3)


def test_rotation_metadata_is_applied(tmp_path):
    path = make_video(tmp_path / "phone.mp4", n=4, width=64, height=48, rotate=90)
    with open_source(path) as src:
        assert src.size == (48, 64) and src.probe.rotation == 90
        upright = frame_pattern(0, 64, 48)
        assert np.abs(src[0].astype(int) - np.rot90(upright, 1).astype(int)).mean() < 6


def test_variable_frame_rate_keeps_timestamps(tmp_path):
    ts = [0, 0.04, 0.1, 0.3, 0.34, 0.5, 0.9, 1.0]
    path = make_video(tmp_path / "vfr.mp4", n=8, timestamps=ts)
    with open_source(path) as src:
        assert src.probe.variable_frame_rate
        assert src.probe.timestamps == pytest.approx(ts, abs=1e-3)
        assert [block_index(src[i]) for i in range(8)] == list(range(8))


def test_alpha_source_becomes_rgb(tmp_path):
    path = make_video(tmp_path / "alpha.mov", n=3, codec="qtrle", pix_fmt="argb")
    with open_source(path) as src:
        assert src[2].shape == (48, 64, 3) and block_index(src[2]) == 2


def test_image_folder_is_a_video(tmp_path):
    for i in (3, 1, 2, 0):
        Image.fromarray(frame_pattern(i, 40, 30)).save(tmp_path / f"f{i:03d}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    with open_source(tmp_path) as src:
        assert len(src) == 4 and src.size == (40, 30)
        assert [block_index(src[i]) for i in range(4)] == [0, 1, 2, 3]
        with pytest.raises(IndexError):
            src[4]


def test_folder_with_mixed_sizes_is_an_error(tmp_path):
    Image.fromarray(frame_pattern(0, 40, 30)).save(tmp_path / "a.png")
    Image.fromarray(frame_pattern(1, 30, 30)).save(tmp_path / "b.png")
    with open_source(tmp_path) as src, pytest.raises(VideoError, match="one size"):
        src[1]


def test_proxy_size_rule():
    assert proxy_size(854, 480) == (854, 480)
    assert proxy_size(1280, 720) == (854, 480)
    assert proxy_size(1920, 1080) == (854, 480)
    assert proxy_size(1080, 1920) == (480, 854)
    assert proxy_size(432, 240) == (432, 240)
    assert proxy_size(1280, 720, None) == (1280, 720)


def test_memory_does_not_grow_with_length(tmp_path):
    """Reading a clip 8x longer must not need more memory: frames are streamed."""
    def peak_reading(n):
        path = make_video(tmp_path / f"len{n}.mp4", n=n, width=320, height=240)
        with open_source(path, cache_frames=4) as src:
            tracemalloc.start()
            for i in range(len(src)):
                src[i]
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return peak

    short, long = peak_reading(25), peak_reading(200)
    frame_bytes = 320 * 240 * 3
    assert long < 12 * frame_bytes
    assert long < short * 1.5 + frame_bytes
