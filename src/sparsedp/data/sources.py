"""Where the data sets come from: local folders, the cache, or a verified download.

:func:`load_dataset` is the public entry point. It searches, in order: an explicit
``data_dir``; ``$SPARSEDP_DATA_DIR``; the clone's own ``data/`` folder; system-wide copies
(Debian's dataset-fashion-mnist); the cache; and finally downloads the canonical files
into the cache, verifying their checksums. Decoded arrays are stored once as ``.npy``
files under ``<cache>/<name>/arrays/<source key>/`` and memory-mapped on later calls, so
several worker processes share one copy through the page cache.

This module holds the search order and the decoding; the parts it uses are
:mod:`~sparsedp.data.catalogue` (the built-in data sets' names, classes and sizes),
:mod:`~sparsedp.data.locate` (finding a copy in a folder), :mod:`~sparsedp.data.array_cache`
(the ``.npy`` cache), :mod:`~sparsedp.data.canonical_downloads` (the download step),
:mod:`~sparsedp.data.dataset` (:class:`ImageDataset`) and :mod:`~sparsedp.data.custom`
(registered data sets, tried first).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from .array_cache import ARRAY_NAMES as _ARRAY_NAMES  # noqa: F401  (tests read it here)
from .array_cache import CACHE_VERSION, fingerprint, load_cached, save_cached
from .canonical_downloads import CANONICAL_SOURCES, download_canonical
from .catalogue import (
    DATASET_NAMES,
    EXPECTED_COUNTS,
    FASHION_CLASSES,
    LABELS,
    LOSSY_LABEL,
    MNIST_CLASSES,
    canonical_name,
)
from .cifar import CIFAR10_CLASSES, read_cifar_image_folders, read_cifar_pickles
from .custom import dataset_spec, load_registered
from .dataset import ImageDataset
from .errors import DataError
from .idx import read_idx_pair
from .locate import Found, probe_idx, search_root, what_is_wanted

__all__ = [
    "CANONICAL_SOURCES",
    "DATASET_NAMES",
    "EXPECTED_COUNTS",
    "SYSTEM_DATA_DIRS",
    "ImageDataset",
    "default_cache_dir",
    "load_dataset",
    "repo_data_dir",
]

log = logging.getLogger(__name__)

# System-wide copies checked after the user and repo folders (Debian: dataset-fashion-mnist).
SYSTEM_DATA_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}


# ------------------------------------------------------------------------------ paths


def default_cache_dir() -> Path:
    """$SPARSEDP_CACHE_DIR, else $XDG_CACHE_HOME/sparsedp, else ~/.cache/sparsedp."""
    env = os.environ.get("SPARSEDP_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "sparsedp"
    return Path.home() / ".cache" / "sparsedp"


def repo_data_dir() -> Path | None:
    """The clone's own ``data/`` folder (next to pyproject.toml), or None when absent."""
    root = Path(__file__).resolve().parents[3]
    data = root / "data"
    if data.is_dir() and (root / "pyproject.toml").is_file():
        return data
    return None


def _check_root(root: Path, what: str, fix: str) -> None:
    """DataError unless ``root`` exists: a missing path, or a loop of symbolic links."""
    try:
        root.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{what} is a loop of symbolic links ({exc.strerror}); {fix} "
                            "(point it at a real folder)") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise DataError(f"{what} does not exist; {fix}") from None
        raise DataError(f"{what} cannot be read ({exc.strerror}); {fix}") from None


# ---------------------------------------------------------------------------- decoding


def _check_not_swapped(name: str, labels: np.ndarray, where: Path) -> None:
    """MNIST and Fashion-MNIST share file names; tell them apart by the class balance."""
    if labels.shape[0] != 60_000:
        return
    balanced = bool(np.all(np.bincount(labels, minlength=10) == 6_000))
    if name == "fashion-mnist" and not balanced:
        raise DataError(
            f"{where}: these labels are not Fashion-MNIST's (6,000 per class); the folder "
            "seems to hold MNIST. Point the fashion-mnist search at the Fashion-MNIST files"
        )
    if name == "mnist" and balanced:
        raise DataError(
            f"{where}: these labels have 6,000 per class, like Fashion-MNIST, not MNIST; "
            "point the mnist search at the MNIST files"
        )


def _decode(found: Found, name: str) -> tuple[list[np.ndarray], bool]:
    n_train, n_test = EXPECTED_COUNTS[name]
    if found.kind == "idx":
        tr_i, tr_l, te_i, te_l = found.files
        train_x, train_y = read_idx_pair(tr_i, tr_l, expected_count=n_train)
        test_x, test_y = read_idx_pair(te_i, te_l, expected_count=n_test)
        _check_not_swapped(name, train_y, tr_l)
        arrays = [
            train_x.reshape(-1, 1, *train_x.shape[1:]),
            train_y.astype(np.int64),
            test_x.reshape(-1, 1, *test_x.shape[1:]),
            test_y.astype(np.int64),
        ]
        return arrays, False
    if found.kind == "cifar-pickles":
        return list(read_cifar_pickles(found.path, expected_counts=(n_train, n_test))), False
    arrays, lossy = read_cifar_image_folders(found.path, expected_counts=(n_train, n_test))
    return list(arrays), lossy


