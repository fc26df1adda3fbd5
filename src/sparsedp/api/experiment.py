"""An experiment for scripts and notebooks: load, run, read its trials, analyse, report.

``sparsedp run``, ``status``, ``export`` and ``report`` are thin layers over
:class:`Experiment`; problems a user can fix raise :class:`~sparsedp.api.SparsedpError`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sparsedp.analysis import Analysis, analyze
from sparsedp.analysis.edges import EdgeHit, edge_hits
from sparsedp.api.batch_science import FIGURE_FORMATS, write_batch_science
from sparsedp.api.errors import (
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
from sparsedp.api.events import (
    AttemptFailed,
    ChecksPassed,
    RunEvent,
    RunFinished,
    RunPlanned,
    StudyStarted,
    TrialFinished,
)
from sparsedp.api.repeats import RepeatEvent, RepeatResult, repeat_experiment
from sparsedp.experiment import (
    ExperimentFileError,
    ExperimentSpec,
    StudySpec,
    load_experiment,
    runner,
)
from sparsedp.experiment.contract import WorkerDataError
from sparsedp.experiment.failures import RunStopped
from sparsedp.experiment.preflight import (
    PreflightError,
    preflight,
    prepare_results_dir,
    remove_created,
)
from sparsedp.experiment.provenance import provenance as current_provenance
from sparsedp.experiment.runlock import RunLock, RunLockBusy
from sparsedp.experiment.spec import _Loader
from sparsedp.plugins import PluginError
from sparsedp.report import FindingSource, Section, write_report
from sparsedp.report.probes import probe_findings, probe_section, probed_trials
from sparsedp.store import ResultStore, repeats_frame, trials_frame
from sparsedp.store.check import StoreFileError, check_store

STATUSES = ("complete", "incomplete", "infeasible", "stopped", "failed")
"""Trial statuses, in the order tables show them."""
METAPARAMETERS = ("lr", "momentum", "decay_steps", "end_lr_factor")
DICT_SOURCE = "experiment dict"  # how errors name an experiment given as a dict


@dataclass(frozen=True)
class RunResult:
    """What one :meth:`Experiment.run` did, and what is still missing afterwards."""

    planned: int  # trials that were missing when the run started
    finished: int  # trials stored by this run
    failed_attempts: int
    statuses: dict[str, int]  # stored trials of this run by status
    failed: int  # trials of the experiment stored as failed (retry with retry_failed=True)
    missing: int  # trials of the experiment without a stored result
    elapsed_s: float

    @property
    def exit_code(self) -> int:
        """``sparsedp run``'s exit code for this outcome: 0 every trial has a result, 4 some
        are missing, 3 some are stored as failed."""
        if self.missing:
            return EXIT_STOPPED
        return EXIT_TRIALS_FAILED if self.failed else EXIT_OK

    def describe(self) -> str:
        """One line, e.g. ``ran 24 of 24 missing trials in 93 s (7 complete, 17 stopped);
        failed attempts: 0``."""
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) or "nothing"
        return (f"ran {self.finished} of {self.planned} missing trials in {self.elapsed_s:.0f} s "
                f"({counts}); failed attempts: {self.failed_attempts}")


@dataclass(frozen=True)
class StudyStatus:
    """Stored progress of one study: trials done, counts by status, its best trial."""

    study: StudySpec
    done: int
    counts: dict[str, int]  # every status of STATUSES, zero included
    best_steps: int | None
    best_trial: int | None
    best_metaparameters: dict[str, float] = field(default_factory=dict)
    edges: list[EdgeHit] = field(default_factory=list)  # best metaparameters at a range edge


@dataclass(frozen=True)
class ExperimentStatus:
    """What ``sparsedp status`` shows: every current study, and how many stored trials
    belong to studies of earlier configurations of the experiment."""

    name: str
    trials_per_study: int
    studies: list[StudyStatus]
    earlier_trials: int  # stored trials of studies of earlier configurations (kept)
    earlier_studies: int

    def to_frame(self) -> pd.DataFrame:
        """One row per study: workload, sparsity, batch_size, study_key, done, the status
        counts, best_steps, best_trial and the best trial's metaparameters."""
        rows = []
        for s in self.studies:
            rows.append({
                "workload": s.study.workload, "sparsity": s.study.sparsity,
                "batch_size": s.study.batch_size, "study_key": s.study.key, "done": s.done,
                **s.counts, "best_steps": s.best_steps, "best_trial": s.best_trial,
                **{k: s.best_metaparameters.get(k) for k in METAPARAMETERS},
            })
        frame = pd.DataFrame.from_records(rows)
        for column in ("best_steps", "best_trial"):
            if column in frame:
                frame[column] = frame[column].astype("Int64")
        return frame


