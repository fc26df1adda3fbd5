"""Every read of a results database goes through here (docs/faults.md, "Reading a damaged
database").

Before a command reads ``<results>/sparsedp.sqlite`` the file is checked as ``sparsedp run``
checks it (:func:`sparsedp.store.check.inspect_store`: SQLite's ``quick_check`` and
sparsedp's schema), so a damaged, foreign or newer file is refused with one line
(:class:`~sparsedp.api.SparsedpError`, exit code 2) and never read as if it held nothing.
The check runs once per process for each state of the file (its size and modification time,
and its write-ahead log's), so a command that reads the file several times pays for it once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sparsedp.api.errors import SparsedpError
from sparsedp.store import ResultStore
from sparsedp.store.check import INTACT, StoreFileError, inspect_store

_checked: dict[str, tuple[tuple, str]] = {}  # database path → (file signature, state)


def results_state(directory: str | os.PathLike[str]) -> str:
    """``new`` (no database), ``empty`` (no tables yet) or ``intact``; raises
    :class:`SparsedpError` (one line naming the file, exit code 2) for any other file."""
    path = Path(directory) / ResultStore.FILENAME
    key = os.path.abspath(path)
    signature = _signature(path)
    cached = _checked.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    try:
        state = inspect_store(directory).state
    except StoreFileError as exc:
        _checked.pop(key, None)
        raise SparsedpError(str(exc)) from None
    _checked[key] = (signature, state)
    return state


def has_stored_results(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds an intact results database with sparsedp's tables
    (False: none yet; :class:`SparsedpError` for a damaged or foreign one)."""
    return results_state(directory) == INTACT


@contextmanager
def read_store(directory: str | os.PathLike[str], missing: str) -> Iterator[ResultStore]:
    """The results database in ``directory``, checked, then opened read-only; ``missing``
    is the error's message when there is none yet (no file, or a file without tables)."""
    if not has_stored_results(directory):
        raise SparsedpError(missing)
    with ResultStore(directory, read_only=True) as store:
        yield store


def _signature(path: Path) -> tuple:
    """What changes whenever the database (or its write-ahead log) is written."""
    out: list[tuple[int, int, int] | None] = []
    for part in (path, path.with_name(path.name + "-wal")):
        try:
            st = part.stat()
        except OSError:
            out.append(None)
            continue
        out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)
