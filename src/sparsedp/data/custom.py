"""Data sets beyond the built-in three: a registry, two code-free kinds, and their checks.

A plugin registers a *loader*: a function of no arguments returning training and test
arrays ``(train_images, train_labels, test_images, test_labels)`` (or a dict with those
keys). Images are uint8 (scaled and standardised like the built-in data sets) or floating
point (used as they are), shaped (N, C, H, W), (N, H, W, C) or (N, H, W); labels are
integers in [0, classes). An experiment file can declare two kinds without code: an ``.npz``
file (:class:`NpzFile`) and an image folder ``train/<class>/…``, ``test/<class>/…``
(:class:`ImageFolder`). Every loaded data set is checked here; a problem raises
:class:`~sparsedp.data.errors.DataError` with one line naming the data set and its origin.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from sparsedp.origin import check_free, check_part, current_origin

from .catalogue import DATASET_NAMES
from .cifar import IMAGE_EXTENSIONS, LOSSY_EXTENSIONS
from .dataset import ImageDataset
from .errors import DataError

__all__ = [
    "DATASETS",
    "LAYOUTS",
    "DatasetSpec",
    "ImageFolder",
    "NpzFile",
    "dataset_spec",
    "load_registered",
    "register_dataset",
]

LAYOUTS = ("auto", "nchw", "nhwc")
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
NPZ_KEYS = (ROLES, ("x_train", "y_train", "x_test", "y_test"))
MIN_TRAIN = 10  # the validation split takes 10%: at least one example


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set: how to load it, and what names its results."""

    name: str
    loader: Callable[[], Any]
    version: str = ""
    description: str = ""
    classes: tuple[str, ...] | None = None
    layout: str = "auto"
    origin: str = ""


DATASETS: dict[str, DatasetSpec] = {}
_BUILTIN = frozenset(
    (*DATASET_NAMES, "fashion_mnist", "fashionmnist", "fmnist", "cifar-10", "cifar_10")
)


def register_dataset(
    name: str,
    loader: Callable[[], Any],
    *,
    version: str = "",
    description: str = "",
    classes: list[str] | tuple[str, ...] | None = None,
    layout: str = "auto",
    replace: bool = False,
) -> DatasetSpec:
    """Register data set ``name``: ``loader()`` returns (train_images, train_labels,
    test_images, test_labels). ``version`` enters the key of every study that uses it: change
    it whenever the data change. ``classes`` names the classes (default: "0", "1", …);
    ``layout`` says where the channels are in 4-D images ("nchw", "nhwc", or "auto")."""
    check_part("data set", name, version, description)
    if not callable(loader):
        raise ValueError(f"data set {name!r}: the loader must be callable, got {loader!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"data set {name!r}: layout must be one of {', '.join(LAYOUTS)}")
    if classes is not None and (not classes or not all(isinstance(c, str) for c in classes)):
        raise ValueError(f"data set {name!r}: classes must be a non-empty list of strings")
    check_free("data set", name, DATASETS, _BUILTIN, replace)
    spec = DatasetSpec(name, loader, version, description,
                       tuple(classes) if classes is not None else None, layout,
                       current_origin())
    DATASETS[name] = spec
    return spec


def dataset_spec(name: str) -> DatasetSpec | None:
    """The registered (non built-in) data set ``name``, or None."""
    return DATASETS.get(name)


# ------------------------------------------------------------------------ code-free kinds


@dataclass(frozen=True)
class NpzFile:
    """Loader for an ``.npz`` file with arrays ``x_train, y_train, x_test, y_test`` (as
    Keras saves MNIST) or ``train_images, train_labels, test_images, test_labels``."""

    path: str

    def __call__(self) -> dict[str, np.ndarray]:
        path = Path(self.path)
        if not path.is_file():
            raise DataError(f"{path}: no such .npz file; fix `path` (relative paths start at "
                            "the experiment file's folder)")
        try:
            with np.load(path, allow_pickle=False) as archive:
                names = set(archive.files)
                for keys in NPZ_KEYS:
                    if set(keys) <= names:
                        return {role: archive[k] for role, k in zip(ROLES, keys, strict=True)}
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the .npz file ({exc})") from exc
        raise DataError(
            f"{path}: the .npz file holds {', '.join(sorted(names)) or 'no arrays'}; it needs "
            f"{', '.join(NPZ_KEYS[1])} (or {', '.join(NPZ_KEYS[0])})"
        )


@dataclass(frozen=True)
class ImageFolder:
    """Loader for ``train/<class>/<image>`` and ``test/<class>/<image>`` (JPEG or PNG).

    Classes are the training folder's subfolder names in sorted order; files are read in
    name order. Images must all have one size; grey-scale images give one channel, any
    other mode three (RGB).
    """

    path: str

    def __call__(self) -> dict[str, Any]:
        root = Path(self.path)
        if not (root / "train").is_dir() or not (root / "test").is_dir():
            raise DataError(f"{root}: needs train/<class>/ and test/<class>/ folders; fix `path`")
        classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        if not classes:
            raise DataError(f"{root}/train: no class folders; put images in train/<class>/")
        extra = sorted(p.name for p in (root / "test").iterdir()
                       if p.is_dir() and p.name not in classes)
        if extra:
            raise DataError(f"{root}/test/{extra[0]}: a class with no training folder; add "
                            f"train/{extra[0]}/ or remove it")
        out: dict[str, Any] = {"classes": classes}
        shape: list[Any] = [None, None]  # (mode, size) of the first image
        for split in ("train", "test"):
            files = [(label, f) for label, c in enumerate(classes)
                     if (root / split / c).is_dir()
                     for f in sorted((root / split / c).iterdir())
                     if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
                     and not f.name.startswith(".")]
            images = [_read_image(f, shape) for _, f in files]
            out[f"{split}_images"] = (np.stack(images) if images
                                      else np.zeros((0, *_empty_shape(shape)), np.uint8))
            out[f"{split}_labels"] = np.array([label for label, _ in files], dtype=np.int64)
        out["lossy"] = any(f.suffix.lower() in LOSSY_EXTENSIONS
                           for f in root.glob("*/*/*"))
        return out


def _empty_shape(shape: list[Any]) -> tuple[int, ...]:
    mode, size = shape
    if size is None:
        return (1, 1)
    return (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)


def _read_image(path: Path, shape: list[Any]) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(path.read_bytes())) as im:
            if shape[0] is None:
                shape[0] = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
                shape[1] = im.size
            if im.size != shape[1]:
                raise DataError(f"{path}: image is {im.size[0]}x{im.size[1]}, the others are "
                                f"{shape[1][0]}x{shape[1][1]}; resize it")
            return np.asarray(im.convert(shape[0]))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot decode the image ({exc}); replace the file") from exc


