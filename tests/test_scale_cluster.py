"""The removal tasks on a two-node Ray cluster on this machine (ray.cluster_utils.Cluster): tasks run on
both nodes and the output is the serial run's, bit for bit."""
import shutil

import numpy as np
import pytest
import ray
from ray.cluster_utils import Cluster

from tam.jobs import removal
from tam.jobs.executors import ExecutorSpec, drain, ray_runtime_env
from tests.scale_clip import HOLES, make_project, read_fills
from tests.test_scale import CHUNK, FLOW, N, whole_run


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    ray.init(address=c.address, runtime_env=ray_runtime_env(), log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def test_removal_spreads_over_two_nodes_and_equals_the_serial_run(cluster, tmp_path):
    clip = make_project(tmp_path, N)
    plan = removal.plan_removal(clip, FLOW, HOLES, None, CHUNK)
    with ExecutorSpec("ray", address=cluster.address).create() as ex:
        results = drain(removal.run_removal(plan, ex))
    nodes = {r["node"] for r in results}
    assert len(nodes) == 2 and None not in nodes
    assert np.array_equal(read_fills(plan.folder, N), whole_run(clip, restart=CHUNK))
    shutil.rmtree(plan.folder)
