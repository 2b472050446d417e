"""The studio page's logic through Streamlit's AppTest (no browser).

Each test runs ``streamlit_app.py`` headless with its projects in a temporary
TAM_HOME and the real classical segmenter. A click is delivered the way the
image component delivers it: its event (position on the displayed image and
the displayed size) under the component's key, which the next run applies.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("streamlit_image_coordinates")

from streamlit.testing.v1 import AppTest  # noqa: E402

from tam.project import Project  # noqa: E402
from tam.registry import Entry  # noqa: E402
from tam.segment.base import SEGMENTERS  # noqa: E402
from tam.track.base import TRACKERS, Tracker  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "bigbuckbunny.mp4"
ROCK = (980.0, 350.0)  # source pixels (1280x720) of the rock on the right of frame 0
GRASS = (300.0, 650.0)  # bottom-left grass, not part of the rock


class CopyTracker(Tracker):
    """A stand-in tracker that repeats the keyframe's mask (keeps the job tests quick)."""

    name = "copy"
    delay = 0.0

    def propagate(self, state, frames, keyframes, start, stop):
        step = 1 if stop > start else -1
        for i in range(start + step, stop, step):
            if self.delay:
                time.sleep(self.delay)
            yield i, keyframes[start].copy()


class CountingCopyTracker(CopyTracker):
    """A copy tracker that counts the per-video states made (one list per test, set by monkeypatch)."""

    name = "countingcopy"
    inits: list = []

    def init_state(self, frames):
        CountingCopyTracker.inits.append(len(frames))
        return {"frames": len(frames)}


class SlowCopyTracker(CopyTracker):
    name = "slowcopy"
    delay = 0.2


class UnavailableTracker(CopyTracker):
    @classmethod
    def is_available(cls) -> bool:
        return False


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TAM_HOME", str(tmp_path))
    monkeypatch.delenv("TAM_MAX_UPLOAD_MB", raising=False)
    return tmp_path


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    return at


def open_sample(at: AppTest, proxy: int = 427) -> Project:
    at.sidebar.selectbox(key="set_proxy").set_value(proxy)
    at.sidebar.button(key="open_sample").click().run()
    assert not at.exception, at.exception
    return Project.open(at.session_state["project_path"])


def click(at: AppTest, x: float, y: float, stamp: int, shown_width: float = 700.0) -> None:
    """Send a click at source pixel (x, y) as the image component reports it."""
    shown_height = shown_width * 720 / 1280
    at.session_state["canvas"] = {"x": x * shown_width / 1280, "y": y * shown_height / 720,
                                  "width": shown_width, "height": shown_height, "unix_time": stamp}
    at.run()
    assert not at.exception, at.exception