# --------------------------------------------------------------------------- loading


def load_registered(spec: DatasetSpec) -> ImageDataset:
    """Call the loader of ``spec`` and check what it returns (one-line DataError)."""
    where = f"data set {spec.name!r} ({spec.origin})"
    try:
        result = spec.loader()
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from exc
    except Exception as exc:
        raise DataError(f"{where}: its loader raised {type(exc).__name__}: {exc}") from exc
    arrays, extra = _unpack(result, where)
    classes = spec.classes or extra.get("classes")
    images = [_images(arrays[r], r, spec.layout, where) for r in ROLES[::2]]
    labels = [_labels(arrays[r], r, where) for r in ROLES[1::2]]
    for role, x, y in zip(("train", "test"), images, labels, strict=True):
        if len(x) != len(y):
            raise DataError(f"{where}: {len(x)} {role} images but {len(y)} {role} labels; "
                            "give one label per image")
    if len(images[0]) < MIN_TRAIN:
        raise DataError(f"{where}: only {len(images[0])} training examples; give at least "
                        f"{MIN_TRAIN} (10% become the validation split)")
    if images[0].dtype != images[1].dtype or (len(images[1]) and
                                              images[0].shape[1:] != images[1].shape[1:]):
        raise DataError(f"{where}: test images {images[1].shape[1:]} {images[1].dtype} differ "
                        f"from training images {images[0].shape[1:]} {images[0].dtype}")
    _, height, width = images[0].shape[1:]
    if height != width:
        raise DataError(f"{where}: images are {height}x{width}; sparsedp models take square "
                        "images, so pad or crop them")
    top = max(int(y.max()) if len(y) else -1 for y in labels)
    if classes is None:
        classes = [str(i) for i in range(max(top + 1, 2))]
    if top >= len(classes):
        raise DataError(f"{where}: label {top} is out of range for {len(classes)} classes; "
                        "labels must be 0..classes-1")
    if len(classes) < 2:
        raise DataError(f"{where}: only one class; a classifier needs at least two")
    return ImageDataset(
        name=spec.name, train_images=images[0], train_labels=labels[0],
        test_images=images[1], test_labels=labels[1], classes=tuple(classes),
        source=str(getattr(spec.loader, "path", spec.origin)),
        lossy=bool(extra.get("lossy", False)), label=spec.description or spec.name,
    )


def _unpack(result: Any, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if isinstance(result, Mapping):
        missing = [r for r in ROLES if r not in result]
        if missing:
            raise DataError(f"{where}: the loader's dict lacks {', '.join(missing)}")
        return {r: result[r] for r in ROLES}, dict(result)
    if isinstance(result, (tuple, list)) and len(result) == 4:
        return dict(zip(ROLES, result, strict=True)), {}
    raise DataError(f"{where}: the loader returned {type(result).__name__}; return "
                    "(train_images, train_labels, test_images, test_labels)")


def _numpy(value: Any, role: str, where: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise DataError(f"{where}: {role} is {type(value).__name__}, not an array; return "
                        "numpy arrays or torch tensors")
    return value


def _images(value: Any, role: str, layout: str, where: str) -> np.ndarray:
    x = _numpy(value, role, where)
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{where}: {role} has dtype {x.dtype}; images must be uint8 (0..255) "
                        "or floating point")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"{where}: {role} has shape {x.shape}; images must be (N, C, H, W), "
                        "(N, H, W, C) or (N, H, W)")
    if layout == "nhwc" or (layout == "auto" and x.shape[3] <= 4 < x.shape[1]):
        x = x.transpose(0, 3, 1, 2)
    if x.dtype != np.uint8:
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise DataError(f"{where}: {role} holds NaN or infinite values")
    return np.ascontiguousarray(x)


def _labels(value: Any, role: str, where: str) -> np.ndarray:
    y = _numpy(value, role, where)
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: {role} has dtype {y.dtype}; labels must be integers "
                        "(e.g. labels.astype('int64'))")
    if y.ndim != 1:
        raise DataError(f"{where}: {role} has shape {y.shape}; labels must be one integer "
                        "per example (N,)")
    if len(y) and int(y.min()) < 0:
        raise DataError(f"{where}: {role} has the negative label {int(y.min())}; labels must "
                        "be 0..classes-1")
    return y.astype(np.int64)
