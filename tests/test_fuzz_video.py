"""The video reader on random and cut bytes: it raises VideoError or reads frames, never crashes."""
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tam.errors import VideoError
from tam.video import open_source
from tests.media import make_video

_CLIP = make_video(Path(tempfile.mkdtemp(prefix="tam-fuzz-")) / "clip.mp4", n=6, width=32, height=24)
_BYTES = _CLIP.read_bytes()


def _read_all(data: bytes, suffix: str = ".mp4") -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"f{suffix}"
        p.write_bytes(data)
        try:
            with open_source(p) as src:
                assert len(src) >= 1
                for i in range(len(src)):
                    f = src[i]
                    assert f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3
        except VideoError as e:
            assert str(e) and "\n" not in str(e)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=4096), st.sampled_from([".mp4", ".mkv", ".avi", ".mov"]))
def test_random_bytes(data, suffix):
    _read_all(data, suffix)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=len(_BYTES)))
def test_truncated_clip(cut):
    _read_all(_BYTES[:cut])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_BYTES) - 1), st.integers(0, 255)), min_size=1, max_size=64))
@example(edits=[(1606, 1)])  # a byte in the index: seeking failed, and so did the fallback seek to 0
def test_flipped_bytes(edits):
    data = bytearray(_BYTES)
    for pos, val in edits:
        data[pos] = val
    _read_all(bytes(data))
