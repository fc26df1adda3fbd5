"""The built-in data sets' canonical downloads: where they are, their checksums, and fetching
them into the cache (CIFAR-10's tarball is unpacked into its pickle folder).

The transfer itself (temporary file, checksum, atomic rename) is
:func:`~sparsedp.data.download.download_file`.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from .cifar import (
    CIFAR_TARBALL_NAME,
    PICKLE_FOLDER_NAME,
    TEST_BATCH,
    TRAIN_BATCHES,
    classify_tarball,
    is_pickle_dir,
)
from .download import download_file, verify_file
from .errors import DataError

__all__ = ["CANONICAL_SOURCES", "download_canonical"]

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


def download_canonical(name: str, target: Path, mirrors: dict | None) -> None:
    """Download the files of data set ``name`` (or ``mirrors[name]``) into ``target``, skipping
    those already there with the right checksum."""
    table = _download_table(name, mirrors)
    for filename, checksum in table["files"].items():
        dest = target / filename
        if verify_file(dest, tuple(checksum)):
            continue
        download_file(table["base_url"] + filename, dest, tuple(checksum), hint_dir=target)
        if name == "cifar10" and classify_tarball(dest) == "pickles":
            _extract_pickles(dest, target / PICKLE_FOLDER_NAME)
