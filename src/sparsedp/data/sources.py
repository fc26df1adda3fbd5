"""Where the data sets come from: local folders, the cache, or a verified download.

:func:`load_dataset` is the public entry point. It searches, in order: an explicit
``data_dir``; ``$SPARSEDP_DATA_DIR``; the clone's own ``data/`` folder; system-wide copies
(Debian's dataset-fashion-mnist); the cache; and finally downloads the canonical files
into the cache, verifying their checksums. Decoded arrays are stored once as ``.npy``
files under ``<cache>/<name>/arrays/<source key>/`` and memory-mapped on later calls, so
several worker processes share one copy through the page cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .cifar import (
    CIFAR10_CLASSES,
    CIFAR_TARBALL_NAME,
    PICKLE_FOLDER_NAME,
    TEST_BATCH,
    TRAIN_BATCHES,
    classify_tarball,
    image_folder_files,
    is_image_folder_dir,
    is_pickle_dir,
    read_cifar_image_folders,
    read_cifar_pickles,
)
from .download import download_file, verify_file
from .errors import DataError
from .idx import read_idx_pair

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

DATASET_NAMES: tuple[str, ...] = ("mnist", "fashion-mnist", "cifar10")

_ALIASES = {
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

_IDX_ROLES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_ARRAY_NAMES = ("train_images", "train_labels", "test_images", "test_labels")

# Canonical downloads. ``mirrors`` passed to load_dataset overrides entries of this table.
CANONICAL_SOURCES: dict[str, dict[str, Any]] = {
    "mnist": {
        "base_url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "files": {
            "train-images-idx3-ubyte.gz": ("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            "train-labels-idx1-ubyte.gz": ("md5", "d53e105ee54ea40749a09fcbcd1e9432"),
            "t10k-images-idx3-ubyte.gz": ("md5", "9fb629c4189551a2d022fa330f9573f3"),
            "t10k-labels-idx1-ubyte.gz": ("md5", "ec29112dd5afa0611ce80d1b7f02629c"),
        },
    },
    "fashion-mnist": {
        "base_url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "files": {
            "train-images-idx3-ubyte.gz": ("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "train-labels-idx1-ubyte.gz": ("md5", "25c81989df183df01b3e8a0aad5dffbe"),
            "t10k-images-idx3-ubyte.gz": ("md5", "bef4ecab320f06d8554ea6380940ec79"),
            "t10k-labels-idx1-ubyte.gz": ("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
        },
    },
    "cifar10": {
        "base_url": "https://www.cs.toronto.edu/~kriz/",
        "files": {CIFAR_TARBALL_NAME: ("md5", "c58f30108f718f92721af3b95e74349a")},
    },
}

# System-wide copies checked after the user and repo folders (Debian: dataset-fashion-mnist).
SYSTEM_DATA_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}

# Subfolders of a data root that may hold each data set.
_SUBFOLDERS: dict[str, tuple[str, ...]] = {
    "mnist": ("mnist", "MNIST"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST"),
    "cifar10": ("cifar10", PICKLE_FOLDER_NAME, "cifar10-jpeg"),
}

_LABELS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_LOSSY_LABEL = "CIFAR-10 (lossy JPEG copy, not bit-identical)"
_CACHE_VERSION = 1
_TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar")


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


def _canonical_name(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASET_NAMES:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    return key


# ---------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class _Found:
    kind: str  # "idx" | "cifar-pickles" | "cifar-images"
    path: Path  # folder or tarball
    files: tuple[Path, ...]  # what the data is read from (fingerprinted for the cache key)
    description: str


def _probe_idx(folder: Path, allow_partial: bool) -> _Found | None:
    found: dict[str, Path] = {}
    for role, base in _IDX_ROLES.items():
        for candidate in (folder / f"{base}.gz", folder / base):
            if candidate.is_file():
                found[role] = candidate
                break
    if not found:
        return None
    if len(found) < len(_IDX_ROLES):
        if allow_partial:
            return None
        missing = [f"{b}[.gz]" for r, b in _IDX_ROLES.items() if r not in found]
        raise DataError(
            f"{folder}: incomplete IDX data set, missing {', '.join(missing)}; "
            "put all four files there (gzip-compressed or not)"
        )
    files = tuple(found[r] for r in _IDX_ROLES)
    gz = [f.suffix == ".gz" for f in files]
    fmt = "IDX, gzip" if all(gz) else "IDX, raw" if not any(gz) else "IDX"
    return _Found("idx", folder, files, f"{folder} ({fmt})")


def _cifar_from_tarball(path: Path) -> _Found | None:
    kind = classify_tarball(path)
    if kind == "pickles":
        return _Found("cifar-pickles", path, (path,), f"{path} (CIFAR-10 python pickles)")
    if kind == "images":
        return _Found("cifar-images", path, (path,), f"{path} (image folders)")
    return None


def _probe_cifar(folder: Path) -> list[_Found]:
    out: list[_Found] = []
    if is_pickle_dir(folder):
        # only the files present (a missing one is reported when reading)
        files = tuple(p for n in (*TRAIN_BATCHES, TEST_BATCH) if (p := folder / n).is_file())
        out.append(_Found("cifar-pickles", folder, files, f"{folder} (CIFAR-10 python pickles)"))
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot list the folder ({exc})") from exc
    tarballs = sorted(
        p for p in entries if p.is_file() and p.name.lower().endswith(_TARBALL_SUFFIXES)
    )
    # the canonical tarball first, then any other (e.g. an image-folder copy)
    tarballs.sort(key=lambda p: p.name != CIFAR_TARBALL_NAME)
    for tb in tarballs:
        hit = _cifar_from_tarball(tb)
        if hit is not None:
            out.append(hit)
    if is_image_folder_dir(folder):
        files = tuple(image_folder_files(folder))
        out.append(_Found("cifar-images", folder, files, f"{folder} (image folders)"))
    # lossless sources before lossy ones
    out.sort(key=lambda f: f.kind != "cifar-pickles")
    return out


def _search_root(
    root: Path, name: str, looked: list[str], *, allow_partial: bool = False
) -> _Found | None:
    """The best source for ``name`` in ``root`` or one of its data-set subfolders."""
    if root.is_file():
        looked.append(str(root))
        return _cifar_from_tarball(root) if name == "cifar10" else None
    candidates = [root, *(root / s for s in _SUBFOLDERS[name])]
    hits: list[_Found] = []
    for folder in candidates:
        if not folder.is_dir():
            continue
        looked.append(str(folder))
        if name == "cifar10":
            hits.extend(_probe_cifar(folder))
        else:
            hit = _probe_idx(folder, allow_partial)
            if hit is not None:
                return hit
    hits.sort(key=lambda f: f.kind != "cifar-pickles")  # stable: keeps folder order otherwise
    return hits[0] if hits else None


def _what_is_wanted(name: str) -> str:
    if name == "cifar10":
        return (
            f"{', '.join(TRAIN_BATCHES)}, {TEST_BATCH} (a {PICKLE_FOLDER_NAME} folder), "
            f"{CIFAR_TARBALL_NAME}, or image folders train/<class>/, test/<class>/ "
            "(as a folder or a .tar.gz)"
        )
    return ", ".join(f"{b}[.gz]" for b in _IDX_ROLES.values())


# ------------------------------------------------------------------------ array cache


def _fingerprint(found: _Found, name: str) -> str:
    items = []
    for f in found.files:
        st = f.stat()
        items.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps([_CACHE_VERSION, name, found.kind, items]).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _expected_shapes(name: str) -> dict[str, tuple[int, ...]]:
    n_train, n_test = EXPECTED_COUNTS[name]
    chw = (3, 32, 32) if name == "cifar10" else (1, 28, 28)
    return {
        "train_images": (n_train, *chw),
        "train_labels": (n_train,),
        "test_images": (n_test, *chw),
        "test_labels": (n_test,),
    }


def _load_cached(folder: Path, name: str) -> tuple[list[np.ndarray], dict[str, Any]] | None:
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        arrays = [np.load(folder / f"{a}.npy", mmap_mode="r") for a in _ARRAY_NAMES]
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable array cache %s: %s", folder, exc)
        return None
    shapes = _expected_shapes(name)
    for a, arr in zip(_ARRAY_NAMES, arrays, strict=True):
        dtype = np.uint8 if a.endswith("images") else np.int64
        if arr.shape != shapes[a] or arr.dtype != dtype:
            log.warning("ignoring array cache %s: %s has shape %s", folder, a, arr.shape)
            return None
    return arrays, meta


def _save_cached(folder: Path, arrays: list[np.ndarray], meta: dict[str, Any]) -> bool:
    """Write the arrays into a temporary folder, then rename it into place atomically."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    except OSError as exc:
        log.warning("cannot write the array cache in %s (%s); using memory", folder.parent, exc)
        return False
    try:
        for a, arr in zip(_ARRAY_NAMES, arrays, strict=True):
            with open(tmp / f"{a}.npy", "wb") as fh:
                np.save(fh, np.ascontiguousarray(arr))
                fh.flush()
                os.fsync(fh.fileno())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "meta.json").is_file():  # not a concurrent writer winning the race
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("cannot write the array cache %s (%s); using memory", folder, exc)
        return False
    _prune_stale(folder, meta.get("source_path"))
    return True


