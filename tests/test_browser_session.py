"""The studio in a real browser, as several hands use it: a held arrow key on the frame slider, the
progress of a job next to its button, and two tabs clicking on the same project.

Uses the server fixture of :mod:`tests.test_browser` (streamlit on a free port, Debian's Chromium
through Playwright); screenshots go to ``tests/artifacts/session-*.png``.
"""
from __future__ import annotations

import time

import pytest

from tam.project import Project
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, ROCK, Shots, choose, click_image, server  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (CI installs it)"),
]

HELD_PRESSES = 60
KEY_REPEAT_MS = 33  # a held key repeats about 30 times a second
CLICKS_PER_TAB = 3


def open_sample(page, url: str, expect) -> None:
    page.goto(url)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("button", name="Open the sample clip")).to_be_visible(timeout=60_000)
    sidebar.get_by_text("Settings").click()
    choose(page, sidebar.get_by_role("combobox", name="Working resolution"), "427 px longest side")
    sidebar.get_by_role("button", name="Open the sample clip").click()
    expect(page.get_by_text("working at 428x240")).to_be_visible(timeout=60_000)


def hold(page, key: str, presses: int) -> None:
    """``presses`` keydown events at the key-repeat rate, as a held key sends them."""
    for _ in range(presses):
        page.keyboard.down(key)
        page.wait_for_timeout(KEY_REPEAT_MS)
    page.keyboard.up(key)


def click_rock(page, expect, dx: float) -> None:
    image = click_image(page, expect)
    box = image.bounding_box()
    image.click(position={"x": (ROCK[0] + dx) * box["width"] / 1280, "y": ROCK[1] * box["height"] / 720})


def test_held_arrow_key_lands_on_every_frame_and_progress_sits_by_the_button(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, _ = server
    shot = Shots("session-")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            expect = sync_api.expect
            open_sample(page, url, expect)
            slider = page.get_by_role("slider", name="Frame")
            for key, want in (("ArrowRight", HELD_PRESSES), ("ArrowLeft", 0)):
                slider.focus()
                hold(page, key, HELD_PRESSES)
                expect(page.get_by_text(f"Frame {want} · object 1")).to_be_visible(timeout=30_000)
                page.wait_for_timeout(1500)  # nothing arrives late and moves it on
                assert slider.input_value() == str(want)
            shot(page, "slider")

            click_rock(page, expect, 0)
            expect(page.get_by_text("object 1: 1 click(s) (1 positive)")).to_be_visible(timeout=60_000)
            track = page.get_by_role("button", name="Track", exact=True)
            track.scroll_into_view_if_needed()
            track.click()
            progress = page.get_by_text("Tracking:")
            expect(progress).to_be_visible(timeout=60_000)
            assert "?" not in progress.inner_text(), progress.inner_text()
            assert "/132 frames" in progress.inner_text(), progress.inner_text()
            button, bar = track.bounding_box(), progress.bounding_box()
            # below the Track button, in the same column, within the window the user looks at
            assert 0 < bar["y"] - button["y"] < 300, (button, bar)
            assert abs(bar["x"] - button["x"]) < 100, (button, bar)
            shot(page, "progress")
            page.get_by_role("button", name="Cancel").click()
            expect(page.get_by_text("the frames done so far are kept")).to_be_visible(timeout=60_000)
        except Exception:
            shot(page, "failure")
            raise
        finally:
            browser.close()


def test_two_tabs_on_one_project_keep_every_click(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    url, tmp_path = server
    shot = Shots("session-tabs-")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        a = browser.new_page(viewport={"width": 1400, "height": 1000})
        b = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            expect = sync_api.expect
            open_sample(a, url, expect)
            name = a.url.split("project=", 1)[1].split("&", 1)[0]
            b.goto(f"{url}/?project={name}")  # the second tab opens the same project
            expect(b.get_by_text("working at 428x240")).to_be_visible(timeout=60_000)
            path = tmp_path / "home" / "projects" / name

            def on_disk() -> int:
                return len(Project.open(path).prompt(0, 1)["clicks"])

            for i in range(CLICKS_PER_TAB):
                click_rock(a, expect, -20 + 4 * i)  # each tab clicks while the other one's click is under way
                click_rock(b, expect, 20 - 4 * i)
                deadline = time.monotonic() + 60
                while on_disk() < 2 * (i + 1):
                    assert time.monotonic() < deadline, f"{on_disk()} clicks on disk, {2 * (i + 1)} made"
                    time.sleep(0.3)
            total = 2 * CLICKS_PER_TAB
            time.sleep(2)
            assert on_disk() == total
            for page in (a, b):  # each tab, on its next run, shows every click made in either
                page.get_by_role("button", name="▶").click()
                page.get_by_role("button", name="◀").click()
                expect(page.get_by_text(f"Frame 0 · object 1: {total} click(s) ({total} positive)")).to_be_visible(
                    timeout=60_000)
            shot(a, "a")
            shot(b, "b")
        except Exception:
            shot(a, "failure-a")
            shot(b, "failure-b")
            raise
        finally:
            browser.close()
    log = (tmp_path / "streamlit.log").read_text(errors="replace")
    assert "Traceback" not in log, f"the server logged an error:\n{log[-3000:]}"