def summary(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Frame "))


def mask_share(at: AppTest) -> float:
    return float(summary(at).rsplit("mask ", 1)[1].split("%")[0])


def test_open_click_undo_clear(home):
    at = new_app()
    assert any("Open a clip" in m.value for m in at.sidebar.subheader)
    project = open_sample(at)
    assert project.path.parent == home / "projects"
    assert project.proxy_size == (428, 240)
    assert "0 click(s)" in summary(at) and mask_share(at) == 0.0

    click(at, *ROCK, stamp=1)
    assert "1 click(s) (1 positive)" in summary(at)
    share = mask_share(at)
    assert 1.0 < share < 20.0, share  # the rock, not the whole frame
    # the click was scaled from the 700 px wide display back to source pixels
    saved = Project.open(project.path)
    (x, y, label), = saved.prompt(0, 1)["clicks"]
    assert abs(x - ROCK[0]) < 1 and abs(y - ROCK[1]) < 1 and label == 1
    labels = saved.mask(0)
    assert labels[round(ROCK[1] * 240 / 720), round(ROCK[0] * 428 / 1280)] == 1
    assert labels[round(GRASS[1] * 240 / 720), round(GRASS[0] * 428 / 1280)] == 0
    assert saved.keyframe_indices() == [0]

    click(at, *ROCK, stamp=1)  # the same event again (a rerun) is not a second click
    assert "1 click(s)" in summary(at)

    at.radio(key="click_kind").set_value("negative").run()
    click(at, *GRASS, stamp=2)
    assert "2 click(s) (1 positive)" in summary(at)
    assert Project.open(project.path).prompt(0, 1)["clicks"][1][2] == 0

    at.button(key="undo_click").click().run()
    assert "1 click(s)" in summary(at)
    assert abs(mask_share(at) - share) < 0.5

    at.button(key="clear_clicks").click().run()
    assert "0 click(s)" in summary(at) and mask_share(at) == 0.0
    cleared = Project.open(project.path)
    assert cleared.prompt(0, 1)["clicks"] == [] and cleared.keyframe_indices() == []


def test_objects_add_rename_delete(home):
    at = new_app()
    project = open_sample(at)
    at.button(key="add_object").click().run()
    assert at.radio(key="object_id").options == ["1: object 1", "2: object 2"]
    assert at.radio(key="object_id").value == 2  # clicks now go to the new object
    at.text_input(key=f"name_{project.name}_2").input("rock").run()
    assert [o.name for o in Project.open(project.path).objects] == ["object 1", "rock"]
    click(at, *ROCK, stamp=10)
    assert "object 2: 1 click(s)" in summary(at)
    assert Project.open(project.path).mask(0).max() == 2
    assert at.multiselect(key=f"remove_ids_{project.name}").value == [1, 2]

    at.button(key="delete_object").click().run()
    after = Project.open(project.path)
    assert [o.id for o in after.objects] == [1]
    assert after.prompted() == {} and after.keyframe_indices() == []
    assert at.radio(key="object_id").options == ["1: object 1"]
    assert at.multiselect(key=f"remove_ids_{project.name}").value == [1]


def test_reopen_restores_clicks_and_masks_and_the_sample_is_reopened(home):
    first = new_app()
    project = open_sample(first)
    click(first, *ROCK, stamp=20)
    share = mask_share(first)

    # another browser tab: opening the sample reopens its project (with the clicks), never a new copy
    other = new_app()
    other_project = open_sample(other)
    assert other_project.path == project.path
    assert "1 click(s) (1 positive)" in summary(other)
    assert [p.name for p in (home / "projects").iterdir()] == [project.name]
    # another working resolution is another project
    assert open_sample(new_app(), proxy=640).path != project.path

    # a refreshed page: the saved project reopens with its clicks and masks
    fresh = new_app()
    fresh.sidebar.selectbox(key="saved_project").set_value(project.name)
    fresh.sidebar.button(key="open_saved").click().run()
    assert fresh.session_state["project_path"] == str(project.path)
    assert "1 click(s) (1 positive)" in summary(fresh)
    assert abs(mask_share(fresh) - share) < 0.05

    # ... and so does a page opened on the project's address
    linked = AppTest.from_file(APP, default_timeout=90)
    linked.query_params["project"] = project.name
    linked.run()
    assert not linked.exception, linked.exception
    assert "1 click(s) (1 positive)" in summary(linked)


def test_two_tabs_on_one_project_see_and_keep_each_others_clicks(home):
    tab_a = new_app()
    project = open_sample(tab_a)
    tab_b = new_app()
    tab_b.sidebar.selectbox(key="saved_project").set_value(project.name)
    tab_b.sidebar.button(key="open_saved").click().run()
    click(tab_a, *ROCK, stamp=30)
    tab_b.run()  # any rerun shows what the other tab did
    assert "1 click(s) (1 positive)" in summary(tab_b)
    tab_b.radio(key="click_kind").set_value("negative").run()
    click(tab_b, *GRASS, stamp=31)
    tab_a.run()
    assert "2 click(s) (1 positive)" in summary(tab_a)
    assert [c[2] for c in Project.open(project.path).prompt(0, 1)["clicks"]] == [1, 0]


def test_upload_limit_and_bad_upload(home, monkeypatch):
    monkeypatch.setenv("TAM_MAX_UPLOAD_MB", "1")
    at = new_app()
    big = SAMPLE.read_bytes()
    assert len(big) > 2**20
    at.sidebar.file_uploader(key="upload").set_value(("bunny.mp4", big, "video/mp4")).run()
    errors = [e.value for e in at.sidebar.error]
    assert any("upload limit is 1 MB" in e and "TAM_MAX_UPLOAD_MB" in e for e in errors), errors
    assert "project_path" not in at.session_state
    assert not (home / "projects").exists() or not any((home / "projects").iterdir())

    monkeypatch.setenv("TAM_MAX_UPLOAD_MB", "50")
    at = new_app()
    at.sidebar.file_uploader(key="upload").set_value(("junk.mp4", b"not a video" * 100, "video/mp4")).run()
    errors = [e.value for e in at.sidebar.error]
    # one line about the file the user sent: no server path, no errno
    assert errors == ["junk.mp4 is not a readable video: Invalid data found when processing input"], errors
    assert "project_path" not in at.session_state
    assert not any((home / "projects").iterdir())  # the half-made project was removed

    at = new_app()
    at.sidebar.file_uploader(key="upload").set_value(("bunny.mp4", big, "video/mp4")).run()
    assert not at.sidebar.error
    project = Project.open(at.session_state["project_path"])
    assert project.num_frames == 132 and project.source_path.parent == project.path


def test_brief_error_text_has_no_errno_or_path():
    from tam.errors import brief

    assert brief(OSError(28, "No space left on device", "/srv/tam/projects/x/source.mp4")) == \
        "No space left on device"
    assert brief(ValueError("bad\nmore")) == "bad" and brief(RuntimeError()) == "RuntimeError"


def test_only_available_backends_are_offered(home, monkeypatch):
    monkeypatch.setitem(TRACKERS._entries, "copy", Entry("copy", f"{__name__}:CopyTracker", "test"))
    monkeypatch.setitem(TRACKERS._entries, "unavailable",
                        Entry("unavailable", f"{__name__}:UnavailableTracker", "test"))
    monkeypatch.setitem(SEGMENTERS._entries, "missing",
                        Entry("missing", "tam.segment.no_such_module:Nothing", "test"))
    monkeypatch.setitem(SEGMENTERS._entries, "needs",
                        Entry("needs", "tam.segment.classical:ClassicalSegmenter", "test",
                              needs=("no_such_package_here",)))
    at = new_app()
    trackers = at.sidebar.selectbox(key="set_tracker").options
    segmenters = at.sidebar.selectbox(key="set_segmenter").options
    assert trackers[0] == "classical (default)" and "copy" in trackers
    assert "unavailable" not in trackers
    assert segmenters[0] == "classical (default)"
    assert "missing" not in segmenters and "needs" not in segmenters
    assert at.sidebar.selectbox(key="set_inpainter").options[0].startswith("flow")
    assert "telea" in at.sidebar.selectbox(key="set_inpainter").options


def wait_for(at: AppTest, done, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < deadline, "the job did not finish in time"
        time.sleep(0.2)
        at.run()
        assert not at.exception, at.exception


def test_track_job_progress_cancel_and_preview(home, monkeypatch):
    monkeypatch.setitem(TRACKERS._entries, "copy", Entry("copy", f"{__name__}:CopyTracker", "test"))
    monkeypatch.setitem(TRACKERS._entries, "slowcopy",
                        Entry("slowcopy", f"{__name__}:SlowCopyTracker", "test"))
    at = new_app()
    at.sidebar.selectbox(key="set_tracker").set_value("slowcopy")
    at.sidebar.selectbox(key="set_inpainter").set_value("telea")
    project = open_sample(at)
    assert at.button(key="track").disabled  # nothing to track from yet
    click(at, *ROCK, stamp=30)

    # a slow track shows progress and stops on Cancel, keeping what it did
    at.button(key="track").click().run()
    assert at.button(key="track").disabled and at.button(key="render").disabled
    cancel = [b for b in at.button if b.label == "Cancel"]
    assert cancel and at.get("progress"), "a running job shows a progress bar and Cancel"
    text = at.get("progress")[0].proto.text
    assert "/132 frames" in text and "?" not in text, text  # the total is known from the start
    time.sleep(0.5)
    cancel[0].click().run()
    wait_for(at, lambda a: any("cancelled" in w.value for w in a.warning))
    kept = len(Project.open(project.path).tracked_frames())
    assert 1 < kept < 132

    # the full track finishes and the masks cover the clip
    at.sidebar.selectbox(key="set_tracker").set_value("copy").run()
    at.button(key="track").click().run()
    wait_for(at, lambda a: any("Tracked 132/132" in s.value for s in a.success))
    done = Project.open(project.path)
    assert done.tracked_frames() == list(range(132))
    assert np.array_equal(done.mask(100), done.mask(0))
    assert not at.button(key="render").disabled
    assert not at.download_button(key="download_masks").disabled
    assert at.download_button(key="download_mp4").disabled  # no render yet

    # preview the removal on one frame: before and after, side by side
    at.slider(key="frame").set_value(60).run()
    at.button(key="preview").click().run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == 3  # the timeline, before, after
    assert any("Frame 60: before and after" in c.value for c in at.caption)

    # fix a later frame with a click and re-propagate forwards from it only
    before_fix = Project.open(project.path).mask(59)
    click(at, *ROCK, stamp=31)
    assert Project.open(project.path).keyframe_indices() == [0, 60]
    assert any("From keyframe 60" in c.value for c in at.caption)
    at.radio(key="track_direction").set_value("forward")
    at.checkbox(key="track_refine").check()  # the refinement step runs in the job, on the shared segmenter
    at.button(key="track").click().run()
    wait_for(at, lambda a: any("Tracked 72/72" in s.value for s in a.success))  # 60 and 61..131
    fixed = Project.open(project.path)
    assert np.array_equal(fixed.mask(131), fixed.mask(60))
    assert np.array_equal(fixed.mask(59), before_fix)  # frames before 60 are left alone


def test_a_sessions_jobs_share_one_tracker_state_until_the_project_closes(home, monkeypatch):
    monkeypatch.setitem(TRACKERS._entries, "countingcopy",
                        Entry("countingcopy", f"{__name__}:CountingCopyTracker", "test"))
    monkeypatch.setattr(CountingCopyTracker, "inits", [])
    at = new_app()
    at.sidebar.selectbox(key="set_tracker").set_value("countingcopy")
    open_sample(at)
    click(at, *ROCK, stamp=40)
    for _ in range(2):
        at.button(key="track").click().run()
        wait_for(at, lambda a: any("Tracked 132/132" in s.value for s in a.success))
    assert CountingCopyTracker.inits == [132]  # the second Track found the first one's state
    at.button(key="close_project").click().run()
    assert "job_studio" not in at.session_state  # the session's studio went with the project
    open_sample(at)
    at.button(key="track").click().run()
    wait_for(at, lambda a: any("Tracked 132/132" in s.value for s in a.success))
    assert CountingCopyTracker.inits == [132, 132]


def test_mask_zip_download_holds_every_frame(home):
    """The data behind "Download mask PNGs (zip)": one source-size PNG per frame, ids kept."""
    import io
    import zipfile

    from PIL import Image

    import streamlit_app
    from tam.studio import Studio

    frames = home / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (90, 160, 3), np.uint8)).save(frames / f"{i:03d}.png")
    project = Project.create(frames, root=home / "projects", proxy_longest=80)
    labels = np.zeros((project.proxy_size[1], project.proxy_size[0]), np.uint8)
    labels[10:30, 40:70] = 3
    for i in range(project.num_frames):
        project.save_mask(i, labels)
    with zipfile.ZipFile(io.BytesIO(streamlit_app.masks_zip(Studio(project)))) as z:
        names = z.namelist()
        assert names == [f"masks/{i:05d}.png" for i in range(12)]
        with Image.open(io.BytesIO(z.read(names[7]))) as im:
            assert im.size == (160, 90) and im.mode == "P"
            m = np.asarray(im)
    assert set(np.unique(m)) == {0, 3}  # ids kept, at the source's size
    assert abs((m == 3).mean() - (labels == 3).mean()) < 0.02


