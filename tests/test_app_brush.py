"""The brush and the box through Streamlit's AppTest (no browser).

A drawing is delivered the way the drawing surface delivers it: its value
(points in the pixels of the shown working frame, with that frame's size)
under the surface's key, which the next run stores as a prompt and segments.
"""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("streamlit_image_coordinates")

from tam.project import Project  # noqa: E402
from tests.test_app import ROCK, home, mask_share, new_app, open_sample, summary  # noqa: E402,F401

SHOWN = (428, 240)  # the sample's working frame at 427 px, which the surface shows
SCALE = 1280 / 428


def draw(at, stamp: str, kind: str, points, label: int = 1, radius: float = 6) -> None:
    at.session_state["draw"] = {"id": stamp, "kind": kind, "label": label, "radius": radius,
                                "width": SHOWN[0], "height": SHOWN[1], "points": points}
    at.run()
    assert not at.exception, at.exception


def test_stroke_and_box_are_stored_segmented_and_undone(home):  # noqa: F811 (fixture)
    at = new_app()
    project = open_sample(at)
    at.radio(key="tool").set_value("add").run()
    assert not at.exception, at.exception
    rx, ry = ROCK[0] / SCALE, ROCK[1] / SCALE
    draw(at, "s1", "stroke", [[rx - 5, ry], [rx + 5, ry + 2]])
    assert "0 click(s) (0 positive) · 1 stroke(s) (0 erase)" in summary(at)
    painted = mask_share(at)
    assert 0.1 < painted < 20, painted
    (stroke,) = Project.open(project.path).prompt(0, 1)["strokes"]
    assert abs(stroke["points"][0][0] - (ROCK[0] - 5 * SCALE)) < 1 and abs(stroke["radius"] - 6 * SCALE) < 0.1
    draw(at, "s1", "stroke", [[rx - 5, ry], [rx + 5, ry + 2]])  # the same value again is not a second stroke
    assert "1 stroke(s)" in summary(at)

    at.radio(key="tool").set_value("box").run()
    draw(at, "b1", "box", [[rx + 60, ry + 40], [rx - 60, ry - 40]])
    assert "· 1 stroke(s) (0 erase) · box" in summary(at)
    saved = Project.open(project.path).prompt(0, 1)
    assert saved["box"][0] < ROCK[0] < saved["box"][2] and saved["box"][1] < ROCK[1] < saved["box"][3]
    boxed = mask_share(at)
    assert boxed > painted

    at.button(key="undo_click").click().run()
    assert "1 stroke(s)" in summary(at) and "box" not in summary(at)
    assert abs(mask_share(at) - painted) < 0.05
    at.button(key="clear_clicks").click().run()
    assert "0 click(s) (0 positive) · mask 0.0%" in summary(at)
    assert Project.open(project.path).prompted() == {}
