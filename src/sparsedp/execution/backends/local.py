"""Local execution backends: in this process, and local worker processes.

Both follow :class:`sparsedp.execution.backends.contract.Backend` and run trials through a
:class:`~sparsedp.execution.backends.trial_pool.TrialPool`, so up to ``interleave`` trials
advance in turn, one validation check each, in every worker. The Ray backend is in
:mod:`.ray_cluster`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import tempfile
from collections.abc import Iterator
from multiprocessing import spawn as mp_spawn
from multiprocessing.connection import Connection, wait
from typing import Any

from sparsedp.execution.backends.contract import Outcome, Work, WorkerDataError, lost, tasks_of
from sparsedp.execution.backends.trial_pool import TrialPool
from sparsedp.execution.backends.worker import WorkerContext
from sparsedp.execution.tasks import TrialGroup, TrialTask
from sparsedp.plugins import PluginError

__all__ = ["InProcessBackend", "ProcessBackend", "execute", "tasks_of"]


def execute(context: WorkerContext, work: Work, step_limit=None) -> list[Outcome]:
    """Run one task or one group of tasks to the end; one outcome per task, in order."""
    if isinstance(work, TrialGroup):
        return context.run_group(work, step_limit)
    return [context.run(work, step_limit)]


class InProcessBackend:
    """Runs trials in this process; the stopping limit is always current.

    With ``interleave`` > 1 up to that many trials are in flight and advanced in turn, one
    validation check each, round after round. A study's trials then progress side by side,
    so the first to meet the goal is the study's best (the first K with ``keep_complete``),
    found as soon as it can be, and the stopping rule ends every other trial at that step
    count at once: the least training that can settle them. Each trial computes exactly what
    it computes alone.
    """

    def __init__(self, context: WorkerContext, limits: dict[str, int],
                 interleave: int = 1) -> None:
        self.context = context
        self.limits = limits
        self.capacity = max(1, interleave)
        self._queue: list[Work] = []
        self._pool = TrialPool(context, limits.get)

    def submit(self, work: Work) -> None:
        self._queue.append(work)

    def in_flight(self) -> int:
        return len(self._queue) + len(self._pool)

    def completed(self) -> Iterator[tuple[TrialTask, Outcome]]:
        while self._queue and len(self._pool) < self.capacity:  # start newcomers (groups of
            # batched trials run whole)
            for _, task, outcome in self._pool.add(self._queue.pop(0)):
                yield task, outcome
        for _, task, outcome in self._pool.round():  # one round: one check per trial
            yield task, outcome

    def update_limit(self, study_key: str, steps: int) -> None:
        self.limits[study_key] = steps  # shared dict: nothing else to do

    def shutdown(self) -> None:
        self._queue.clear()
        self._pool.clear()


# -- local processes ------------------------------------------------------------------------
class _Orphaned(SystemExit):
    """The experiment's main process is gone: the worker stops."""


def _worker_main(context_args: tuple, shared_limits: Any, positions: dict[str, int],
                 parent_pid: int, interleave: int, inbox: Connection, outbox: Connection) -> None:
    """A local worker process: take work from ``inbox``, advance it, send outcomes back.

    Messages in: ``(work_id, work)``. Out: ``(work_id, task, outcome)`` per trial, or
    ``(None, None, message)`` when the data cannot be read (the worker then exits). The worker
    exits on its own when the main process is gone (its parent changes or the pipe closes).
    """

    def live_limit(study_key: str) -> int | None:
        if os.getppid() != parent_pid:
            raise _Orphaned("the experiment's main process is gone")
        value = shared_limits[positions[study_key]]
        return None if value < 0 else int(value)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    engine, data_dir, cache_dir, origin, *rest = context_args
    plugins = rest[0] if rest else None  # the experiment's PluginSet
    worker = f"local pid {os.getpid()}"  # recorded with every trial it runs
    try:
        pool = TrialPool(WorkerContext(engine, data_dir, cache_dir, {**origin, "worker": worker},
                                       plugins), live_limit, where=f"worker process {os.getpid()}")
    except PluginError as exc:  # cannot happen after preflight, unless the environment differs
        outbox.send((None, None, str(exc)))
        return
    try:
        while True:
            while len(pool) < interleave and inbox.poll(0 if len(pool) else 1.0):
                work_id, work = inbox.recv()
                for finished in pool.add(work, work_id):
                    outbox.send(finished)
            if not len(pool) and os.getppid() != parent_pid:
                return  # orphaned while idle
            for finished in pool.round():
                outbox.send(finished)
    except WorkerDataError as exc:
        outbox.send((None, None, str(exc)))
    except (EOFError, BrokenPipeError, _Orphaned):
        return  # the main process closed the pipes or died


_LAUNCHER = ("#!/bin/sh\n# Start a sparsedp worker process with SIGINT ignored (kept across "
             "exec).\ntrap '' INT\nexec \"$SPARSEDP_WORKER_PYTHON\" \"$@\"\n")


