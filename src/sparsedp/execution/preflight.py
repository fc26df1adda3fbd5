"""Checks made before a run starts any trial or stores anything (docs/faults.md).

Each check raises :class:`PreflightError` with one line: what is wrong, where, how to fix it.
:func:`prepare_results_dir` comes first (the run lock lives in the results directory);
:func:`preflight` checks the rest: every data set the experiment needs, the parts plugins
define (:mod:`.part_checks`), the device, and the backend. The results database itself is
checked by :mod:`sparsedp.store.check` (read-only), then :func:`check_database_writable`
proves that it takes a write.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from pathlib import Path

from sparsedp.data import DataError, load_dataset
from sparsedp.execution.part_checks import PartError, check_parts
from sparsedp.specs import ExperimentSpec
from sparsedp.training import get_workload

MIN_FREE_MIB = 32  # room a run needs in its results directory (trials, saliency cache, report)


class PreflightError(Exception):
    """The environment cannot run the experiment; the message is one line."""


def prepare_results_dir(path: Path) -> list[Path]:
    """Create ``path`` if needed and check it takes files and has room.

    Returns the directories it created (deepest last), so a failed start can remove them.
    """
    created = _make_dirs(path)
    probe = path / f".sparsedp-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        remove_created(created)
        raise PreflightError(
            f"results directory {path} is not writable ({exc.strerror or exc}); "
            "make it writable or set `results` in the experiment file to another directory"
        ) from exc
    finally:
        with contextlib.suppress(OSError):  # e.g. a read-only file system, reported above
            probe.unlink(missing_ok=True)
    free = shutil.disk_usage(path).free // 2**20
    if free < MIN_FREE_MIB:
        remove_created(created)
        raise PreflightError(
            f"results directory {path} has {free} MiB free, less than the {MIN_FREE_MIB} MiB "
            "a run needs; free some space or set `results` to a directory on another disk"
        )
    return created


def check_database_writable(path: Path) -> str:
    """Prove that an existing results database at ``path`` takes a write: one committed
    transaction that rewrites the file's ``user_version`` with its own value (a real write
    through SQLite, to the file or its write-ahead log; no table changes). A read-only or
    immutable (``chattr +i``) file fails here, before any trial. Call it only after the
    read-only check (:func:`sparsedp.store.check.check_store`): nothing is written to a
    damaged file. A missing file is fine (the directory took a file in
    :func:`prepare_results_dir`)."""
    if not path.exists():
        return f"results database {path}: new, its directory takes files"
    fix = ("make it writable (`chmod u+w`; an immutable file: `chattr -i`), or set `results` "
           "in the experiment file to another directory")
    try:
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30,
                             isolation_level=None)
    except sqlite3.Error as exc:
        raise PreflightError(f"results database {path} cannot be opened for writing ({exc}); "
                             f"{fix}") from exc
    try:
        db.execute("BEGIN IMMEDIATE")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        db.execute(f"PRAGMA user_version = {version}")
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise PreflightError(f"results database {path} is not writable ({exc}); {fix}") \
            from exc
    finally:
        db.close()
    return f"results database {path}: takes writes"


def _make_dirs(path: Path) -> list[Path]:
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    if current.exists() and not current.is_dir():
        raise PreflightError(
            f"results directory {path} cannot be created: {current} is a file, not a "
            "directory; set `results` in the experiment file to a directory path"
        )
    created: list[Path] = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            remove_created(created)
            raise PreflightError(
                f"results directory {path} cannot be created ({exc.strerror or exc} at "
                f"{folder}); set `results` in the experiment file to a writable directory"
            ) from exc
        created.append(folder)
    return created


def remove_created(created: list[Path]) -> None:
    """Remove directories a failed start created, if they are still empty."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return


def preflight(spec: ExperimentSpec) -> list[str]:
    """Check data, device and backend; returns one line per check that passed."""
    lines = [check_data(name, spec) for name in datasets_of(spec)]
    try:
        lines += check_parts(spec)  # plugin models fit their data, train, have prunable weights
    except (PartError, DataError) as exc:
        raise PreflightError(str(exc)) from exc
    lines.append(check_device(spec.engine.device))
    lines.append(check_backend(spec.engine.backend))
    return lines


def datasets_of(spec: ExperimentSpec) -> list[str]:
    """The data sets the experiment's workloads train on, in order of first use."""
    names: list[str] = []
    for workload in spec.workloads:
        dataset = get_workload(workload).dataset
        if dataset not in names:
            names.append(dataset)
    return names


def check_data(name: str, spec: ExperimentSpec) -> str:
    """The data set is found, decodes, and has the expected sizes (and class balance)."""
    try:
        dataset = load_dataset(name, spec.data_dir)
    except DataError as exc:
        where = f"`data_dir` in {spec.path}" if spec.data_dir is not None else "--data-dir"
        raise PreflightError(f"data: {str(exc).replace('--data-dir', where)}") from exc
    except OSError as exc:
        raise PreflightError(f"data: cannot read {name} ({exc}); check `data_dir`") from exc
    n_train, n_test = len(dataset.train_labels), len(dataset.test_labels)
    return f"data {dataset.label}: {n_train:,} train / {n_test:,} test from {dataset.source}"


def check_device(device: str, setting: str = "[engine] device =") -> str:
    """The device exists and computes (a tiny tensor operation on it)."""
    import torch

    fix = f'set {setting} "cpu" or use a machine (and PyTorch build) with that GPU'
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise PreflightError(f"unknown device {device!r} ({exc}); use cpu, cuda or cuda:N") \
            from exc
    if dev.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise PreflightError(
                f"device {device!r}: this PyTorch ({torch.__version__}) is built without "
                f"CUDA; {fix}"
            )
        count = torch.cuda.device_count()
        if count == 0:
            raise PreflightError(f"device {device!r}: no CUDA GPU is visible; {fix}")
        if dev.index is not None and dev.index >= count:
            raise PreflightError(
                f"device {device!r}: only {count} GPU(s) visible (cuda:0..cuda:{count - 1}); "
                f"{fix}"
            )
    try:
        value = (torch.arange(4.0, device=dev) * 2).sum().item()
    except Exception as exc:  # any failure of the device itself
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PreflightError(f"device {device!r} does not work ({first}); {fix}") from exc
    if value != 12.0:
        raise PreflightError(f"device {device!r} computes wrong results (2·(0+1+2+3) = {value})")
    return f"device {device}: works"


def check_backend(backend: str) -> str:
    """The backend can start (Ray: importable, and a cluster started or joined)."""
    if backend != "ray":
        return "backend local"
    try:
        import ray
    except ImportError as exc:
        raise PreflightError(
            "backend 'ray' needs Ray: pip install 'sparsedp[ray]' (or set [engine] backend = "
            '"local")'
        ) from exc
    from sparsedp.execution.backends.ray_cluster import connect  # the backend's own start or join

    try:
        connect(ray)
    except Exception as exc:  # Ray raises many kinds (ConnectionError, RuntimeError, …)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PreflightError(f"backend 'ray': {first}") from exc
    return "backend ray: connected"
