"""Removal and tracking as tasks: chunks equal the whole run bit for bit, the process pool equals
the serial executor, a killed worker's task runs again, a killed driver resumes, a batch goes on past
a broken clip, and chunk starts show no flicker jump. Tiny clips (64x48)."""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inpaint.flow_guided import RESTART_WARMUP, FlowGuidedInpainter
from inpaint.render import HoleMasks
from tam.cli import main
from tam.jobs import removal
from tam.jobs.executors import PoolExecutor, SerialExecutor, drain
from tam.jobs.tracking import run_tracking
from tam.runspec import BackendSpec, RunContext
from tests.media import REPO
from tests.scale_clip import HOLES, fill_chunk_killed_once, make_project, read_fills, write_clip

N = 40
CHUNK = 12
RADIUS = 4  # frames the flow fill looks each way (8 by default): shorter chains, a faster test
FLOW = BackendSpec.of("inpainter", "flow", {"radius": RADIUS})


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("scale"), N)


@pytest.fixture(scope="module")
def serial_fills(clip):
    plan = removal.plan_removal(clip, FLOW, HOLES, None, CHUNK)
    list(removal.run_removal(plan, SerialExecutor()))
    fills = read_fills(plan.folder, N)
    shutil.rmtree(plan.folder)
    return fills


def whole_run(project, **options) -> np.ndarray:
    holes = HoleMasks(project.masks, None, HOLES, 1.0)
    runner = FlowGuidedInpainter(**{"radius": RADIUS, **options})
    return np.stack([rgb for _, rgb in runner.inpaint(project.frames, holes)])


def test_chunks_equal_the_whole_run_bit_for_bit(clip, serial_fills):
    whole = whole_run(clip, restart=CHUNK)
    assert np.array_equal(serial_fills, whole)
    # the restarts change what is filled (new keyframe fills), and only by the restart option
    assert not np.array_equal(whole, whole_run(clip))


def test_the_anchor_fills_are_computed_once_and_used_by_both_chunks(clip, monkeypatch):
    plan = removal.plan_removal(clip, FLOW, HOLES, None, CHUNK)
    try:
        # a chunk's first pass restarts radius + 8 frames before it, from a chain begun 8 frames before
        assert [a.frame for a in plan.anchors] == [24 - 20, 36 - 20]
        list(removal.run_removal(plan, SerialExecutor()))
        stored = [removal.anchor_path(plan.folder, a.frame) for a in plan.anchors]
        assert all(p.exists() for p in stored)
        assert any(p.read_bytes()[:4] != removal.NO_FILL for p in stored)  # this clip needs keyframe fills
        # a chunk asks the filler only for what no anchor answered: with a failing filler the stored
        # anchor fill is still found (by content) where the chunk restarts
        hits = []
        original = removal._Memo.__call__

        def counting(self, rgb, hole, **views):
            hits.append(removal._question(rgb, hole, **views) in self.known)
            return original(self, rgb, hole, **views)

        monkeypatch.setattr(removal._Memo, "__call__", counting)
        chunk = plan.chunks[2]
        for i in range(chunk.start, chunk.stop):
            removal.fill_path(plan.folder, i).unlink()
        removal.fill_chunk(chunk)
        assert hits and hits[0]
    finally:
        shutil.rmtree(plan.folder)


def test_pool_equals_serial_and_a_rerun_fills_only_what_is_missing(clip, serial_fills):
    plan = removal.plan_removal(clip, FLOW, HOLES, None, CHUNK)
    try:
        with PoolExecutor(2) as ex:
            list(removal.run_removal(plan, ex))
            assert np.array_equal(read_fills(plan.folder, N), serial_fills)
            lost = [13, 14, 30]
            for i in lost:
                removal.fill_path(plan.folder, i).unlink()
            results = drain(removal.run_removal(plan, ex))
        assert sum(r["frames"] for r in results) == len(lost)
        assert np.array_equal(read_fills(plan.folder, N), serial_fills)
    finally:
        shutil.rmtree(plan.folder)


