"""``sparsedp repeat``: train each study's best metaparameters again with more seeds."""

from __future__ import annotations

import argparse
import sqlite3

from sparsedp.cli.common import (
    EXIT_BUSY,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_STOPPED,
    EXIT_TRIALS_FAILED,
    CliError,
    Terminated,
    positive_int,
    stderr_console,
)
from sparsedp.cli.experiment_cmds import _checked, _sigterm_as_interrupt
from sparsedp.experiment import load_experiment
from sparsedp.experiment.contract import WorkerDataError
from sparsedp.experiment.failures import RunStopped
from sparsedp.experiment.preflight import PreflightError, preflight, prepare_results_dir
from sparsedp.experiment.repeats import MAX_REPEATS, RepeatEvent, run_repeats
from sparsedp.experiment.runlock import RunLock, RunLockBusy
from sparsedp.store import ResultStore
from sparsedp.store.check import StoreFileError, check_store


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "repeat", help="re-run each study's best trial with more seeds (after `run`)")
    p.add_argument("experiment", help="experiment TOML file")
    p.add_argument("--seeds", type=positive_int, default=5,
                   help="repeats per study, new initialisation and batch order each "
                        "(default 5; more later adds only the missing ones)")
    p.add_argument("--workers", type=positive_int, help="override the file's workers")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.seeds > MAX_REPEATS:
        raise CliError(f"--seeds {args.seeds}: at most {MAX_REPEATS}")
    spec = load_experiment(args.experiment)
    if not (spec.results_dir / ResultStore.FILENAME).exists():
        raise CliError(f"no results yet for {spec.name} in {spec.results_dir}: "
                       f"run `sparsedp run {args.experiment}` first")
    console = stderr_console()
    with _sigterm_as_interrupt():
        _checked(prepare_results_dir, spec.results_dir)
        lock = RunLock(spec.results_dir)
        try:
            lock.acquire()
        except RunLockBusy as exc:
            raise CliError(str(exc), EXIT_BUSY) from None
        try:
            try:
                preflight(spec)
                check_store(spec.results_dir)
            except (PreflightError, StoreFileError) as exc:
                raise CliError(str(exc)) from None
            return _repeat(spec, args, console)
        finally:
            lock.release()


def _repeat(spec, args: argparse.Namespace, console) -> int:
    stored = [0]

    def on_event(event: RepeatEvent) -> None:
        if event.kind == "plan":
            console.print(f"{event.total} repeats to run ({args.seeds} per study)")
        elif event.kind == "skip" and event.study is not None:
            console.print(f"study {event.study.label}: no repeats ({event.message})")
        elif event.kind == "repeat" and event.record is not None and event.study is not None:
            stored[0] += 1
            r = event.record
            steps = r.steps_to_result if r.steps_to_result is not None else "-"
            console.print(f"  [{event.done}/{event.total}] {event.study.label} repeat "
                          f"{event.repeat:>2} {r.status:<10} steps {steps!s:>6}  "
                          f"({r.wall_time:.1f} s)")
        elif event.kind == "failure" and event.study is not None:
            console.print(f"  {event.study.label} repeat {event.repeat} failed: "
                          f"{event.message}")

    kept = "the repeats stored so far are kept; run the same command again to finish"
    try:
        with ResultStore(spec.results_dir) as store:
            summary = run_repeats(spec, store, args.seeds, workers=args.workers,
                                  on_event=on_event)
    except KeyboardInterrupt as exc:
        name, code = ("SIGTERM", EXIT_SIGTERM) if isinstance(exc, Terminated) else \
            ("Ctrl-C", EXIT_SIGINT)
        raise CliError(f"interrupted by {name} after storing {stored[0]} repeats; {kept}",
                       code) from None
    except (RunStopped, WorkerDataError, sqlite3.Error, OSError) as exc:
        raise CliError(f"repeats stopped after storing {stored[0]}: {exc}; {kept}",
                       EXIT_STOPPED) from None
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing"
    console.print(f"ran {summary.finished} of {summary.planned} missing repeats ({counts})")
    if summary.unfinished:
        raise CliError(f"{len(summary.unfinished)} studies still have search trials to run "
                       f"(e.g. {summary.unfinished[0]}); finish them with `sparsedp run "
                       f"{args.experiment}`, then repeat again", EXIT_STOPPED)
    if summary.statuses.get("failed"):
        raise CliError(f"{summary.statuses['failed']} repeats failed (see the failures "
                       "table); fix the cause and rerun", EXIT_TRIALS_FAILED)
    return EXIT_OK
