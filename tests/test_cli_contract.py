"""The CLI forms that outside tools call, on real DAVIS frames (read in place from ../shared/data)."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tam.cli import main
from tam.datasets import read_label_png
from tam.masks import load_labels
from tests.media import DATA

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data (DAVIS evaluation data) is absent")


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture(scope="module")
def swan(tmp_path_factory):
    """The first 12 frames of davis2016/blackswan as an image folder, with their truth."""
    d = tmp_path_factory.mktemp("swan")
    src = DATA / "davis2016" / "blackswan"
    (d / "frames").mkdir()
    for i in range(12):
        shutil.copy(src / "frames" / f"{i:05d}.jpg", d / "frames" / f"{i:05d}.jpg")
    truth = [read_label_png(src / "masks" / f"{i:05d}.png") > 0 for i in range(12)]
    return d, truth


def test_segment_writes_a_0_255_png_of_the_image_size(swan, tmp_path, capsys):
    d, truth = swan
    ys, xs = np.nonzero(truth[0])
    cx, cy = int(np.median(xs)), int(np.median(ys))
    assert truth[0][cy, cx]
    code = main(["segment", str(d / "frames" / "00000.jpg"), "--point", f"{cx},{cy}",
                 "--point", "20,20,0", "--out", str(tmp_path / "m.png")])
    assert code == 0, capsys.readouterr().err
    m = np.array(Image.open(tmp_path / "m.png"))
    assert m.shape == (480, 854) and set(np.unique(m)) <= {0, 255}
    assert iou(m > 0, truth[0]) > 0.6


def test_track_from_init_mask_folder_source(swan, tmp_path, capsys):
    d, truth = swan
    init = tmp_path / "init.png"
    Image.fromarray(np.where(truth[0], 255, 0).astype(np.uint8)).save(init)
    out = tmp_path / "masks"
    code = main(["track", str(d / "frames"), "--init-mask", str(init), "--out", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(12)]
    masks = [load_labels(f) for f in files]
    assert all(m.shape == (480, 854) for m in masks)
    assert set(np.unique(masks[11])) == {0, 1}
    assert np.mean([iou(m > 0, t) for m, t in zip(masks[1:], truth[1:])]) > 0.75


def test_track_with_refinement(swan, tmp_path, capsys):
    d, truth = swan
    init = tmp_path / "init.png"
    Image.fromarray(np.where(truth[0], 255, 0).astype(np.uint8)).save(init)
    out = tmp_path / "masks"
    code = main(["track", str(d / "frames"), "--init-mask", str(init), "--refine", "--out", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    masks = [load_labels(f) > 0 for f in sorted(out.iterdir())]
    assert len(masks) == 12
    assert np.mean([iou(m, t) for m, t in zip(masks[1:], truth[1:])]) > 0.75


def test_track_backwards_from_a_later_init_frame(swan, tmp_path, capsys):
    d, truth = swan
    init = tmp_path / "init.png"
    Image.fromarray(np.where(truth[8], 255, 0).astype(np.uint8)).save(init)
    out = tmp_path / "masks"
    code = main(["track", str(d / "frames"), "--init-mask", str(init), "--init-frame", "8",
                 "--out", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    assert iou(load_labels(out / "00000.png") > 0, truth[0]) > 0.7


def test_track_from_clicks_json(swan, tmp_path, capsys):
    d, truth = swan
    ys, xs = np.nonzero(truth[0])
    clicks = [{"frame": 0, "object": 2, "x": float(np.median(xs)), "y": float(np.median(ys))}]
    (tmp_path / "clicks.json").write_text(json.dumps(clicks))
    out = tmp_path / "masks"
    code = main(["track", str(d / "frames"), "--clicks", str(tmp_path / "clicks.json"), "--out", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    m = load_labels(out / "00005.png")
    assert set(np.unique(m)) == {0, 2}  # the object keeps the id it was given
    assert iou(m == 2, truth[5]) > 0.5
