"""Reader for the IDX format used by MNIST and Fashion-MNIST (raw or gzip-compressed).

An IDX file starts with a 4-byte magic number: two zero bytes, a type code (0x08 for
unsigned bytes) and the number of dimensions; then one big-endian uint32 per dimension,
then the data. Images are ``0x00000803`` (count, rows, cols), labels ``0x00000801`` (count).
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = [
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "is_gzip",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_idx_pair",
]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_UINT8_TYPE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | Path) -> bool:
    """True when the file starts with the gzip signature (whatever its name)."""
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _read_bytes(path: Path) -> bytes:
    try:
        if is_gzip(path):
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found; check the data directory") from exc
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(
            f"{path}: corrupt or truncated gzip stream ({exc}); delete it and download it again"
        ) from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from exc


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file of unsigned bytes into a uint8 array shaped as its header says.

    Raises DataError (naming the file) on a wrong magic number, an unsupported element type,
    or a byte count that does not match the header (truncated or padded file).
    """
    path = Path(path)
    raw = _read_bytes(path)
    fix = "delete it and download it again"
    if len(raw) < 4:
        raise DataError(f"{path}: only {len(raw)} bytes, too short for an IDX header; {fix}")
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{path}: bad magic number 0x{magic:08x}, this is not an IDX file "
            f"(expected 0x{expected_magic or IMAGES_MAGIC:08x}); {fix}"
        )
    if expected_magic is not None and magic != expected_magic:
        raise DataError(
            f"{path}: bad magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"({'images' if expected_magic == IMAGES_MAGIC else 'labels'}); "
            f"is the file swapped with another one? {fix}"
        )
    if raw[2] != _UINT8_TYPE:
        raise DataError(
            f"{path}: IDX element type 0x{raw[2]:02x} is not supported (only unsigned bytes, "
            f"0x08); {fix}"
        )
    ndim = raw[3]
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares zero dimensions; {fix}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes); {fix}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(dims)  # Python ints: a huge header cannot overflow
    actual = len(raw) - header_len
    if actual < expected:
        raise DataError(
            f"{path}: the header's sizes do not match the file's length (a truncated file or "
            f"a corrupt header): {_shape(dims)} needs {expected:,} data bytes, found "
            f"{actual:,}; {fix}"
        )
    if actual > expected:
        raise DataError(
            f"{path}: {actual - expected} unexpected trailing bytes after the {dims} data; {fix}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def _shape(dims: tuple[int, ...]) -> str:
    """``60000×28×28`` (as the header gives it)."""
    return "×".join(str(d) for d in dims)


def read_idx_images(path: str | Path, image_shape: tuple[int, int] | None = (28, 28)) -> np.ndarray:
    """Read an IDX image file into uint8 (N, rows, cols); check the image size if given."""
    arr = read_idx(path, IMAGES_MAGIC)
    if arr.ndim != 3:
        raise DataError(f"{path}: image file has {arr.ndim} dimensions, expected 3")
    if image_shape is not None and arr.shape[1:] != tuple(image_shape):
        raise DataError(
            f"{path}: images are {arr.shape[1]}x{arr.shape[2]}, expected "
            f"{image_shape[0]}x{image_shape[1]}; is this the right data set?"
        )
    return arr


def read_idx_labels(path: str | Path, num_classes: int = 10) -> np.ndarray:
    """Read an IDX label file into uint8 (N,); every label must be in 0..num_classes-1."""
    arr = read_idx(path, LABELS_MAGIC)
    if arr.ndim != 1:
        raise DataError(f"{path}: label file has {arr.ndim} dimensions, expected 1")
    if arr.size and int(arr.max()) >= num_classes:
        bad = int(np.argmax(arr >= num_classes))
        raise DataError(
            f"{path}: label {int(arr[bad])} at index {bad} is outside 0..{num_classes - 1}; "
            "the file is corrupt, download it again"
        )
    return arr


def read_idx_pair(
    images_path: str | Path,
    labels_path: str | Path,
    *,
    expected_count: int | None = None,
    image_shape: tuple[int, int] | None = (28, 28),
    num_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files; check that counts agree (and match expected_count)."""
    labels = read_idx_labels(labels_path, num_classes)
    if expected_count is not None and labels.shape[0] != expected_count:
        raise DataError(
            f"{labels_path}: {labels.shape[0]} labels, expected {expected_count}; "
            "the file is incomplete or from another data set"
        )
    images = read_idx_images(images_path, image_shape)
    if expected_count is not None and images.shape[0] != expected_count:
        raise DataError(
            f"{images_path}: {images.shape[0]} images, expected {expected_count}; "
            "the file is incomplete or from another data set"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has "
            f"{labels.shape[0]} labels; the two files do not belong together"
        )
    return images, labels
