"""CIFAR-10 readers: the canonical python pickles and image-folder copies (JPEG/PNG).

Both return uint8 images shaped (N, 3, 32, 32) and int64 labels. :mod:`sparsedp.data.sources`
wraps these readers; :mod:`sparsedp.data.array_cache` caches the decoded arrays.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR_TARBALL_NAME",
    "IMAGE_EXTENSIONS",
    "LOSSY_EXTENSIONS",
    "PICKLE_FOLDER_NAME",
    "TEST_BATCH",
    "TRAIN_BATCHES",
    "CifarArrays",
    "classify_tarball",
    "image_folder_files",
    "is_image_folder_dir",
    "is_pickle_dir",
    "read_cifar_image_folders",
    "read_cifar_pickles",
]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
TRAIN_BATCHES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
PICKLE_FOLDER_NAME = "cifar-10-batches-py"
CIFAR_TARBALL_NAME = "cifar-10-python.tar.gz"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
LOSSY_EXTENSIONS = (".jpg", ".jpeg")
SPLITS = ("train", "test")

CifarArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(train_images, train_labels, test_images, test_labels)."""


# ----------------------------------------------------------------------------- pickles

# Only what a CIFAR batch needs: numpy arrays and dtypes. Anything else is refused, so a
# tampered pickle cannot run code.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :]
        if module.startswith("numpy._core") and not hasattr(np, "_core"):  # numpy < 2
            module = "numpy.core" + module[len("numpy._core") :]
        return super().find_class(module, name)


