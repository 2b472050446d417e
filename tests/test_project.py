"""The on-disk project: persistence across reopen, atomic writes, objects, prompts, masks."""
import numpy as np
import pytest

from tam.errors import MaskError, PromptError, TamError
from tam.masks import load_labels, resize_labels, save_labels
from tam.project import Project, delete_project, list_projects
from tests.media import make_video


@pytest.fixture
def clip(tmp_path):
    return make_video(tmp_path / "clip.mp4", n=10, width=128, height=96)


def test_reopen_restores_everything(tmp_path, clip):
    p = Project.create(clip, root=tmp_path / "projects", proxy_longest=64)
    assert p.proxy_size == (64, 48) and p.source_size == (128, 96)
    a = p.add_object("boom mic")
    b = p.add_object()
    p.add_click(3, a, 10, 20, 1)
    p.add_click(3, a, 50, 60, 0)
    p.add_click(7, b, 100, 90, 1)
    labels = np.zeros((48, 64), np.uint8)
    labels[5:20, 5:20] = a
    labels[30:40, 40:60] = b
    p.set_keyframe(3, labels)
    p.save_mask(4, labels)
    del p  # nothing held in memory matters: the folder is the truth
    q = Project.open(tmp_path / "projects" / list_projects(tmp_path / "projects")[0].name)
    assert [(o.id, o.name) for o in q.objects] == [(1, "boom mic"), (2, "object 2")]
    assert q.prompt(3, a)["clicks"] == [[10.0, 20.0, 1], [50.0, 60.0, 0]]
    assert q.prompted() == {3: [1], 7: [2]}
    assert q.keyframe_indices() == [3]
    assert np.array_equal(q.keyframes()[3], labels)
    assert np.array_equal(q.mask(4), labels) and q.mask(5) is None
    assert q.tracked_frames() == [3, 4]


def test_create_is_idempotent_and_listable(tmp_path, clip):
    root = tmp_path / "projects"
    p = Project.create(clip, root=root)
    p.add_object()
    again = Project.create(clip, root=root)
    assert again.path == p.path and len(again.objects) == 1
    assert list_projects(root) == [p.path]
    delete_project(p.name, root)
    assert list_projects(root) == []
    with pytest.raises(TamError):
        delete_project("nope", root)


def test_undo_clear_and_bad_clicks(tmp_path, clip):
    p = Project.create(clip, path=tmp_path / "p")
    a = p.add_object()
    p.add_click(0, a, 1, 1)
    p.add_click(0, a, 2, 2)
    p.undo_click(0, a)
    assert p.prompt(0, a)["clicks"] == [[1.0, 1.0, 1]]
    p.clear_prompt(0, a)
    assert p.prompted() == {}
    with pytest.raises(PromptError, match="outside"):
        p.add_click(0, a, 128, 5)
    with pytest.raises(PromptError, match="frame 10"):
        p.add_click(10, a, 5, 5)
    with pytest.raises(PromptError, match="no object"):
        p.add_click(0, 9, 5, 5)


def test_delete_object_clears_its_pixels(tmp_path, clip):
    p = Project.create(clip, path=tmp_path / "p", proxy_longest=64)
    a, b = p.add_object(), p.add_object()
    labels = np.zeros((48, 64), np.uint8)
    labels[:10] = a
    labels[20:30] = b
    p.set_keyframe(0, labels)
    p.add_click(0, a, 5, 5)
    p.delete_object(a)
    assert set(np.unique(p.keyframes()[0])) == {0, b}
    assert p.prompted() == {} and [o.id for o in p.objects] == [b]


def test_mask_size_is_checked(tmp_path, clip):
    p = Project.create(clip, path=tmp_path / "p", proxy_longest=64)
    with pytest.raises(MaskError, match="working frames are 64x48"):
        p.save_mask(0, np.zeros((10, 10), np.uint8))
    with pytest.raises(MaskError, match="frames are 128x96"):
        p.to_proxy_labels(np.zeros((96, 100), np.uint8))


def test_proxy_frames_cache_on_disk(tmp_path, clip):
    p = Project.create(clip, path=tmp_path / "p", proxy_longest=64)
    f = p.frames[5]
    assert f.shape == (48, 64, 3)
    assert (tmp_path / "p" / "proxy" / "00005.jpg").exists()
    fresh = Project.open(tmp_path / "p")
    # the same pixels whether decoded from the source or read back from the cache
    np.testing.assert_array_equal(fresh.frames[5], f)


def test_label_png_roundtrip_and_resize(tmp_path):
    labels = np.zeros((30, 40), np.uint8)
    labels[5:15, 5:15] = 3
    labels[20:, 30:] = 7
    save_labels(tmp_path / "m.png", labels)
    assert np.array_equal(load_labels(tmp_path / "m.png"), labels)
    big = resize_labels(labels, (80, 60))
    assert set(np.unique(big)) == {0, 3, 7}
    assert abs(int((big == 3).sum()) - 400) < 40
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_project_names_are_direct_children_of_the_projects_folder(tmp_path):
    from tam.errors import TamError
    from tam.project import project_path

    assert project_path("clip-1a2b", tmp_path) == tmp_path / "clip-1a2b"
    for bad in ("", ".", "..", "../x", "a/b", "/etc", "a\\b"):
        with pytest.raises(TamError):
            project_path(bad, tmp_path)
