"""Brush strokes: the graph cut snaps to edges; strokes and boxes are stored, replayed and undone."""
import json

import numpy as np
import pytest

from tam.errors import PromptError
from tam.project import Project
from tam.segment.strokes import Stroke, apply_strokes, footprint
from tam.studio import Studio
from tests.media import make_video

H, W = 240, 320
SQUARE = (slice(85, 125), slice(110, 170))  # rows, columns of a dark square
STRIP = (slice(85, 125), slice(170, 210))  # an orange strip touching it on the right
BAR = (slice(96, 120), slice(100, 220))  # a long dark bar, 24 px wide


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def region(where):
    out = np.zeros((H, W), bool)
    out[where] = True
    return out


def picture(*parts):
    """A light ground with ``(where, colour)`` parts, and a little noise."""
    rng = np.random.default_rng(0)
    img = np.full((H, W, 3), 200, np.float64)
    for where, colour in parts:
        img[where] = colour
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def scene():
    """A dark square and an orange strip touching it."""
    return picture((SQUARE, (60, 70, 80)), (STRIP, (150, 90, 40))), region(SQUARE), region(STRIP)


def test_add_stroke_takes_the_region_up_to_its_edges():
    img, bar = picture((BAR, (60, 70, 80))), region(BAR)
    stroke = Stroke([[108, 108], [212, 108]], label=1, radius=3)  # along the middle of the bar
    painted = footprint(stroke, (H, W))
    out = apply_strokes(img, np.zeros((H, W), bool), [stroke])
    assert painted.sum() < 0.3 * bar.sum()  # the brush itself covers a quarter of the bar's width
    assert iou(out, bar) > 0.95  # the cut takes the whole bar, and nothing around it


def test_erase_stroke_takes_back_the_region_it_lies_in(scene):
    img, square, strip = scene
    out = apply_strokes(img, square | strip, [Stroke([[190, 90], [190, 120]], label=0, radius=9)])
    assert iou(out, square) > 0.97
    assert not (out & strip).any()


def test_strokes_change_only_what_they_may(scene):
    img, square, strip = scene
    add = Stroke([[122, 105], [158, 105]], label=1, radius=10)
    mask = strip.copy()
    out = apply_strokes(img, mask, [add])
    assert (out >= mask).all()  # an add stroke never removes
    assert iou(out, square | strip) > 0.97
    erase = Stroke([[122, 105], [158, 105]], label=0, radius=10)
    out2 = apply_strokes(img, out, [erase])
    assert (out2 <= out).all() and iou(out2, strip) > 0.97  # an erase stroke never adds
    assert np.array_equal(mask, strip)  # the input mask is untouched


def test_a_stroke_on_flat_colour_paints_about_its_footprint():
    img = np.full((H, W, 3), 120, np.uint8)
    stroke = Stroke([[100, 100], [140, 100]], label=1, radius=4)
    out = apply_strokes(img, np.zeros((H, W), bool), [stroke])
    painted = footprint(stroke, (H, W))
    assert painted.sum() <= out.sum() < 2 * painted.sum()


def test_bad_strokes_are_refused(scene):
    img, _, _ = scene
    with pytest.raises(PromptError, match="radius"):
        Stroke([[1, 1]], 1, 0)
    with pytest.raises(PromptError, match="label"):
        Stroke([[1, 1]], 2, 3)
    with pytest.raises(PromptError, match="mask"):
        apply_strokes(img, np.zeros((10, 10), bool), [])


@pytest.fixture
def project(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n=4, width=128, height=96)
    p = Project.create(clip, path=tmp_path / "p", proxy_longest=64)
    p.add_object()
    return p


def test_strokes_and_boxes_are_stored_in_order_and_undone(project):
    p = project
    p.add_click(1, 1, 10, 20, 1)
    p.add_stroke(1, 1, [[5, 5], [30, 40]], label=0, radius=4)
    p.add_box(1, 1, [2, 3, 60, 50])
    p.add_box(1, 1, [4, 4, 50, 40])
    p.add_click(1, 1, 20, 30, 0)
    again = Project.open(p.path)  # on disk
    prompt = again.prompt(1, 1)
    assert prompt["clicks"] == [[10.0, 20.0, 1], [20.0, 30.0, 0]]
    assert prompt["strokes"] == [{"points": [[5.0, 5.0], [30.0, 40.0]], "label": 0, "radius": 4.0}]
    assert prompt["box"] == [4.0, 4.0, 50.0, 40.0]
    assert [again.undo(1, 1) for _ in range(3)] == ["click", "box", "box"]
    assert again.prompt(1, 1)["box"] is None and len(again.prompt(1, 1)["strokes"]) == 1
    assert again.undo(1, 1) == "stroke" and again.prompt(1, 1)["strokes"] == []
    assert again.undo(1, 1) == "click" and again.undo(1, 1) is None
    assert again.prompted() == {}


