"""Clicks, a negative click, the brush and the box in a real browser, on a clip where clicks alone fall short.

A synthetic clip: a brown animal (with a blue head) stands by a static brown
fence of the very same colour, which it touches, then walks on. On a frame
where it stands still, motion cannot tell it from the fence: a click on the
body masks much of the fence too, and the head is missed. A negative click on
the masked fence takes it back, keeping the animal; an erase stroke over the
fence next to the body leaves the animal whole, an add stroke over the head
adds it, and all of it survives a page reload (it is on disk). On a frame where the animal walks, a box dragged
around it gives its mask. Masks are read from the project folder and scored
against the clip's true masks. Screenshots go to ``tests/artifacts/brush-*.png``.
"""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from tam.project import Project
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, IMAGE_READY_JS, Shots, server  # noqa: F401 (fixture)

W, H, N = 320, 180, 12
STILL, SPEED = 6, 3  # the animal stands still up to frame STILL, then walks SPEED px a frame
SAND, BROWN, BLUE = (205, 185, 140), (125, 85, 55), (50, 60, 150)
FENCE = (170, 50, 300, 135)  # x0, y0, x1, y1: static, the colour of the animal's body
BODY_AXES, HEAD_RADIUS = (60, 32), 16
NEGATIVE_CLICK = (185, 75)  # on the fence, on the part of it that the first click masks
PROJECT = "fence"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (CI installs it)"),
]


def body_centre(i: int) -> tuple[int, int]:
    return 110 + SPEED * max(0, i - STILL), 100


def head_centre(i: int) -> tuple[int, int]:
    cx, cy = body_centre(i)
    return cx - 62, cy - 22


def animal(i: int) -> np.ndarray:
    """The true mask of the animal (body and head) on frame ``i``: bool HxW."""
    m = np.zeros((H, W), np.uint8)
    cv2.ellipse(m, body_centre(i), BODY_AXES, 0, 0, 360, 1, -1)
    cv2.circle(m, head_centre(i), HEAD_RADIUS, 1, -1)
    return m.astype(bool)


def fence(i: int) -> np.ndarray:
    """The fence's visible pixels on frame ``i``: bool HxW."""
    m = np.zeros((H, W), bool)
    x0, y0, x1, y1 = FENCE
    m[y0:y1, x0:x1] = True
    return m & ~animal(i)


def write_clip(path) -> None:
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"crf": "12"}
        for i in range(N):
            img = np.empty((H, W, 3), np.uint8)
            img[:] = SAND
            x0, y0, x1, y1 = FENCE
            img[y0:y1, x0:x1] = BROWN
            cv2.ellipse(img, body_centre(i), BODY_AXES, 0, 0, 360, BROWN, -1)
            cv2.circle(img, head_centre(i), HEAD_RADIUS, BLUE, -1)
            img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def scores(project_path, frame: int) -> dict:
    """IoU with the animal, share of the fence inside the mask, share of the head inside it."""
    m = Project.open(project_path).mask(frame)
    m = np.zeros((H, W), bool) if m is None else m == 1
    truth, head = animal(frame), np.zeros((H, W), np.uint8)
    cv2.circle(head, head_centre(frame), HEAD_RADIUS - 2, 1, -1)
    head = head.astype(bool)
    return {"iou": round(float((m & truth).sum() / max((m | truth).sum(), 1)), 3),
            "fence": round(float((m & fence(frame)).sum() / fence(frame).sum()), 3),
            "head": round(float((m & head).sum() / head.sum()), 3)}


