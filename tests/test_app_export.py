"""The studio's export and shot-cut pieces through Streamlit's AppTest and the download helpers."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("streamlit_image_coordinates")

from streamlit.testing.v1 import AppTest  # noqa: E402

from tam.project import Project  # noqa: E402
from tests.test_app import APP  # noqa: E402
from tests.test_shots import _two_shots  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TAM_HOME", str(tmp_path))
    return tmp_path


def _project_with_masks(home) -> Project:
    project = Project.create(_two_shots(home / "two.mp4"), root=home / "projects")
    labels = np.zeros((64, 96), np.uint8)
    labels[20:40, 30:60] = 2
    project.set_keyframe(0, labels)
    for i in range(12):
        project.save_mask(i, labels)
    return project


def test_saved_two_shot_project_shows_its_cut_and_why_tracking_stops(home):
    project = _project_with_masks(home)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.sidebar.selectbox(key="saved_project").set_value(project.name)
    at.sidebar.button(key="open_saved").click().run()
    assert not at.exception, at.exception
    assert Project.open(project.path).cuts() == [12]  # found when the clip was opened
    infos = " ".join(i.value for i in at.info)
    assert "Tracking stops at the shot cut before frame 12" in infos

    import streamlit_app

    strip = streamlit_app.timeline_image(Project.open(project.path), 0, width=240)
    red = np.all(strip[0] == (230, 40, 40), axis=1)
    assert red.any() and abs(np.flatnonzero(red).mean() - 12 * 240 / 24) <= 2


def test_matte_downloads_16_bit_zip_and_prores_with_alpha(home):
    import av
    import cv2

    import streamlit_app
    from tam.studio import Studio

    project = _project_with_masks(home)
    with zipfile.ZipFile(io.BytesIO(streamlit_app.mattes_zip(Studio(project)))) as z:
        names = z.namelist()
        assert names[0] == "mattes/object_2/00000.png" and len(names) == 24
        m = cv2.imdecode(np.frombuffer(z.read(names[3]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert m.dtype == np.uint16 and m[30, 45] == 65535 and m[0, 0] == 0
    data = streamlit_app.matte_video(Studio(project), None, ".mov")
    path = home / "matte.mov"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "prores" and v.codec_context.pix_fmt.startswith("yuva444p")
        frames = list(c.decode(v))
    assert len(frames) == 24
    alpha = frames[5].to_ndarray(format="rgba64le")[..., 3]
    assert alpha[30, 45] > 60000 and alpha[0, 0] == 0
    assert frames[20].to_ndarray(format="rgba64le")[..., 3].max() == 0  # no mask after the cut
