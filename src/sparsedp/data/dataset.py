"""The :class:`ImageDataset` type: what loading a data set (built-in or registered) gives."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ImageDataset"]


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled image data set as uint8 (N, C, H, W) arrays (often read-only memmaps)."""

    name: str
    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    classes: tuple[str, ...]
    source: str
    lossy: bool
    label: str

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)
