"""Mask files in every encoding that datasets and other tools write come back as the same ids."""
import numpy as np
import pytest
from PIL import Image

from tam.errors import MaskError
from tam.masks import PALETTE, load_labels, save_labels


@pytest.fixture
def ids():
    m = np.zeros((20, 30), np.uint8)
    m[2:8, 2:10] = 1
    m[10:18, 5:12] = 2
    m[4:16, 20:28] = 3
    return m


def test_palette_png_keeps_its_ids(tmp_path, ids):
    save_labels(tmp_path / "p.png", ids)
    assert np.array_equal(load_labels(tmp_path / "p.png"), ids)


def test_0_255_greyscale_is_one_object_even_antialiased(tmp_path, ids):
    grey = np.where(ids > 0, 255, 0).astype(np.uint8)
    grey[ids == 3] = 200  # soft values above half still count as object
    grey[0, 0] = 40  # and faint ones below half as background
    Image.fromarray(grey).save(tmp_path / "g.png")
    assert np.array_equal(load_labels(tmp_path / "g.png"), (ids > 0).astype(np.uint8))


def test_greyscale_id_maps_keep_their_ids(tmp_path, ids):
    Image.fromarray(ids).save(tmp_path / "i.png")  # mode L with values 0..3
    assert np.array_equal(load_labels(tmp_path / "i.png"), ids)


def test_colour_masks_in_the_davis_palette_map_to_its_indices(tmp_path, ids):
    Image.fromarray(PALETTE[ids]).save(tmp_path / "c.png")  # an RGB rendering of a palette mask
    assert np.array_equal(load_labels(tmp_path / "c.png"), ids)


def test_other_colour_masks_number_their_colours(tmp_path, ids):
    colours = np.array([[0, 0, 0], [250, 10, 10], [10, 250, 10], [10, 10, 250]], np.uint8)
    Image.fromarray(colours[ids]).save(tmp_path / "o.png")
    out = load_labels(tmp_path / "o.png")
    assert set(np.unique(out)) == {0, 1, 2, 3}
    for k in (1, 2, 3):  # each object is one id, and different objects differ
        assert len(np.unique(out[ids == k])) == 1
    assert len({int(out[ids == k][0]) for k in (1, 2, 3)}) == 3
    assert (out[ids == 0] == 0).all()


def test_unreadable_mask_is_a_one_line_error(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(MaskError, match="cannot read mask bad.png"):
        load_labels(tmp_path / "bad.png")