def _unpickle_batch(fh: IO[bytes], where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        obj = _BatchUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means a bad file
        raise DataError(
            f"{where}: not a readable CIFAR-10 python batch ({exc}); "
            "download cifar-10-python.tar.gz again"
        ) from exc
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a dict in the pickle, found {type(obj).__name__}")
    keys = {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}
    if "data" not in keys or "labels" not in keys:
        hint = " (this looks like CIFAR-100)" if "fine_labels" in keys else ""
        raise DataError(
            f"{where}: wrong pickle keys {sorted(keys)}; a CIFAR-10 batch needs b'data' and "
            f"b'labels'{hint}; use the canonical cifar-10-python.tar.gz"
        )
    data = np.asarray(keys["data"])
    labels = np.asarray(keys["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{where}: b'data' is {data.dtype} {data.shape}, expected uint8 (n, 3072)")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DataError(
            f"{where}: {labels.shape} labels for {data.shape[0]} images; the batch is corrupt"
        )
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise DataError(f"{where}: labels outside 0..9; the batch is corrupt")
    # Rows are 1024 red, 1024 green, 1024 blue values, each plane row-major 32x32.
    return data.reshape(-1, 3, 32, 32), labels


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.ascontiguousarray(np.concatenate([p[0] for p in parts])),
        np.concatenate([p[1] for p in parts]),
    )


def _check_counts(
    where: str, train_n: int, test_n: int, expected_counts: tuple[int, int] | None
) -> None:
    if expected_counts is None:
        return
    exp_train, exp_test = expected_counts
    if (train_n, test_n) != (exp_train, exp_test):
        raise DataError(
            f"{where}: found {train_n} train and {test_n} test images, expected "
            f"{exp_train} and {exp_test}; the copy is incomplete or not CIFAR-10"
        )


def is_pickle_dir(path: Path) -> bool:
    """True when ``path`` holds any of the canonical batch files."""
    return path.is_dir() and any((path / n).is_file() for n in (*TRAIN_BATCHES, TEST_BATCH))


def read_cifar_pickles(
    source: str | Path, *, expected_counts: tuple[int, int] | None = None
) -> CifarArrays:
    """Read CIFAR-10 from a ``cifar-10-batches-py`` directory or ``cifar-10-python.tar.gz``.

    Returns (train_images, train_labels, test_images, test_labels); images uint8 (N,3,32,32).
    """
    source = Path(source)
    names = (*TRAIN_BATCHES, TEST_BATCH)
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if source.is_dir():
        missing = [n for n in names if not (source / n).is_file()]
        if missing:
            raise DataError(
                f"{source}: missing CIFAR-10 batch files {missing}; the folder must hold "
                f"{', '.join(names)} (extract cifar-10-python.tar.gz completely)"
            )
        for n in names:
            with open(source / n, "rb") as fh:
                found[n] = _unpickle_batch(fh, str(source / n))
    else:
        try:
            with tarfile.open(source, "r:*") as tf:
                for member in tf:
                    base = PurePosixPath(member.name).name
                    if member.isfile() and base in names and base not in found:
                        fh = tf.extractfile(member)
                        assert fh is not None
                        found[base] = _unpickle_batch(fh, f"{source}:{member.name}")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(
                f"{source}: cannot read the tarball ({exc}); delete it and download it again"
            ) from exc
        missing = [n for n in names if n not in found]
        if missing:
            raise DataError(
                f"{source}: tarball lacks CIFAR-10 batch files {missing}; "
                "use the canonical cifar-10-python.tar.gz"
            )
    train_x, train_y = _concat([found[n] for n in TRAIN_BATCHES])
    test_x, test_y = found[TEST_BATCH]
    _check_counts(str(source), len(train_y), len(test_y), expected_counts)
    return train_x, train_y, np.ascontiguousarray(test_x), test_y


# ----------------------------------------------------------------------- image folders


def _split_class(rel: PurePosixPath) -> tuple[str, str] | None:
    """(split, class) for a path ending in ``train|test/<class>/<file>``; else None."""
    parts = rel.parts
    if len(parts) < 3 or parts[-3] not in SPLITS:
        return None
    name = parts[-1]
    if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
        return None
    return parts[-3], parts[-2]


def is_image_folder_dir(path: Path) -> bool:
    """True when ``path`` has ``train/`` or ``test/`` subfolders with class folders inside."""
    return path.is_dir() and any(
        (path / s).is_dir() and any((path / s / c).is_dir() for c in CIFAR10_CLASSES)
        for s in SPLITS
    )


def classify_tarball(path: Path, max_members: int = 200) -> str | None:
    """Guess what a tarball holds from its first members: "pickles", "images" or None."""
    try:
        with tarfile.open(path, "r:*") as tf:
            for i, member in enumerate(tf):
                if i >= max_members:
                    break
                pure = PurePosixPath(member.name)
                if pure.name in (*TRAIN_BATCHES, TEST_BATCH):
                    return "pickles"
                if member.isfile() and _split_class(pure) is not None:
                    return "images"
    except (tarfile.TarError, OSError, EOFError):
        return None
    return None


def image_folder_files(root: Path) -> list[Path]:
    """Every image file under ``root/{train,test}/<class>/`` (for fingerprinting)."""
    out: list[Path] = []
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        for cls_dir in sorted(split_dir.iterdir()):
            if cls_dir.is_dir():
                out.extend(
                    p
                    for p in sorted(cls_dir.iterdir())
                    if p.is_file() and _split_class(p.relative_to(root)) is not None
                )
    return out


def _iter_dir(root: Path) -> Iterator[tuple[str, str, str, bytes]]:
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            raise DataError(
                f"{root}: missing the '{split}/' folder; an image-folder copy of CIFAR-10 needs "
                f"train/<class>/ and test/<class>/ with classes {', '.join(CIFAR10_CLASSES)}"
            )
        for cls_dir in split_dir.iterdir():
            if not cls_dir.is_dir():
                continue
            for f in cls_dir.iterdir():
                if f.is_file() and _split_class(f.relative_to(root)) is not None:
                    yield split, cls_dir.name, str(f), f.read_bytes()


def _iter_tar(path: Path) -> Iterator[tuple[str, str, str, bytes]]:
    try:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                if not member.isfile():
                    continue
                sc = _split_class(PurePosixPath(member.name))
                if sc is None:
                    continue
                fh = tf.extractfile(member)
                assert fh is not None
                yield sc[0], sc[1], f"{path}:{member.name}", fh.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(
            f"{path}: cannot read the tarball ({exc}); it may be truncated, get a fresh copy"
        ) from exc


def _decode(blob: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(blob)) as im:
            if im.size != (32, 32):
                raise DataError(
                    f"{where}: image is {im.size[0]}x{im.size[1]}, CIFAR-10 images must be "
                    "32x32; replace the file or use the canonical data set"
                )
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{where}: cannot decode the image ({exc}); replace the file") from exc
    return arr.transpose(2, 0, 1)


def _assemble(
    source: Path, items: Iterable[tuple[str, str, str, bytes]]
) -> tuple[CifarArrays, bool]:
    groups: dict[tuple[str, str], list[tuple[str, str, bytes]]] = {}
    for split, cls, where, blob in items:
        if cls not in CIFAR10_CLASSES:
            raise DataError(
                f"{where}: unknown class folder '{cls}'; class folders must be named "
                f"{', '.join(CIFAR10_CLASSES)}"
            )
        groups.setdefault((split, cls), []).append((PurePosixPath(where).name, where, blob))
    lossy = False
    result: list[np.ndarray] = []
    for split in SPLITS:
        missing = [c for c in CIFAR10_CLASSES if (split, c) not in groups]
        if missing:
            raise DataError(
                f"{source}: missing class folder(s) {', '.join(f'{split}/{c}/' for c in missing)}"
                f"; every split needs one folder per class: {', '.join(CIFAR10_CLASSES)}"
            )
        files = [
            (label, where, blob)
            for label, cls in enumerate(CIFAR10_CLASSES)
            for _, where, blob in sorted(groups[(split, cls)], key=lambda t: t[0])
        ]
        images = np.empty((len(files), 3, 32, 32), dtype=np.uint8)
        labels = np.empty(len(files), dtype=np.int64)
        for i, (label, where, blob) in enumerate(files):
            images[i] = _decode(blob, where)
            labels[i] = label
            lossy = lossy or where.lower().endswith(LOSSY_EXTENSIONS)
        result += [images, labels]
    return (result[0], result[1], result[2], result[3]), lossy


def read_cifar_image_folders(
    source: str | Path, *, expected_counts: tuple[int, int] | None = None
) -> tuple[CifarArrays, bool]:
    """Decode a CIFAR-10 image-folder copy (directory or tarball) with Pillow.

    The layout is ``train/<class>/*`` and ``test/<class>/*`` (optionally below one top
    folder); classes get labels in the standard order, files are sorted by name within a
    class. Returns ((train_images, train_labels, test_images, test_labels), lossy) where
    lossy is True when any image is a JPEG.
    """
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: not found")
    items = _iter_dir(source) if source.is_dir() else _iter_tar(source)
    arrays, lossy = _assemble(source, items)
    _check_counts(str(source), len(arrays[1]), len(arrays[3]), expected_counts)
    return arrays, lossy
