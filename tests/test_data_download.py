"""Verified downloads from a local HTTP server standing in for the canonical mirrors."""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
import shutil
import socket
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from sparsedp.data import sources
from sparsedp.data.download import download_file, file_digest, verify_file
from sparsedp.data.errors import DataError
from sparsedp.data.sources import CANONICAL_SOURCES, load_dataset

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 serving one folder, in a background thread."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.running = False


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SPARSEDP_DATA_DIR", raising=False)
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.setattr(sources, "repo_data_dir", lambda: None)
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIRS", {})


@pytest.fixture(scope="module")
def served_mnist(
    shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A folder with copies of the real MNIST .gz files and their sha256 checksums."""
    root = tmp_path_factory.mktemp("www")
    (root / "mnist").mkdir()
    checksums = {}
    for f in MNIST_FILES:
        shutil.copy(shared_data_dir / "mnist" / f, root / "mnist" / f)
        checksums[f] = ("sha256", file_digest(root / "mnist" / f, "sha256"))
    return root, checksums


@pytest.fixture
def server(served_mnist: tuple[Path, dict]) -> Iterator[Server]:
    srv = Server(served_mnist[0])
    yield srv
    srv.stop()


def test_download_verify_load_then_offline(
    server: Server, served_mnist: tuple[Path, dict], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    mirrors = {"mnist": {"base_url": server.url + "mnist", "files": served_mnist[1]}}
    ds = load_dataset("mnist", cache_dir=cache, mirrors=mirrors)
    assert ds.train_images.shape == (60_000, 1, 28, 28) and ds.test_labels.shape == (10_000,)
    assert float(ds.train_images.mean()) == pytest.approx(33.318, abs=1e-3)
    assert ds.source.startswith(str(cache / "mnist"))
    assert sorted(p.name for p in (cache / "mnist").glob("*.gz")) == sorted(MNIST_FILES)
    assert not list((cache / "mnist").glob(".*"))  # no temporary files left

    server.stop()  # the second call must not need the network
    again = load_dataset("mnist", cache_dir=cache, mirrors=mirrors)
    assert isinstance(again.train_images, np.memmap)
    np.testing.assert_array_equal(again.train_labels, ds.train_labels)


def test_checksum_mismatch_leaves_nothing(
    server: Server, served_mnist: tuple[Path, dict], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    files = dict(served_mnist[1])
    actual = files["train-images-idx3-ubyte.gz"][1]
    wrong = "0" * 64
    files["train-images-idx3-ubyte.gz"] = ("sha256", wrong)
    mirrors = {"mnist": {"base_url": server.url + "mnist/", "files": files}}
    with pytest.raises(DataError) as info:
        load_dataset("mnist", cache_dir=cache, mirrors=mirrors)
    message = str(info.value)
    assert f"{server.url}mnist/train-images-idx3-ubyte.gz" in message
    assert wrong in message and actual in message
    assert not any(p.name.startswith("train-images") for p in (cache / "mnist").iterdir())
    assert not list((cache / "mnist").glob(".*"))


def test_http_404(server: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    files = {f: ("sha256", "0" * 64) for f in MNIST_FILES}
    mirrors = {"fashion-mnist": {"base_url": server.url + "nowhere/", "files": files}}
    with pytest.raises(DataError, match=r"could not download .*nowhere/.*HTTP 404.*--data-dir"):
        load_dataset("fashion-mnist", cache_dir=cache, mirrors=mirrors)
    assert not list((cache / "fashion-mnist").iterdir())


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.gz"
    with pytest.raises(
        DataError, match=rf"could not download x\.gz from {url}: .*put the files in"
    ):
        download_file(url, tmp_path / "x.gz", None, timeout=5, retries=0)
    assert not list(tmp_path.iterdir())


def test_md5_and_existing_file(
    server: Server, served_mnist: tuple[Path, dict], tmp_path: Path
) -> None:
    name = "t10k-labels-idx1-ubyte.gz"
    md5 = hashlib.md5((served_mnist[0] / "mnist" / name).read_bytes()).hexdigest()
    dest = download_file(server.url + "mnist/" + name, tmp_path / name, ("md5", md5.upper()))
    assert verify_file(dest, ("md5", md5))
    assert not verify_file(dest, ("md5", "0" * 32))
    assert not verify_file(tmp_path / "absent", ("md5", md5))


def test_cifar_tarball_download_is_extracted(
    server: Server, served_mnist: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sources.EXPECTED_COUNTS, "cifar10", (10, 4))
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for name in names:
            n = 4 if name == "test_batch" else 2
            batch = {
                b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                b"labels": list(range(n)),
            }
            blob = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    tarball = served_mnist[0] / "cifar-10-python.tar.gz"
    tarball.write_bytes(buf.getvalue())
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    mirrors = {
        "cifar10": {
            "base_url": server.url,
            "files": {"cifar-10-python.tar.gz": ("sha256", digest)},
        }
    }
    cache = tmp_path / "cache"
    ds = load_dataset("cifar10", cache_dir=cache, mirrors=mirrors)
    tarball.unlink()
    assert (cache / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()
    assert ds.train_images.shape == (10, 3, 32, 32) and not ds.lossy and ds.label == "CIFAR-10"
    assert ds.test_labels.tolist() == [0, 1, 2, 3]


def test_canonical_table() -> None:
    mnist = CANONICAL_SOURCES["mnist"]
    assert mnist["base_url"] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert mnist["files"]["train-images-idx3-ubyte.gz"] == (
        "md5",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    )
    assert set(CANONICAL_SOURCES["fashion-mnist"]["files"]) == set(MNIST_FILES)
    assert CANONICAL_SOURCES["cifar10"]["files"]["cifar-10-python.tar.gz"][1] == (
        "c58f30108f718f92721af3b95e74349a"
    )