class Experiment:
    """An experiment grid (workloads × sparsities × batch sizes) and its stored results.

    Build one with :meth:`from_file` or :meth:`from_dict`; ``spec`` is the validated
    :class:`~sparsedp.experiment.ExperimentSpec`.
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
        loader = _Loader(base / DICT_SOURCE, DICT_SOURCE, "", tuple(plugins))
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
                checked = [*_checks(spec), check_store(spec.results_dir)]
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
            typed = _typed(event)
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

    def _require_results(self) -> None:
        if not self.has_results():
            how = (f"run `sparsedp run {self.source}` first" if self.source
                   else "run it first (Experiment.run())")
            raise SparsedpError(f"no results yet for {self.name} in {self.results_dir}: {how}")

    def trials(self, *, all_studies: bool = False) -> pd.DataFrame:
        """Stored trials, one row per trial (columns: docs/python-api.md), in study order.

        Only the studies of the experiment as configured now, unless ``all_studies`` adds
        those of earlier configurations (column ``current`` tells them apart). Raises
        :class:`SparsedpError` when nothing has run yet.
        """
        self._require_results()
        keys = {study.key for study in self.studies()}
        with ResultStore(self.results_dir, read_only=True) as store:
            return trials_frame(store, self.name, study_keys=keys, all_studies=all_studies)

    def repeats(self) -> pd.DataFrame:
        """Stored seed repeats of the current studies, one row each (columns:
        docs/python-api.md); empty before :meth:`repeat`."""
        self._require_results()
        keys = {study.key for study in self.studies()}
        with ResultStore(self.results_dir, read_only=True) as store:
            return repeats_frame(store, self.name, study_keys=keys)

    def status(self, *, _best_of: Callable[[list[dict]], dict[str, dict]] | None = None
               ) -> ExperimentStatus:
        """Per study: trials done, counts by status, best steps and its metaparameters.

        Raises :class:`SparsedpError` when nothing has run yet.
        """
        self._require_results()
        best_of = _best_of or runner.best_per_study
        studies = self.studies()
        keys = {study.key for study in studies}
        with ResultStore(self.results_dir, read_only=True) as store:
            linked = store.trial_rows(self.name, all_studies=True)
        rows = [row for row in linked if row["study_key"] in keys]
        best = best_of(rows)
        by_study: dict[str, list[dict]] = {}
        for row in rows:
            by_study.setdefault(row["study_key"], []).append(row)
        out = []
        for study in studies:
            trials = by_study.get(study.key, [])
            counts = {s: sum(1 for t in trials if t["status"] == s) for s in STATUSES}
            top = best.get(study.key)
            out.append(StudyStatus(
                study=study, done=len(trials), counts=counts,
                best_steps=None if top is None else int(top["steps_to_result"]),
                best_trial=None if top is None else int(top["trial_index"]),
                best_metaparameters={} if top is None else
                {k: top[k] for k in METAPARAMETERS if top[k] is not None},
                edges=[] if top is None else edge_hits(top, study.space()),
            ))
        earlier = [row["study_key"] for row in linked if row["study_key"] not in keys]
        return ExperimentStatus(self.name, self.spec.trials, out, len(earlier), len(set(earlier)))

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
        frame = self.trials()
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
        frame = self.trials() if trials is None else trials
        if frame.empty:
            raise SparsedpError(f"{self.name} has no finished trials yet in {self.results_dir}")
        # The experiment as configured now: trials of studies an earlier configuration
        # linked (another goal, budget, pruning, seed) stay out of the provenance.
        keys = {study.key for study in self.studies()}
        with ResultStore(self.results_dir, read_only=True) as store:
            rows = [r for r in store.trial_rows(self.name, all_studies=True)
                    if r["study_key"] in keys]
        stored = [json.loads(r["provenance_json"]) for r in rows if r["provenance_json"]]
        provenance = {
            "report generated with": current_provenance(self.spec.engine.device),
            "trials measured with": _distinct(stored),
        }
        config = self.spec.to_dict()
        config["expected_studies"] = [
            {"workload": s.workload, "sparsity": s.sparsity, "batch_size": s.batch_size}
            for s in self.studies()
        ]
        engines = _distinct([json.loads(r["engine_json"]) for r in rows if r["engine_json"]])
        # What produced the stored trials (the stopping sentence reads each trial's own
        # setting from the frame), then the file's settings, which apply to the next run.
        notes = {"trial engine settings": engines,
                 "experiment file's engine settings (next run)": asdict(self.spec.engine)}
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
        if not (self.results_dir / ResultStore.FILENAME).exists():
            return []
        with ResultStore(self.results_dir, read_only=True) as store:
            return store.probe_rows({s.key for s in self.studies()})


def critical_batch_sizes(analysis: Analysis) -> pd.DataFrame:
    """One row per curve (workload, sparsity): the fit's ``s_min`` and ``b_crit`` with their
    bootstrap intervals (``*_low``/``*_high``; NaN without one), ``n_points``, ``at_bound``
    (B_crit not identified by the measured range) and the regime boundaries."""
    rows = []
    for key, curve in analysis.curves.items():
        fit, boot, reg = analysis.fits[key], analysis.bootstraps[key], analysis.regimes[key]
        s_ci = boot.s_min_ci if boot and boot.s_min_ci else (float("nan"),) * 2
        b_ci = boot.b_crit_ci if boot and boot.b_crit_ci else (float("nan"),) * 2
        rows.append({
            "workload": curve.workload, "sparsity": curve.sparsity,
            "n_points": len(curve),
            "s_min": fit.s_min if fit else float("nan"),
            "s_min_low": s_ci[0], "s_min_high": s_ci[1],
            "b_crit": fit.b_crit if fit else float("nan"),
            "b_crit_low": b_ci[0], "b_crit_high": b_ci[1],
            "at_bound": fit.at_bound if fit else None,
            "perfect_scaling_end": reg.perfect_scaling_end,
            "max_parallelism_onset": reg.max_parallelism_onset,
        })
    return pd.DataFrame.from_records(rows, columns=[
        "workload", "sparsity", "n_points", "s_min", "s_min_low", "s_min_high", "b_crit",
        "b_crit_low", "b_crit_high", "at_bound", "perfect_scaling_end",
        "max_parallelism_onset"])


# --------------------------------------------------------------------------- helpers


def _typed(event: runner.RunEvent) -> RunEvent | None:
    """The runner's event as one of the API's typed events."""
    if event.kind == "plan":
        return RunPlanned(event.total)
    if event.kind == "study-start" and event.study is not None:
        return StudyStarted(event.study, event.done, event.total, event.order_from)
    if event.kind == "trial" and event.study is not None and event.record is not None:
        return TrialFinished(event.study, event.record, event.done, event.total)
    if event.kind == "failure" and event.study is not None and event.failure is not None:
        f = event.failure
        return AttemptFailed(event.study, f.index, f.attempt, f.error, event.done, event.total)
    if event.kind == "done":
        return RunFinished(event.done, event.total)
    return None


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


def _distinct(items: list[dict]) -> list[dict] | dict:
    """The distinct dicts among ``items`` (one dict when they all agree)."""
    seen: list[dict] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen[0] if len(seen) == 1 else seen
