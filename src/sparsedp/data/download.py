"""Checksum-verified downloads with urllib: temp file, verify, atomic rename."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from .errors import DataError

__all__ = ["DEFAULT_TIMEOUT", "download_file", "file_digest", "verify_file"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 20
_ALGORITHMS = ("md5", "sha256")


def _hasher(algorithm: str) -> Any:
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"unsupported checksum algorithm {algorithm!r}; use md5 or sha256")
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    return hashlib.sha256()


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file ("md5" or "sha256")."""
    h = _hasher(algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | Path, checksum: tuple[str, str]) -> bool:
    """True when the file exists and has the given (algorithm, hexdigest)."""
    algorithm, expected = checksum
    return Path(path).is_file() and file_digest(path, algorithm) == expected.lower()


def _fetch(url: str, fh: IO[bytes], h: Any, timeout: float) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "sparsedp"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        while chunk := resp.read(_CHUNK):
            fh.write(chunk)
            h.update(chunk)


def download_file(
    url: str,
    dest: str | Path,
    checksum: tuple[str, str] | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 2,
    hint_dir: str | Path | None = None,
) -> Path:
    """Download ``url`` to ``dest``, verifying ``checksum`` = (algorithm, hexdigest).

    The data goes to a temporary file next to ``dest`` that is renamed into place only
    after the checksum matches, so ``dest`` is never half-written. A mismatch removes the
    temporary file and raises DataError naming the URL and both checksums; HTTP and
    connection errors raise DataError too (connection errors and 5xx are retried).
    ``hint_dir`` is the folder suggested to the user for a manual copy (default: dest's).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    hint = Path(hint_dir) if hint_dir is not None else dest.parent
    algorithm = checksum[0] if checksum else "sha256"
    attempt = 0
    while True:
        attempt += 1
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        h = _hasher(algorithm)
        try:
            log.info("downloading %s -> %s", url, dest)
            with os.fdopen(fd, "wb") as fh:
                _fetch(url, fh, h, timeout)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code} {exc.reason}"
                transient = exc.code >= 500
            elif isinstance(exc, urllib.error.URLError):
                reason, transient = str(exc.reason), True
            elif isinstance(exc, (TimeoutError, ConnectionError, http.client.HTTPException)):
                reason, transient = f"{type(exc).__name__}: {exc}", True
            elif isinstance(exc, (OSError, ValueError)):  # ValueError: malformed URL
                reason, transient = f"{type(exc).__name__}: {exc}", False
            else:
                raise
            if transient and attempt <= retries:
                log.warning("download of %s failed (%s); retrying", url, reason)
                time.sleep(min(2.0 * attempt, 10.0))
                continue
            raise DataError(
                f"could not download {dest.name} from {url}: {reason}; "
                f"put the files in {hint} or pass --data-dir"
            ) from exc
        if checksum is not None:
            actual = h.hexdigest()
            if actual != checksum[1].lower():
                tmp.unlink(missing_ok=True)
                raise DataError(
                    f"checksum mismatch for {url}: expected {algorithm} {checksum[1].lower()}, "
                    f"got {actual}; the download was discarded. Try again later, or put a "
                    f"verified copy of {dest.name} in {hint} or pass --data-dir"
                )
        os.replace(tmp, dest)
        return dest
