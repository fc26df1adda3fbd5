"""IDX reading, the search order of load_dataset and the memory-mapped array cache."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from sparsedp.data import idx, sources
from sparsedp.data.errors import DataError
from sparsedp.data.sources import (
    DATASET_NAMES,
    ImageDataset,
    default_cache_dir,
    load_dataset,
    repo_data_dir,
)

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user/env/repo/system data and no writes outside tmp_path."""
    monkeypatch.delenv("SPARSEDP_DATA_DIR", raising=False)
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.setattr(sources, "repo_data_dir", lambda: None)
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIRS", {})


def write_idx(path: Path, magic: int, dims: tuple[int, ...], data: bytes, gz: bool = False) -> Path:
    """Write an IDX file with the given header (data not checked against it)."""
    blob = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


def write_small_idx_set(folder: Path, n_train: int, n_test: int, gz: bool = True) -> Path:
    """Four consistent IDX files with small counts (28x28, labels cycling 0..9)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", 0x803, (n, 28, 28),
                  images.tobytes(), gz)  # fmt: skip
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", 0x801, (n,),
                  labels.tobytes(), gz)  # fmt: skip
    return folder


def link_mnist(shared_data_dir: Path, folder: Path) -> Path:
    """``folder`` with symlinks to the real MNIST .gz files."""
    folder.mkdir(parents=True)
    for f in MNIST_FILES:
        (folder / f).symlink_to(shared_data_dir / "mnist" / f)
    return folder


@pytest.fixture(scope="module")
def raw_mnist_dir(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real MNIST files decompressed (raw IDX)."""
    out = tmp_path_factory.mktemp("raw-mnist")
    for f in MNIST_FILES:
        with gzip.open(shared_data_dir / "mnist" / f, "rb") as src, open(out / f[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


# ------------------------------------------------------------------------ real MNIST


def check_real_mnist(ds: ImageDataset) -> None:
    assert ds.name == "mnist" and ds.label == "MNIST" and not ds.lossy
    assert ds.train_images.shape == (60_000, 1, 28, 28)
    assert ds.test_images.shape == (10_000, 1, 28, 28)
    assert ds.train_images.dtype == np.uint8 and ds.test_images.dtype == np.uint8
    assert ds.train_labels.dtype == np.int64 and ds.test_labels.dtype == np.int64
    assert ds.train_labels.shape == (60_000,) and ds.test_labels.shape == (10_000,)
    assert np.bincount(ds.train_labels).tolist() == MNIST_TRAIN_COUNTS
    assert float(ds.train_images.mean()) == pytest.approx(33.318, abs=1e-3)
    assert ds.classes == tuple(str(i) for i in range(10))


def test_real_mnist_gzip_from_shared_dir(shared_data_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset("mnist", shared_data_dir, cache_dir=tmp_path / "cache")
    check_real_mnist(ds)
    assert "IDX, gzip" in ds.source and str(shared_data_dir / "mnist") in ds.source


def test_real_mnist_raw_idx(raw_mnist_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset("mnist", raw_mnist_dir, cache_dir=tmp_path / "cache")
    check_real_mnist(ds)
    assert "IDX, raw" in ds.source
    images = idx.read_idx_images(raw_mnist_dir / "t10k-images-idx3-ubyte")
    np.testing.assert_array_equal(ds.test_images[:, 0], images)


def test_second_load_uses_memmap_cache(
    shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = load_dataset("mnist", shared_data_dir, cache_dir=cache)
    saved = sorted(p.name for p in (cache / "mnist" / "arrays").glob("*/*.npy"))
    assert saved == sorted(f"{a}.npy" for a in sources._ARRAY_NAMES)
    assert not list((cache / "mnist" / "arrays").glob(".*"))  # no temporary leftovers

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the source was decoded again")

    monkeypatch.setattr(sources, "read_idx_pair", no_decoding)
    second = load_dataset("mnist", shared_data_dir, cache_dir=cache)
    assert isinstance(second.train_images, np.memmap)
    assert isinstance(second.test_labels, np.memmap)
    assert not second.train_images.flags.writeable
    np.testing.assert_array_equal(first.train_labels, second.train_labels)
    assert second.source == first.source


def test_touched_source_is_decoded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sources.EXPECTED_COUNTS, "mnist", (20, 10))
    data = write_small_idx_set(tmp_path / "d", 20, 10)
    cache = tmp_path / "cache"
    load_dataset("mnist", data, cache_dir=cache)
    write_small_idx_set(data, 20, 10)  # rewritten: new mtime, so a new cache key
    f = data / MNIST_FILES[0]
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_dataset("mnist", data, cache_dir=cache)
    assert len(list((cache / "mnist" / "arrays").iterdir())) == 1  # the stale entry is pruned


# ----------------------------------------------------------------------- IDX errors


def test_bad_magic_names_file(tmp_path: Path) -> None:
    f = write_idx(tmp_path / "train-images-idx3-ubyte", 0x801, (2,), b"\x00\x01")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*magic number 0x00000801"):
        idx.read_idx_images(f)
    g = tmp_path / "junk.gz"
    g.write_bytes(gzip.compress(b"PK\x03\x04 not idx at all"))
    with pytest.raises(DataError, match=r"junk\.gz.*not an IDX file"):
        idx.read_idx(g)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_names_file(tmp_path: Path, gz: bool) -> None:
    f = write_idx(tmp_path / "t10k-images-idx3-ubyte", 0x803, (3, 28, 28), bytes(2 * 784), gz)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.*truncated"):
        idx.read_idx_images(f)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    blob = gzip.compress(struct.pack(">III", 0x803, 1, 28) + bytes(28 * 28 * 4))
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*truncated"):
        idx.read_idx(f)


def test_trailing_bytes_rejected(tmp_path: Path) -> None:
    f = write_idx(tmp_path / "lab", 0x801, (2,), b"\x01\x02\x03")
    with pytest.raises(DataError, match=r"lab: 1 unexpected trailing"):
        idx.read_idx_labels(f)


def test_label_range_and_wrong_image_size(tmp_path: Path) -> None:
    labels = write_idx(tmp_path / "labels", 0x801, (3,), b"\x01\x0a\x02")
    with pytest.raises(DataError, match=r"labels: label 10 at index 1 is outside 0..9"):
        idx.read_idx_labels(labels)
    images = write_idx(tmp_path / "images", 0x803, (2, 27, 28), bytes(2 * 27 * 28))
    with pytest.raises(DataError, match=r"images: images are 27x28, expected 28x28"):
        idx.read_idx_images(images)


def test_image_label_count_mismatch(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "imgs", 0x803, (3, 28, 28), bytes(3 * 784))
    labels = write_idx(tmp_path / "labs", 0x801, (2,), b"\x00\x01")
    with pytest.raises(DataError, match=r"imgs has 3 images but .*labs has 2 labels"):
        idx.read_idx_pair(images, labels)


def test_wrong_count_via_load_dataset_names_file(tmp_path: Path) -> None:
    data = write_small_idx_set(tmp_path / "small", 100, 10)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: 100 labels, expected 60000"):
        load_dataset("mnist", data, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "mnist" / "arrays").exists()


def test_small_counts_when_expected_counts_patched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sources.EXPECTED_COUNTS, "mnist", (100, 10))
    data = write_small_idx_set(tmp_path / "small", 100, 10, gz=False)
    ds = load_dataset("mnist", data, cache_dir=tmp_path / "cache")
    assert ds.train_images.shape == (100, 1, 28, 28) and ds.test_labels.shape == (10,)
    assert ds.train_labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_mnist_files_are_not_fashion_mnist(shared_data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*not Fashion-MNIST"):
        load_dataset("fashion-mnist", shared_data_dir / "mnist", cache_dir=tmp_path / "cache")


# ---------------------------------------------------------------------- search order


def test_data_dir_beats_env_beats_repo(
    shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = link_mnist(shared_data_dir, tmp_path / "explicit" / "mnist").parent
    env = link_mnist(shared_data_dir, tmp_path / "env" / "mnist").parent
    repo = link_mnist(shared_data_dir, tmp_path / "repo" / "mnist").parent
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPARSEDP_DATA_DIR", str(env))
    monkeypatch.setattr(sources, "repo_data_dir", lambda: repo)

    ds = load_dataset("mnist", explicit, cache_dir=cache, download=False)
    assert ds.source.startswith(str(explicit / "mnist"))
    ds = load_dataset("mnist", cache_dir=cache, download=False)
    assert ds.source.startswith(str(env / "mnist"))
    monkeypatch.delenv("SPARSEDP_DATA_DIR")
    ds = load_dataset("mnist", cache_dir=cache, download=False)
    assert ds.source.startswith(str(repo / "mnist"))
    check_real_mnist(ds)


def test_env_without_dataset_falls_through(
    shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("SPARSEDP_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setattr(sources, "repo_data_dir", lambda: shared_data_dir)
    ds = load_dataset("mnist", cache_dir=tmp_path / "cache", download=False)
    assert ds.source.startswith(str(shared_data_dir / "mnist"))


def test_explicit_empty_data_dir_is_an_error(
    shared_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(sources, "repo_data_dir", lambda: shared_data_dir)  # must not be used
    with pytest.raises(DataError, match=r"no MNIST data found in .*empty.*train-images-idx3-ubyte"):
        load_dataset("mnist", empty, cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=r"does not exist"):
        load_dataset("mnist", tmp_path / "missing", cache_dir=tmp_path / "cache")


def test_incomplete_set_names_missing_file(shared_data_dir: Path, tmp_path: Path) -> None:
    folder = link_mnist(shared_data_dir, tmp_path / "d")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte"):
        load_dataset("mnist", folder, cache_dir=tmp_path / "cache")


def test_nothing_found_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"downloading is off.*--data-dir.*SPARSEDP_DATA_DIR"):
        load_dataset("fashion-mnist", cache_dir=tmp_path / "cache", download=False)


def test_system_dir_and_cache_dir_are_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sources.EXPECTED_COUNTS, "fashion-mnist", (20, 10))
    system = write_small_idx_set(tmp_path / "usr-share", 20, 10)
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIRS", {"fashion-mnist": (system,)})
    ds = load_dataset("fashion-mnist", cache_dir=tmp_path / "cache", download=False)
    assert ds.source.startswith(str(system)) and ds.label == "Fashion-MNIST"
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10

    monkeypatch.setattr(sources, "SYSTEM_DATA_DIRS", {})
    cached = write_small_idx_set(tmp_path / "cache2" / "fashion-mnist", 20, 10)
    ds = load_dataset("fashion-mnist", cache_dir=tmp_path / "cache2", download=False)
    assert ds.source.startswith(str(cached))


def test_names_and_aliases(tmp_path: Path) -> None:
    assert DATASET_NAMES == ("mnist", "fashion-mnist", "cifar10")
    with pytest.raises(DataError, match=r"unknown data set 'svhn'"):
        load_dataset("svhn", cache_dir=tmp_path)
    with pytest.raises(DataError, match=r"no Fashion-MNIST data"):
        load_dataset("Fashion_MNIST", tmp_path, cache_dir=tmp_path / "c")


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "a"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("SPARSEDP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "sparsedp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "sparsedp"


def test_repo_data_dir_is_the_clone_data_folder() -> None:
    # repo_data_dir was imported before the autouse stub replaced the module attribute
    root = Path(sources.__file__).resolve().parents[3]
    found = repo_data_dir()
    if (root / "data").is_dir() and (root / "pyproject.toml").is_file():
        assert found == root / "data"
    else:
        assert found is None


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sources.EXPECTED_COUNTS, "mnist", (20, 10))
    data = write_small_idx_set(tmp_path / "d", 20, 10)
    cache = tmp_path / "cache"
    expected = np.array(load_dataset("mnist", data, cache_dir=cache).train_images)
    (entry,) = (cache / "mnist" / "arrays").iterdir()
    # damage by replacing the file (never overwrite a file in place while it is memory-mapped)
    np.save(tmp_path / "bad.npy", np.zeros((3, 1, 28, 28), np.uint8))
    os.replace(tmp_path / "bad.npy", entry / "train_images.npy")
    second = load_dataset("mnist", data, cache_dir=cache)
    assert isinstance(second.train_images, np.memmap)
    np.testing.assert_array_equal(second.train_images, expected)
