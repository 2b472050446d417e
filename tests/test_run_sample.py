"""The whole job on the bundled sample, as the README's first command runs it."""
import numpy as np
import pytest
from scipy import ndimage

from tam.cli import main
from tam.masks import load_labels
from tam.video import open_source
from tests.media import SAMPLE, stream_info


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    out, masks = d / "no-rock.mp4", d / "masks"
    # the README's command: the rock, the far end of its upper slab, and the crevice, at the default
    # working size (the fill's layout depends on it: at 480 px a block of sky comes back under the hills)
    code = main(["run", str(SAMPLE), "--click", "980,350", "--click", "1125,305", "--click", "1158,360",
                 "--out", str(out), "--masks-out", str(masks), "-q"])
    assert code == 0
    return out, masks


def test_output_keeps_frames_rate_size_and_audio(sample_run):
    out, _ = sample_run
    src = stream_info(SAMPLE)
    info = stream_info(out)
    assert info["frames"] == src["frames"] == 132
    assert (info["width"], info["height"], info["fps"]) == (1280, 720, 25.0)
    assert info["audio"] and info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"


def test_mask_holds_the_rock_on_every_frame(sample_run):
    _, masks = sample_run
    files = sorted(masks.iterdir())
    assert len(files) == 132
    first = load_labels(files[0])
    assert first.shape == (720, 1280) and first[350, 980] == first[305, 1125] == first[360, 1158] == 1
    area = (first > 0).mean()
    assert 0.01 < area < 0.15, area  # the rock, not the hillside
    for f in files[::10]:
        m = load_labels(f) > 0
        assert 0.5 * area < m.mean() < 2.0 * area


def test_pixels_away_from_the_rock_are_the_source(sample_run):
    out, masks = sample_run
    with open_source(SAMPLE) as a, open_source(out) as b:
        for i in (0, 40, 90, 131):
            m = load_labels(masks / f"{i:05d}.png") > 0
            far = ~ndimage.binary_dilation(m, iterations=40)
            diff = np.abs(a[i].astype(int) - b[i].astype(int))[far]
            assert diff.mean() < 2.5, (i, diff.mean())
            near = ndimage.binary_erosion(m, iterations=10)
            # inside the rock the pixels changed: it was removed
            assert np.abs(a[i].astype(int) - b[i].astype(int))[near].mean() > 8


def test_no_sky_is_pasted_under_the_hills(sample_run):
    """The rock's top touches the sky and a thin band of hills: the fill runs the hills on at their
    height, with grass below, instead of bringing the pale sky down into the hole."""
    out, masks = sample_run
    with open_source(out) as b:
        for i in (0, 66, 131):
            m = load_labels(masks / f"{i:05d}.png") > 0
            pale = b[i].min(axis=2) > 170  # sky: every channel bright; hills, grass and foliage are not
            assert pale[m].mean() < 0.02, (i, pale[m].mean())