def test_a_worker_killed_mid_task_reruns_it_and_the_output_is_identical(clip, serial_fills, monkeypatch):
    monkeypatch.setattr(removal, "fill_chunk", fill_chunk_killed_once)  # the driver sends the wrapper
    plan = removal.plan_removal(clip, FLOW, HOLES, None, CHUNK)
    try:
        with PoolExecutor(2, max_retries=2) as ex:
            list(removal.run_removal(plan, ex))
        assert (Path(plan.folder) / "killed-once").exists()
        assert np.array_equal(read_fills(plan.folder, N), serial_fills)
    finally:
        shutil.rmtree(plan.folder)


def test_cancel_stops_between_tasks(clip):
    plan = removal.plan_removal(clip, FLOW, HOLES, None, CHUNK)
    ctx = RunContext()
    ctx.cancel()
    with pytest.raises(removal.TamError, match="cancelled"):
        list(removal.run_removal(plan, SerialExecutor(), ctx))
    shutil.rmtree(plan.folder)


def test_tracking_stretches_on_the_pool_equal_the_serial_run(tmp_path):
    p = make_project(tmp_path, 24)
    for k in (0, 12):
        p.set_keyframe(k, p.mask(k))
    (tmp_path / "project" / "masks").rename(tmp_path / "truth")
    spec = BackendSpec.of("tracker", "classical")
    runs = []
    for executor in (SerialExecutor(), PoolExecutor(2)):
        with executor:
            progress = list(run_tracking(p, spec, executor))
        assert progress[-1] == (24, 24)
        runs.append(np.stack([p.mask(i) for i in range(24)]))
        shutil.rmtree(tmp_path / "project" / "masks")
    assert np.array_equal(runs[0], runs[1])
    truth = np.stack([np.asarray(__import__("cv2").imread(str(tmp_path / "truth" / f"{i:05d}.png"), 0)) > 0
                      for i in range(24)])
    inter = ((runs[0] > 0) & truth).sum()
    assert inter / ((runs[0] > 0) | truth).sum() > 0.8


def _remove_cmd(d: Path, out: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "tam", "remove", str(d / "frames"), "--masks", str(d / "masks"), "--out",
            str(out), "--project", str(d / "project"), "--proxy", "0", "--dilate", "1", "--feather", "1",
            "--workers", str(workers), "--chunk", str(CHUNK), "-q"]


