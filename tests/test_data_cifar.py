"""CIFAR-10 from python pickles and from image folders (directory or tarball)."""

from __future__ import annotations

import io
import pickle
import shutil
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from sparsedp.data import sources
from sparsedp.data.cifar import (
    CIFAR10_CLASSES,
    read_cifar_image_folders,
    read_cifar_pickles,
)
from sparsedp.data.errors import DataError
from sparsedp.data.sources import load_dataset

PER_CLASS = {"train": 3, "test": 2}
SMALL_COUNTS = (30, 20)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SPARSEDP_DATA_DIR", raising=False)
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.setattr(sources, "repo_data_dir", lambda: None)


@pytest.fixture(scope="module")
def jpeg_subset(cifar_jpeg_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few real JPEGs per class and split from the shared tarball, as folders."""
    out = tmp_path_factory.mktemp("subset") / "cifar10-jpeg"
    need = {(s, c): n for s, n in PER_CLASS.items() for c in CIFAR10_CLASSES}
    with tarfile.open(cifar_jpeg_tarball, "r:gz") as tf:
        for member in tf:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) < 3 or need.get(parts[-3:-1], 0) <= 0:
                continue
            need[parts[-3:-1]] -= 1
            dest = out.joinpath(*parts[-3:])
            dest.parent.mkdir(parents=True, exist_ok=True)
            fh = tf.extractfile(member)
            assert fh is not None
            dest.write_bytes(fh.read())
            if not any(need.values()):
                break
    assert not any(need.values())
    return out


def make_tarball(folder: Path, dest: Path, prefix: str = "") -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        for f in sorted(folder.rglob("*")):
            tf.add(f, arcname=prefix + f.relative_to(folder).as_posix(), recursive=False)
    return dest


def copy_without(src: Path, dest: Path, skip: str) -> Path:
    shutil.copytree(src, dest, ignore=lambda d, names: [n for n in names if f"{d}/{n}" == skip])
    return dest


def write_pickles(folder: Path, arrays: tuple[np.ndarray, ...], protocol: int = 2) -> Path:
    """Real-format CIFAR-10 batches: dicts with bytes keys, data uint8 (n, 3072)."""
    train_x, train_y, test_x, test_y = arrays
    folder.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(len(train_y)), 5)
    batches = [(f"data_batch_{i + 1}", train_x[c], train_y[c]) for i, c in enumerate(chunks)]
    batches.append(("test_batch", test_x, test_y))
    for name, x, y in batches:
        d = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in y],
            b"data": np.ascontiguousarray(x).reshape(len(y), 3072),
            b"filenames": [f"{i}.png".encode() for i in range(len(y))],
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(d, fh, protocol=protocol)
    return folder


def pil_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# ---------------------------------------------------------------------- image folders


def test_image_folder_directory(jpeg_subset: Path) -> None:
    (train_x, train_y, test_x, test_y), lossy = read_cifar_image_folders(jpeg_subset)
    assert lossy
    assert train_x.shape == (30, 3, 32, 32) and test_x.shape == (20, 3, 32, 32)
    assert train_x.dtype == np.uint8 and train_y.dtype == np.int64
    assert train_y.tolist() == [c for c in range(10) for _ in range(3)]
    assert test_y.tolist() == [c for c in range(10) for _ in range(2)]
    # classes in label order, files sorted by name within a class; HWC -> CHW
    first_bird = sorted((jpeg_subset / "train" / "bird").iterdir())[0]
    np.testing.assert_array_equal(train_x[6].transpose(1, 2, 0), pil_pixels(first_bird))
    last_truck = sorted((jpeg_subset / "test" / "truck").iterdir())[-1]
    np.testing.assert_array_equal(test_x[-1].transpose(1, 2, 0), pil_pixels(last_truck))


def test_image_folder_tarball_matches_directory(jpeg_subset: Path, tmp_path: Path) -> None:
    (ref, _, _, _), _ = read_cifar_image_folders(jpeg_subset)
    for prefix in ("", "top/"):
        tb = make_tarball(jpeg_subset, tmp_path / f"copy{len(prefix)}.tar.gz", prefix)
        (train_x, train_y, _, test_y), lossy = read_cifar_image_folders(
            tb, expected_counts=(30, 20)
        )
        np.testing.assert_array_equal(train_x, ref)
        assert lossy and len(test_y) == 20 and train_y[-1] == 9


def test_load_dataset_from_image_folder_tarball(
    jpeg_subset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sources.EXPECTED_COUNTS, "cifar10", SMALL_COUNTS)
    data = tmp_path / "data"
    (data / "cifar10-jpeg").mkdir(parents=True)
    make_tarball(jpeg_subset, data / "cifar10-jpeg" / "cifar10-jpeg.tar.gz")
    ds = load_dataset("cifar10", data, cache_dir=tmp_path / "cache")
    assert ds.lossy and "lossy" in ds.label and ds.label.startswith("CIFAR-10")
    assert "cifar10-jpeg.tar.gz" in ds.source and "image folders" in ds.source
    assert ds.train_images.shape == (30, 3, 32, 32) and ds.classes == CIFAR10_CLASSES
    again = load_dataset("cifar10", data, cache_dir=tmp_path / "cache")
    assert isinstance(again.train_images, np.memmap) and again.lossy  # lossy survives caching
    np.testing.assert_array_equal(again.test_images, ds.test_images)


def test_load_dataset_from_image_folder_directory(
    jpeg_subset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sources.EXPECTED_COUNTS, "cifar10", SMALL_COUNTS)
    ds = load_dataset("cifar10", jpeg_subset.parent, cache_dir=tmp_path / "cache")
    assert ds.lossy and ds.source.startswith(str(jpeg_subset))


def test_full_size_count_check(jpeg_subset: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cifar10-jpeg: found 30 train and 20 test .*50000"):
        load_dataset("cifar10", jpeg_subset, cache_dir=tmp_path / "cache")


def test_missing_class_folder_names_class(jpeg_subset: Path, tmp_path: Path) -> None:
    broken = copy_without(jpeg_subset, tmp_path / "broken", f"{jpeg_subset}/test/frog")
    with pytest.raises(DataError, match=r"broken: missing class folder\(s\) test/frog/"):
        read_cifar_image_folders(broken)
    tb = make_tarball(broken, tmp_path / "broken.tar.gz")
    with pytest.raises(DataError, match=r"broken\.tar\.gz: missing class folder\(s\) test/frog/"):
        read_cifar_image_folders(tb)


def test_unknown_class_and_wrong_size(jpeg_subset: Path, tmp_path: Path) -> None:
    extra = copy_without(jpeg_subset, tmp_path / "extra", "")
    (extra / "train" / "plane").mkdir()
    shutil.copy(next((extra / "train" / "cat").iterdir()), extra / "train" / "plane" / "0.jpg")
    with pytest.raises(DataError, match=r"unknown class folder 'plane'"):
        read_cifar_image_folders(extra)

    odd = copy_without(jpeg_subset, tmp_path / "odd", "")
    Image.new("RGB", (31, 32)).save(odd / "test" / "ship" / "9999.png")
    with pytest.raises(DataError, match=r"ship/9999\.png: image is 31x32.*32x32"):
        read_cifar_image_folders(odd)


def test_png_folders_are_not_lossy(jpeg_subset: Path, tmp_path: Path) -> None:
    png = tmp_path / "png"
    for f in jpeg_subset.rglob("*.jpg"):
        dest = png / f.relative_to(jpeg_subset).with_suffix(".png")
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.open(f).save(dest)
    arrays, lossy = read_cifar_image_folders(png)
    reference, _ = read_cifar_image_folders(jpeg_subset)
    assert not lossy
    np.testing.assert_array_equal(arrays[0], reference[0])


# ---------------------------------------------------------------------------- pickles


@pytest.fixture(scope="module")
def subset_arrays(jpeg_subset: Path) -> tuple[np.ndarray, ...]:
    arrays, _ = read_cifar_image_folders(jpeg_subset)
    return arrays


def test_pickle_layout_matches_image_pixels(
    subset_arrays: tuple[np.ndarray, ...], jpeg_subset: Path, tmp_path: Path
) -> None:
    folder = write_pickles(tmp_path / "cifar-10-batches-py", subset_arrays)
    train_x, train_y, test_x, test_y = read_cifar_pickles(folder, expected_counts=(30, 20))
    assert train_x.shape == (30, 3, 32, 32) and train_x.dtype == np.uint8
    assert train_y.dtype == np.int64
    for got, want in zip((train_x, train_y, test_x, test_y), subset_arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    # the row layout is R plane, G plane, B plane, each row-major: check one pixel by hand
    with open(folder / "data_batch_1", "rb") as fh:
        row = pickle.load(fh, encoding="bytes")[b"data"][0]
    first = pil_pixels(sorted((jpeg_subset / "train" / "airplane").iterdir())[0])
    y, x = 5, 17
    assert [row[c * 1024 + y * 32 + x] for c in range(3)] == first[y, x].tolist()


def test_pickle_tarball_beats_jpeg_copy(
    subset_arrays: tuple[np.ndarray, ...],
    jpeg_subset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sources.EXPECTED_COUNTS, "cifar10", SMALL_COUNTS)
    data = tmp_path / "data"
    shutil.copytree(jpeg_subset, data / "cifar10-jpeg")
    batches = write_pickles(tmp_path / "build" / "cifar-10-batches-py", subset_arrays, 5)
    make_tarball(batches.parent, data / "cifar-10-python.tar.gz")
    ds = load_dataset("cifar10", data, cache_dir=tmp_path / "cache")
    assert not ds.lossy and ds.label == "CIFAR-10"
    assert "cifar-10-python.tar.gz" in ds.source and "pickles" in ds.source
    np.testing.assert_array_equal(ds.train_images, subset_arrays[0])


def test_pickle_wrong_keys_and_missing_batch(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, fh)
    with open(folder / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}, fh)
    with pytest.raises(DataError, match=r"data_batch_3: wrong pickle keys.*CIFAR-100"):
        read_cifar_pickles(folder)
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match=r"cifar-10-batches-py: missing CIFAR-10 batch.*test_batch"):
        read_cifar_pickles(folder)


def test_pickle_with_foreign_globals_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match=r"data_batch_1: not a readable.*refusing.*print"):
        read_cifar_pickles(folder)


def test_bad_data_shape(tmp_path: Path) -> None:
    buf = io.BytesIO()
    pickle.dump({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, buf)
    folder = tmp_path / "p"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(buf.getvalue())
    with pytest.raises(DataError, match=r"data_batch_1: b'data' is uint8 \(2, 1024\)"):
        read_cifar_pickles(folder)


def test_incomplete_pickle_folder_via_load_dataset(
    subset_arrays: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    folder = write_pickles(tmp_path / "data" / "cifar-10-batches-py", subset_arrays)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match=r"missing CIFAR-10 batch files \['data_batch_4'\]"):
        load_dataset("cifar10", tmp_path / "data", cache_dir=tmp_path / "cache")