def _launcher() -> str | None:
    """A tiny shell script that execs the real Python with SIGINT ignored (None off POSIX)."""
    if os.name != "posix" or not os.path.exists("/bin/sh"):
        return None
    path = os.path.join(tempfile.gettempdir(), f"sparsedp-worker-{os.getuid()}.sh")
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == _LAUNCHER:
                return path
    except OSError:
        pass
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(_LAUNCHER)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Start processes that ignore SIGINT from their first instruction (Ctrl-C is the main
    process's to handle; a worker hit while still importing would die with a traceback).

    The child is exec'd through a shell launcher that sets SIGINT to ignored, a disposition
    that survives exec, so the main process never ignores it: a Ctrl-C that arrives meanwhile
    is held by a Python handler (whichever thread the kernel picks) and acted on at the end.
    (An earlier version ignored SIGINT in the main process during the start and lost a Ctrl-C
    delivered to another thread in that window: docs/faults.md.)
    """
    launcher = _launcher()
    if launcher is None:
        yield
        return
    previous = mp_spawn.get_executable()
    os.environ["SPARSEDP_WORKER_PYTHON"] = os.fsdecode(previous)
    mp_spawn.set_executable(launcher)
    with _sigint_deferred():
        try:
            yield
        finally:
            mp_spawn.set_executable(previous)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside until the end (a start interrupted half-way leaves a
    child reading a half-written pipe, which dies with a traceback), then act on it."""
    seen: list[int] = []
    try:
        original = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    except ValueError:  # not the main thread: signals cannot be changed here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, original)
        if seen:
            if callable(original):
                original(signal.SIGINT, None)
            else:
                raise KeyboardInterrupt


class _Worker:
    """The main process's handle on one worker process and the work it holds."""

    def __init__(self, ctx: Any, args: tuple) -> None:
        inbox_reader, self.inbox = ctx.Pipe(duplex=False)
        self.outbox, outbox_writer = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_worker_main, args=(*args, inbox_reader, outbox_writer),
                                   daemon=True)
        with _sigint_ignored_by_children():
            self.process.start()
        inbox_reader.close()
        outbox_writer.close()
        self.works: dict[int, Work] = {}
        self.remaining: dict[int, int] = {}  # trials of each work not yet reported
        self.reported: dict[int, set[int]] = {}  # trial indices of each work reported
        self.broken = False  # its pipe failed: treated as dead

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=10)
        self.inbox.close()
        self.outbox.close()


class ProcessBackend:
    """``workers`` local processes; each loads its data once, runs up to ``interleave``
    trials side by side and shares every study's stopping limit through shared memory, so
    the stopping rule sees other workers' results at the next check.

    A worker that dies (killed, out of memory) loses only its own trials: they come back as
    failed attempts (the runner retries them) and a new worker process takes its place.
    """

    def __init__(self, workers: int, context_args: tuple, study_keys: list[str],
                 interleave: int = 1) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self.interleave = max(1, interleave)
        self.capacity = workers * self.interleave
        positions = {key: i for i, key in enumerate(study_keys)}
        self._positions = positions
        self._limits = self._ctx.Array("q", [-1] * max(1, len(study_keys)), lock=False)
        self._args = (context_args, self._limits, positions, os.getpid(), self.interleave)
        self._workers = [_Worker(self._ctx, self._args) for _ in range(workers)]
        self._next_id = 0

    def worker_pids(self) -> list[int]:
        """Process ids of the current worker processes."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def submit(self, work: Work) -> None:
        worker = min(self._workers, key=lambda w: len(w.works))
        self._next_id += 1
        worker.works[self._next_id] = work
        worker.remaining[self._next_id] = len(tasks_of(work))
        with contextlib.suppress(OSError):  # a dead worker: completed() reports its work lost
            worker.inbox.send((self._next_id, work))

    def in_flight(self) -> int:
        return sum(len(w.works) for w in self._workers)

    def _replace(self, worker: _Worker, why: str) -> list[tuple[TrialTask, Outcome]]:
        outcomes = [pair for work_id, work in worker.works.items()
                    for pair in lost(work, why, worker.reported.get(work_id, ()))]
        worker.stop()
        self._workers[self._workers.index(worker)] = _Worker(self._ctx, self._args)
        return outcomes

    def completed(self) -> Iterator[tuple[TrialTask, Outcome]]:
        if not self.in_flight():
            return
        handles = {w.outbox: w for w in self._workers}
        handles.update({w.process.sentinel: w for w in self._workers})
        # A timeout: the main thread runs Python code at least twice a second, so a Ctrl-C
        # that the kernel handed to another thread of this process is acted on promptly.
        touched = {handles[item] for item in wait(list(handles), timeout=0.5)}
        for worker in [w for w in self._workers if w in touched]:
            yield from self._drain(worker)  # what it sent before it died still counts
            if worker.process.exitcode is not None or worker.broken:
                code = worker.process.exitcode
                why = f"worker process {worker.process.pid} died (exit code {code})"
                yield from self._replace(worker, why)

    def _drain(self, worker: _Worker) -> Iterator[tuple[TrialTask, Outcome]]:
        while not worker.broken and worker.outbox.poll():
            try:
                work_id, task, outcome = worker.outbox.recv()
            except (EOFError, OSError, ValueError, TypeError, AttributeError):
                worker.broken = True  # died (or was killed) while sending
                return
            if work_id is None:
                raise WorkerDataError(str(outcome))
            if work_id not in worker.works:
                continue
            worker.remaining[work_id] -= 1
            worker.reported.setdefault(work_id, set()).add(task.index)
            if not worker.remaining[work_id]:
                del worker.works[work_id], worker.remaining[work_id]
                worker.reported.pop(work_id, None)
            yield task, outcome

    def update_limit(self, study_key: str, steps: int) -> None:
        self._limits[self._positions[study_key]] = steps

    def shutdown(self) -> None:
        for worker in self._workers:
            worker.stop()
