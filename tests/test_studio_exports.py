"""Mask exports from a project: indexed PNGs, per-object mattes and a matte video at source size."""
import numpy as np
import pytest
from PIL import Image

from tam.masks import load_labels
from tam.project import Project
from tam.studio import Studio
from tests.media import make_video, stream_info


@pytest.fixture
def studio(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n=6, width=128, height=96)
    p = Project.create(clip, path=tmp_path / "p", proxy_longest=64)
    for i in range(6):
        labels = np.zeros((48, 64), np.uint8)
        labels[10:30, 5 + i:25 + i] = 1
        labels[35:45, 40:60] = 4
        p.save_mask(i, labels)
    p.add_object(object_id=1)
    p.add_object(object_id=4)
    return Studio(p)


def test_indexed_png_export_at_source_size(studio, tmp_path):
    list(studio.export_masks(tmp_path / "masks"))
    files = sorted((tmp_path / "masks").iterdir())
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(6)]
    im = Image.open(files[2])
    assert im.mode == "P" and im.size == (128, 96)
    labels = load_labels(files[2])
    assert set(np.unique(labels)) == {0, 1, 4}
    # object 1 at frame 2 covers proxy x 7..27, y 10..30 -> source x 14..54, y 20..60
    assert labels[40, 30] == 1 and labels[40, 70] == 0 and labels[80, 100] == 4


def test_mattes_per_object(studio, tmp_path):
    list(studio.export_mattes(tmp_path / "mattes"))
    assert sorted(p.name for p in (tmp_path / "mattes").iterdir()) == ["object_1", "object_4"]
    m = np.array(Image.open(tmp_path / "mattes" / "object_4" / "00005.png"))
    assert m.shape == (96, 128) and set(np.unique(m)) == {0, 255}
    assert m[80, 100] == 255 and m[40, 30] == 0


def test_matte_video(studio, tmp_path):
    list(studio.export_matte_video(tmp_path / "matte.mp4", ids=[4]))
    info = stream_info(tmp_path / "matte.mp4")
    assert (info["frames"], info["width"], info["height"]) == (6, 128, 96)
    from tam.video import open_source
    with open_source(tmp_path / "matte.mp4") as v:
        f = v[3]
    assert f[80, 100].mean() > 200 and f[40, 30].mean() < 30  # only object 4 is in the matte
