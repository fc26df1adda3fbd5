"""``sparsedp run``, ``status`` and ``export``: run an experiment file and read its results."""

from __future__ import annotations

import argparse
import math
import signal
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sparsedp.analysis.edges import edge_hits
from sparsedp.cli.common import (
    EXIT_BUSY,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_STOPPED,
    EXIT_TRIALS_FAILED,
    CliError,
    Terminated,
    is_terminal,
    positive_int,
    stderr_console,
)
from sparsedp.experiment import ExperimentSpec, load_experiment
from sparsedp.experiment.contract import WorkerDataError
from sparsedp.experiment.failures import RunStopped
from sparsedp.experiment.preflight import (
    PreflightError,
    preflight,
    prepare_results_dir,
    remove_created,
)
from sparsedp.experiment.runlock import RunLock, RunLockBusy
from sparsedp.experiment.runner import RunEvent, best_per_study, run_experiment
from sparsedp.store import ResultStore, trials_frame
from sparsedp.store.batch_science import BatchScienceError, export_batch_science
from sparsedp.store.check import StoreFileError, check_store

STATUS_COLUMNS = ("complete", "incomplete", "infeasible", "stopped", "failed")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    run_p = subparsers.add_parser("run", help="run every missing trial of an experiment file")
    run_p.add_argument("experiment", help="experiment TOML file")
    run_p.add_argument("--workers", type=positive_int, help="override the file's workers")
    run_p.add_argument("--retry-failed", action="store_true",
                       help="run trials stored as failed again")
    run_p.set_defaults(handler=run)

    status_p = subparsers.add_parser("status", help="per-study progress and best results")
    status_p.add_argument("experiment", help="experiment TOML file")
    status_p.set_defaults(handler=status)

    export_p = subparsers.add_parser("export", help="write all trials as CSV or Parquet")
    export_p.add_argument("experiment", help="experiment TOML file")
    export_p.add_argument("--format", choices=("csv", "parquet", "batch-science"),
                          default="csv",
                          help="batch-science: Shallue et al.'s layout, one folder per study "
                               "(docs/batch-science.md)")
    export_p.add_argument("--out", help="output file (default: <results>/trials.<format>); "
                                        "a new folder for batch-science (default: "
                                        "<results>/batch-science)")
    export_p.add_argument("--all-studies", action="store_true",
                          help="also trials of studies from earlier configurations of the "
                               "experiment (column 'current' tells them apart)")
    export_p.set_defaults(handler=export)


def _label(study) -> str:
    return f"{study.workload} s={study.sparsity:g} B={study.batch_size}"


def run(args: argparse.Namespace) -> int:
    spec = load_experiment(args.experiment)
    console = stderr_console()
    with _sigterm_as_interrupt():
        created = _checked(prepare_results_dir, spec.results_dir)
        lock = RunLock(spec.results_dir)
        try:
            lock.acquire()
        except RunLockBusy as exc:
            raise CliError(str(exc), EXIT_BUSY) from None
        try:
            try:
                checked = [*preflight(spec), check_store(spec.results_dir)]
            except (PreflightError, StoreFileError) as exc:
                lock.release()
                if created:  # leave nothing behind that this start made
                    lock.path.unlink(missing_ok=True)
                    remove_created(created)
                raise CliError(str(exc)) from None
            console.print(f"experiment [bold]{spec.name}[/]: {len(spec.studies())} studies × "
                          f"{spec.trials} trials, results in {spec.results_dir}")
            for line in checked:
                console.print(f"  checked {line}", markup=False)
            return _run_checked(spec, args, console)
        finally:
            lock.release()


