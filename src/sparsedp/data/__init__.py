"""Data: obtaining data sets, the validation split, normalisation and batch order."""

from sparsedp.data.batches import BatchStream
from sparsedp.data.catalogue import DATASET_NAMES
from sparsedp.data.dataset import ImageDataset
from sparsedp.data.errors import DataError
from sparsedp.data.sources import default_cache_dir, load_dataset
from sparsedp.data.splits import (
    SplitData,
    channel_statistics,
    prepare_splits,
    split_train_validation,
    train_split_size,
)

__all__ = [
    "DATASET_NAMES",
    "BatchStream",
    "DataError",
    "ImageDataset",
    "SplitData",
    "channel_statistics",
    "default_cache_dir",
    "load_dataset",
    "prepare_splits",
    "split_train_validation",
    "train_split_size",
]
