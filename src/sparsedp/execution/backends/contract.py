"""What every execution backend does for the runner (in-process, local processes, Ray).

The runner (:func:`sparsedp.execution.runner.run_experiment`) keeps up to ``capacity`` pieces
of work submitted, stores each outcome the moment the backend yields it and tells the backend
every new best. ``tests/test_backend_contract.py`` runs one conformance suite against every
backend; docs/cluster.md describes the contract in words.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Protocol, runtime_checkable

from sparsedp.data.errors import DataError
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.tasks import TaskFailure, TrialGroup, TrialTask

Outcome = TrialRecord | TaskFailure
"""What one trial ends with: its record, or the failure of one attempt (the runner retries)."""

Work = TrialTask | TrialGroup
"""What is submitted: one trial, or trials of one study run in lockstep (batched trials)."""


@runtime_checkable
class Backend(Protocol):
    """Runs trials somewhere and hands back one outcome per trial.

    - ``capacity``: how many pieces of work the runner keeps submitted at once.
    - ``submit(work)``: queue a trial or a group; never blocks on the trial itself.
    - ``in_flight()``: pieces of work submitted whose outcomes were not all yielded yet.
    - ``completed()``: blocks until at least one trial has ended, or for at most about a
      second (the runner calls it again; the local process backend wakes twice a second so
      a Ctrl-C is acted on promptly), or returns at once when nothing is in flight. It
      yields ``(task, outcome)`` pairs: exactly one per :class:`TrialTask`, never a list; a
      group yields one pair per member. A trial lost with its worker (a killed process, a
      removed node) yields a :class:`TaskFailure` so the runner retries it; a worker that
      cannot read the data raises :class:`WorkerDataError` (the experiment stops: no trial
      can run there).
    - ``update_limit(study_key, steps)``: a study's stopping limit, its best steps-to-result so
      far (with ``keep_complete = K``: its K-th best; :mod:`sparsedp.training.stopping`);
      every running trial of that study sees it by its next validation check and stops when
      it can no longer be among the K best (with ``stop_hopeless``). Limits only fall.
    - ``shutdown()``: stop everything started; no worker process is left running.
    """

    capacity: int

    def submit(self, work: Work) -> None: ...

    def in_flight(self) -> int: ...

    def completed(self) -> Iterator[tuple[TrialTask, Outcome]]: ...

    def update_limit(self, study_key: str, steps: int) -> None: ...

    def shutdown(self) -> None: ...


class WorkerDataError(DataError):
    """A worker (a local process or a Ray node) cannot find or read a data set."""


def tasks_of(work: Work) -> tuple[TrialTask, ...]:
    """The trials of a piece of work, in order."""
    return work.tasks if isinstance(work, TrialGroup) else (work,)


def lost(work: Work, error: str, reported: Collection[int] = ()) -> list[tuple[TrialTask, Outcome]]:
    """A failed attempt for every trial of ``work`` (its worker went away) except those whose
    outcome was already ``reported`` (trial indices: a rolling group reports trials as they
    end)."""
    return [(t, TaskFailure(t.study.key, t.index, t.attempt, error, "")) for t in tasks_of(work)
            if t.index not in reported]
