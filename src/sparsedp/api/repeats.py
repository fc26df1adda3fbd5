"""Seed repeats for scripts: train each study's best metaparameters again with more seeds.

:meth:`sparsedp.Experiment.repeat` (and ``sparsedp repeat``) call :func:`repeat_experiment`;
the seeds, storage and resumption are :mod:`sparsedp.repeats.run`'s, the analysis
:mod:`sparsedp.analysis.repeats`'s (docs/analysis.md, "Seed repeats").
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sparsedp.api.errors import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_STOPPED,
    EXIT_TRIALS_FAILED,
    RunInterrupted,
    SparsedpError,
    Terminated,
)
from sparsedp.api.stored import has_stored_results
from sparsedp.execution.backends.contract import WorkerDataError
from sparsedp.execution.failures import RunStopped
from sparsedp.execution.preflight import (
    PreflightError,
    check_database_writable,
    prepare_results_dir,
)
from sparsedp.execution.runlock import RunLock, RunLockBusy
from sparsedp.repeats.run import MAX_REPEATS, RepeatEvent, run_repeats
from sparsedp.specs import ExperimentSpec
from sparsedp.store import ResultStore
from sparsedp.store.check import StoreFileError, check_store

__all__ = ["MAX_REPEATS", "RepeatEvent", "RepeatResult", "format_repeat_event",
           "repeat_experiment"]


@dataclass(frozen=True)
class RepeatResult:
    """What one :meth:`~sparsedp.Experiment.repeat` did."""

    seeds: int  # repeats asked for per study
    planned: int  # repeats that were missing when it started
    finished: int  # repeats stored by this call
    failed_attempts: int
    statuses: dict[str, int]  # stored repeats of this call by status
    skipped: list[str] = field(default_factory=list)  # studies without a result to repeat
    unfinished: list[str] = field(default_factory=list)  # studies whose search is not done
    elapsed_s: float = 0.0

    @property
    def exit_code(self) -> int:
        """``sparsedp repeat``'s exit code: 0 done, 4 some studies' searches are not
        finished (their repeats wait), 3 some repeats are stored as failed."""
        if self.unfinished:
            return EXIT_STOPPED
        return EXIT_TRIALS_FAILED if self.statuses.get("failed") else EXIT_OK

    def describe(self) -> str:
        """One line, e.g. ``ran 12 of 12 missing repeats in 40 s (12 complete)``."""
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) or "nothing"
        return (f"ran {self.finished} of {self.planned} missing repeats in "
                f"{self.elapsed_s:.0f} s ({counts})")


def format_repeat_event(event: RepeatEvent) -> str | None:
    """The line ``sparsedp repeat`` prints for ``event`` (None: nothing to print)."""
    if event.kind == "plan":
        return f"{event.total} repeats to run"
    if event.kind == "skip" and event.study is not None:
        return f"study {event.study.label}: no repeats ({event.message})"
    if event.kind == "repeat" and event.record is not None and event.study is not None:
        r = event.record
        steps = r.steps_to_result if r.steps_to_result is not None else "-"
        return (f"  [{event.done}/{event.total}] {event.study.label} repeat {event.repeat:>2} "
                f"{r.status:<10} steps {steps!s:>6}  ({r.wall_time:.1f} s)")
    if event.kind == "failure" and event.study is not None:
        return f"  {event.study.label} repeat {event.repeat} failed: {event.message}"
    return None


def repeat_experiment(
    spec: ExperimentSpec,
    seeds: int,
    *,
    workers: int | None = None,
    on_event: Callable[[RepeatEvent], None] | None = None,
    checks: Callable[[ExperimentSpec], list[str]],
    source: str | None = None,
) -> RepeatResult:
    """Check, lock the results directory, and run the missing repeats ``1 … seeds`` of
    every study whose search has finished. Errors as :meth:`~sparsedp.Experiment.run`'s."""
    if not 1 <= seeds <= MAX_REPEATS:
        raise SparsedpError(f"seeds {seeds}: use 1 to {MAX_REPEATS}", EXIT_BAD_INPUT)
    if not has_stored_results(spec.results_dir):  # a damaged file: one line (api/stored.py)
        how = f"run `sparsedp run {source}` first" if source else "run it first (Experiment.run())"
        raise SparsedpError(f"no results yet for {spec.name} in {spec.results_dir}: {how}")
    try:
        prepare_results_dir(spec.results_dir)
    except PreflightError as exc:
        raise SparsedpError(str(exc)) from None
    lock = RunLock(spec.results_dir)
    try:
        lock.acquire()
    except RunLockBusy as exc:
        raise SparsedpError(str(exc), EXIT_BUSY) from None
    try:
        try:
            checks(spec)
            check_store(spec.results_dir)
            check_database_writable(spec.results_dir / ResultStore.FILENAME)
        except (PreflightError, StoreFileError) as exc:
            raise SparsedpError(str(exc)) from None
        return _run(spec, seeds, workers, on_event)
    finally:
        lock.release()


def _run(spec: ExperimentSpec, seeds: int, workers: int | None,
         on_event: Callable[[RepeatEvent], None] | None) -> RepeatResult:
    stored = [0]

    def count(event: RepeatEvent) -> None:
        if event.kind == "repeat":
            stored[0] += 1
        if on_event is not None:
            on_event(event)

    kept = "the repeats stored so far are kept; run the same command again to finish"
    started = time.perf_counter()
    try:
        with ResultStore(spec.results_dir) as store:
            summary = run_repeats(spec, store, seeds, workers=workers, on_event=count)
    except KeyboardInterrupt as exc:
        name, code = ("SIGTERM", EXIT_SIGTERM) if isinstance(exc, Terminated) else \
            ("Ctrl-C", EXIT_SIGINT)
        raise RunInterrupted(f"interrupted by {name} after storing {stored[0]} repeats; "
                             f"{kept}", code) from None
    except (RunStopped, WorkerDataError, sqlite3.Error, OSError) as exc:
        raise SparsedpError(f"repeats stopped after storing {stored[0]}: {exc}; {kept}",
                            EXIT_STOPPED) from None
    return RepeatResult(seeds=seeds, planned=summary.planned, finished=summary.finished,
                        failed_attempts=summary.failed_attempts,
                        statuses=dict(summary.statuses), skipped=list(summary.skipped),
                        unfinished=list(summary.unfinished),
                        elapsed_s=time.perf_counter() - started)
