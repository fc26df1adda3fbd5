"""Seed repeats: each study's best metaparameters trained again with new seeds.

The search gives one steps-to-result per study: its best trial's, at one initialisation and
one batch order. ``sparsedp repeat`` trains that trial's metaparameters again with ``k`` more
seeds, so the analysis can say how much of a study's result is the luck of the seed.

Repeat ``r`` (``r = 1 … k``) of a study with seeds ``seed`` and ``data_seed`` uses

* initialisation seed ``seed · 1,000,003 + (1,000,003 − r)``: counted down from the top of the
  experiment's seed block, so never a search trial's seed (those are ``seed · 1,000,003 + i``
  for ``i < trials``); the SNIP mask is recomputed for this initialisation;
* batch-order seed ``data_seed + r · 1,000,003`` (the search's trials all share
  ``data_seed``).

Neither depends on sparsity, batch size or the best trial, so repeat ``r`` of every study of a
workload starts from the same weights and sees the same batches, as trial ``i`` of a column
does in the search: sparse and dense repeats are paired. Repeats run to the goal or the budget
(stopping hopeless trials does not apply: there is no best to beat) and are stored one by one
as they end in the store's ``repeats`` table, apart from the search's trials, so an
interrupted ``repeat`` resumes with only the missing ones. A study's repeats start once its
search has finished (all its trials stored), since its best trial may still change; repeats
of an earlier best stay stored but no longer count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sparsedp.execution.backends.factory import make_backend
from sparsedp.execution.failures import FailureWatch
from sparsedp.execution.provenance import provenance
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.runner import study_descriptor
from sparsedp.execution.tasks import FAILED, TaskFailure, TrialTask, failed_record
from sparsedp.specs import SEED_STRIDE, ExperimentSpec, StudySpec

MAX_REPEATS = 1000


class RepeatLedger(Protocol):
    """What the repeat runner needs from the results store."""

    def register_experiment(self, name: str, config: dict, studies: list[dict]) -> None: ...

    def finished_trials(self, study_key: str) -> dict[int, str]: ...

    def best_steps(self, study_key: str) -> tuple[int, int] | None: ...

    def finished_repeats(self, study_key: str, source_trial: int) -> dict[int, str]: ...

    def write_repeat(self, study_key: str, source_trial: int, repeat_index: int,
                     data_seed: int, record: TrialRecord) -> None: ...

    def record_failure(self, study_key: str, trial_index: int, attempt: int, error: str,
                       traceback: str) -> None: ...


def repeat_seeds(study: StudySpec, repeat: int) -> tuple[int, int]:
    """``(initialisation seed, batch-order seed)`` of repeat ``repeat`` (>= 1) of ``study``."""
    if not 1 <= repeat <= MAX_REPEATS:
        raise ValueError(f"repeat index must be in 1..{MAX_REPEATS}, got {repeat}")
    return study.trial_seed(SEED_STRIDE - repeat), study.data_seed + repeat * SEED_STRIDE


def repeat_task(study: StudySpec, repeat: int, point: dict[str, float]) -> TrialTask:
    """The trial that is repeat ``repeat`` of ``study`` at ``point``: trial ``1,000,003 − r``
    of the study with its batch-order seed moved (see :func:`repeat_seeds`)."""
    _, data_seed = repeat_seeds(study, repeat)
    moved = dataclasses.replace(study, data_seed=data_seed)
    return TrialTask(moved, SEED_STRIDE - repeat, dict(point))


@dataclass
class RepeatEvent:
    """Progress of a repeat run: ``"plan"``, ``"skip"`` (a study not ready), ``"repeat"``
    (one stored), ``"failure"`` (a failed attempt) or ``"done"``."""

    kind: str
    study: StudySpec | None = None
    repeat: int = 0
    record: TrialRecord | None = None
    message: str = ""
    total: int = 0
    done: int = 0


@dataclass
class RepeatSummary:
    """Counts of what one invocation did."""

    planned: int = 0
    finished: int = 0
    failed_attempts: int = 0
    skipped: list[str] = field(default_factory=list)  # searched, but no result to repeat
    unfinished: list[str] = field(default_factory=list)  # search not finished yet
    statuses: dict[str, int] = field(default_factory=dict)


def run_repeats(
    spec: ExperimentSpec,
    ledger: RepeatLedger,
    seeds: int,
    *,
    workers: int | None = None,
    on_event: Callable[[RepeatEvent], None] | None = None,
) -> RepeatSummary:
    """Run the missing repeats ``1 … seeds`` of every finished study's best trial."""
    if not 1 <= seeds <= MAX_REPEATS or seeds >= SEED_STRIDE - spec.trials:
        raise ValueError(f"seeds must be in 1..{MAX_REPEATS}, got {seeds}")
    emit = on_event or (lambda event: None)
    studies = spec.studies()
    ledger.register_experiment(spec.name, spec.to_dict(), [study_descriptor(s) for s in studies])
    summary = RepeatSummary()
    # (task, study, source trial, repeat, batch-order seed) of every missing repeat
    todo: list[tuple[TrialTask, StudySpec, int, int, int]] = []
    for study in studies:
        stored = ledger.finished_trials(study.key)
        missing = sum(1 for i in range(spec.trials) if i not in stored)
        best = ledger.best_steps(study.key)
        if missing or best is None:
            why = (f"its search has {missing} trials to run" if missing
                   else "no trial of its search reached the goal")
            (summary.unfinished if missing else summary.skipped).append(study.label)
            emit(RepeatEvent("skip", study=study, message=why))
            continue
        source = best[1]
        point = study.space().points(spec.trials)[source]
        done = ledger.finished_repeats(study.key, source)
        for r in range(1, seeds + 1):
            if done.get(r, FAILED) == FAILED:  # missing, or failed before: run it
                task = repeat_task(study, r, point)
                todo.append((task, study, source, r, task.study.data_seed))
    summary.planned = len(todo)
    emit(RepeatEvent("plan", total=summary.planned))
    if not todo:
        emit(RepeatEvent("done"))
        return summary

    # repeats run in full: no stopping (nothing to beat), hence no interleaving either
    run_spec = dataclasses.replace(
        spec, engine=dataclasses.replace(spec.engine, stop_hopeless=False, batched_trials=1)
    )
    context_args = (run_spec.engine, str(spec.data_dir) if spec.data_dir else None,
                    str(spec.results_dir / "cache"), provenance(spec.engine.device),
                    spec.plugins)  # imported in every worker process, as for the search
    keys = [task.study.key for task, *_ in todo]
    backend = make_backend(run_spec, workers or spec.workers, context_args, keys, {})
    origin = {item[0].study.key: item for item in todo}
    queue = [task for task, *_ in todo]
    watch = FailureWatch()
    held: list[tuple[TrialTask, TrialRecord]] = []

    def store(task: TrialTask, record: TrialRecord) -> None:
        _, study, source, r, data_seed = origin[task.study.key]
        ledger.write_repeat(study.key, source, r, data_seed, record)
        summary.finished += 1
        summary.statuses[record.status] = summary.statuses.get(record.status, 0) + 1
        emit(RepeatEvent("repeat", study=study, repeat=r, record=record,
                         total=summary.planned, done=summary.finished))

    try:
        while queue or backend.in_flight():
            while queue and backend.in_flight() < backend.capacity:
                backend.submit(queue.pop(0))
            for task, outcome in backend.completed():
                _, study, _, r, _ = origin[task.study.key]
                if isinstance(outcome, TaskFailure):
                    summary.failed_attempts += 1
                    ledger.record_failure(study.key, -r, outcome.attempt, outcome.error,
                                          outcome.traceback)
                    emit(RepeatEvent("failure", study=study, repeat=r, message=outcome.error))
                    watch.failed(task.study.key, r, outcome.attempt, outcome.error,
                                 lost=not outcome.traceback)
                    if outcome.attempt <= spec.engine.max_retries:
                        queue.insert(0, dataclasses.replace(task, attempt=outcome.attempt + 1))
                    else:
                        held.append((task, failed_record(task, outcome)))
                    continue
                watch.succeeded()
                while held:
                    store(*held.pop(0))
                store(task, outcome)
        while held:
            store(*held.pop(0))
    finally:
        backend.shutdown()
    emit(RepeatEvent("done", total=summary.planned, done=summary.finished))
    return summary


__all__ = ["MAX_REPEATS", "RepeatEvent", "RepeatSummary", "repeat_seeds",
           "repeat_task", "run_repeats"]