def _prune_stale(keep: Path, source_path: str | None) -> None:
    """Drop cache entries of the same source that were made from older versions of it."""
    if source_path is None:
        return
    for other in keep.parent.iterdir():
        if other == keep or other.name.startswith(".") or not other.is_dir():
            continue
        try:
            meta = json.loads((other / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        if meta.get("source_path") == source_path:
            shutil.rmtree(other, ignore_errors=True)


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


def _decode(found: _Found, name: str) -> tuple[list[np.ndarray], bool]:
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


def _materialise(found: _Found, name: str, cache_dir: Path) -> ImageDataset:
    key = _fingerprint(found, name)
    folder = cache_dir / name / "arrays" / key
    cached = _load_cached(folder, name)
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
            "version": _CACHE_VERSION,
        }
        if _save_cached(folder, arrays, meta):
            reloaded = _load_cached(folder, name)
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
        label=_LOSSY_LABEL if lossy else _LABELS[name],
    )


# ---------------------------------------------------------------------------- download


def _download_table(name: str, mirrors: dict | None) -> dict[str, Any]:
    entry = dict(CANONICAL_SOURCES[name])
    if mirrors and name in mirrors:
        entry.update(mirrors[name])
    base = str(entry["base_url"])
    entry["base_url"] = base if base.endswith("/") else base + "/"
    return entry