def test_brush_and_box(server):  # noqa: F811 (the fixture imported above)
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("av")
    expect = sync_api.expect
    url, tmp_path = server
    clip = tmp_path / "fence.mp4"
    write_clip(clip)
    path = tmp_path / "home" / "projects" / PROJECT
    Project.create(clip, path=path).add_object("animal")
    shot = Shots("brush-")

    def summary(text: str):
        return page.get_by_text(text)

    def surface():
        return page.frame_locator("iframe[title*='tam_draw']").locator("canvas")

    def drag(locator, points):
        """Press, move through ``points`` (source pixels) and release over ``locator``."""
        box = locator.bounding_box()
        at = [(box["x"] + x * box["width"] / W, box["y"] + y * box["height"] / H) for x, y in points]
        page.mouse.move(*at[0])
        page.mouse.down()
        for x, y in at[1:]:
            page.mouse.move(x, y, steps=4)
        page.mouse.up()

    def use_tool(name):
        page.get_by_test_id("stRadio").filter(has_text="Tool").get_by_text(name, exact=True).click()
        expect(surface()).to_be_visible(timeout=30_000)
        page.wait_for_function(
            "() => { const f = document.querySelector(\"iframe[title*='tam_draw']\");"
            " const d = f && f.contentDocument; return d && d.body.dataset.ready === '1'; }", timeout=30_000)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"{url}/?project={PROJECT}")
            expect(summary("Frame 0 · object 1: 0 click(s)")).to_be_visible(timeout=60_000)
            image = page.frame_locator("iframe[title*='streamlit_image_coordinates']").locator("#image")
            expect(image).to_be_visible(timeout=30_000)

            # a click on the body: the mask takes in the touching fence of the same colour, and misses the head
            box = image.bounding_box()
            x, y = body_centre(0)
            image.click(position={"x": x * box["width"] / W, "y": y * box["height"] / H})
            expect(summary("object 1: 1 click(s) (1 positive)")).to_be_visible(timeout=60_000)
            clicked = scores(path, 0)
            lands_in_mask = Project.open(path).mask(0)[NEGATIVE_CLICK[::-1]] == 1
            shot(page, "1-clicked")

            # a negative click on the fence takes back the fence, not a pinhole around the click
            page.get_by_test_id("stRadio").filter(has_text="A click adds").get_by_text("negative", exact=True).click()
            expect(page.get_by_role("radio", name="negative")).to_be_checked(timeout=30_000)
            expect(image).to_be_visible(timeout=30_000)
            box = image.bounding_box()
            x, y = NEGATIVE_CLICK
            image.click(position={"x": x * box["width"] / W, "y": y * box["height"] / H})
            expect(summary("object 1: 2 click(s) (1 positive)")).to_be_visible(timeout=60_000)
            negated = scores(path, 0)
            shot(page, "2-negative")

            # an erase stroke over the fence, back and forth as a painter covers an area
            use_tool("brush: erase")
            drag(surface(), [(180, 55), (180, 130), (195, 130), (195, 55), (210, 55), (210, 130),
                             (225, 130), (225, 55), (240, 55), (240, 130)])
            expect(summary("1 stroke(s) (1 erase)")).to_be_visible(timeout=60_000)
            erased = scores(path, 0)
            shot(page, "3-erased")

            # an add stroke across the head
            use_tool("brush: add")
            slider = page.get_by_role("slider", name="Brush size (px)")
            slider.focus()
            for _ in range(4):  # from 6 px to 10 px
                slider.press("ArrowRight")
            expect(page.get_by_test_id("stSliderThumbValue").filter(has_text="10")).to_be_visible(timeout=30_000)
            page.wait_for_timeout(1000)  # the slider sends its value after a pause
            hx, hy = head_centre(0)
            drag(surface(), [(hx - 6, hy - 4), (hx + 6, hy + 4)])
            expect(summary("2 stroke(s) (1 erase)")).to_be_visible(timeout=60_000)
            added = scores(path, 0)
            radii = [s["radius"] for s in Project.open(path).prompt(0, 1)["strokes"]]
            shot(page, "4-added")

            # the strokes are on disk: a reload shows them, and undo takes back the last one
            page.reload()
            expect(summary("Frame 0 · object 1: 2 click(s) (1 positive) · 2 stroke(s) (1 erase)")
                   ).to_be_visible(timeout=60_000)
            page.wait_for_function(IMAGE_READY_JS, timeout=30_000)
            shot(page, "5-reloaded")
            page.get_by_role("button", name="Undo", exact=True).click()
            expect(summary("1 stroke(s) (1 erase)")).to_be_visible(timeout=60_000)
            undone = scores(path, 0)

            # a box on the last frame
            page.get_by_role("slider", name="Frame").press("End")
            expect(summary(f"Frame {N - 1} · object 1: 0 click(s)")).to_be_visible(timeout=60_000)
            use_tool("box")
            drag(surface(), [(40, 55), (120, 100), (190, 140)])
            expect(summary(f"Frame {N - 1} · object 1: 0 click(s) (0 positive) · box")).to_be_visible(
                timeout=60_000)
            boxed = scores(path, N - 1)
            shot(page, "6-box")
        except Exception:
            if page is not None:
                shot(page, "failure")
            raise
        finally:
            browser.close()

    print("scores: clicked", clicked, "negative", negated, "erased", erased, "added", added, "undone", undone,
          "boxed", boxed)
    print("steps (name, seconds since start):", shot.steps)
    assert clicked["iou"] > 0.3, clicked  # the click found the animal ...
    assert clicked["fence"] > 0.2, clicked  # ... and much of the still fence with it: the negative click has work
    assert lands_in_mask  # the negative click lands on the masked fence
    assert negated["fence"] < 0.5 * clicked["fence"], negated  # it took back most of the fence ...
    assert negated["iou"] >= clicked["iou"] - 0.02, negated  # ... and kept the animal
    assert erased["fence"] < 0.05 and erased["fence"] <= negated["fence"], erased
    assert erased["iou"] > 0.85 and erased["iou"] >= negated["iou"] - 0.01, erased
    assert radii == [6.0, 10.0], radii  # the brush size slider sets the stroke's radius
    assert added["head"] > 0.9 and added["iou"] > 0.95 and added["fence"] < 0.05, added
    assert undone["head"] == erased["head"] and undone["fence"] == erased["fence"], undone
    assert boxed["iou"] > 0.85 and boxed["fence"] < 0.05, boxed
    stored = Project.open(path).prompt(0, 1)
    assert [s["label"] for s in stored["strokes"]] == [0] and [c[2] for c in stored["clicks"]] == [1, 0]
    log = (tmp_path / "streamlit.log").read_text(errors="replace")
    assert "Traceback" not in log, f"the server logged an error:\n{log[-3000:]}"
