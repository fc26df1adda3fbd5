"""Execution backends: in-process, local worker processes (the default), Ray for a cluster."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sparsedp.experiment.records import TrialRecord
from sparsedp.experiment.worker import (
    StartedTrial,
    TaskFailure,
    TrialGroup,
    TrialTask,
    WorkerContext,
)

Outcome = TrialRecord | TaskFailure
Work = TrialTask | TrialGroup


def execute(context: WorkerContext, work: Work, step_limit=None) -> list[Outcome]:
    """Run one task or one group of tasks; one outcome per task, in order."""
    if isinstance(work, TrialGroup):
        return context.run_group(work, step_limit)
    return [context.run(work, step_limit)]


def tasks_of(work: Work) -> tuple[TrialTask, ...]:
    return work.tasks if isinstance(work, TrialGroup) else (work,)


def _lost(work: Work, error: str) -> list[tuple[TrialTask, Outcome]]:
    return [(t, TaskFailure(t.study.key, t.index, t.attempt, error, "")) for t in tasks_of(work)]


class InProcessBackend:
    """Runs trials in this process; the stopping limit is always current.

    With ``interleave`` > 1 up to that many trials are in flight and advanced in turn, one
    validation check each, round after round. A study's trials then progress side by side,
    so the first to meet the goal is the study's best, found as soon as it can be, and the
    stopping rule ends every other trial at that step count at once: the least training
    that can settle the study's best. Each trial computes exactly what it computes alone.
    """

    def __init__(self, context: WorkerContext, best: dict[str, int], interleave: int = 1) -> None:
        self.context = context
        self.best = best
        self.capacity = max(1, interleave)
        self._queue: list[Work] = []
        self._running: list[StartedTrial] = []

    def submit(self, task: Work) -> None:
        self._queue.append(task)

    def in_flight(self) -> int:
        return len(self._queue) + len(self._running)

    def _limit(self, key: str):
        return lambda: self.best.get(key)

    def completed(self) -> Iterator[tuple[TrialTask, Outcome]]:
        if self.capacity == 1:
            while self._queue:
                work = self._queue.pop(0)
                outcomes = execute(self.context, work, self._limit(work.study.key))
                yield from zip(tasks_of(work), outcomes, strict=True)
            return
        while self._queue:  # start newcomers (groups of batched trials run whole)
            work = self._queue.pop(0)
            if isinstance(work, TrialGroup):
                outcomes = execute(self.context, work, self._limit(work.study.key))
                yield from zip(tasks_of(work), outcomes, strict=True)
                continue
            started = self.context.start(work, self._limit(work.study.key))
            if isinstance(started, TaskFailure):
                yield work, started
            else:
                self._running.append(started)
        for started in list(self._running):  # one round: one check per trial
            outcome = self.context.advance(started, checks=1)
            if outcome is not None:
                self._running.remove(started)
                yield started.task, outcome

    def update_best(self, study_key: str, steps: int) -> None:
        self.best[study_key] = steps  # shared dict: nothing else to do

    def shutdown(self) -> None:
        self._queue.clear()
        self._running.clear()


# -- local processes ------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(
    context_args: tuple, shared_best: Any, positions: dict[str, int], parent_pid: int
) -> None:
    _WORKER["context"] = WorkerContext(*context_args)
    _WORKER["best"] = shared_best
    _WORKER["positions"] = positions
    _WORKER["parent"] = parent_pid


def _live_limit(study_key: str) -> int | None:
    if os.getppid() != _WORKER["parent"]:
        raise SystemExit("the experiment's main process is gone")  # orphaned: stop working
    value = _WORKER["best"][_WORKER["positions"][study_key]]
    return None if value < 0 else int(value)


def _run_in_worker(work: Work) -> list[Outcome]:
    return execute(_WORKER["context"], work, lambda: _live_limit(work.study.key))


class ProcessBackend:
    """``workers`` local processes; each loads its data once and shares the best-so-far of
    every study through shared memory, so the stopping rule sees other workers' results."""

    def __init__(self, workers: int, context_args: tuple, study_keys: list[str]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.capacity = workers
        self._positions = {key: i for i, key in enumerate(study_keys)}
        self._best = ctx.Array("q", [-1] * max(1, len(study_keys)), lock=False)
        self._args = (context_args, self._best, self._positions, os.getpid())
        self._ctx = ctx
        self._pool = self._new_pool()
        self._futures: dict[Future, Work] = {}

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.capacity, mp_context=self._ctx, initializer=_init_worker, initargs=self._args
        )

    def submit(self, task: Work) -> None:
        self._futures[self._pool.submit(_run_in_worker, task)] = task

    def in_flight(self) -> int:
        return len(self._futures)

    def completed(self) -> Iterator[tuple[TrialTask, Outcome]]:
        if not self._futures:
            return
        done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
        broken = False
        for future in done:
            work = self._futures.pop(future)
            try:
                yield from zip(tasks_of(work), future.result(), strict=True)
            except BrokenProcessPool as exc:
                broken = True
                yield from _lost(work, f"worker process died: {exc}")
        if broken:  # every in-flight task of a broken pool is lost: report and rebuild
            for future, task in list(self._futures.items()):
                self._futures.pop(future)
                yield (
                    task,
                    TaskFailure(
                        task.study.key,
                        task.index,
                        task.attempt,
                        "worker pool broke while the trial ran",
                        "",
                    ),
                )
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()

    def update_best(self, study_key: str, steps: int) -> None:
        self._best[self._positions[study_key]] = steps

    def shutdown(self) -> None:
        for process in list(getattr(self._pool, "_processes", {}).values()):
            process.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)


class RayBackend:
    """Trials as Ray tasks on a cluster (``ray.init(address="auto")`` or a local Ray).

    Each Ray worker process keeps its own :class:`WorkerContext` (data loaded once). The
    stopping limit is the study's best when the trial is dispatched.
    """

    def __init__(self, workers: int, context_args: tuple) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ValueError(
                "engine backend 'ray' needs Ray: pip install 'sparsedp[ray]' "
                '(or use backend = "local")'
            ) from exc
        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True)
        self.capacity = workers

        @ray.remote
        def run_remote(work: Work) -> list[Outcome]:
            if "context" not in _WORKER:
                _WORKER["context"] = WorkerContext(*context_args)
            return execute(_WORKER["context"], work)

        self._remote = run_remote
        self._refs: dict[Any, Work] = {}

    def submit(self, task: Work) -> None:
        self._refs[self._remote.remote(task)] = task

    def in_flight(self) -> int:
        return len(self._refs)

    def completed(self) -> Iterator[tuple[TrialTask, Outcome]]:
        if not self._refs:
            return
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                yield task, self._ray.get(ref)
            except Exception as exc:
                yield (
                    task,
                    TaskFailure(
                        task.study.key, task.index, task.attempt, f"ray task failed: {exc}", ""
                    ),
                )

    def update_best(self, study_key: str, steps: int) -> None:
        """Ray trials get the limit at dispatch time (see TrialTask.best_known)."""

    def shutdown(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
