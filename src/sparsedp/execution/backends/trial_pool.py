"""Trials in flight inside one worker, advanced one validation check each per round.

Every backend runs its trials through a :class:`TrialPool` (in the main process, in each local
worker process, in each Ray worker), so trials interleave the same way everywhere: the first
trial of a study to meet the goal (with ``keep_complete = K``: the K-th) sets a limit that
stops every other running trial of the study at its next check. The limit a trial sees is the
smaller of the study's limit known to the whole experiment (``live_limit``: a shared dict,
shared memory or a Ray actor) and the limit set by this pool's own completed trials
(:class:`~sparsedp.training.stopping.CompletedSteps`). A group of batched trials (a rolling
group of one study's trials) advances to its next check per round and reports each trial as it
ends.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any

from sparsedp.data.errors import DataError
from sparsedp.execution.backends.contract import Outcome, Work, WorkerDataError, tasks_of
from sparsedp.execution.backends.worker import StartedGroup, StartedTrial, WorkerContext
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.tasks import TaskFailure, TrialGroup, TrialTask
from sparsedp.training import get_workload
from sparsedp.training.stopping import CompletedSteps, combined_limit

Finished = tuple[Any, TrialTask, Outcome]
"""``(tag, task, outcome)``: the tag given to :meth:`TrialPool.add` with the work."""


class TrialPool:
    """Started trials of one worker; :meth:`round` advances each by one check."""

    def __init__(self, context: WorkerContext, live_limit: Callable[[str], int | None],
                 where: str = "this process") -> None:
        self.context = context
        self.live_limit = live_limit
        self.where = where
        self.found: dict[str, CompletedSteps] = {}  # this pool's own completed trials
        self._running: list[tuple[Hashable, StartedTrial | StartedGroup]] = []

    def __len__(self) -> int:
        return len(self._running)

    def limit(self, study_key: str) -> int | None:
        """The study's stopping limit known here: the experiment's and this pool's own."""
        own = self.found.get(study_key)
        return combined_limit(self.live_limit(study_key), own.limit if own else None)

    def _limit_of(self, study_key: str) -> Callable[[], int | None]:
        return lambda: self.limit(study_key)

    def _note(self, outcome: Outcome) -> None:
        if isinstance(outcome, TrialRecord) and outcome.steps_to_result is not None:
            keep = self.context.engine.keep_complete
            self.found.setdefault(outcome.study_key, CompletedSteps(keep)).add(
                outcome.steps_to_result)

    def _check_data(self, work: Work) -> None:
        dataset = get_workload(work.study.workload).dataset
        try:
            self.context.data(dataset)
        except (DataError, OSError) as exc:
            raise WorkerDataError(f"{self.where} cannot read the {dataset} data: {exc}") from exc

    def add(self, work: Work, tag: Hashable = None) -> list[Finished]:
        """Start ``work``; what ended already (a failed set-up, a whole group) comes back.

        Raises :class:`WorkerDataError` when the data set cannot be loaded here.
        """
        self._check_data(work)
        limit = self._limit_of(work.study.key)
        if isinstance(work, TrialGroup):
            group = self.context.start_group(work, limit)
            if isinstance(group, list):
                return [(tag, t, o) for t, o in zip(tasks_of(work), group, strict=True)]
            self._running.append((tag, group))
            return []
        started = self.context.start(work, limit)
        if isinstance(started, TaskFailure):
            return [(tag, work, started)]
        self._running.append((tag, started))
        return []

    def round(self) -> Iterator[Finished]:
        """One check for every running trial, in the order they were added; yields the ends."""
        for entry in list(self._running):
            tag, started = entry
            if isinstance(started, StartedGroup):
                for task, ended in self.context.advance_group(started):
                    self._note(ended)
                    yield tag, task, ended
                if started.finished:
                    self._running.remove(entry)
                continue
            outcome = self.context.advance(started, checks=1)
            if outcome is not None:
                self._running.remove(entry)
                self._note(outcome)
                yield tag, started.task, outcome

    def clear(self) -> None:
        self._running.clear()
