"""An experiment for scripts and notebooks: load, run, read its trials, analyse, report.

``sparsedp run``, ``status``, ``export`` and ``report`` are thin layers over
:class:`Experiment`; problems a user can fix raise :class:`~sparsedp.api.SparsedpError`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pandas as pd

from sparsedp.analysis import Analysis, analyze
from sparsedp.analysis.adequacy import study_adequacy
from sparsedp.analysis.censoring import Outcomes, trial_outcomes
from sparsedp.analysis.edges import edge_hits
from sparsedp.api.batch_science import FIGURE_FORMATS, write_batch_science
from sparsedp.api.errors import (
    EXIT_BUSY,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_STOPPED,
    RunInterrupted,
    SparsedpError,
    Terminated,
)
from sparsedp.api.events import ChecksPassed, RunEvent, typed_event
from sparsedp.api.repeats import RepeatEvent, RepeatResult, repeat_experiment
from sparsedp.api.reporting import report_context
from sparsedp.api.status import METAPARAMETERS, STATUSES, ExperimentStatus, RunResult, StudyStatus
from sparsedp.api.stored import has_stored_results, read_store
from sparsedp.execution import runner
from sparsedp.execution.backends.contract import WorkerDataError
from sparsedp.execution.failures import RunStopped
from sparsedp.execution.preflight import (
    PreflightError,
    check_database_writable,
    preflight,
    prepare_results_dir,
    remove_created,
)
from sparsedp.execution.runlock import RunLock, RunLockBusy
from sparsedp.execution.trial_checkpoints import INFLIGHT, saved_trials
from sparsedp.plugins import PluginError
from sparsedp.report import FindingSource, Section, write_report
from sparsedp.report.mask_findings import mask_health_source
from sparsedp.report.probes import probe_findings, probe_section, probed_trials
from sparsedp.report.refinement import refine_findings, refine_section
from sparsedp.specs import ExperimentFileError, ExperimentSpec, StudySpec, load_experiment
from sparsedp.specs.loader import ExperimentLoader
from sparsedp.store import ResultStore, repeats_frame, trials_frame
from sparsedp.store.check import StoreFileError, check_store

DICT_SOURCE = "experiment dict"  # how errors name an experiment given as a dict


class Experiment:
    """An experiment grid (workloads × sparsities × batch sizes) and its stored results.

    Build one with :meth:`from_file` or :meth:`from_dict`; ``spec`` is the validated
    :class:`~sparsedp.specs.ExperimentSpec`.
    """

    def __init__(self, spec: ExperimentSpec, source: str | None = None) -> None:
        self.spec = spec
        self.source = source  # the file as given, or None for an experiment built from a dict

    def __repr__(self) -> str:
        where = self.source or DICT_SOURCE
        return (f"Experiment({self.name!r} from {where}: {len(self.studies())} studies × "
                f"{self.spec.trials} trials, results in {self.results_dir})")

    # ------------------------------------------------------------------ building

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, plugins: Sequence[str] = ()
                  ) -> Experiment:
        """Read and validate an experiment TOML file (docs/experiment-file.md), importing
        its ``plugins``, those given here and the installed ones (docs/plugins.md).

        Raises :class:`SparsedpError` (exit code 2) naming file, line, key and fix, or the
        plugin and what is wrong with it.
        """
        try:
            spec = load_experiment(path, plugins=tuple(plugins))
        except (ExperimentFileError, PluginError) as exc:
            raise SparsedpError(str(exc)) from exc
        return cls(spec, source=str(path))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *,
                  base_dir: str | os.PathLike[str] | None = None,
                  plugins: Sequence[str] = ()) -> Experiment:
        """Validate ``doc``, the experiment file's tables as a dict (same keys, same rules).

        Relative ``results`` and ``data_dir`` resolve against ``base_dir`` (default: the
        current directory), where the file's would resolve against its directory, and
        plugin modules are also looked for there. Errors
        raise :class:`SparsedpError` naming the key path, e.g. ``experiment dict:
        engine.device: unknown value 'gpu'; use one of …``. Tuples are taken as lists and
        paths as strings.
        """
        if not isinstance(doc, Mapping):
            raise SparsedpError(f"{DICT_SOURCE}: expected a dict of the experiment file's "
                                f"keys, got {type(doc).__name__}")
        base = Path(base_dir if base_dir is not None else Path.cwd()).expanduser().resolve()
        loader = ExperimentLoader(base / DICT_SOURCE, DICT_SOURCE, "", tuple(plugins))
        try:
            spec = loader.load(_plain(doc))
        except (ExperimentFileError, PluginError) as exc:
            raise SparsedpError(str(exc)) from exc
        return cls(spec)

    # ------------------------------------------------------------------ what it is

    @property
    def name(self) -> str:
        """The experiment's name (it names the results directory by default)."""
        return self.spec.name

    @property
    def results_dir(self) -> Path:
        """Where the results database, caches and the default report live."""
        return self.spec.results_dir

    def studies(self) -> list[StudySpec]:
        """Every study of the grid, ordered workloads × sparsities × batch sizes."""
        return self.spec.studies()

    # ------------------------------------------------------------------ running

    def run(self, *, workers: int | None = None, retry_failed: bool = False,
            on_event: Callable[[RunEvent], None] | None = None,
            _checks: Callable[[ExperimentSpec], list[str]] = preflight) -> RunResult:
        """Check the environment, then run every missing trial, storing each as it ends.

        ``workers`` overrides the file's; ``retry_failed`` runs trials stored as failed
        again; ``on_event`` receives the :mod:`~sparsedp.api.events` as they happen (e.g.
        :func:`~sparsedp.api.print_progress`). Rerunning resumes: only missing trials run.
        Raises :class:`SparsedpError` when a check fails (exit code 2, nothing stored),
        another run holds the results directory (5), or the run stops early (4, the stored
        trials are kept); :class:`RunInterrupted` on Ctrl-C or SIGTERM. Trials stored as
        failed or still missing are counted in the result, not raised.
        """
        spec = self.spec
        emit = on_event or (lambda event: None)
        created = _user_error(prepare_results_dir, spec.results_dir)
        lock = RunLock(spec.results_dir)
        try:
            lock.acquire()
        except RunLockBusy as exc:
            raise SparsedpError(str(exc), EXIT_BUSY) from None
        try:
            try:
                checked = [*_checks(spec), check_store(spec.results_dir),
                           check_database_writable(spec.results_dir / ResultStore.FILENAME)]
            except (PreflightError, StoreFileError) as exc:
                lock.release()
                if created:  # leave nothing behind that this start made
                    lock.path.unlink(missing_ok=True)
                    remove_created(created)
                raise SparsedpError(str(exc)) from None
            emit(ChecksPassed(spec.name, len(spec.studies()), spec.trials, spec.results_dir,
                              tuple(checked)))
            return self._run_checked(workers, retry_failed, emit)
        finally:
            lock.release()

    def _run_checked(self, workers: int | None, retry_failed: bool,
                     emit: Callable[[RunEvent], None]) -> RunResult:
        """The run itself, after the checks; every way it can stop is a SparsedpError."""
        spec = self.spec
        stored = [0]

        def translate(event: runner.RunEvent) -> None:
            if event.kind == "trial":
                stored[0] += 1
            typed = typed_event(event)
            if typed is not None:
                emit(typed)

        started = time.perf_counter()
        database = spec.results_dir / ResultStore.FILENAME
        kept = "the trials stored so far are kept; run the same command again to finish"
        done = "run stopped after storing"
        try:
            with ResultStore(spec.results_dir) as store:
                summary = runner.run_experiment(spec, store, workers=workers,
                                                retry_failed=retry_failed, on_event=translate)
                failed, missing = _unfinished(spec, store)
        except KeyboardInterrupt as exc:
            name, code = ("SIGTERM", EXIT_SIGTERM) if isinstance(exc, Terminated) else \
                ("Ctrl-C", EXIT_SIGINT)
            raise RunInterrupted(f"interrupted by {name} after storing {_trials(stored[0])}; "
                                 f"the trials in flight were dropped, {kept}", code) from None
        except RunStopped as exc:
            raise SparsedpError(f"{done} {_trials(stored[0])}: {exc}; nothing of the failing "
                                f"trials was stored, {kept}", EXIT_STOPPED) from None
        except WorkerDataError as exc:  # the data was there at the checks, a worker lost it
            raise SparsedpError(f"{done} {_trials(stored[0])}: {exc}; fix the data there, "
                                f"{kept}", EXIT_STOPPED) from None
        except sqlite3.Error as exc:
            raise SparsedpError(f"{done} {_trials(stored[0])}: cannot write the results "
                                f"database {database} ({exc}); fix that (e.g. free space), "
                                f"{kept}", EXIT_STOPPED) from None
        except OSError as exc:  # a write of the store, a cache file, or the backend failed
            raise SparsedpError(f"{done} {_trials(stored[0])}: {exc}; fix that (e.g. free "
                                f"space), {kept}", EXIT_STOPPED) from None
        return RunResult(planned=summary.planned, finished=summary.finished,
                         failed_attempts=summary.failed_attempts,
                         statuses=dict(summary.statuses), failed=failed, missing=missing,
                         elapsed_s=time.perf_counter() - started)

    def repeat(self, seeds: int = 5, *, workers: int | None = None,
               on_event: Callable[[RepeatEvent], None] | None = None,
               _checks: Callable[[ExperimentSpec], list[str]] = preflight) -> RepeatResult:
        """Train each study's best metaparameters again with seeds ``1 … seeds`` (new
        initialisation, mask and batch order; docs/analysis.md, "Seed repeats"), after
        :meth:`run`. Stored apart from the search; running again adds only the missing
        repeats. Studies whose search is unfinished wait (``unfinished``, exit code 4).
        ``on_event`` receives :class:`RepeatEvent` (``format_repeat_event`` gives its line).
        Errors as :meth:`run`'s."""
        return repeat_experiment(self.spec, seeds, workers=workers, on_event=on_event,
                                 checks=_checks, source=self.source)

    # ------------------------------------------------------------------ reading results

    def has_results(self) -> bool:
        """Whether a results database exists (a run has started at least once)."""
        return (self.results_dir / ResultStore.FILENAME).exists()

    def _no_results(self) -> str:
        how = (f"run `sparsedp run {self.source}` first" if self.source
               else "run it first (Experiment.run())")
        return f"no results yet for {self.name} in {self.results_dir}: {how}"

    def _require_results(self) -> None:
        """Raise :class:`SparsedpError` unless an intact results database is stored (a
        damaged or foreign one: one line naming the file; api/stored.py)."""
        if not has_stored_results(self.results_dir):
            raise SparsedpError(self._no_results())

    def _read(self) -> AbstractContextManager[ResultStore]:
        """The results database, checked (api/stored.py), opened read-only."""
        return read_store(self.results_dir, self._no_results())

    def trials(self, *, all_studies: bool = False) -> pd.DataFrame:
        """Stored trials, one row per trial (columns: docs/python-api.md), in study order.

        Only the studies of the experiment as configured now, unless ``all_studies`` adds
        those of earlier configurations (column ``current`` tells them apart). Raises
        :class:`SparsedpError` when nothing has run yet.
        """
        keys = {study.key for study in self.studies()}
        with self._read() as store:
            return trials_frame(store, self.name, study_keys=keys, all_studies=all_studies)

    def repeats(self) -> pd.DataFrame:
        """Stored seed repeats of the current studies, one row each (columns:
        docs/python-api.md); empty before :meth:`repeat`."""
        keys = {study.key for study in self.studies()}
        with self._read() as store:
            return repeats_frame(store, self.name, study_keys=keys)

    def status(self, *, _best_of: Callable[[list[dict]], dict[str, dict]] | None = None
               ) -> ExperimentStatus:
        """Per study: trials done, counts by status, best steps and its metaparameters.

        Raises :class:`SparsedpError` when nothing has run yet.
        """
        best_of = _best_of or runner.best_per_study
        studies = self.studies()
        keys = {study.key for study in studies}
        with self._read() as store:
            linked = store.trial_rows(self.name, all_studies=True)
        rows = [row for row in linked if row["study_key"] in keys]
        search = [row for row in rows if (row.get("stage") or "search") == "search"]
        best = best_of(search)  # the paper's protocol: the search's trials
        refined_best = best_of(rows)
        by_study: dict[str, list[dict]] = {}
        for row in search:
            by_study.setdefault(row["study_key"], []).append(row)
        outcomes = _study_outcomes(search)
        out = []
        for study in studies:
            trials = by_study.get(study.key, [])
            counts = {s: sum(1 for t in trials if t["status"] == s) for s in STATUSES}
            top = best.get(study.key)
            adequacy = study_adequacy(outcomes[study.key]) if study.key in outcomes else None
            refined = sum(1 for r in rows if r["study_key"] == study.key) - len(trials)
            top_all = refined_best.get(study.key)
            out.append(StudyStatus(
                study=study, done=len(trials), counts=counts,
                best_steps=None if top is None else int(top["steps_to_result"]),
                best_trial=None if top is None else int(top["trial_index"]),
                best_metaparameters={} if top is None else
                {k: top[k] for k in METAPARAMETERS if top[k] is not None},
                edges=[] if top is None else edge_hits(top, study.space()),
                converged=bool(adequacy and adequacy.converged),
                adequacy_note=adequacy.reason if adequacy else "no trials yet",
                refined=refined,
                refined_best_steps=None if not refined or top_all is None
                else int(top_all["steps_to_result"]),
            ))
        earlier = [row["study_key"] for row in linked if row["study_key"] not in keys]
        saved: dict[str, list[tuple[int, int]]] = {}
        stored = {(row["study_key"], int(row["trial_index"])) for row in search}
        for trial in saved_trials(self.spec.results_dir / "cache" / INFLIGHT):
            # a save of a stored trial (copied as it ended) is never continued: not unfinished
            if trial.study_key in keys and (trial.study_key, trial.trial_index) not in stored:
                saved.setdefault(trial.study_key, []).append((trial.trial_index, trial.step))
        return ExperimentStatus(self.name, self.spec.trials, out, len(earlier), len(set(earlier)),
                                saved)

    def export(self, out: str | os.PathLike[str] | None = None, *, format: str = "csv",
               all_studies: bool = False) -> tuple[Path, pd.DataFrame]:
        """Write :meth:`trials` as ``csv`` or ``parquet`` (default path
        ``<results>/trials.<format>``), or in Shallue et al.'s ``batch-science`` layout (a
        new or empty folder, default ``<results>/batch-science``; docs/batch-science.md);
        returns the path and the table written."""
        if format not in ("csv", "parquet", "batch-science"):
            raise SparsedpError(f"export format {format!r}: use 'csv', 'parquet' or "
                                "'batch-science'")
        if format == "batch-science":
            if all_studies:
                raise SparsedpError("all_studies does not apply to the batch-science format "
                                    "(one folder per study cell); export the current "
                                    "configuration")
            frame = self.trials()
            return write_batch_science(self.spec, out), frame
        frame = self.trials(all_studies=all_studies)
        path = Path(out) if out else self.results_dir / f"trials.{format}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if format == "csv":
            frame.to_csv(path, index=False)
        else:
            try:
                frame.to_parquet(path, index=False)
            except ImportError as exc:
                raise SparsedpError(
                    "parquet export needs pyarrow: pip install 'sparsedp[parquet]'") from exc
        return path, frame

    # ------------------------------------------------------------------ analysis

    def analyze(self, *, n_resamples: int = 200, **options: Any) -> Analysis:
        """Best trials, curves, fits of ``S(B) = S_min·(1 + B_crit/B)`` with bootstrap
        intervals, regimes and sparse/dense ratios of the current trials (docs/analysis.md;
        ``options``: those of :func:`sparsedp.analysis.analyze`). Stored seed repeats are
        included (``seed_spread``; ratio intervals over trials and seeds)."""
        frame = search_stage(self.trials())
        if frame.empty:
            raise SparsedpError(f"{self.name} has no finished trials yet in {self.results_dir}")
        options.setdefault("repeats", self.repeats())
        return analyze(frame, n_resamples=n_resamples, **options)

    def report(self, out: str | os.PathLike[str] | None = None, *, bootstrap: int = 200,
               formats: Sequence[str] = ("png", "svg"),
               trials: pd.DataFrame | None = None,
               finding_sources: Sequence[FindingSource] = (),
               sections: Sequence[Section] = ()) -> Path:
        """Write the HTML report, ``summary.json`` and ``figures/`` to ``out`` (default
        ``<results>/report``); returns the path of ``report.html``.

        ``bootstrap``: resamples for the confidence intervals; ``formats``: figure files
        written beside the page (png, svg, pdf); ``trials``: the table to report (default
        :meth:`trials`); ``finding_sources`` and ``sections`` add findings and parts to the
        page (docs/report.md, "Adding findings and sections"). Stored seed repeats and the
        studies' search ranges add error bars, seed-inclusive intervals and edge warnings.
        """
        unknown = set(formats) - set(FIGURE_FORMATS)
        if unknown:
            raise SparsedpError(f"formats: unknown format(s) {', '.join(sorted(unknown))}; "
                                "use png, svg or pdf")
        self._require_results()
        everything = self.trials() if trials is None else trials
        frame = search_stage(everything)  # the paper's protocol; refinement beside it
        if len(frame) < len(everything):
            sections = [*sections, refine_section(everything, bootstrap)]
            finding_sources = [*finding_sources, refine_findings(everything, bootstrap)]
        if frame.empty:
            raise SparsedpError(f"{self.name} has no finished trials yet in {self.results_dir}")
        config, provenance, notes = report_context(self.spec, self.studies())
        with self._read() as store:  # a warning per curve whose trials' masks are unhealthy
            finding_sources = [*finding_sources, mask_health_source(
                store.trial_rows(self.name), {s.key for s in self.studies()})]
        where = Path(out) if out else self.results_dir / "report"
        probed = probed_trials(self.probe_results(), {s.key: s for s in self.studies()})
        if probed:  # `sparsedp probe` results: predictions next to the fits, and figures
            finding_sources = [probe_findings(probed), *finding_sources]
            sections = [probe_section(probed), *sections]
        return write_report(frame, where, experiment_config=config, provenance=provenance,
                            engine_notes=notes, analysis_options={"n_resamples": bootstrap},
                            formats=tuple(formats), finding_sources=finding_sources,
                            sections=sections, repeats=self.repeats(),
                            search_spaces={s.key: s.space() for s in self.studies()})

    def probe(self, **options: Any) -> list[dict[str, Any]]:
        """Measure the gradient noise scale and Lipschitz smoothness along each sparsity's
        best trial and store them (``sparsedp probe``; options and rows: docs/probes.md and
        :func:`sparsedp.api.probe.probe_experiment`); returns :meth:`probe_results`."""
        from sparsedp.api.probe import probe_experiment  # loads the probe machinery lazily

        return probe_experiment(self, **options)

    def probe_results(self) -> list[dict[str, Any]]:
        """Stored ``sparsedp probe`` measurements of this experiment's studies: one dict per
        (study, trial, kind, step) with ``value``, ``low``/``high`` and ``detail``
        (docs/probes.md); [] before any probe ran."""
        if not has_stored_results(self.results_dir):  # a damaged file raises
            return []
        with self._read() as store:
            return store.probe_rows({s.key for s in self.studies()})