def test_old_prompt_files_read_and_undo(project):
    p = project
    (p.path / "prompts.json").write_text(json.dumps(
        {"frames": {"0": {"1": {"clicks": [[1, 2, 1], [3, 4, 0]], "box": [0, 0, 40, 30]}}}}))
    old = Project.open(p.path)
    assert old.prompt(0, 1) == {"clicks": [[1, 2, 1], [3, 4, 0]], "box": [0, 0, 40, 30], "strokes": []}
    assert old.undo(0, 1) == "box"
    old.undo_click(0, 1)
    assert old.prompt(0, 1)["clicks"] == [[1, 2, 1]]


def test_bad_strokes_and_boxes_are_refused_by_the_project(project):
    p = project
    with pytest.raises(PromptError, match="outside"):
        p.add_stroke(0, 1, [[5, 5], [200, 5]], 1, 3)
    with pytest.raises(PromptError, match="radius"):
        p.add_stroke(0, 1, [[5, 5]], 1, -1)
    with pytest.raises(PromptError, match="empty or outside"):
        p.add_box(0, 1, [50, 5, 20, 30])
    assert p.prompted() == {}


def test_studio_replays_strokes_after_the_segmenter(project):
    """A stroke alone paints a mask; undoing it gives the frame back; clicks then strokes replay."""
    p = project
    s = Studio(p)
    p.add_stroke(0, 1, [[80, 60], [100, 70]], 1, 6)
    painted = s.segment(0, 1).mask
    assert painted.any() and np.array_equal(p.mask(0) == 1, painted)
    p.undo(0, 1)
    assert s.segment(0, 1) is None and p.keyframe_indices() == []
    p.add_click(0, 1, 100, 70, 1)
    clicked = s.segment(0, 1).mask
    segmenter = s.backends.segmenter()
    asked = []
    predict = segmenter.predict
    segmenter.predict = lambda *a, **k: asked.append(1) or predict(*a, **k)
    p.add_stroke(0, 1, [[100, 70]], 0, 10)
    erased = s.segment(0, 1).mask
    assert erased.sum() < clicked.sum() and not (erased & ~clicked).any()
    p.undo(0, 1)
    assert np.array_equal(s.segment(0, 1).mask, clicked)
    assert asked == []  # strokes drawn and undone on the same clicks do not ask the segmenter again
    p.add_click(0, 1, 20, 20, 0)
    s.segment(0, 1)
    assert asked == [1]


def test_clicks_file_replays_boxes_and_strokes(project, tmp_path):
    from tam.cli import _apply_clicks, _read_clicks_file

    f = tmp_path / "clicks.json"
    f.write_text(json.dumps([{"frame": 2, "x": 100, "y": 70},
                             {"frame": 2, "box": [60, 40, 127, 95]},
                             {"frame": 2, "points": [[100, 70], [110, 75]], "label": 0, "radius": 5}]))
    items = _read_clicks_file(str(f))
    _apply_clicks(Studio(project), items)
    prompt = Project.open(project.path).prompt(2, 1)
    assert prompt["clicks"] == [[100.0, 70.0, 1]] and prompt["box"] == [60.0, 40.0, 127.0, 95.0]
    assert prompt["strokes"] == [{"points": [[100.0, 70.0], [110.0, 75.0]], "label": 0, "radius": 5.0}]
    assert project.keyframe_indices() == [2]


def test_drawing_events_scale_to_source_pixels():
    pytest.importorskip("streamlit")
    from tam.ui_brush import drawing_from_event

    event = {"id": "a-1", "kind": "stroke", "label": 0, "radius": 4, "width": 320, "height": 180,
             "points": [[0, 0], [160, 90], [400, 90]]}
    d = drawing_from_event(event, (1280, 720))
    assert d.kind == "stroke" and d.label == 0 and d.radius == 16 and d.stamp == "a-1"
    assert d.points == [[0.0, 0.0], [640.0, 360.0], [1279.0, 360.0]]  # clamped to the frame
    box = drawing_from_event({**event, "kind": "box", "points": [[160, 90], [80, 30]]}, (1280, 720))
    assert box.box == [320.0, 120.0, 640.0, 360.0]
    assert drawing_from_event({**event, "width": 0}, (1280, 720)) is None
    assert drawing_from_event({"kind": "click"}, (1280, 720)) is None
