"""Shared fixtures: where the real data lives, and small deterministic settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The directory with real MNIST and the CIFAR-10 JPEG copy.

    Read from $SPARSEDP_TEST_DATA (set by .ci/run); falls back to ../shared/data beside the
    clone. In CI a missing directory fails loudly instead of skipping.
    """
    env = os.environ.get("SPARSEDP_TEST_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not (path / "mnist").is_dir():
        message = (
            f"real data not found at {path} (set SPARSEDP_TEST_DATA to the directory "
            "holding mnist/ and cifar10-jpeg/)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def mnist(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Real MNIST with the first 1,000 validation examples (checks dominate the test time)."""
    from sparsedp.data.sources import load_dataset
    from sparsedp.data.splits import SplitData, prepare_splits

    cache = tmp_path_factory.mktemp("cache")
    full = prepare_splits(load_dataset("mnist", shared_data_dir / "mnist", cache_dir=cache))
    return SplitData(full.dataset, full.train_index, full.val_index[:1000], full.mean, full.std)


@pytest.fixture(autouse=True)
def _torch_threads():
    """Keep tests on one thread so results do not depend on the runner's core count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real two-node Ray cluster on this machine, every node on 127.0.0.1 only.

    Started once per test session (a head and one worker node, 1 CPU and 80 MiB of object
    store each) and shut down at the end; the test process is the driver. Nodes get their
    own data cache directory. Yields the ``ray.cluster_utils.Cluster``.
    """
    # Ray otherwise swaps a loopback address for the machine's address when connecting.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    import ray._private.ray_constants as constants
    from ray.cluster_utils import Cluster

    constants.ENABLE_RAY_CLUSTER = False
    previous_cache = os.environ.get("SPARSEDP_CACHE_DIR")
    os.environ["SPARSEDP_CACHE_DIR"] = str(tmp_path_factory.mktemp("ray-node-cache"))
    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1",
            "object_store_memory": 80 * 1024 * 1024}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
    finally:  # the nodes keep the environment they started with
        if previous_cache is None:
            os.environ.pop("SPARSEDP_CACHE_DIR", None)
        else:
            os.environ["SPARSEDP_CACHE_DIR"] = previous_cache
    try:
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        cluster.node_args = node  # for tests that add nodes
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
