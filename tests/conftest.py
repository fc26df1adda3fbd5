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
