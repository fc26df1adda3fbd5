"""Real MNIST cut short, for end-to-end runs whose question is not the data.

A check of a built-in ``mnist`` run reads the whole 6,000-example validation split, which
makes checks, not what a test asks, most of an end-to-end test's time. The first 6,000
training and 1,000 test images of real MNIST, written as an ``.npz`` file (the ``npz``
data set kind), give 5,400 training and 600 validation examples: a check reads a tenth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparsedp.data.idx import read_idx_images, read_idx_labels

TRAIN_IMAGES = 6_000
TEST_IMAGES = 1_000
DATASET = "mnist-small"


def write_small_mnist(mnist_dir: Path, path: Path) -> Path:
    """The first ``TRAIN_IMAGES`` and ``TEST_IMAGES`` of real MNIST (idx files in
    ``mnist_dir``) as an ``.npz`` at ``path``."""
    np.savez(path,
             x_train=read_idx_images(mnist_dir / "train-images-idx3-ubyte.gz")[:TRAIN_IMAGES],
             y_train=read_idx_labels(mnist_dir / "train-labels-idx1-ubyte.gz")[:TRAIN_IMAGES],
             x_test=read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz")[:TEST_IMAGES],
             y_test=read_idx_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz")[:TEST_IMAGES])
    return path


def small_mnist_dataset_table(npz: Path) -> str:
    """The experiment-file table declaring the cut data set ``DATASET`` (the ``.npz``)."""
    return (f'\n[datasets.{DATASET}]\nkind = "npz"\npath = "{npz}"\n'
            f'description = "MNIST, the first {TRAIN_IMAGES:,} training images"\n')


def small_mnist_tables(npz: Path, workload: str,
                       extends: str = "mnist-simplecnn-momentum") -> str:
    """Experiment-file tables declaring the cut data set and ``workload``, ``extends`` on it
    (append them after the file's top-level keys)."""
    return (small_mnist_dataset_table(npz)
            + f'[workloads.{workload}]\nextends = "{extends}"\ndataset = "{DATASET}"\n')
