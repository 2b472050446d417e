"""Shot cuts: found on open, listed by info, and never crossed by tracking."""
from __future__ import annotations

import numpy as np
import pytest

from tam.shots import detect_cuts, shots
from tam.track.propagation import count_frames, plan_segments, stopped_at_cuts
from tests.media import DATA

DAVIS = DATA / "davis2016"
needs_data = pytest.mark.skipif(not DAVIS.exists(), reason="no ../shared/data (evaluation data)")
# fast motion and pans: a cut detector that fires on motion fires here
NO_CUT_SEQUENCES = ("bmx-trees", "motorbike", "drift-turn", "dog-agility", "paragliding")


def _two_shots(path, first=12, second=12, w=96, h=64):
    """A clip of a slowly drifting scene that jumps to another at frame ``first``."""
    import av

    yy, xx = np.mgrid[0:h, 0:w * 2]
    a = np.dstack([xx * 255 // (2 * w), yy * 255 // h, np.full_like(xx, 60)]).astype(np.uint8)
    b = np.dstack([np.full_like(xx, 30), 255 - yy * 200 // h, 255 - xx * 100 // (2 * w)]).astype(np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(first + second):
            src, k = (a, i) if i < first else (b, i - first)
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(src[:, 2 * k: 2 * k + w]), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def test_plan_stops_at_cuts():
    assert plan_segments(100, [10], cuts=[50]) == [(10, -1), (10, 50)]
    assert plan_segments(100, [60], cuts=[50]) == [(60, 49), (60, 100)]
    # keyframes in two shots: each tracks its own shot only, never the gap across the cut
    assert plan_segments(100, [10, 70], cuts=[50]) == [(10, -1), (10, 50), (70, 49), (70, 100)]
    assert plan_segments(100, [10, 30], cuts=[50]) == [(10, -1), (10, 21), (30, 20), (30, 50)]
    assert count_frames(100, [10], cuts=[50]) == 50
    assert stopped_at_cuts(100, [10], cuts=[50]) == [50]
    assert stopped_at_cuts(100, [10], cuts=[]) == []
    assert shots(100, [50]) == [(0, 49), (50, 99)]


def test_cut_found_in_a_synthetic_two_shot_clip(tmp_path):
    from tam.video import open_source

    with open_source(_two_shots(tmp_path / "two.mp4")) as src:
        assert detect_cuts(src, src.fps) == [12]


def test_project_caches_cuts_and_tracking_stops_there(tmp_path):
    from tam.project import Project
    from tam.studio import Studio

    project = Project.create(_two_shots(tmp_path / "two.mp4"), path=tmp_path / "p")
    assert not project.cuts_known
    list(project.find_cuts())
    assert project.cuts() == [12] and "shot 2: frames 12-23" in project.summary()
    assert Project.open(tmp_path / "p").cuts_known
    studio = Studio(project)
    labels = np.zeros((64, 96), np.uint8)
    labels[20:40, 30:60] = 1
    studio.add_mask(0, labels)
    assert studio.cut_stops() == [12]
    list(studio.track())
    assert max(project.tracked_frames()) == 11
    assert not any(project.masks[i].any() for i in range(12, 24))
    project.close()


def test_run_says_where_tracking_stopped(tmp_path, capsys):
    from tam.cli import main

    masks = tmp_path / "masks"
    assert main(["run", str(_two_shots(tmp_path / "two.mp4")), "--click", "48,32", "--out",
                 str(tmp_path / "o.mp4"), "--masks-out", str(masks), "-q"]) == 0
    assert "tracking stopped at the shot cut before frame 12" in capsys.readouterr().err
    from tam import masks as maskio

    assert not any(maskio.load_labels(masks / f"{i:05d}.png").any() for i in range(12, 24))


def test_info_lists_the_shots(tmp_path, capsys):
    from tam.cli import main

    assert main(["info", str(_two_shots(tmp_path / "two.mp4"))]) == 0
    out = capsys.readouterr().out
    assert "2 shot(s)" in out and "shot 2: frames 12-23" in out


def _davis(seq, start=0, count=None, scale=0.5):
    import cv2

    files = sorted((DAVIS / seq / "frames").glob("*.jpg"))[start:]
    files = files[:count] if count else files
    for f in files:
        yield cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_REDUCED_COLOR_2 if scale == 0.5 else cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB)


@needs_data
@pytest.mark.parametrize("seq", NO_CUT_SEQUENCES)
def test_no_cut_in_davis_sequences_with_fast_motion_and_pans(seq):
    assert detect_cuts(_davis(seq), 25) == []


@needs_data
@pytest.mark.parametrize("first,second", [("blackswan", "bmx-trees"), ("drift-turn", "elephant"),
                                          ("libby", "mallard-fly"), ("surf", "tennis"), ("motorbike", "paragliding")])
def test_cut_found_where_two_davis_sequences_are_joined_mid_action(first, second):
    """Each sequence from its middle (30 frames at most): the cut lands among fast motion."""
    def half(seq):
        n = len(list((DAVIS / seq / "frames").glob("*.jpg")))
        return list(_davis(seq, n // 2, 30))

    a = half(first)
    assert detect_cuts(a + half(second), 25) == [len(a)]


@needs_data
def test_two_davis_sequences_joined_first_shot_annotated_no_mask_after_the_cut(tmp_path):
    """blackswan then boat: the swan's mask stays in its shot; nothing is painted over the boat."""
    import os

    from tam import masks as maskio
    from tam.project import Project
    from tam.studio import Studio

    clip = tmp_path / "joined"
    clip.mkdir()
    first = sorted((DAVIS / "blackswan" / "frames").glob("*.jpg"))[:14]
    second = sorted((DAVIS / "boat" / "frames").glob("*.jpg"))[:14]
    for i, f in enumerate(first + second):
        os.symlink(f, clip / f"{i:05d}.jpg")
    project = Project.create(clip, path=tmp_path / "p", proxy_longest=320)
    list(project.find_cuts())
    assert project.cuts() == [len(first)]
    studio = Studio(project)
    gt = maskio.load_labels(DAVIS / "blackswan" / "masks" / "00000.png")
    studio.add_mask(0, (gt > 0).astype(np.uint8))
    list(studio.track())
    tracked = [i for i in range(project.num_frames) if project.masks[i].any()]
    assert tracked and max(tracked) == len(first) - 1
    project.close()