def _checked(check, *args):
    try:
        return check(*args)
    except PreflightError as exc:
        raise CliError(str(exc)) from None


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM unwinds like Ctrl-C (trials in flight dropped, stored ones kept)."""
    def raise_terminated(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_checked(spec: ExperimentSpec, args: argparse.Namespace, console: Console) -> int:
    """The run itself, after the checks; every way it can end maps to an exit code."""
    stored = [0]

    def count(event: RunEvent) -> None:
        if event.kind == "trial":
            stored[0] += 1

    started = time.perf_counter()
    database = spec.results_dir / ResultStore.FILENAME
    kept = "the trials stored so far are kept; run the same command again to finish"
    try:
        with ResultStore(spec.results_dir) as store:
            if is_terminal():
                summary = _run_with_progress(spec, store, args, console, count)
            else:
                summary = run_experiment(spec, store, workers=args.workers,
                                         retry_failed=args.retry_failed,
                                         on_event=lambda e: (count(e), _plain_event(e, console)))
            failed, missing = _unfinished(spec, store)
    except KeyboardInterrupt as exc:
        name, code = ("SIGTERM", EXIT_SIGTERM) if isinstance(exc, Terminated) else \
            ("Ctrl-C", EXIT_SIGINT)
        raise CliError(f"interrupted by {name} after storing {_trials(stored[0])}; the trials "
                       f"in flight were dropped, {kept}", code) from None
    except RunStopped as exc:
        raise CliError(f"run stopped after storing {_trials(stored[0])}: {exc}; nothing of "
                       f"the failing trials was stored, {kept}", EXIT_STOPPED) from None
    except WorkerDataError as exc:  # the data was there at the checks, a worker lost it
        raise CliError(f"run stopped after storing {_trials(stored[0])}: {exc}; fix the data "
                       f"there, {kept}", EXIT_STOPPED) from None
    except sqlite3.Error as exc:
        raise CliError(f"run stopped after storing {_trials(stored[0])}: cannot write the "
                       f"results database {database} ({exc}); fix that (e.g. free space), "
                       f"{kept}", EXIT_STOPPED) from None
    except OSError as exc:  # a write of the store, a cache file, or the backend failed
        raise CliError(f"run stopped after storing {_trials(stored[0])}: {exc}; fix that "
                       f"(e.g. free space), {kept}", EXIT_STOPPED) from None
    elapsed = time.perf_counter() - started
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing"
    console.print(f"ran {summary.finished} of {summary.planned} missing trials in "
                  f"{elapsed:.0f} s ({counts}); failed attempts: {summary.failed_attempts}")
    status(argparse.Namespace(experiment=args.experiment))
    if missing:
        raise CliError(f"{_trials(missing)} without a result yet; run the same command again",
                       EXIT_STOPPED)
    if failed:
        raise CliError(f"{_trials(failed)} failed (their errors: `sparsedp export`, column "
                       "message); fix the cause and rerun with --retry-failed",
                       EXIT_TRIALS_FAILED)
    return EXIT_OK


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


def _plain_event(event: RunEvent, console: Console) -> None:
    if event.kind == "plan":
        console.print(f"{event.total} trials to run")
    elif event.kind == "study-start" and event.study is not None:
        hint = " (neighbour-first order)" if event.order_from else ""
        console.print(f"study {_label(event.study)}{hint}")
    elif event.kind == "trial" and event.record is not None and event.study is not None:
        r = event.record
        steps = r.steps_to_result if r.steps_to_result is not None else "-"
        console.print(f"  [{event.done}/{event.total}] trial {r.trial_index:>3} {r.status:<10} "
                      f"steps {steps!s:>6}  ({r.wall_time:.1f} s)")
    elif event.kind == "failure" and event.failure is not None:
        console.print(f"  trial {event.failure.index} attempt {event.failure.attempt} failed: "
                      f"{event.failure.error}")


def _run_with_progress(spec: ExperimentSpec, store: ResultStore, args, console: Console,
                       count=lambda event: None):
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    )
    best: dict[str, int] = {}
    with progress:
        task_id = progress.add_task("trials", total=None)

        def on_event(event: RunEvent) -> None:
            count(event)
            if event.kind == "plan":
                progress.update(task_id, total=event.total)
            elif event.kind == "study-start" and event.study is not None:
                progress.update(task_id, description=_label(event.study))
            elif event.kind == "trial" and event.record is not None and event.study:
                r = event.record
                if r.steps_to_result is not None:
                    key = event.study.key
                    best[key] = min(best.get(key, math.inf), r.steps_to_result)
                shown = best.get(event.study.key)
                progress.console.print(
                    f"{_label(event.study)}  trial {r.trial_index:>3}  {r.status:<10} "
                    f"steps {r.steps_to_result or '-'!s:>6}  best {shown or '-'!s:>6}"
                )
                progress.update(task_id, completed=event.done)
            elif event.kind == "failure" and event.failure is not None:
                progress.console.print(f"[red]trial {event.failure.index} failed:[/] "
                                       f"{event.failure.error}")

        return run_experiment(spec, store, workers=args.workers,
                              retry_failed=args.retry_failed, on_event=on_event)


def status(args: argparse.Namespace) -> int:
    spec = load_experiment(args.experiment)
    if not (spec.results_dir / ResultStore.FILENAME).exists():
        raise CliError(f"no results yet for {spec.name} in {spec.results_dir}: "
                       f"run `sparsedp run {args.experiment}` first")
    keys = {study.key for study in spec.studies()}
    with ResultStore(spec.results_dir, read_only=True) as store:
        linked = store.trial_rows(spec.name, all_studies=True)
    rows = [row for row in linked if row["study_key"] in keys]
    best = best_per_study(rows)
    by_study: dict[str, list[dict]] = {}
    for row in rows:
        by_study.setdefault(row["study_key"], []).append(row)
    table = Table(title=f"{spec.name}: {spec.trials} trials per study")
    for column in ("workload", "sparsity", "batch", "done", *STATUS_COLUMNS, "best steps",
                   "best trial"):
        table.add_column(column, justify="right" if column not in ("workload", "best trial")
                         else "left")
    for study in spec.studies():
        trials = by_study.get(study.key, [])
        counts = {s: sum(1 for t in trials if t["status"] == s) for s in STATUS_COLUMNS}
        top = best.get(study.key)
        if top is not None:
            meta = ", ".join(f"{k}={_fmt(top[k])}" for k in ("lr", "momentum", "decay_steps",
                                                              "end_lr_factor")
                             if top[k] is not None)
            best_cells = (str(top["steps_to_result"]), f"#{top['trial_index']} {meta}")
        else:
            best_cells = ("-", "")
        table.add_row(study.workload, f"{study.sparsity:g}", str(study.batch_size),
                      f"{len(trials)}/{spec.trials}", *(str(counts[s]) for s in STATUS_COLUMNS),
                      *best_cells)
    Console(soft_wrap=True, width=200 if not is_terminal() else None).print(table)
    for study in spec.studies():  # best trials at the edge of their searched range
        top = best.get(study.key)
        for hit in edge_hits(top, study.space()) if top is not None else ():
            print(f"warning: {_label(study)}: best trial #{top['trial_index']}: "
                  f"{hit.describe()}")
    earlier = {row["study_key"] for row in linked} - keys
    if earlier:
        n = sum(1 for row in linked if row["study_key"] in earlier)
        print(f"not shown: {n} trials of {len(earlier)} studies from an earlier configuration "
              f"of {spec.name} (kept; `sparsedp export --all-studies` lists them)")
    return 0


def _fmt(value: float) -> str:
    return f"{value:.5g}"


def export(args: argparse.Namespace) -> int:
    spec = load_experiment(args.experiment)
    if not (spec.results_dir / ResultStore.FILENAME).exists():
        raise CliError(f"no results yet for {spec.name} in {spec.results_dir}: "
                       f"run `sparsedp run {args.experiment}` first")
    keys = {study.key for study in spec.studies()}
    if args.format == "batch-science":
        return _export_batch_science(spec, args, keys)
    with ResultStore(spec.results_dir, read_only=True) as store:
        frame = trials_frame(store, spec.name, study_keys=keys,
                             all_studies=getattr(args, "all_studies", False))
    out = Path(args.out) if args.out else spec.results_dir / f"trials.{args.format}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "csv":
        frame.to_csv(out, index=False)
    else:
        try:
            frame.to_parquet(out, index=False)
        except ImportError as exc:
            raise CliError("parquet export needs pyarrow: pip install 'sparsedp[parquet]'") \
                from exc
    earlier = int((~frame["current"].astype(bool)).sum())
    note = f" ({earlier} from earlier configurations)" if earlier else ""
    print(f"wrote {len(frame)} trials to {out}{note}")
    return 0


def _export_batch_science(spec: ExperimentSpec, args: argparse.Namespace, keys: set[str]) -> int:
    if getattr(args, "all_studies", False):
        raise CliError("--all-studies does not apply to --format batch-science (one folder "
                       "per study cell); export the current configuration")
    out = Path(args.out) if args.out else spec.results_dir / "batch-science"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CliError(f"{out} exists and is not an empty folder; give a new --out")
    with ResultStore(spec.results_dir, read_only=True) as store:
        try:
            written = export_batch_science(store, spec.name, out, study_keys=keys,
                                           spaces={s.key: s.space() for s in spec.studies()})
        except BatchScienceError as exc:
            raise CliError(str(exc)) from None
    print(f"wrote {len(written)} studies to {out} (batch_science layout)")
    return 0
