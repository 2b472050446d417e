"""Video out: H.264 MP4 at source size and timing, audio kept, odd sizes, atomic output."""
import numpy as np
import pytest

from tam.errors import OutputError
from tam.export import VideoWriter
from tam.video import open_source
from tests.media import block_index, frame_pattern, make_video, stream_info


def _write(path, src, **kw):
    p = src.probe
    with VideoWriter(path, p.width, p.height, p.fps, p.timestamps if p.variable_frame_rate else None, **kw) as w:
        for f in src:
            w.write(f)


def test_mp4_keeps_size_fps_frames_and_audio(tmp_path):
    src_path = make_video(tmp_path / "in.mp4", n=20, audio=True)
    with open_source(src_path) as src:
        _write(tmp_path / "out.mp4", src, audio_from=src_path)
    info = stream_info(tmp_path / "out.mp4")
    assert info == {"frames": 20, "width": 64, "height": 48, "fps": 25.0, "audio": True,
                    "pix_fmt": "yuv420p", "codec": "h264"}
    with open_source(tmp_path / "out.mp4") as out:
        assert [block_index(out[i]) for i in range(20)] == list(range(20))


def test_no_audio_source_gives_video_only(tmp_path):
    src_path = make_video(tmp_path / "in.mp4", n=5)
    with open_source(src_path) as src:
        _write(tmp_path / "out.mp4", src, audio_from=src_path)
    assert stream_info(tmp_path / "out.mp4")["audio"] is False


def test_audio_in_a_codec_mp4_cannot_hold_is_reencoded(tmp_path):
    src_path = make_video(tmp_path / "in.mkv", n=10, audio=True, audio_codec="pcm_s16le")
    with open_source(src_path) as src:
        _write(tmp_path / "out.mp4", src, audio_from=src_path)
    import av
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.audio[0].codec_context.name == "aac"


def test_odd_size_is_kept_exactly(tmp_path):
    with VideoWriter(tmp_path / "odd.mp4", 33, 21, 24) as w:
        for i in range(4):
            w.write(frame_pattern(i, 33, 21))
    info = stream_info(tmp_path / "odd.mp4")
    assert (info["width"], info["height"], info["frames"]) == (33, 21, 4)


def test_variable_frame_rate_output_keeps_timing(tmp_path):
    ts = [0, 0.04, 0.2, 0.24, 0.6]
    src_path = make_video(tmp_path / "vfr.mp4", n=5, timestamps=ts)
    with open_source(src_path) as src:
        _write(tmp_path / "out.mp4", src)
    with open_source(tmp_path / "out.mp4") as out:
        assert out.probe.timestamps == pytest.approx(ts, abs=2e-3)


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(target, 64, 48, 25) as w:
            w.write(frame_pattern(0, 64, 48))
            raise RuntimeError("crash mid-render")
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_size_and_bad_dirs(tmp_path):
    with VideoWriter(tmp_path / "a.mp4", 64, 48, 25) as w:
        with pytest.raises(OutputError):
            w.write(np.zeros((10, 10, 3), np.uint8))
        w.write(frame_pattern(0, 64, 48))
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "a.mp4", 64, 48, 25)
