"""The studio in a real browser renders a short BT.709 clip with a timecode to ProRes and downloads it.

Set up as in ``tests/test_browser.py`` (Streamlit on a free port, Debian's
Chromium through Playwright); a short uploaded clip keeps it fast.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, choose, click_image, server  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (CI installs it)"),
]

W, H, N = 160, 96, 12
RATE = Fraction(24000, 1001)
TIMECODE = "10:00:00:00"
BOX = (60, 30, 100, 66)  # x0, y0, x1, y1 of the red square to remove


def _clip(path):
    """A BT.709 H.264 clip at 24000/1001 fps with a start timecode, AAC audio and a red square."""
    import av

    yy, xx = np.mgrid[0:H, 0:W]
    with av.open(str(path), "w", format="mov") as c:
        v = c.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        for name in ("color_primaries", "color_trc", "colorspace"):
            setattr(v.codec_context, name, 1)
        v.codec_context.color_range = 1
        v.metadata["timecode"] = TIMECODE
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i in range(N):
            rgb = np.dstack([60 + xx // 4, 120 + yy // 4, np.full_like(xx, 90)]).astype(np.uint8)
            x0, y0, x1, y1 = BOX
            rgb[y0:y1, x0 + i:x1 + i] = (220, 20, 20)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            f.pts, f.time_base = i, 1 / RATE
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        samples = int(48000 * N / RATE)
        for k in range(0, samples, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, k
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


def test_render_and_download_prores(server):  # noqa: F811 - the fixture
    av = pytest.importorskip("av")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, tmp_path = server
    clip = _clip(tmp_path / "tagged.mov")
    out = tmp_path / "download.mov"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2200}, accept_downloads=True)
        expect = sync_api.expect
        try:
            page.goto(url)
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_role("button", name="Open the sample clip")).to_be_visible(timeout=60_000)
            sidebar.locator("input[type=file]").set_input_files(str(clip))
            expect(page.get_by_text(f"working at {W}x{H}")).to_be_visible(timeout=60_000)
            image = click_image(page, expect)
            box = image.bounding_box()
            cx, cy = (BOX[0] + BOX[2]) / 2, (BOX[1] + BOX[3]) / 2
            image.click(position={"x": cx * box["width"] / W, "y": cy * box["height"] / H})
            expect(page.get_by_text("object 1: 1 click(s) (1 positive)")).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="Track", exact=True).click()
            expect(page.get_by_text(f"Tracked {N}/{N} frames")).to_be_visible(timeout=120_000)
            choose(page, page.get_by_role("combobox", name="Codec"), "Apple ProRes 422 HQ (MOV), 10-bit")
            page.get_by_role("button", name="Render the clip").click()
            expect(page.get_by_text(f"Rendered {N}/{N} frames")).to_be_visible(timeout=120_000)
            button = page.get_by_role("button", name="Download ProRes", exact=True)
            expect(button).to_be_enabled(timeout=10_000)
            with page.expect_download(timeout=60_000) as info:
                button.click()
            assert info.value.suggested_filename.endswith(".mov")
            info.value.save_as(out)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "export-prores.png"), full_page=True)
        finally:
            browser.close()

    with av.open(str(out)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        assert cc.name == "prores" and cc.pix_fmt == "yuv422p10le"
        assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == (1, 1, 1, 1)
        assert v.metadata.get("timecode") == TIMECODE and v.average_rate == RATE
        assert [a.codec_context.name for a in c.streams.audio] == ["aac"]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    assert len(frames) == N
    x0, y0, x1, y1 = BOX
    red = frames[0][y0 + 4:y1 - 4, x0 + 4:x1 - 4].astype(int)
    assert np.median(red[..., 0] - red[..., 1]) < 60, "the red square is still there"
