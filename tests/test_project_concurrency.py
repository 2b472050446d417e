"""Two editors of one project (two processes, two browser tabs) never erase each other's work."""
import multiprocessing
import threading

import pytest

from tam.project import Project
from tests.media import make_video

CLICKS = 20  # per editor
WAIT_S = 60  # a barrier that long means the other editor died


@pytest.fixture
def project_path(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n=4, width=64, height=48)
    project = Project.create(clip, path=tmp_path / "p")
    project.add_object()
    return project.path


def _click(path, frame: int, row: float, barrier) -> None:
    """Open the project, then add CLICKS clicks on ``frame`` at (i, row), one per barrier round."""
    project = Project.open(path)
    for i in range(CLICKS):
        barrier.wait(WAIT_S)
        project.add_click(frame, 1, float(i), row, 1)


def _run_editors(path, frames: tuple[int, int], rows: tuple[float, float]) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(frames))
    editors = [ctx.Process(target=_click, args=(path, f, r, barrier)) for f, r in zip(frames, rows)]
    for e in editors:
        e.start()
    for e in editors:
        e.join(WAIT_S * 2)
    assert [e.exitcode for e in editors] == [0] * len(editors)


@pytest.mark.parametrize("frames", [(0, 3), (0, 0)], ids=["two-frames", "same-frame"])
def test_two_processes_keep_every_click_in_order(project_path, frames):
    rows = (10.0, 20.0)
    _run_editors(project_path, frames, rows)
    on_disk = Project.open(project_path)
    clicks = [c for f in sorted(set(frames)) for c in on_disk.prompt(f, 1)["clicks"]]
    assert len(clicks) == 2 * CLICKS
    for frame, row in zip(frames, rows):
        mine = [c for c in on_disk.prompt(frame, 1)["clicks"] if c[1] == row]
        assert mine == [[float(i), row, 1] for i in range(CLICKS)]


def test_two_threads_with_their_own_project_keep_every_click(project_path):
    barrier = threading.Barrier(2)
    editors = [threading.Thread(target=_click, args=(project_path, 0, row, barrier)) for row in (10.0, 20.0)]
    for e in editors:
        e.start()
    for e in editors:
        e.join(WAIT_S)
    clicks = Project.open(project_path).prompt(0, 1)["clicks"]
    for row in (10.0, 20.0):
        assert [c for c in clicks if c[1] == row] == [[float(i), row, 1] for i in range(CLICKS)]


def test_an_open_project_sees_edits_made_elsewhere(project_path):
    tab_a, tab_b = Project.open(project_path), Project.open(project_path)
    assert tab_a.prompted() == {} and tab_b.prompted() == {}
    tab_a.add_click(0, 1, 5, 5)
    assert tab_b.prompt(0, 1)["clicks"] == [[5.0, 5.0, 1]]
    tab_b.add_click(0, 1, 6, 6)
    assert tab_a.undo(0, 1) == "click"  # takes back b's click, the last one on disk
    assert tab_b.prompt(0, 1)["clicks"] == [[5.0, 5.0, 1]]
    second = tab_b.add_object("second")
    assert tab_a.add_object("third") == second + 1
    tab_a.add_click(2, second, 7, 7)  # an object made in the other tab takes clicks here
    tab_b.rename_object(second, "renamed")
    assert [o.name for o in tab_a.objects] == ["object 1", "renamed", "third"]
    tab_b.delete_object(second)
    assert tab_a.prompted() == {0: [1]}
    assert [o.id for o in tab_a.objects] == [1, second + 1]