def _extract_pickles(tarball: Path, target: Path) -> None:
    """Extract the batch files of a verified cifar-10-python.tar.gz into ``target``."""
    if is_pickle_dir(target):
        return
    wanted = {*TRAIN_BATCHES, TEST_BATCH, "batches.meta"}
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        with tarfile.open(tarball, "r:*") as tf:
            for member in tf:
                base = PurePosixPath(member.name).name
                if member.isfile() and base in wanted:
                    fh = tf.extractfile(member)
                    assert fh is not None
                    with open(tmp / base, "wb") as out:
                        shutil.copyfileobj(fh, out)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_pickle_dir(target):
                raise
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{tarball}: cannot extract ({exc}); delete it and run again") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(name: str, target: Path, mirrors: dict | None) -> None:
    table = _download_table(name, mirrors)
    for filename, checksum in table["files"].items():
        dest = target / filename
        if verify_file(dest, tuple(checksum)):
            continue
        download_file(table["base_url"] + filename, dest, tuple(checksum), hint_dir=target)
        if name == "cifar10" and classify_tarball(dest) == "pickles":
            _extract_pickles(dest, target / PICKLE_FOLDER_NAME)


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
    from .custom import dataset_spec, load_registered  # custom imports this module

    custom = dataset_spec(name)
    if custom is not None:  # registered by a plugin or an experiment file
        return load_registered(custom)
    name = _canonical_name(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    looked: list[str] = []

    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.exists():
            raise DataError(f"data directory {root} does not exist; check --data-dir")
        found = _search_root(root, name, looked)
        if found is None:
            raise DataError(
                f"no {_LABELS[name]} data found in {root}: looked in {', '.join(looked)} "
                f"for {_what_is_wanted(name)}; fix --data-dir or leave it out to use the "
                "cache and download"
            )
        return _materialise(found, name, cache)

    env = os.environ.get("SPARSEDP_DATA_DIR")
    roots: list[Path] = []
    if env:
        env_root = Path(env).expanduser()
        if not env_root.exists():
            raise DataError(f"SPARSEDP_DATA_DIR={env} does not exist; fix or unset the variable")
        roots.append(env_root)
    repo = repo_data_dir()
    if repo is not None:
        roots.append(repo)
    for root in roots:
        found = _search_root(root, name, looked)
        if found is not None:
            return _materialise(found, name, cache)
    for folder in SYSTEM_DATA_DIRS.get(name, ()):
        if folder.is_dir():
            looked.append(str(folder))
            found = _probe_idx(folder, allow_partial=True)
            if found is not None:
                return _materialise(found, name, cache)

    target = cache / name
    if target.is_dir():
        found = _search_root(target, name, looked, allow_partial=True)
        if found is not None:
            return _materialise(found, name, cache)
    else:
        looked.append(str(target))

    if not download:
        raise DataError(
            f"no {_LABELS[name]} data found (looked in {', '.join(looked)}) and downloading "
            f"is off. Put {_what_is_wanted(name)} in {target}, pass --data-dir, set "
            "SPARSEDP_DATA_DIR, or allow the download"
        )
    _download(name, target, mirrors)
    found = _search_root(target, name, [])
    if found is None:  # pragma: no cover - the download step checks what it fetched
        raise DataError(f"{target}: downloaded files are not a usable {_LABELS[name]} copy")
    return _materialise(found, name, cache)
