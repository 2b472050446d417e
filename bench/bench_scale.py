"""Benchmark removal and tracking as parallel tasks: frames/s with 1 and N workers, on a two-node local
Ray cluster, peak memory per worker, parallel efficiency.

    python bench/bench_scale.py [--frames 90] [--sequence stroller] [--proxy 432] [--chunk 30]
                                [--workers 1,2] [--no-cluster]

The clip is the first ``--frames`` frames of a DAVIS sequence (``../shared/data/davis2016``) with its
ground-truth masks, at ``--proxy`` pixels on the longest side. Removal runs the default flow-guided
inpainter; its figure covers the fills (anchor and chunk tasks, the parallel part); compositing and
encoding the output stay in the driver and are not timed. Tracking runs the classical tracker from
ground-truth keyframes every ``--frames / 4`` frames (each stretch between them is a task).

Rows: ``whole`` is one in-process run without chunks (the path without an executor, the baseline);
``pool N`` the chunked job on N local worker processes (N = 1 is the serial reference of the same
tasks); ``cluster 2x1`` two single-CPU Ray nodes on this machine. Efficiency is the speed with N
workers / (N x the speed with 1 worker of the same tasks). Worker start-up is inside every figure.
Peak RSS is the largest resident set of any process that ran a task (for 1 worker, this process).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data" / "davis2016"
KEYFRAMES_PER_CLIP = 4  # annotated frames for the tracking figure


def make_project(root: Path, sequence: str, frames: int, proxy: int):
    """A project over the first ``frames`` frames of a DAVIS sequence, its masks saved, keyframes marked."""
    import cv2
    import numpy as np

    from tam.datasets import read_label_png
    from tam.project import Project

    src = DATA / sequence
    if not src.is_dir():
        raise SystemExit(f"error: no DAVIS sequence {src}")
    names = sorted((src / "frames").iterdir())[:frames]
    folder = root / "frames"
    folder.mkdir(parents=True)
    for k, name in enumerate(names):
        shutil.copy(name, folder / f"{k:05d}{name.suffix}")
    p = Project.create(folder, path=root / "project", proxy_longest=proxy)
    n = p.num_frames
    step = max(1, n // KEYFRAMES_PER_CLIP)
    for k, name in enumerate(names):
        truth = (read_label_png(src / "masks" / (name.stem + ".png")) > 0).astype(np.uint8)
        labels = cv2.resize(truth, p.proxy_size, interpolation=cv2.INTER_NEAREST)
        if k % step == 0:
            p.set_keyframe(k, labels)
        else:
            p.save_mask(k, labels)
    return p


def peak_rss(results: list[dict]) -> float:
    return max((r["peak_rss_mib"] for r in results), default=float("nan"))


def time_removal(project, executor, chunk: int) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB, worker processes) of the removal fills on ``executor``."""
    from inpaint.render import HoleConfig
    from tam.jobs import removal
    from tam.jobs.executors import drain
    from tam.runspec import BackendSpec

    started = time.perf_counter()
    plan = removal.plan_removal(project, BackendSpec.of("inpainter", "flow"), HoleConfig(), None, chunk)
    results = drain(removal.run_removal(plan, executor))
    seconds = time.perf_counter() - started
    shutil.rmtree(plan.folder)
    return seconds, peak_rss(results), len({(r["node"], r["pid"]) for r in results})


def time_whole(project) -> tuple[float, float, int]:
    """The baseline: the inpainter over the whole clip in this process, no chunks."""
    import resource

    from inpaint.flow_guided import FlowGuidedInpainter
    from inpaint.render import HoleConfig, HoleMasks
    from tam.jobs.executors import one_thread

    holes = HoleMasks(project.masks, None, HoleConfig(), project.proxy_scale[0])
    started = time.perf_counter()
    with one_thread():
        for _ in FlowGuidedInpainter().inpaint(project.frames, holes):
            pass
    return time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1


