"""Shared fixtures: where the real data lives, and small deterministic settings."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# A test runner started with SIGINT ignored (a background job of a non-interactive shell:
# `bash .ci/run &`) passes that on to every child, and a `sparsedp run` started so rightly
# ignores Ctrl-C; the Ctrl-C tests would then hang or pass without testing anything. The
# tests' children get the default disposition, like a program started from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _data_candidates() -> list[tuple[str, Path]]:
    env = os.environ.get("SPARSEDP_TEST_DATA")
    out = [("$SPARSEDP_TEST_DATA", Path(env))] if env else []
    out.append(("../shared/data beside the clone", REPO_ROOT.parent / "shared" / "data"))
    return out


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """A directory holding real MNIST as ``mnist/`` (the canonical four files).

    $SPARSEDP_TEST_DATA (set by .ci/run), else ../shared/data beside the clone, else the
    repository's own ``data/`` (MNIST ships in ``data/mnist``), so MNIST tests never skip.
    A $SPARSEDP_TEST_DATA without ``mnist/`` is a mistake and fails.
    """
    env = os.environ.get("SPARSEDP_TEST_DATA")
    if env and not (Path(env) / "mnist").is_dir():
        pytest.fail(f"$SPARSEDP_TEST_DATA={env} has no mnist/ folder: point it at the "
                    "directory holding mnist/ and cifar10-jpeg/, or unset it")
    for _, path in _data_candidates():
        if (path / "mnist").is_dir():
            return path
    repo = REPO_ROOT / "data"
    if not (repo / "mnist").is_dir():
        pytest.fail(f"no real MNIST: neither $SPARSEDP_TEST_DATA nor {repo / 'mnist'} exists")
    return repo


@pytest.fixture(scope="session")
def cifar_jpeg_tarball() -> Path:
    """The CIFAR-10 JPEG copy (``cifar10-jpeg/cifar10-jpeg.tar.gz``), which does not ship
    with the repository: fails in CI when missing; elsewhere skips with the reason, which
    ``-ra`` (pyproject's addopts) lists in the summary."""
    for _, path in _data_candidates():
        tarball = path / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
        if tarball.is_file():
            return tarball
    message = ("CIFAR-10 JPEG copy not found (set SPARSEDP_TEST_DATA to the directory holding "
               "cifar10-jpeg/cifar10-jpeg.tar.gz)")
    if _in_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def mnist(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Real MNIST with the first 1,000 validation examples (checks dominate the test time)."""
    from sparsedp.data.sources import load_dataset
    from sparsedp.data.splits import SplitData, prepare_splits

    cache = tmp_path_factory.mktemp("cache")
    full = prepare_splits(load_dataset("mnist", shared_data_dir / "mnist", cache_dir=cache))
    return SplitData(full.dataset, full.train_index, full.val_index[:1000], full.mean, full.std)


@pytest.fixture(scope="session")
def mnist_small(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real MNIST cut to 5,400 training and 600 validation examples, as an ``.npz`` file
    (tests/small_mnist.py: for end-to-end runs whose checks would dominate their time)."""
    from small_mnist import write_small_mnist

    return write_small_mnist(shared_data_dir / "mnist",
                             tmp_path_factory.mktemp("mnist-small") / "mnist-small.npz")


@pytest.fixture
def registries():
    """Restore every registry, sys.path and the imported plugin modules (``tp_*`` and the
    examples' parts) after the test."""
    import sys

    from sparsedp.data.custom import DATASETS
    from sparsedp.models import MODELS
    from sparsedp.pruning import registry as pruner_registry
    from sparsedp.training.workloads import WORKLOADS

    tables = (MODELS, DATASETS, WORKLOADS, pruner_registry._REGISTRY)
    saved = [dict(t) for t in tables]
    path, modules = list(sys.path), set(sys.modules)
    yield
    for table, copy in zip(tables, saved, strict=True):
        table.clear()
        table.update(copy)
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("tp_") or name in ("my_parts", "lenet_parts"):
            del sys.modules[name]


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
