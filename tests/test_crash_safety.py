"""Killing the process mid-work loses at most the frame being written; outputs never appear half-done."""
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from tam.masks import load_labels
from tam.project import Project
from tests.media import REPO, make_video


def test_kill_during_tracking_keeps_the_project_readable(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n=150, width=320, height=240)
    init = np.zeros((240, 320), np.uint8)
    init[60:180, 100:220] = 255
    Image.fromarray(init).save(tmp_path / "init.png")
    proj = tmp_path / "proj"
    out = tmp_path / "masks"
    cmd = [sys.executable, "-m", "tam", "track", str(clip), "--init-mask", str(tmp_path / "init.png"),
           "--out", str(out), "--project", str(proj), "-q"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = len(list((proj / "masks").glob("[0-9]*.png"))) if (proj / "masks").exists() else 0
        if done >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = Project.open(proj)
    tracked = p.tracked_frames()
    assert 0 in tracked and len(tracked) >= 10
    for i in tracked:  # every mask on disk is whole
        m = p.mask(i)
        assert m.shape == (240, 320) and m.dtype == np.uint8
    assert p.keyframe_indices() == [0]
    assert not out.exists()  # the output folder appears only when complete
    # and the work resumes: running again completes every frame
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("*.png"))) == 150
    assert load_labels(out / "00000.png")[120, 160] == 1


def test_kill_during_render_leaves_no_output_and_the_next_run_sweeps_the_leftover(tmp_path):
    n = 200
    clip = make_video(tmp_path / "clip.mp4", n=n, width=320, height=240)
    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.zeros((240, 320), np.uint8)
    m[80:160, 120:200] = 255
    for i in range(n):
        Image.fromarray(m).save(masks / f"{i:05d}.png")
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "tam", "remove", str(clip), "--masks", str(masks), "--out", str(out),
           "--backend", "telea", "-q"]

    def leftovers():
        return [p for p in tmp_path.iterdir() if p.name.startswith(".out.mp4.")]

    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not leftovers():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert leftovers(), "the killed render had a temporary file open"
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert out.exists() and not leftovers()


def test_sweep_keeps_the_temporaries_of_live_writers(tmp_path):
    import os

    from tam.fileio import atomic_path, sweep_stale

    target = tmp_path / "a.json"
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
        assert sweep_stale(target) == [] and tmp.exists()  # ours: this process is alive
    dead = tmp_path / f".a.json.{2**22 + 12345}.x.json"  # above Linux's default pid_max
    dead.write_text("")
    assert os.path.exists(dead)
    assert sweep_stale(target) == [dead] and not dead.exists()