REPO = Path(__file__).resolve().parents[1]


def test_listing_the_backends_imports_no_heavy_library():
    """Checked in a fresh interpreter: in this process another test may have imported torch already."""
    code = ("import sys; from tam.ui_state import available_backends; "
            "from tam.segment import SEGMENTERS; from tam.track import TRACKERS; from inpaint import INPAINTERS; "
            "names = [available_backends(r) for r in (SEGMENTERS, TRACKERS, INPAINTERS)]; "
            "assert all(names), names; "
            "heavy = [m for m in ('torch', 'sam2', 'segment_anything', 'diffusers', 'cutie') if m in sys.modules]; "
            "assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_a_url_naming_no_project_folder_opens_nothing(home):
    """``?project=..`` must not open the projects folder's parent (TAM_HOME) as a project."""
    from tests.media import make_video

    clip = home / "clip.mp4"
    make_video(clip)
    Project.create(clip, path=home)  # a real project where the projects folder's parent is
    (home / "projects").mkdir(exist_ok=True)
    for name in ("..", ".", "../..", "projects/.."):
        at = AppTest.from_file(APP, default_timeout=90)
        at.query_params["project"] = name
        at.run()
        assert not at.exception, (name, at.exception)
        assert "project_path" not in at.session_state, name


def test_deleting_a_project_asks_first_and_is_refused_while_a_job_runs(home, monkeypatch):
    monkeypatch.setitem(TRACKERS._entries, "slowcopy",
                        Entry("slowcopy", f"{__name__}:SlowCopyTracker", "test"))
    at = new_app()
    at.sidebar.selectbox(key="set_tracker").set_value("slowcopy")
    project = open_sample(at)

    # Delete only asks; Keep leaves the project alone
    at.sidebar.button(key="delete_saved").click().run()
    assert (project.path / "project.json").exists()
    assert any("cannot be undone" in w.value for w in at.sidebar.warning)
    at.sidebar.button(key="keep_saved").click().run()
    assert (project.path / "project.json").exists()
    assert "confirm_delete_saved" not in [b.key for b in at.sidebar.button]

    # a running job on the project refuses the deletion, from this tab or another
    click(at, *ROCK, stamp=40)
    at.button(key="track").click().run()
    other = new_app()
    other.sidebar.selectbox(key="saved_project").set_value(project.name)
    other.sidebar.button(key="delete_saved").click().run()
    errors = [e.value for e in other.sidebar.error]
    assert errors == [f"{project.name} is busy (track running): cancel it first"], errors
    assert "confirm_delete_saved" not in [b.key for b in other.sidebar.button]
    assert (project.path / "project.json").exists()
    next(b for b in at.button if b.label == "Cancel").click().run()
    wait_for(at, lambda a: any("cancelled" in w.value for w in a.warning))

    # once idle, Delete then "Confirm delete" removes it and closes it in the tab that had it open
    at.sidebar.button(key="delete_saved").click().run()
    at.sidebar.button(key="confirm_delete_saved").click().run()
    assert not at.exception, at.exception
    assert not project.path.exists()
    assert "project_path" not in at.session_state


def test_a_project_deleted_elsewhere_is_closed_with_one_line(home):
    tab_a = new_app()
    project = open_sample(tab_a)
    tab_b = new_app()
    tab_b.sidebar.selectbox(key="saved_project").set_value(project.name)
    tab_b.sidebar.button(key="delete_saved").click().run()
    tab_b.sidebar.button(key="confirm_delete_saved").click().run()
    assert not project.path.exists()

    click(tab_a, *ROCK, stamp=50)  # the next click in the tab that had it open
    warnings = [w.value for w in tab_a.warning]
    assert warnings == [f"Project {project.name} was deleted elsewhere; it is closed."], warnings
    assert "project_path" not in tab_a.session_state
    assert not project.path.exists()  # the click did not bring back a half project
    tab_a.run()
    assert not tab_a.exception and not tab_a.warning  # said once, then the page starts afresh


def test_a_job_knows_its_total_before_its_first_frame():
    import threading

    from tam.ui_state import Job

    release = threading.Event()

    def work(ctx):
        release.wait(10)  # the first frame takes a while (a decoder opening, a model loading)
        yield 1, 5

    job = Job("render", work, total=5).start()
    assert job.total == 5 and job.done == 0 and job.running  # "0/5 frames", not "0/?"
    release.set()
    job._thread.join(10)
    assert job.state == "done" and (job.done, job.total) == (1, 5)
