"""Shared fixtures: where the real data lives, and small deterministic settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture(autouse=True)
def _torch_threads():
    """Keep tests on one thread so results do not depend on the runner's core count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
