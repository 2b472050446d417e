"""The same removal and tracking tasks on a local Ray (two CPUs): bit for bit the serial results, and
a worker killed mid-task is run again. One Ray session for the module (it takes seconds to start)."""
import shutil

import numpy as np
import pytest
import ray

from tam.jobs import removal
from tam.jobs.executors import RayExecutor, SerialExecutor, ray_runtime_env
from tam.jobs.tracking import run_tracking
from tam.runspec import BackendSpec
from tests.scale_clip import HOLES, fill_chunk_killed_once, make_project, read_fills
from tests.test_scale import CHUNK, FLOW, N, whole_run


@pytest.fixture(scope="module")
def session():
    ray.init(num_cpus=2, runtime_env=ray_runtime_env(), include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("ray"), N)


def test_removal_on_ray_equals_the_serial_run(session, clip, monkeypatch):
    reference = whole_run(clip, restart=CHUNK)  # = the serial executor's chunks (tests/test_scale.py)
    plan = removal.plan_removal(clip, FLOW, HOLES, None, CHUNK)
    try:
        with RayExecutor() as ex:
            list(removal.run_removal(plan, ex))
        assert ray.is_initialized()  # the executor joined the session and leaves it to its owner
        assert np.array_equal(read_fills(plan.folder, N), reference)
        # a worker killed in the middle of a chunk: Ray runs the task again, the output is the same
        shutil.rmtree(plan.folder)
        monkeypatch.setattr(removal, "fill_chunk", fill_chunk_killed_once)
        plan = removal.plan_removal(clip, FLOW, HOLES, None, CHUNK)
        with RayExecutor(max_retries=2) as ex:
            list(removal.run_removal(plan, ex))
        assert (plan_folder := __import__("pathlib").Path(plan.folder) / "killed-once").exists(), plan_folder
        assert np.array_equal(read_fills(plan.folder, N), reference)
    finally:
        shutil.rmtree(plan.folder, ignore_errors=True)


def test_tracking_on_ray_equals_the_serial_executor(session, tmp_path):
    p = make_project(tmp_path, 20)
    for k in (0, 10):
        p.set_keyframe(k, p.mask(k))
    spec = BackendSpec.of("tracker", "classical")
    runs = []
    for executor in (SerialExecutor(), RayExecutor()):
        shutil.rmtree(tmp_path / "project" / "masks")
        with executor:
            assert list(run_tracking(p, spec, executor))[-1] == (20, 20)
        runs.append(np.stack([p.mask(i) for i in range(20)]))
    assert np.array_equal(runs[0], runs[1])
    assert (runs[0][5] == 1).sum() > 100  # an object was tracked, not an empty map copied
