"""The built-in data sets: names and aliases, classes, display labels, expected sizes, and the
file and folder names their copies are found under.

This is the catalogue :func:`~sparsedp.data.sources.load_dataset` searches with; it imports no
other sparsedp module but the CIFAR-10 reader's names (:mod:`sparsedp.data.cifar`) and the
error type.
"""

from __future__ import annotations

from .cifar import PICKLE_FOLDER_NAME
from .errors import DataError

__all__ = [
    "ALIASES",
    "DATASET_NAMES",
    "EXPECTED_COUNTS",
    "FASHION_CLASSES",
    "IDX_ROLES",
    "LABELS",
    "LOSSY_LABEL",
    "MNIST_CLASSES",
    "SUBFOLDERS",
    "canonical_name",
]

DATASET_NAMES: tuple[str, ...] = ("mnist", "fashion-mnist", "cifar10")

ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}

MNIST_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))
FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# (train, test) sizes; a source with other counts is rejected. Tests may patch this table.
EXPECTED_COUNTS: dict[str, tuple[int, int]] = {
    "mnist": (60_000, 10_000),
    "fashion-mnist": (60_000, 10_000),
    "cifar10": (50_000, 10_000),
}

# The four IDX files of MNIST and Fashion-MNIST, by role (each may also end in .gz).
IDX_ROLES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Subfolders of a data root that may hold each data set.
SUBFOLDERS: dict[str, tuple[str, ...]] = {
    "mnist": ("mnist", "MNIST"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST"),
    "cifar10": ("cifar10", PICKLE_FOLDER_NAME, "cifar10-jpeg"),
}

LABELS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
LOSSY_LABEL = "CIFAR-10 (lossy JPEG copy, not bit-identical)"


def canonical_name(name: str) -> str:
    """The built-in data set ``name`` (any case, or an alias) names; DataError otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in DATASET_NAMES:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    return key
