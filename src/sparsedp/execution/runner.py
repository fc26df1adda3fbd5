"""Run an experiment: every missing trial of every study, each stored the moment it ends.

Resuming is the same call: trials already in the ledger are skipped, so after Ctrl-C,
``kill -9`` or a crash the next run finishes only what is missing (a trial that was in flight
starts over). Trials that raise are recorded as failed attempts and retried up to
``max_retries`` times; after that the trial is stored with status ``failed``, once the failure
has shown to be the trial's own. A failure of the environment, or the same error on the first
attempts of several trials in a row, stops the run instead (:mod:`.failures`).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sparsedp.execution.backends.factory import make_backend as _make_backend  # tests patch it
from sparsedp.execution.failures import FailureWatch
from sparsedp.execution.ordering import order_trials
from sparsedp.execution.provenance import provenance
from sparsedp.execution.records import Ledger, TrialRecord
from sparsedp.execution.refine_stage import is_refine, refine_work
from sparsedp.execution.tasks import FAILED, TaskFailure, TrialGroup, TrialTask, failed_record
from sparsedp.execution.worker_cap import cap_workers, worker_threads
from sparsedp.specs import ExperimentSpec, StudySpec
from sparsedp.training import STOPPED, get_workload
from sparsedp.training.stopping import CompletedSteps


@dataclass
class RunEvent:
    """Something the runner reports while it works (for progress displays)."""

    kind: str  # "plan" | "note" | "study-start" | "trial" | "failure" | "done"
    study: StudySpec | None = None
    record: TrialRecord | None = None
    failure: TaskFailure | None = None
    total: int = 0
    done: int = 0
    order_from: str | None = None
    message: str = ""  # "note": one line for the user (e.g. fewer workers than asked)


@dataclass
class RunSummary:
    """Counts of what one invocation of the runner did."""

    planned: int = 0
    finished: int = 0
    failed_attempts: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


def study_descriptor(study: StudySpec) -> dict:
    """What the store keeps about a study."""
    workload = get_workload(study.workload)
    return {
        "key": study.key,
        "workload": study.workload,
        "dataset": workload.dataset,
        "model": workload.model,
        "optimizer": workload.optimizer,
        "sparsity": study.sparsity,
        "batch_size": study.batch_size,
        "spec": _jsonable(asdict(study)),
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def pending_trials(
    spec: ExperimentSpec, ledger: Ledger, study: StudySpec, retry_failed: bool = False
) -> list[int]:
    """Trial indices of ``study`` that still have to run.

    Besides the missing ones: with stopping off, the ``stopped`` trials (their own outcome is
    wanted now); with stopping on, the ``stopped`` trials that stopped short of the study's
    current limit (after ``keep_complete`` was raised, they might be among the K best);
    with ``retry_failed``, the ``failed`` ones.
    """
    stored = ledger.finished_trials(study.key)
    redo = {i for i, status in stored.items()
            if (status == FAILED and retry_failed)
            or (status == STOPPED and not spec.engine.stop_hopeless)}
    if spec.engine.stop_hopeless and STOPPED in stored.values():
        limit = CompletedSteps(spec.engine.keep_complete, ledger.completed_steps(study.key)).limit
        redo |= {i for i, steps in ledger.stopped_steps(study.key).items()
                 if limit is None or steps < limit}
    return [i for i in range(spec.trials) if i not in stored or i in redo]


def run_experiment(
    spec: ExperimentSpec,
    ledger: Ledger,
    *,
    workers: int | None = None,
    retry_failed: bool = False,
    on_event: Callable[[RunEvent], None] | None = None,
) -> RunSummary:
    """Run every missing trial of ``spec``, writing each to ``ledger`` as it ends."""
    emit = on_event or (lambda event: None)
    studies = spec.studies()
    ledger.register_experiment(spec.name, spec.to_dict(), [study_descriptor(s) for s in studies])
    workers = workers or spec.workers
    summary = RunSummary()

    pending = {s.key: pending_trials(spec, ledger, s, retry_failed) for s in studies}
    stored = {s.key: ledger.finished_trials(s.key) for s in studies}
    units = {s.key: s.space().units(spec.trials) for s in studies}
    # The refinement stage (after each study's search): counted now, set up after the search.
    refine = {s.key: refine_work(spec, ledger, s, units[s.key], retry_failed) for s in studies
              if spec.refine is not None and not pending[s.key]}
    summary.planned = sum(len(v) for v in pending.values()) + sum(
        len(refine[s.key].pending) if s.key in refine else spec.refine.trials
        for s in studies if spec.refine is not None)
    total = summary.planned
    emit(RunEvent("plan", total=total))
    if total == 0:
        emit(RunEvent("done", total=0))
        return summary
    cap = cap_workers(workers, total, threads=spec.engine.threads,
                      local=spec.engine.backend != "ray")
    if cap.reason:  # no more workers than trials, CPUs and memory allow
        emit(RunEvent("note", message=cap.message))
    workers = cap.used

    points = {s.key: dict(enumerate(s.space().points(spec.trials))) for s in studies}
    best: dict[str, int] = {}
    best_index: dict[str, int] = {}  # the best trial of each study (for the trial order)
    for s in studies:
        found = ledger.best_steps(s.key)
        if found is not None:
            best[s.key], best_index[s.key] = found
    keep = spec.engine.keep_complete
    completed = {s.key: CompletedSteps(keep, ledger.completed_steps(s.key)) for s in studies}
    limits = {key: c.limit for key, c in completed.items() if c.limit is not None}

    engine = spec.engine
    if engine.backend != "ray":  # Ray gives each actor its CPUs' worth of threads itself
        engine = dataclasses.replace(engine, threads=worker_threads(engine.threads, workers))
    context_args = (
        engine,
        str(spec.data_dir) if spec.data_dir else None,
        str(spec.results_dir / "cache"),
        provenance(spec.engine.device),
        spec.plugins,  # imported in every worker process
    )
    backend = _make_backend(spec, workers, context_args, [s.key for s in studies], limits)
    for key, steps in limits.items():
        backend.update_limit(key, steps)

    queue: deque[TrialTask] = deque()
    study_iter = iter(studies)

    def refill() -> None:
        while not queue:
            study = next(study_iter, None)
            if study is None:
                return
            todo = pending[study.key]
            if not todo:
                continue
            order_from = None
            if spec.engine.order == "neighbour" and not is_refine(todo[0]):
                todo, order_from = order_trials(
                    study, studies, todo, units[study.key], lambda s: best_index.get(s.key)
                )
            emit(
                RunEvent(
                    "study-start",
                    study=study,
                    total=total,
                    done=summary.finished,
                    order_from=order_from,
                )
            )
            for index in todo:
                queue.append(TrialTask(study, index, points[study.key][index]))

    group_size = spec.engine.resolved_batched_trials()

    def next_task() -> TrialTask:
        task = queue.popleft()
        return TrialTask(task.study, task.index, task.point, task.attempt,
                         limits.get(task.study.key))

    def dispatch() -> None:
        while backend.in_flight() < backend.capacity:
            refill()
            if not queue:
                return
            if group_size == 1:
                backend.submit(next_task())
                continue
            group = [next_task()]  # batched trials: the study's queued trials, as one rolling
            while queue and queue[0].study == group[0].study:  # group (group_size live)
                group.append(next_task())
            backend.submit(group[0] if len(group) == 1 else TrialGroup(tuple(group)))

    watch = FailureWatch()
    held: list[tuple[TrialTask, TrialRecord]] = []  # failed rows not yet shown to be their own

    def store(task: TrialTask, outcome: TrialRecord) -> None:
        if is_refine(task.index):
            outcome = dataclasses.replace(outcome, stage="refine",
                                          stage_info=refine[task.study.key].info)
        replace = task.index in stored[task.study.key]
        ledger.write_trial(outcome, replace=replace)
        summary.finished += 1
        summary.statuses[outcome.status] = summary.statuses.get(outcome.status, 0) + 1
        key, steps = task.study.key, outcome.steps_to_result
        if steps is not None:
            if key not in best or (steps, task.index) < (best[key], best_index[key]):
                best[key], best_index[key] = steps, task.index
            if completed[key].add(steps):
                limits[key] = completed[key].limit  # type: ignore[assignment]
                backend.update_limit(key, limits[key])
        emit(RunEvent("trial", study=task.study, record=outcome, total=total,
                      done=summary.finished))

    def release_held() -> None:
        while held:
            store(*held.pop(0))

    def run_stage() -> None:
        dispatch()
        while backend.in_flight():
            for task, outcome in backend.completed():
                if isinstance(outcome, TaskFailure):
                    summary.failed_attempts += 1
                    ledger.record_failure(
                        outcome.study_key,
                        outcome.index,
                        outcome.attempt,
                        outcome.error,
                        outcome.traceback,
                    )
                    emit(
                        RunEvent(
                            "failure",
                            study=task.study,
                            failure=outcome,
                            total=total,
                            done=summary.finished,
                        )
                    )
                    # an environment or systematic failure stops the run (RunStopped)
                    watch.failed(outcome.study_key, outcome.index, outcome.attempt,
                                 outcome.error, lost=not outcome.traceback)
                    if outcome.attempt <= spec.engine.max_retries:
                        queue.appendleft(
                            TrialTask(task.study, task.index, task.point, outcome.attempt + 1)
                        )
                        continue
                    held.append((task, failed_record(task, outcome)))
                    continue
                watch.succeeded()
                release_held()
                store(task, outcome)
            dispatch()
        release_held()

    try:
        run_stage()  # the search
        if spec.refine is not None:  # then each study's refinement, around its best
            for study in studies:
                work = refine_work(spec, ledger, study, units[study.key], retry_failed)
                refine[study.key] = work
                pending[study.key] = work.pending
                points[study.key].update(work.points)
            study_iter = iter(studies)
            run_stage()
    finally:
        backend.shutdown()
    emit(RunEvent("done", total=total, done=summary.finished))
    return summary


def best_per_study(rows: list[dict]) -> dict[str, dict]:
    """Lowest steps-to-result among complete trials per study (ties: lower trial index)."""
    out: dict[str, dict] = {}
    for row in rows:
        if row["status"] != "complete" or row["steps_to_result"] is None:
            continue
        current = out.get(row["study_key"])
        candidate = (row["steps_to_result"], row["trial_index"])
        if current is None or candidate < (current["steps_to_result"], current["trial_index"]):
            out[row["study_key"]] = row
    return out
