"""``sparsedp run``, ``status`` and ``export``: run an experiment file and read its results."""

from __future__ import annotations

import argparse
import math

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from sparsedp.analysis.data_size import curve_workload
from sparsedp.api import (
    AttemptFailed,
    Experiment,
    RunEvent,
    RunPlanned,
    RunResult,
    StudyStarted,
    TrialFinished,
    format_event,
)
from sparsedp.api.events import continued
from sparsedp.cli.common import (
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_TRIALS_FAILED,
    CliError,
    add_plugin_option,
    is_terminal,
    load,
    positive_int,
    sigterm_as_interrupt,
    stderr_console,
)
from sparsedp.execution.preflight import preflight
from sparsedp.execution.runner import best_per_study

STATUS_COLUMNS = ("complete", "incomplete", "infeasible", "stopped", "failed")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    run_p = subparsers.add_parser("run", help="run every missing trial of an experiment file")
    run_p.add_argument("experiment", help="experiment TOML file")
    run_p.add_argument("--workers", type=positive_int, help="override the file's workers")
    run_p.add_argument("--retry-failed", action="store_true",
                       help="run trials stored as failed again")
    run_p.set_defaults(handler=run)
    add_plugin_option(run_p)

    status_p = subparsers.add_parser("status", help="per-study progress and best results")
    status_p.add_argument("experiment", help="experiment TOML file")
    status_p.set_defaults(handler=status)
    add_plugin_option(status_p)

    export_p = subparsers.add_parser(
        "export", help="write all trials as CSV, Parquet or Shallue et al.'s batch_science "
                       "layout")
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
    add_plugin_option(export_p)


def run(args: argparse.Namespace) -> int:
    experiment = load(args)
    console = stderr_console()
    with sigterm_as_interrupt():
        if is_terminal():
            result = _run_with_progress(experiment, args, console)
        else:
            result = experiment.run(workers=args.workers, retry_failed=args.retry_failed,
                                    on_event=lambda e: _plain_event(e, console),
                                    _checks=preflight)
    console.print(result.describe(), markup=False)
    _print_status(experiment)
    if result.missing:
        raise CliError(f"{_trials(result.missing)} without a result yet; run the same command "
                       "again", EXIT_STOPPED)
    if result.failed:
        raise CliError(f"{_trials(result.failed)} failed (their errors: `sparsedp export`, "
                       "column message); fix the cause and rerun with --retry-failed",
                       EXIT_TRIALS_FAILED)
    return EXIT_OK


def _trials(n: int) -> str:
    return f"{n} trial{'' if n == 1 else 's'}"


def _plain_event(event: RunEvent, console: Console) -> None:
    """Output that is not a terminal: one line per event, each trial line naming its study."""
    line = format_event(event)
    if line is not None:
        console.print(line, markup=False)


def _run_with_progress(experiment: Experiment, args: argparse.Namespace,
                       console: Console) -> RunResult:
    """A terminal: a progress bar, and a line per trial with its study's best so far."""
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    )
    task_id = progress.add_task("trials", total=None)
    best: dict[str, int] = {}

    def on_event(event: RunEvent) -> None:
        if isinstance(event, RunPlanned):
            progress.start()  # after the checks, so a failed check shows no bar
            progress.update(task_id, total=event.total)
        elif isinstance(event, StudyStarted):
            progress.update(task_id, description=event.study.label)
        elif isinstance(event, TrialFinished):
            r = event.record
            if r.steps_to_result is not None:
                key = event.study.key
                best[key] = min(best.get(key, math.inf), r.steps_to_result)
            shown = best.get(event.study.key)
            progress.console.print(
                f"{event.study.label}  trial {r.trial_index:>3}  {r.status:<10} "
                f"steps {r.steps_to_result or '-'!s:>6}  best {shown or '-'!s:>6}{continued(r)}"
            )
            progress.update(task_id, completed=event.done)
        elif isinstance(event, AttemptFailed):
            progress.console.print(Text.assemble(
                (f"{event.study.label} trial {event.trial_index} failed:", "red"),
                f" {event.error}"))
        else:
            line = format_event(event)
            if line is not None:
                progress.console.print(line, markup=False)

    try:
        return experiment.run(workers=args.workers, retry_failed=args.retry_failed,
                              on_event=on_event, _checks=preflight)
    finally:
        progress.stop()


