"""Progress events of :meth:`Experiment.run` and :func:`measure_trial`, and their text lines.

A run reports, in this order: :class:`ChecksPassed` once, :class:`RunPlanned` once (then a
:class:`RunNote` where it starts fewer workers than asked), then for
each study with missing trials a :class:`StudyStarted` followed (with several workers,
interleaved with other studies') by one :class:`TrialFinished` per stored trial and an
:class:`AttemptFailed` per failed attempt, and :class:`RunFinished` last (not sent when the
run stops early). :func:`format_event` turns each into the line ``sparsedp run`` prints when
its output is not a terminal; every trial line names its study.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sparsedp.execution import runner
from sparsedp.execution.records import TrialRecord
from sparsedp.specs import StudySpec


@dataclass(frozen=True)
class ChecksPassed:
    """The environment checks passed and the results directory is locked for this run."""

    experiment: str
    studies: int
    trials_per_study: int
    results_dir: Path
    checked: tuple[str, ...]  # one line per check, e.g. "data mnist: MNIST from …"


@dataclass(frozen=True)
class RunPlanned:
    """``total`` trials are missing and will run now (0: nothing to do)."""

    total: int


@dataclass(frozen=True)
class RunNote:
    """One line about how the run proceeds, e.g. ``workers: 4 asked, 1 used (1 trial to
    run)`` when it starts fewer workers than asked (docs/engine.md)."""

    text: str


@dataclass(frozen=True)
class StudyStarted:
    """The first missing trial of ``study`` is queued; ``order_from`` names the study whose
    best trial set the neighbour-first order (``None``: index order)."""

    study: StudySpec
    done: int
    total: int
    order_from: str | None = None


@dataclass(frozen=True)
class TrialFinished:
    """A trial ended and is stored; ``done`` of ``total`` trials of this run are stored."""

    study: StudySpec
    record: TrialRecord
    done: int
    total: int


@dataclass(frozen=True)
class AttemptFailed:
    """An attempt of a trial raised; it is retried up to ``max_retries`` times."""

    study: StudySpec
    trial_index: int
    attempt: int
    error: str
    done: int
    total: int


@dataclass(frozen=True)
class RunFinished:
    """Every queued trial has ended (``done`` of ``total`` stored)."""

    done: int
    total: int


RunEvent = (ChecksPassed | RunPlanned | RunNote | StudyStarted | TrialFinished | AttemptFailed
            | RunFinished)
"""Any event :meth:`Experiment.run` reports."""


@dataclass(frozen=True)
class TrialStarted:
    """:func:`measure_trial` loaded its data and starts pruning and training."""

    workload: str
    dataset_label: str
    data_source: str
    num_train: int
    num_val: int
    goal_error: float
    max_steps: int
    eval_every: int


@dataclass(frozen=True)
class TrialChecked:
    """A validation check of :func:`measure_trial` at ``step``; ``exact`` is false when the
    check stopped early once the goal was out of reach (``error`` is then a lower bound)."""

    step: int
    error: float
    exact: bool


TrialEvent = TrialStarted | TrialChecked
"""Any event :func:`measure_trial` reports."""


def continued(record: TrialRecord) -> str:
    """``", continued from step N"`` for a trial continued from a stopped run's save."""
    steps = (record.engine or {}).get("resumed_at") or []
    return f", continued from step {', '.join(f'{s:,}' for s in steps)}" if steps else ""


def format_event(event: RunEvent | TrialEvent) -> str | None:
    """The plain-text progress line(s) of ``event`` (``None``: nothing to show).

    Trial lines name their study, e.g.
    ``[5/24] mnist-simplecnn-momentum s=0.9 B=64 trial   0 complete   steps     96  (1.2 s)``.
    """
    if isinstance(event, ChecksPassed):
        lines = [f"experiment {event.experiment}: {event.studies} studies × "
                 f"{event.trials_per_study} trials, results in {event.results_dir}"]
        lines += [f"  checked {line}" for line in event.checked]
        return "\n".join(lines)
    if isinstance(event, RunPlanned):
        return f"{event.total} trials to run"
    if isinstance(event, RunNote):
        return event.text
    if isinstance(event, StudyStarted):
        hint = " (neighbour-first order)" if event.order_from else ""
        return f"study {event.study.label}{hint}"
    if isinstance(event, TrialFinished):
        r = event.record
        steps = r.steps_to_result if r.steps_to_result is not None else "-"
        return (f"[{event.done}/{event.total}] {event.study.label} trial {r.trial_index:>3} "
                f"{r.status:<10} steps {steps!s:>6}  ({r.wall_time:.1f} s){continued(r)}")
    if isinstance(event, AttemptFailed):
        return (f"[{event.done}/{event.total}] {event.study.label} trial {event.trial_index} "
                f"attempt {event.attempt} failed: {event.error}")
    if isinstance(event, TrialStarted):
        return (f"data: {event.dataset_label} from {event.data_source} ({event.num_train} "
                f"train / {event.num_val} validation)\nworkload {event.workload}: goal error "
                f"{event.goal_error:g}, budget {event.max_steps:,} steps, check every "
                f"{event.eval_every}")
    if isinstance(event, TrialChecked):
        bound = "" if event.exact else " (lower bound)"
        return f"  step {event.step:>6}  validation error {event.error:.4f}{bound}"
    return None


def print_progress(event: RunEvent | TrialEvent, file: TextIO | None = None) -> None:
    """Print :func:`format_event`'s line for ``event`` (to stdout by default): a ready-made
    ``on_event`` callback for notebooks and scripts."""
    line = format_event(event)
    if line is not None:
        print(line, file=file or sys.stdout, flush=True)


def typed_event(event: runner.RunEvent) -> RunEvent | None:
    """The runner's event as one of the API's typed events."""
    if event.kind == "plan":
        return RunPlanned(event.total)
    if event.kind == "note":
        return RunNote(event.message)
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
