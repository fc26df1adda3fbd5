"""Shallue et al.'s released-data layout (google-research/batch_science), and reports on a
results directory without its experiment file (e.g. imported results).

``Experiment.export(format="batch-science")`` writes the layout, :func:`import_batch_science`
reads it into a results directory, :func:`report_results` reports on one. The layout and
the field-by-field decisions: docs/batch-science.md.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sparsedp.api.errors import EXIT_BUSY, SparsedpError
from sparsedp.api.stored import read_store
from sparsedp.execution.provenance import provenance as current_provenance
from sparsedp.execution.runlock import RunLock, RunLockBusy
from sparsedp.report import FindingSource, Section, write_report
from sparsedp.search.space import SearchSpace
from sparsedp.specs import ExperimentSpec
from sparsedp.store import ResultStore, repeats_frame, trials_frame
from sparsedp.store.batch_science import (
    METRIC,
    BatchScienceError,
    export_batch_science,
    search_space_of,
)
from sparsedp.store.batch_science_import import read_layout, store_layout
from sparsedp.store.check import StoreFileError, check_store

__all__ = ["METRIC", "ImportResult", "import_batch_science", "report_results",
           "write_batch_science"]

FIGURE_FORMATS = ("png", "svg", "pdf")
_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_batch_science` stored."""

    results_dir: Path
    name: str  # the experiment's name in the results database
    studies: int
    trials: int
    skipped: tuple[str, ...] = ()  # entries of the source that are not part of the layout

    def describe(self) -> str:
        """One line, e.g. ``imported 40 trials of 4 studies into R as experiment bs``."""
        return (f"imported {self.trials} trials of {self.studies} studies into "
                f"{self.results_dir} as experiment {self.name}")


def write_batch_science(spec: ExperimentSpec, out: str | os.PathLike[str] | None) -> Path:
    """Write the current studies of ``spec`` in the layout under ``out`` (default
    ``<results>/batch-science``), which must be new or an empty folder; returns it."""
    path = Path(out) if out else spec.results_dir / "batch-science"
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SparsedpError(f"{path} exists and is not an empty folder; give a new output "
                            "folder")
    studies = spec.studies()
    with read_store(spec.results_dir, f"no results yet for {spec.name} in "
                    f"{spec.results_dir}") as store:  # checked: api/stored.py
        try:
            export_batch_science(store, spec.name, path, study_keys={s.key for s in studies},
                                 spaces={s.key: s.space() for s in studies})
        except BatchScienceError as exc:
            raise SparsedpError(str(exc)) from None
    return path


def import_batch_science(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    goal: float | None = None,
    metric: str = METRIC,
) -> ImportResult:
    """Read the layout under ``source`` (sparsedp's export, Shallue et al.'s released data,
    another tool's) into the results directory ``out`` as the new experiment ``name``
    (default: the source folder's name). ``goal``: the target of ``metric`` (a
    ``measurements.csv`` column) for studies whose ``study.json`` names none (Shallue et
    al.'s name none).

    Every file is read and checked before anything is written; then one transaction stores
    it all, so the import commits completely or leaves ``out`` as it was. An import never
    replaces: an experiment name, study or trial ``out`` holds already is refused. Raises
    :class:`SparsedpError` (exit code 2) for a layout it cannot use or such a clash, (5)
    while a run holds ``out``. Entries of ``source`` that are not part of the layout are
    skipped and listed in :attr:`ImportResult.skipped`."""
    name = name or re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source).resolve().name)
    if not _NAME.fullmatch(name or ""):
        raise SparsedpError(f"name {name!r}: use letters, digits, '.', '_' and '-' only")
    if goal is not None and not 0 < goal < 1:
        raise SparsedpError(f"goal {goal:g}: expected an error rate in (0, 1)")
    try:
        layout = read_layout(source, goal=goal, metric=metric)
    except BatchScienceError as exc:
        raise SparsedpError(str(exc)) from None
    results = Path(out)
    new = _new_paths(results)
    try:
        check_store(results)
        results.mkdir(parents=True, exist_ok=True)
    except (StoreFileError, OSError) as exc:
        raise SparsedpError(str(exc)) from None
    lock = RunLock(results)
    try:
        lock.acquire()
    except RunLockBusy as exc:
        raise SparsedpError(str(exc), EXIT_BUSY) from None
    try:
        with ResultStore(results) as store:
            store_layout(store, name, layout)
    except BaseException as exc:
        _remove_new(new)  # what this failed import created, while it still holds the lock
        if isinstance(exc, BatchScienceError):
            raise SparsedpError(str(exc)) from None
        raise
    finally:
        lock.release()
    return ImportResult(results, name, len(layout.studies), len(layout.records),
                        layout.skipped)


def _new_paths(results: Path) -> list[Path]:
    """What an import into ``results`` may create that does not exist yet: the database (with
    its WAL files) when it is new, the lock file, then the new folders, deepest first."""
    names = [RunLock.FILENAME]
    if not (results / ResultStore.FILENAME).exists():
        names += [ResultStore.FILENAME + suffix for suffix in ("", "-wal", "-shm")]
    files = [results / n for n in names if not (results / n).exists()]
    return files + [p for p in (results, *results.parents) if not p.exists()]


def _remove_new(paths: list[Path]) -> None:
    """Remove what :func:`_new_paths` listed (a folder only while it is empty)."""
    for path in paths:
        try:
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass  # a folder someone else wrote to meanwhile: keep it


def report_results(
    results_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    bootstrap: int = 200,
    formats: Sequence[str] = ("png", "svg"),
    finding_sources: Sequence[FindingSource] = (),
    sections: Sequence[Section] = (),
) -> Path:
    """The report of experiment ``name`` (default: the only one) in ``results_dir``, without
    its experiment file: its studies as the database registered them last, their stored
    seed repeats, and the search spaces recorded for them (search-edge warnings). Written
    to ``out`` (default ``<results_dir>/report``); returns ``report.html``'s path."""
    unknown = set(formats) - set(FIGURE_FORMATS)
    if unknown:
        raise SparsedpError(f"formats: unknown format(s) {', '.join(sorted(unknown))}; "
                            "use png, svg or pdf")
    directory = Path(results_dir)
    missing = (f"{directory} holds no {ResultStore.FILENAME} with results; give an experiment "
               "file or a results directory")
    with read_store(directory, missing) as store:  # checked: api/stored.py
        names = store.experiment_names()
        chosen = name or (names[0] if len(names) == 1 else None)
        if chosen not in names:
            raise SparsedpError(f"{directory} holds the experiments "
                                f"{', '.join(names) or 'none'}; choose one by its name")
        frame = trials_frame(store, chosen)
        repeats = repeats_frame(store, chosen)
        config = store.experiment_config(chosen) or {"name": chosen}
        spaces: dict[str, SearchSpace] = {}
        for row in store.study_rows(chosen):
            space = search_space_of(json.loads(row["spec_json"]))
            if space is not None:
                spaces[row["key"]] = space
    if frame.empty:
        raise SparsedpError(f"{chosen} has no trials in {directory}")
    where = Path(out) if out else directory / "report"
    return write_report(frame, where, experiment_config=config,
                        provenance={"report generated with": current_provenance("cpu")},
                        engine_notes={}, analysis_options={"n_resamples": bootstrap},
                        formats=tuple(formats), finding_sources=finding_sources,
                        sections=sections, repeats=repeats, search_spaces=spaces)
