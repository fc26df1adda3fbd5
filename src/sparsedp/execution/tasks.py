"""What the runner hands to a backend and gets back: trials to run and failed attempts."""

from __future__ import annotations

from dataclasses import dataclass

from sparsedp.execution.records import TrialRecord
from sparsedp.specs.study import StudySpec

FAILED = "failed"


@dataclass(frozen=True)
class TrialTask:
    """One trial to run: the study, the trial index and its metaparameters."""

    study: StudySpec
    index: int
    point: dict[str, float]
    attempt: int = 1
    limit_known: int | None = None  # the study's stopping limit when dispatched (static)


@dataclass(frozen=True)
class TrialGroup:
    """Trials of one study run together in lockstep (batched trials)."""

    tasks: tuple[TrialTask, ...]

    @property
    def study(self) -> StudySpec:
        return self.tasks[0].study


@dataclass(frozen=True)
class TaskFailure:
    """A trial that raised: what to record before retrying it."""

    study_key: str
    index: int
    attempt: int
    error: str
    traceback: str


def failed_record(task: TrialTask, failure: TaskFailure) -> TrialRecord:
    """The stored row of a trial that failed on every attempt. It never rebuilds the trial's
    configuration (whatever made the trial fail may make that raise again): the seed is
    :meth:`StudySpec.trial_seed`'s, the metaparameters are the task's point as it was."""
    return TrialRecord(
        study_key=task.study.key,
        trial_index=task.index,
        seed=task.study.trial_seed(task.index),
        metaparameters=dict(task.point),
        status=FAILED,
        steps_to_result=None,
        steps_taken=0,
        final_val_error=None,
        final_error_exact=False,
        curve=[],
        wall_time=0.0,
        train_time=0.0,
        eval_time=0.0,
        prune_time=0.0,
        samples_per_second=0.0,
        eval_share=0.0,
        eval_examples=0,
        message=failure.error,
        attempts=failure.attempt,
    )