def _materialise(found: Found, name: str, cache_dir: Path) -> ImageDataset:
    key = fingerprint(found, name)
    folder = cache_dir / name / "arrays" / key
    cached = load_cached(folder, name)
    if cached is None and folder.exists():  # unusable entry (e.g. damaged): rebuild it
        shutil.rmtree(folder, ignore_errors=True)
    if cached is not None:
        arrays, meta = cached
        lossy = bool(meta.get("lossy", False))
        log.debug("using cached arrays %s for %s", folder, found.description)
    else:
        log.info("decoding %s", found.description)
        arrays, lossy = _decode(found, name)
        meta = {
            "name": name,
            "source": found.description,
            "source_path": str(found.path.resolve()),
            "lossy": lossy,
            "version": CACHE_VERSION,
        }
        if save_cached(folder, arrays, meta):
            reloaded = load_cached(folder, name)
            if reloaded is not None:
                arrays = reloaded[0]
    classes = {"mnist": MNIST_CLASSES, "fashion-mnist": FASHION_CLASSES}.get(name, CIFAR10_CLASSES)
    return ImageDataset(
        name=name,
        train_images=arrays[0],
        train_labels=arrays[1],
        test_images=arrays[2],
        test_labels=arrays[3],
        classes=classes,
        source=found.description,
        lossy=lossy,
        label=LOSSY_LABEL if lossy else LABELS[name],
    )


# ------------------------------------------------------------------------------ public


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    download: bool = True,
    mirrors: dict | None = None,
) -> ImageDataset:
    """Load ``name`` ("mnist", "fashion-mnist", "cifar10", or a registered data set, see
    :mod:`sparsedp.data.custom`) as (N, C, H, W) arrays.

    Search order: ``data_dir`` (its files directly, or a subfolder named after the data
    set; nothing usable there is an error); ``$SPARSEDP_DATA_DIR`` (same rules, but falls
    through when it lacks this data set); the clone's ``data/`` folder; system copies
    (Fashion-MNIST under /usr/share/datasets); ``<cache>/<name>/``; and last, when
    ``download`` is true, the canonical files (or ``mirrors[name]``, a dict with
    ``base_url`` and ``files`` = {filename: (algorithm, hexdigest)}) downloaded into
    ``<cache>/<name>/`` with checksum verification. Raises DataError when nothing works.
    """
    custom = dataset_spec(name)
    if custom is not None:  # registered by a plugin or an experiment file
        return load_registered(custom)
    name = canonical_name(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    looked: list[str] = []

    if data_dir is not None:
        root = Path(data_dir).expanduser()
        _check_root(root, f"data directory {root}", "check --data-dir")
        found = search_root(root, name, looked)
        if found is None:
            raise DataError(
                f"no {LABELS[name]} data found in {root}: looked in {', '.join(looked)} "
                f"for {what_is_wanted(name)}; fix --data-dir or leave it out to use the "
                "cache and download"
            )
        return _materialise(found, name, cache)

    env = os.environ.get("SPARSEDP_DATA_DIR")
    roots: list[Path] = []
    if env:
        env_root = Path(env).expanduser()
        _check_root(env_root, f"SPARSEDP_DATA_DIR={env}", "fix or unset the variable")
        roots.append(env_root)
    repo = repo_data_dir()
    if repo is not None:
        roots.append(repo)
    for root in roots:
        found = search_root(root, name, looked)
        if found is not None:
            return _materialise(found, name, cache)
    for folder in SYSTEM_DATA_DIRS.get(name, ()):
        if folder.is_dir():
            looked.append(str(folder))
            found = probe_idx(folder, allow_partial=True)
            if found is not None:
                return _materialise(found, name, cache)

    target = cache / name
    if target.is_dir():
        found = search_root(target, name, looked, allow_partial=True)
        if found is not None:
            return _materialise(found, name, cache)
    else:
        looked.append(str(target))

    if not download:
        raise DataError(
            f"no {LABELS[name]} data found (looked in {', '.join(looked)}) and downloading "
            f"is off. Put {what_is_wanted(name)} in {target}, pass --data-dir, set "
            "SPARSEDP_DATA_DIR, or allow the download"
        )
    download_canonical(name, target, mirrors)
    found = search_root(target, name, [])
    if found is None:  # pragma: no cover - the download step checks what it fetched
        raise DataError(f"{target}: downloaded files are not a usable {LABELS[name]} copy")
    return _materialise(found, name, cache)
