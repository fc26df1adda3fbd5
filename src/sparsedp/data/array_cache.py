"""The decoded-array cache: ``<cache>/<name>/arrays/<source key>/`` holds one ``.npy`` file per
array and a ``meta.json``, written atomically and memory-mapped on later loads.

The key fingerprints the source files (path, size, modification time), so a touched source is
decoded again and the entries made from its older versions are dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .catalogue import EXPECTED_COUNTS
from .locate import Found

__all__ = ["ARRAY_NAMES", "CACHE_VERSION", "fingerprint", "load_cached", "save_cached"]

log = logging.getLogger(__name__)

ARRAY_NAMES = ("train_images", "train_labels", "test_images", "test_labels")
CACHE_VERSION = 1


def fingerprint(found: Found, name: str) -> str:
    """The cache key of ``found`` (a copy of data set ``name``)."""
    items = []
    for f in found.files:
        st = f.stat()
        items.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps([CACHE_VERSION, name, found.kind, items]).encode()
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


def load_cached(folder: Path, name: str) -> tuple[list[np.ndarray], dict[str, Any]] | None:
    """The memory-mapped arrays and meta data in ``folder``, or None when it is missing or
    unusable (unreadable, or arrays of the wrong shape or type)."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        arrays = [np.load(folder / f"{a}.npy", mmap_mode="r") for a in ARRAY_NAMES]
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable array cache %s: %s", folder, exc)
        return None
    shapes = _expected_shapes(name)
    for a, arr in zip(ARRAY_NAMES, arrays, strict=True):
        dtype = np.uint8 if a.endswith("images") else np.int64
        if arr.shape != shapes[a] or arr.dtype != dtype:
            log.warning("ignoring array cache %s: %s has shape %s", folder, a, arr.shape)
            return None
    return arrays, meta


def save_cached(folder: Path, arrays: list[np.ndarray], meta: dict[str, Any]) -> bool:
    """Write the arrays into a temporary folder, then rename it into place atomically."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    except OSError as exc:
        log.warning("cannot write the array cache in %s (%s); using memory", folder.parent, exc)
        return False
    try:
        for a, arr in zip(ARRAY_NAMES, arrays, strict=True):
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