# --------------------------------------------------------------------------- helpers


def _plain(value: Any) -> Any:
    """A dict from Python as TOML would give it: tuples as lists, paths as strings."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _user_error(check: Callable[..., Any], *args: Any) -> Any:
    try:
        return check(*args)
    except PreflightError as exc:
        raise SparsedpError(str(exc)) from None


def _trials(n: int) -> str:
    return f"{n} trial{'' if n == 1 else 's'}"


def _unfinished(spec: ExperimentSpec, store: ResultStore) -> tuple[int, int]:
    """(trials stored as failed, trials with no stored result) of the experiment."""
    failed = missing = 0
    for study in spec.studies():
        done = store.finished_trials(study.key)
        failed += sum(1 for i, s in done.items() if i < spec.trials and s == "failed")
        missing += sum(1 for i in range(spec.trials) if i not in done)
    return failed, missing


def _study_outcomes(rows: list[dict]) -> dict[str, Outcomes]:
    """Study key → its trials as :class:`~sparsedp.analysis.censoring.Outcomes`."""
    if not rows:
        return {}
    frame = pd.DataFrame.from_records(rows, columns=["study_key", "status", "steps_to_result",
                                                     "steps_taken"])
    return {key: trial_outcomes(group) for key, group in frame.groupby("study_key")}


def search_stage(trials: pd.DataFrame) -> pd.DataFrame:
    """The search's trials (the paper's protocol), without the refinement stage's."""
    if "stage" not in trials:
        return trials
    return trials[trials["stage"].fillna("search") == "search"].reset_index(drop=True)