def test_a_killed_driver_resumes_from_disk(tmp_path):
    d = tmp_path / "clip"
    write_clip(d, 36)
    # uninterrupted, in this process
    assert main(_remove_cmd(d, tmp_path / "ref", 1)[3:]) == 0
    shutil.rmtree(d / "project")
    proc = subprocess.Popen(_remove_cmd(d, tmp_path / "out", 2), cwd=REPO)
    fills = d / "project" / "jobs"
    deadline = time.time() + 60
    while time.time() < deadline and not any(fills.glob("remove-*/fills/000[0-9][0-9].png")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # the driver: its pool workers see their parent go and stop
    proc.wait()
    assert not (tmp_path / "out").exists()
    done_before = len(list(fills.glob("remove-*/fills/*.png")))
    assert 0 < done_before < 36
    assert subprocess.run(_remove_cmd(d, tmp_path / "out", 2), cwd=REPO).returncode == 0
    for i in range(36):
        a = (tmp_path / "ref" / f"{i:05d}.png").read_bytes()
        assert a == (tmp_path / "out" / f"{i:05d}.png").read_bytes(), i
    assert not any(fills.glob("remove-*"))  # the job's fills go once the output is written


def test_batch_finishes_two_clips_reports_the_broken_one_and_resumes(tmp_path, capsys):
    for name in ("a", "b"):
        write_clip(tmp_path / name, 14, seed=ord(name))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    jobs = [{"source": "a/frames", "masks": "a/masks", "out": "a.mkv", "options": {"proxy": 0, "dilate": 1}},
            {"source": "broken.mp4", "clicks": [{"x": 10, "y": 10}], "out": "broken.mp4.out.mp4"},
            {"source": "b/frames", "clicks": [{"x": 20, "y": 24}], "out": "b-out", "options": {"proxy": 0}}]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    argv = ["batch", str(tmp_path / "jobs.json"), "--workers", "2", "--chunk", "8", "-q"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.mp4" in errors[0] and "Traceback" not in err
    assert (tmp_path / "a.mkv").stat().st_size > 0
    assert sorted(f.name for f in (tmp_path / "b-out").iterdir()) == [f"{i:05d}.png" for i in range(14)]
    stamp = (tmp_path / "a.mkv").stat().st_mtime_ns
    started = time.perf_counter()
    assert main(argv) == 1  # again: the finished clips are skipped, the broken one reported again
    assert time.perf_counter() - started < 5
    assert (tmp_path / "a.mkv").stat().st_mtime_ns == stamp


def test_batch_rejects_a_bad_jobs_file_in_one_line(tmp_path, capsys):
    (tmp_path / "jobs.json").write_text('{"source": "x"}')
    assert main(["batch", str(tmp_path / "jobs.json"), "-q"]) == 1
    assert capsys.readouterr().err.strip() == "error: jobs.json: expected a non-empty list of clips"


def _change(fills: np.ndarray, holes) -> dict[int, float]:
    """Mean frame-to-frame change of the fill, following the one-pixel pan, on frames 1..n-1."""
    f = fills.astype(np.float32)
    change = {}
    for t in range(1, len(f)):
        region = (holes[t] | holes[t - 1])[:, :-1]
        change[t] = float(np.abs(f[t][:, :-1] - f[t - 1][:, 1:])[region].mean())
    return change


def test_no_flicker_jump_at_chunk_boundaries(clip, serial_fills):
    """At each chunk start and where the first pass changes chain, the fill changes from frame to frame
    as much as inside the chunks, and as much as on the same frames of a run without chunks."""
    holes = HoleMasks(clip.masks, None, HOLES, 1.0)
    chunked, whole = _change(serial_fills, holes), _change(whole_run(clip), holes)
    plan = removal.plan_removal(clip, FLOW, HOLES, None, CHUNK)
    shutil.rmtree(plan.folder)
    bounds = set(range(CHUNK, N, CHUNK))
    bounds |= {t for a in plan.anchors for t in range(max(1, a.frame), a.frame + RESTART_WARMUP + 2)}
    at = [chunked[t] for t in sorted(bounds)]
    inside = [v for t, v in chunked.items() if t not in bounds]
    assert np.mean(at) <= 1.15 * np.mean(inside)
    assert np.mean(at) <= 1.1 * np.mean([whole[t] for t in sorted(bounds)])
    for t in range(CHUNK, N, CHUNK):
        assert chunked[t] <= 1.3 * whole[t], (t, chunked[t], whole[t])  # a restart without warm-up: 1.8x


_HELD_MEMORY = """
import gc
import numpy as np
from tam.jobs.executors import call_task, release_memory

def rss_mib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS:"))

def task(n):
    # a task's buffers: 64 KiB arrays, under glibc's mmap threshold, so they come from the heap;
    # the last one outlives the task and pins the heap's top, so glibc cannot shrink it on free
    blocks = [np.full(16 * 1024, i, np.float32) for i in range(n)]
    return blocks[-1]

base = rss_mib()
kept = task(4000)  # 250 MiB, freed but the last block
gc.collect()
held = rss_mib()
kept_too = call_task(task, 4000)  # the same task as the executors run it
after_task = rss_mib()
release_memory()
print(base, held, after_task, rss_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="malloc_trim and /proc/self/status are Linux's")
def test_a_task_returns_the_memory_it_freed(tmp_path):
    """A pool worker runs many tasks: the heap memory a task freed goes back to the system after it
    (release_memory in call_task) instead of staying with the worker, as glibc would keep it."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip(f"malloc_trim is glibc's; this C library is {platform.libc_ver()[0] or 'unknown'}")
    out = subprocess.run([sys.executable, "-c", _HELD_MEMORY], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    base, held, after_task, released = (int(v) for v in out.stdout.split())
    assert held - base > 150, (base, held)  # without a trim glibc keeps the freed blocks
    assert after_task - base < 60, (base, held, after_task)  # call_task gave its freed blocks back
    assert released - base < 60, (base, held, released)
