"""Validation split and normalisation exactly as the authors' code makes them, and the
training split held on the training device (:class:`DeviceSplit`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sparsedp.data.dataset import ImageDataset

VALIDATION_FRACTION = 0.1
OFFICIAL_TRAIN_SIZES = {"mnist": 60_000, "fashion-mnist": 60_000, "cifar10": 50_000}


def train_split_size(dataset: str, fraction: float = VALIDATION_FRACTION) -> int:
    """Examples left for training after the validation split (MNIST 54,000; CIFAR-10 45,000)."""
    total = OFFICIAL_TRAIN_SIZES[dataset]
    return total - int(total * fraction)


def split_train_validation(
    n_train: int, fraction: float = VALIDATION_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of the official training set.

    A list ``0..n-1`` is shuffled by ``numpy.random.RandomState(0).shuffle``; the first
    ``int(n * fraction)`` entries become validation, the rest training.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    order = list(range(n_train))
    np.random.RandomState(0).shuffle(order)
    n_val = int(n_train * fraction)
    order_array = np.asarray(order, dtype=np.int64)
    return order_array[n_val:], order_array[:n_val]


def channel_statistics(images: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``images / 255`` (uint8, N×C×H×W), per channel or one global value."""
    channels = images.shape[1]
    sums = np.zeros(channels, dtype=np.float64)
    squares = np.zeros(channels, dtype=np.float64)
    chunk = 5000
    for start in range(0, images.shape[0], chunk):
        block = np.asarray(images[start : start + chunk], dtype=np.float64) / 255.0
        sums += block.sum(axis=(0, 2, 3))
        squares += (block * block).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    if not per_channel:
        count *= channels
        sums = np.full(channels, sums.sum())
        squares = np.full(channels, squares.sum())
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    return mean, std


@dataclass
class SplitData:
    """A data set split into training/validation, normalised on the fly.

    Images stay uint8 (possibly memory-mapped and shared between processes); each batch is
    gathered and standardised as it is needed. Statistics come from the official training set
    (the authors normalised before splitting off validation): one global mean/std for
    grey-scale sets, per channel for CIFAR-10.
    """

    dataset: ImageDataset
    train_index: np.ndarray
    val_index: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    _val_cache: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)
    _val_layouts: dict[tuple[str, bool], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False
    )
    _train_on: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def num_train(self) -> int:
        return int(self.train_index.shape[0])

    @property
    def num_val(self) -> int:
        return int(self.val_index.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.dataset.train_images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.dataset.classes)

    def normalize(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 N×C×H×W → float32 ``(x / 255 - mean) / std``; float images as they are."""
        if self.dataset.train_images.dtype != np.uint8:
            return torch.tensor(np.asarray(images), dtype=torch.float32)
        x = torch.as_tensor(np.asarray(images)).to(torch.float32).div_(255.0)
        mean = torch.as_tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return x.sub_(mean).div_(std)

    def train_batch(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The training examples at ``positions`` (indices into the training split)."""
        rows = self.train_index[positions]
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        images = np.empty((rows.shape[0], *self.image_shape),
                          dtype=self.dataset.train_images.dtype)
        images[order] = self.dataset.train_images[sorted_rows]
        labels = torch.from_numpy(np.asarray(self.dataset.train_labels[rows], dtype=np.int64))
        return self.normalize(images), labels

    def first(self, n: int | None) -> SplitData:
        """The same data with only the first ``n`` examples of the training split (``None``:
        all of it). The training split is in the authors' shuffled order, so its first ``n``
        are a uniform random subset, and each smaller subset lies inside every larger one.
        Validation and normalisation are those of the whole set (and shared, not copied)."""
        if n is None or n == self.num_train:
            return self
        if not 1 <= n <= self.num_train:
            raise ValueError(f"train_examples = {n} is outside 1..{self.num_train:,}, the "
                             "size of the training split")
        if self._val_cache is None:
            self.validation()  # computed once here, shared by every subset
        return SplitData(self.dataset, self.train_index[:n], self.val_index, self.mean,
                         self.std, self._val_cache, self._val_layouts)

    def validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole validation split, normalised (computed once, then cached)."""
        if self._val_cache is None:
            rows = np.sort(self.val_index)
            images = self.normalize(self.dataset.train_images[rows])
            labels = torch.from_numpy(np.asarray(self.dataset.train_labels[rows], dtype=np.int64))
            self._val_cache = (images.contiguous(), labels)
        return self._val_cache

    def train_on(self, device: str | torch.device) -> DeviceSplit:
        """The training split held on ``device`` (uint8, normalised per batch there); one
        shared copy per device."""
        key = str(torch.device(device))
        if key not in self._train_on:
            self._train_on[key] = DeviceSplit(self, key)
        return self._train_on[key]

    def validation_on(
        self, device: str | torch.device = "cpu", channels_last: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The validation split on ``device``, channels-last if asked; one shared copy each.

        Trials run side by side in one process (interleaved or one after another) all read
        the same copy instead of making their own.
        """
        key = (str(torch.device(device)), channels_last)
        if key not in self._val_layouts:
            images, labels = self.validation()
            images = images.to(key[0])
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            self._val_layouts[key] = (images, labels.to(key[0]))
        return self._val_layouts[key]


def prepare_splits(dataset: ImageDataset, fraction: float = VALIDATION_FRACTION) -> SplitData:
    """Split off validation as the authors did and compute the normalisation statistics
    (uint8 images only: floating-point images are used as the data set gives them)."""
    train_index, val_index = split_train_validation(dataset.train_images.shape[0], fraction)
    if dataset.train_images.dtype != np.uint8:  # floating-point data are used as given
        channels = dataset.train_images.shape[1]
        return SplitData(dataset, train_index, val_index, np.zeros(channels), np.ones(channels))
    per_channel = dataset.train_images.shape[1] > 1
    mean, std = channel_statistics(dataset.train_images, per_channel)
    return SplitData(dataset, train_index, val_index, mean, std)


# ------------------------------------------------------------- the training split on a device


class DeviceSplit:
    """The training split of ``data`` on ``device``: uint8 images, int64 labels."""

    def __init__(self, data: SplitData, device: str | torch.device) -> None:
        self.device = torch.device(device)
        rows = data.train_index
        order = np.argsort(rows, kind="stable")  # read a memory-mapped array in file order
        images = np.empty((rows.shape[0], *data.image_shape),
                          dtype=data.dataset.train_images.dtype)
        images[order] = data.dataset.train_images[rows[order]]
        self.images = torch.from_numpy(images).to(self.device)
        self.labels = torch.from_numpy(
            np.asarray(data.dataset.train_labels[rows], dtype=np.int64)).to(self.device)
        self.scaled = images.dtype == np.uint8  # float data sets are used as given
        if self.scaled:
            channels = images.shape[1]
            values = np.repeat(np.arange(256, dtype=np.uint8)[:, None], channels, axis=1)
            table = data.normalize(values[:, :, None, None])[:, :, 0, 0]  # (256, C)
            self.table = table.t().contiguous().reshape(-1).to(self.device)  # c·256 + v
            self.offsets = (torch.arange(channels, device=self.device) * 256).view(1, -1, 1, 1)

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images and labels at ``positions`` (any shape; flattened, in order)."""
        flat = positions.reshape(-1)
        images = self.images.index_select(0, flat)
        if self.scaled:
            x = self.table[images.to(torch.int64) + self.offsets]
        else:
            x = images.to(torch.float32)
        return x, self.labels.index_select(0, flat)