def warm_up(project) -> None:
    """One frame filled and tracked before any timing: imports and compiled kernels are ready."""
    from inpaint.flow_guided import FlowGuidedInpainter
    from inpaint.render import HoleConfig, HoleMasks
    from tam.track.base import TRACKERS

    holes = HoleMasks(project.masks, None, HoleConfig(), project.proxy_scale[0])
    FlowGuidedInpainter().preview(project.frames, holes, 1, radius=2)
    tracker = TRACKERS.create("classical")
    for _ in tracker.propagate(tracker.init_state(project.frames), project.frames, project.keyframes(), 0, 2):
        pass


def time_tracking(project, executor) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB, worker processes) of tracking every stretch between the keyframes."""
    from tam.jobs.tracking import segment_tasks, track_segment
    from tam.runspec import BackendSpec

    shutil.rmtree(project.path / "masks", ignore_errors=True)
    tasks = segment_tasks(project, BackendSpec.of("tracker", "classical"))
    started = time.perf_counter()
    results = [event[1] for event in executor.run(track_segment, tasks) if event is not None]
    return time.perf_counter() - started, peak_rss(results), len({(r["node"], r["pid"]) for r in results})


def cluster_executor():
    """A two-node Ray cluster on this machine (one CPU each) and an executor joined to it."""
    import ray
    from ray.cluster_utils import Cluster

    from tam.jobs.executors import RayExecutor, ray_runtime_env

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    ray.init(address=c.address, runtime_env=ray_runtime_env(), log_to_driver=False)
    return c, RayExecutor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=90, help="frames of the clip (default 90)")
    ap.add_argument("--sequence", default="stroller", help="DAVIS 2016 sequence (default stroller, 91 frames)")
    ap.add_argument("--proxy", type=int, default=432, help="working size, longest side (default 432)")
    ap.add_argument("--chunk", type=int, default=30, help="frames per removal task (default 30)")
    ap.add_argument("--workers", default="1,2", help="worker counts for the process pool (default 1,2)")
    ap.add_argument("--no-cluster", action="store_true", help="skip the two-node local Ray cluster")
    args = ap.parse_args()

    from tam.jobs.executors import PoolExecutor, SerialExecutor, cpu_count

    rows = []  # (task, executor, workers, seconds, peak MiB, processes)
    with tempfile.TemporaryDirectory(prefix="tam-bench-") as tmp:
        project = make_project(Path(tmp), args.sequence, args.frames, args.proxy)
        for _ in project.frames.fill_cache():
            pass
        n = project.num_frames
        print(f"{args.sequence}: {n} frames at {project.proxy_size[0]}x{project.proxy_size[1]}, chunk {args.chunk}, "
              f"{cpu_count()} cores here (shared: figures taken under whatever else runs)", flush=True)
        warm_up(project)
        rows.append(("remove", "whole", 1, *time_whole(project)))
        for w in [int(v) for v in args.workers.split(",")]:
            ex = SerialExecutor() if w == 1 else PoolExecutor(w)
            with ex:
                rows.append(("remove", f"pool {w}", w, *time_removal(project, ex, args.chunk)))
            ex = SerialExecutor() if w == 1 else PoolExecutor(w)
            with ex:
                rows.append(("track", f"pool {w}", w, *time_tracking(project, ex)))
        if not args.no_cluster:
            cluster, ex = cluster_executor()
            try:
                rows.append(("remove", "cluster 2x1", 2, *time_removal(project, ex, args.chunk)))
                rows.append(("track", "cluster 2x1", 2, *time_tracking(project, ex)))
            finally:
                import ray
                ray.shutdown()
                cluster.shutdown()
        project.close()

    one = {task: n / s for task, name, w, s, _, _ in rows if name == "pool 1"}
    print(f"{'task':7} {'executor':12} {'workers':>7} {'s':>7} {'frames/s':>9} {'efficiency':>10} "
          f"{'peak RSS MiB':>12} {'procs':>5}")
    for task, name, w, s, rss, procs in rows:
        fps = n / s
        eff = f"{fps / (w * one[task]):.2f}" if task in one and name != "whole" else "-"
        print(f"{task:7} {name:12} {w:>7} {s:>7.1f} {fps:>9.2f} {eff:>10} {rss:>12.0f} {procs:>5}")


if __name__ == "__main__":
    main()
