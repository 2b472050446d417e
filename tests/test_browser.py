"""The whole studio in a real browser: open the sample, click the rock, track, render, download.

Starts ``streamlit run streamlit_app.py`` on a free port with its projects in a
temporary TAM_HOME and drives it with Debian's Chromium through Playwright (the
browser is never downloaded). A screenshot of each step goes to
``tests/artifacts/`` for a person to look at.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
SAMPLE = REPO / "assets" / "bigbuckbunny.mp4"
ROCK = (980, 350)  # source pixels of the rock on the right of the first frame (1280x720)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (CI installs it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout:.0f} s")


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = dict(os.environ, TAM_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc, 60)
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        try:  # CPU seconds the server used (user + system), for the timing report
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            print(f"streamlit server CPU: {(int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK'):.1f} s")
        except (OSError, IndexError, ValueError):
            pass
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        tail = (tmp_path / "streamlit.log").read_text(errors="replace")[-3000:]
        print(f"--- streamlit log (tail) ---\n{tail}")


def choose(page, combo, option: str, attempts: int = 3) -> None:
    """Pick ``option`` in a Streamlit selectbox (retrying: a rerun may redraw it mid-way)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    for attempt in range(attempts):
        try:
            expect(combo).to_be_visible(timeout=20_000)
            combo.click()
            page.get_by_role("option", name=option).click(timeout=10_000)
            expect(combo).to_have_value(option, timeout=10_000)
            return
        except (AssertionError, PlaywrightTimeout):
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")


IMAGE_READY_JS = (
    "() => { const f = document.querySelector(\"iframe[title*='streamlit_image_coordinates']\");"
    " const i = f && f.contentDocument && f.contentDocument.getElementById('image');"
    " return i && i.complete && i.naturalWidth > 0 && i.width > 0; }")


def click_image(page, expect):
    """The click component's image, once it is visible and its picture has loaded."""
    image = page.frame_locator("iframe[title*='streamlit_image_coordinates']").locator("#image")
    expect(image).to_be_visible(timeout=30_000)
    page.wait_for_function(IMAGE_READY_JS, timeout=30_000)
    return image


class Shots:
    """Full-page screenshots as ``ARTIFACTS/<prefix><name>.png``; ``steps`` lists (name, seconds since start)."""

    def __init__(self, prefix: str = ""):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.prefix, self.t0, self.steps = prefix, time.monotonic(), []

    def __call__(self, page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{self.prefix}{name}.png"), full_page=True)
        self.steps.append((name, round(time.monotonic() - self.t0, 1)))


def test_click_track_render_download(server):
    av = pytest.importorskip("av")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, tmp_path = server
    shot = Shots()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200}, accept_downloads=True)
            page.goto(url)
            expect = sync_api.expect
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_role("button", name="Open the sample clip")).to_be_visible(timeout=60_000)
            shot(page, "01-start")

            # settings: a smaller working resolution keeps the test fast
            sidebar.get_by_text("Settings").click()
            choose(page, sidebar.get_by_role("combobox", name="Working resolution"), "427 px longest side")

            sidebar.get_by_role("button", name="Open the sample clip").click()
            expect(page.get_by_text("working at 428x240")).to_be_visible(timeout=60_000)
            image = click_image(page, expect)
            shot(page, "02-opened")

            # click the rock: the image is shown at the column's width, so scale source pixels to it
            box = image.bounding_box()
            image.click(position={"x": ROCK[0] * box["width"] / 1280, "y": ROCK[1] * box["height"] / 720})
            expect(page.get_by_text("object 1: 1 click(s) (1 positive)")).to_be_visible(timeout=60_000)
            coverage = page.get_by_text("mask ").filter(has_text="% of the frame").first.inner_text()
            share = float(coverage.rsplit("mask ", 1)[1].split("%")[0])
            assert 0.5 < share < 25, f"the rock's mask covers {share}% of the frame"
            shot(page, "03-clicked")

            page.get_by_role("button", name="Track", exact=True).click()
            expect(page.get_by_text("Tracking:")).to_be_visible(timeout=60_000)
            # a refresh while tracking: the page comes back to the project and the job goes on
            page.reload()
            expect(page.get_by_text("Tracking:")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("object 1: 1 click(s) (1 positive)")).to_be_visible(timeout=10_000)
            shot(page, "04-refreshed-while-tracking")
            expect(page.get_by_text("Tracked 132/132 frames")).to_be_visible(timeout=300_000)
            expect(page.get_by_text("132/132 frames have a mask.")).to_be_visible(timeout=10_000)
            shot(page, "05-tracked")

            # scrub to the last frame: the tracked mask is drawn there too
            page.get_by_role("slider", name="Frame").press("End")
            expect(page.get_by_text("Frame 131 · object 1: 0 click(s)")).to_be_visible(timeout=60_000)
            share = float(page.get_by_text("Frame 131 · object 1").inner_text().rsplit("mask ", 1)[1]
                          .split("%")[0])
            assert 0.5 < share < 25, f"the tracked rock covers {share}% of the last frame"
            shot(page, "06-scrubbed")

            page.get_by_role("button", name="Render the clip").click()
            expect(page.get_by_text("Rendered 132/132 frames")).to_be_visible(timeout=400_000)
            download_button = page.get_by_role("button", name="Download MP4")
            expect(download_button).to_be_enabled(timeout=10_000)
            # before and after play side by side: both videos load and can play
            page.wait_for_function(
                "() => { const v = [...document.querySelectorAll('video')];"
                " return v.length >= 2 && v.every(e => e.readyState >= 2 && e.duration > 5); }",
                timeout=60_000)
            shot(page, "07-rendered")

            with page.expect_download(timeout=60_000) as info:
                download_button.click()
            out = tmp_path / "removed.mp4"
            info.value.save_as(out)
            shot(page, "08-downloaded")
        except Exception:
            if page is not None:
                shot(page, "failure")
            raise
        finally:
            browser.close()

    with av.open(str(out)) as c, av.open(str(SAMPLE)) as src:
        v, sv = c.streams.video[0], src.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (1280, 720)
        assert abs(float(v.average_rate) - float(sv.average_rate)) < 0.01
        assert c.streams.audio, "the download lost the audio"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(SAMPLE)) as src:
        n_src, first = 0, None
        for f in src.decode(video=0):
            first = f.to_ndarray(format="rgb24") if first is None else first
            n_src += 1
    assert len(frames) == n_src == 132
    # the rock is gone from frame 0 and the far side of the frame is untouched
    diff = np.abs(frames[0].astype(np.int16) - first.astype(np.int16)).mean(axis=2)
    x, y = ROCK
    assert diff[y - 30:y + 30, x - 60:x + 60].mean() > 12, "the rock's pixels hardly changed"
    assert diff[100:600, 50:450].mean() < 4, "pixels far from the rock changed"
    print("steps (name, seconds since start):", shot.steps)
    log = (tmp_path / "streamlit.log").read_text(errors="replace")
    assert "Traceback" not in log, f"the server logged an error:\n{log[-3000:]}"