def status(args: argparse.Namespace) -> int:
    _print_status(load(args))
    return 0


def _print_status(experiment: Experiment) -> None:
    found = experiment.status(_best_of=best_per_study)
    refined = any(row.refined for row in found.studies)
    table = Table(title=f"{found.name}: {found.trials_per_study} trials per study")
    columns = ["workload", "sparsity", "batch", "done", *STATUS_COLUMNS, "best steps",
               "best trial", "converged", *(("refined", "refined best") if refined else ())]
    for column in columns:
        table.add_column(column, justify="left" if column in ("workload", "best trial")
                         else "right")
    for row in found.studies:
        study = row.study
        if row.best_steps is not None:
            meta = ", ".join(f"{k}={_fmt(v)}" for k, v in row.best_metaparameters.items())
            best_cells = (str(row.best_steps), f"#{row.best_trial} {meta}")
        else:
            best_cells = ("-", "")
        extra = ((str(row.refined), "-" if row.refined_best_steps is None
                  else str(row.refined_best_steps)) if refined else ())
        table.add_row(curve_workload(study.workload, study.train_examples),
                      f"{study.sparsity:g}", str(study.batch_size),
                      f"{row.done}/{found.trials_per_study}",
                      *(str(row.counts[s]) for s in STATUS_COLUMNS), *best_cells,
                      "yes" if row.converged else "no", *extra)
    Console(soft_wrap=True, width=200 if not is_terminal() else None).print(table)
    unconverged = [row for row in found.studies if row.done and not row.converged]
    if unconverged:  # search adequacy: docs/analysis.md
        print(f"not converged: {len(unconverged)} of {len(found.studies)} studies (a random half "
              "of the search would, in more than 1 of 4 cases, find a best over 5% worse, or it "
              "cannot be told):")
        for row in unconverged:
            print(f"  {row.study.label}: {row.adequacy_note}")
    for row in found.studies:  # best trials at the edge of their searched range
        for hit in row.edges:
            print(f"warning: {row.study.label}: best trial #{row.best_trial}: "
                  f"{hit.describe()}")
    for row in found.studies:  # unfinished trials a stopped run saved
        if saved := found.saved.get(row.study.key):
            steps = [step for _, step in saved]
            print(f"saved mid-run: {row.study.label}: {len(saved)} unfinished trial"
                  f"{'s' if len(saved) > 1 else ''} at step {min(steps):,}"
                  + (f"–{max(steps):,}" if max(steps) > min(steps) else "")
                  + f" (the next run continues {'them' if len(saved) > 1 else 'it'})")
    if found.earlier_trials:
        print(f"not shown: {found.earlier_trials} trials of {found.earlier_studies} studies "
              f"from an earlier configuration of {found.name} (kept; `sparsedp export "
              "--all-studies` lists them)")


def _fmt(value: float) -> str:
    return f"{value:.5g}"


def export(args: argparse.Namespace) -> int:
    if args.format == "batch-science" and getattr(args, "all_studies", False):
        raise CliError("--all-studies does not apply to --format batch-science (one folder "
                       "per study cell); export the current configuration")
    path, frame = load(args).export(args.out, format=args.format,
                                    all_studies=getattr(args, "all_studies", False))
    if args.format == "batch-science":
        n = frame["study_key"].nunique() if len(frame) else 0
        print(f"wrote {len(frame)} trials of {n} studies to {path} (batch_science layout)")
        return 0
    earlier = int((~frame["current"].astype(bool)).sum())
    note = f" ({earlier} from earlier configurations)" if earlier else ""
    print(f"wrote {len(frame)} trials to {path}{note}")
    return 0
