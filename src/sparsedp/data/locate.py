"""Finding a built-in data set's files in a folder: IDX files, CIFAR-10 pickles, tarballs and
image folders, and the best of them when several are there.

:func:`search_root` is what :func:`~sparsedp.data.sources.load_dataset` calls for each place
in its search order; it reads nothing but file names (decoding is done afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .catalogue import IDX_ROLES, SUBFOLDERS
from .cifar import (
    CIFAR_TARBALL_NAME,
    PICKLE_FOLDER_NAME,
    TEST_BATCH,
    TRAIN_BATCHES,
    classify_tarball,
    image_folder_files,
    is_image_folder_dir,
    is_pickle_dir,
)
from .errors import DataError

__all__ = ["Found", "cifar_from_tarball", "probe_idx", "search_root", "what_is_wanted"]

_TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True)
class Found:
    """A usable copy of a data set: its kind, where it is, and the files it is read from."""

    kind: str  # "idx" | "cifar-pickles" | "cifar-images"
    path: Path  # folder or tarball
    files: tuple[Path, ...]  # what the data is read from (fingerprinted for the cache key)
    description: str


def probe_idx(folder: Path, allow_partial: bool) -> Found | None:
    """The four IDX files in ``folder`` (gzip-compressed or not), or None when none is there;
    some but not all of them is an error unless ``allow_partial`` (then None)."""
    found: dict[str, Path] = {}
    for role, base in IDX_ROLES.items():
        for candidate in (folder / f"{base}.gz", folder / base):
            if candidate.is_file():
                found[role] = candidate
                break
    if not found:
        return None
    if len(found) < len(IDX_ROLES):
        if allow_partial:
            return None
        missing = [f"{b}[.gz]" for r, b in IDX_ROLES.items() if r not in found]
        raise DataError(
            f"{folder}: incomplete IDX data set, missing {', '.join(missing)}; "
            "put all four files there (gzip-compressed or not)"
        )
    files = tuple(found[r] for r in IDX_ROLES)
    gz = [f.suffix == ".gz" for f in files]
    fmt = "IDX, gzip" if all(gz) else "IDX, raw" if not any(gz) else "IDX"
    return Found("idx", folder, files, f"{folder} ({fmt})")


def cifar_from_tarball(path: Path) -> Found | None:
    """A CIFAR-10 tarball (pickles or image folders), or None when it is neither."""
    kind = classify_tarball(path)
    if kind == "pickles":
        return Found("cifar-pickles", path, (path,), f"{path} (CIFAR-10 python pickles)")
    if kind == "images":
        return Found("cifar-images", path, (path,), f"{path} (image folders)")
    return None


def _probe_cifar(folder: Path) -> list[Found]:
    out: list[Found] = []
    if is_pickle_dir(folder):
        # only the files present (a missing one is reported when reading)
        files = tuple(p for n in (*TRAIN_BATCHES, TEST_BATCH) if (p := folder / n).is_file())
        out.append(Found("cifar-pickles", folder, files, f"{folder} (CIFAR-10 python pickles)"))
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
        hit = cifar_from_tarball(tb)
        if hit is not None:
            out.append(hit)
    if is_image_folder_dir(folder):
        files = tuple(image_folder_files(folder))
        out.append(Found("cifar-images", folder, files, f"{folder} (image folders)"))
    # lossless sources before lossy ones
    out.sort(key=lambda f: f.kind != "cifar-pickles")
    return out


def search_root(
    root: Path, name: str, looked: list[str], *, allow_partial: bool = False
) -> Found | None:
    """The best source for ``name`` in ``root`` or one of its data-set subfolders."""
    if root.is_file():
        looked.append(str(root))
        return cifar_from_tarball(root) if name == "cifar10" else None
    candidates = [root, *(root / s for s in SUBFOLDERS[name])]
    hits: list[Found] = []
    for folder in candidates:
        if not folder.is_dir():
            continue
        looked.append(str(folder))
        if name == "cifar10":
            hits.extend(_probe_cifar(folder))
        else:
            hit = probe_idx(folder, allow_partial)
            if hit is not None:
                return hit
    hits.sort(key=lambda f: f.kind != "cifar-pickles")  # stable: keeps folder order otherwise
    return hits[0] if hits else None


def what_is_wanted(name: str) -> str:
    """The files that make a copy of ``name``, for error messages."""
    if name == "cifar10":
        return (
            f"{', '.join(TRAIN_BATCHES)}, {TEST_BATCH} (a {PICKLE_FOLDER_NAME} folder), "
            f"{CIFAR_TARBALL_NAME}, or image folders train/<class>/, test/<class>/ "
            "(as a folder or a .tar.gz)"
        )
    return ", ".join(f"{b}[.gz]" for b in IDX_ROLES.values())
