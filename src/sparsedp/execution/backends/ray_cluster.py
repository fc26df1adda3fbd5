"""Trials on a Ray cluster: one actor per worker, each running up to ``interleave`` trials.

The driver (the ``sparsedp run`` process) keeps the queue and writes every outcome into its
own SQLite file; Ray workers only compute. Each worker is an actor with its own
:class:`~sparsedp.execution.backends.worker.WorkerContext` (data resolved on its node, loaded once)
and a :class:`~sparsedp.execution.backends.trial_pool.TrialPool`: the driver calls
:meth:`RayTrialWorker.round` with the new work for it, the worker advances each of its trials
by one validation check and returns what ended. Every study's stopping limit lives in one
:class:`LimitBoard` actor: the driver posts the limits it knows, workers post their own
completed trials, and workers read it before every round, so a running trial sees a new limit
from anywhere in the cluster at its next check.

A worker that dies (killed process, removed node) loses only its own trials: they come back
as failed attempts, which the runner retries, and a new actor is started in its place.
A worker that cannot read the data stops the experiment with one line naming its node.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sparsedp.execution.backends.contract import Outcome, Work, WorkerDataError, lost, tasks_of
from sparsedp.execution.backends.trial_pool import TrialPool
from sparsedp.execution.backends.worker import WorkerContext
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.tasks import TrialTask
from sparsedp.training.stopping import CompletedSteps, combined_limit

START_TIMEOUT_S = 300.0
"""Seconds the driver waits for a first Ray worker (``$SPARSEDP_RAY_START_TIMEOUT``)."""


class BackendError(OSError):
    """The cluster cannot run the experiment (unreachable, no worker can start)."""


class LimitBoard:
    """Ray actor: every study's stopping limit, as known anywhere in the cluster.

    The limit is the smaller of the driver's (posted with :meth:`limit`) and the one set by
    the completed trials the workers posted (:meth:`complete`; the ``keep`` best of distinct
    trials, so a trial posted twice counts once).
    """

    def __init__(self, keep: int = 1) -> None:
        self.keep = keep
        self.driver: dict[str, int] = {}
        self.completed: dict[str, dict[int, int]] = {}

    def limit(self, study_key: str, steps: int) -> None:
        self.driver[study_key] = min(steps, self.driver.get(study_key, steps))

    def complete(self, study_key: str, trial_index: int, steps: int) -> None:
        self.completed.setdefault(study_key, {})[trial_index] = steps

    def snapshot(self) -> dict[str, int]:
        out = {}
        for key in set(self.driver) | set(self.completed):
            own = CompletedSteps(self.keep, self.completed.get(key, {}).values()).limit
            limit = combined_limit(self.driver.get(key), own)
            if limit is not None:
                out[key] = limit
        return out


class RayTrialWorker:
    """Ray actor: a :class:`TrialPool` on one node."""

    def __init__(self, context_args: tuple, board: Any) -> None:
        import ray

        self._ray, self.board = ray, board
        self.known: dict[str, int] = {}
        node_id = ray.get_runtime_context().get_node_id()
        self.identity = (node_address(ray, node_id), node_id, os.getpid())
        where = f"Ray node {self.identity[0]} (node id {node_id[:12]}, worker pid {os.getpid()})"
        engine, data_dir, cache_dir, origin, *rest = context_args
        plugins = rest[0] if rest else None  # the experiment's PluginSet
        origin = {**origin, "worker": f"ray {self.identity[0]} pid {os.getpid()}"}
        self.pool = TrialPool(WorkerContext(engine, data_dir, cache_dir, origin, plugins),
                              self.known.get, where=where)

    def describe(self) -> tuple[str, str, int]:
        """``(node address, node id, process id)``."""
        return self.identity

    def round(self, new: list[tuple[int, Work]]) -> tuple[str, Any]:
        """Start ``new`` work, advance every trial by one check; ``("ok", ended)`` or
        ``("data", message)`` when the data cannot be read on this node."""
        # If the board is gone, go on with the limits found here (the driver goes on).
        with contextlib.suppress(self._ray.exceptions.RayError):
            self.known.update(self._ray.get(self.board.snapshot.remote(), timeout=60))
        ended: list[tuple[int, TrialTask, Outcome]] = []
        try:
            for work_id, work in new:
                ended.extend(self.pool.add(work, work_id))
            ended.extend(self.pool.round())
        except WorkerDataError as exc:
            return "data", str(exc)
        for _, _, outcome in ended:
            if isinstance(outcome, TrialRecord) and outcome.steps_to_result is not None:
                self.board.complete.remote(outcome.study_key, outcome.trial_index,
                                           outcome.steps_to_result)
        return "ok", ended


@dataclass
class _Slot:
    """The driver's view of one worker actor."""

    actor: Any
    ready: Any  # ObjectRef of describe(); None once the actor answered
    identity: tuple[str, str, int] | None = None
    works: dict[int, Work] = field(default_factory=dict)
    remaining: dict[int, int] = field(default_factory=dict)
    reported: dict[int, set[int]] = field(default_factory=dict)  # trial indices per work
    new: list[tuple[int, Work]] = field(default_factory=list)
    call: Any = None  # ObjectRef of the round in progress

    def label(self) -> str:
        if self.identity is None:
            return "a Ray worker that had not started"
        address, node_id, pid = self.identity
        return f"Ray worker pid {pid} on node {address} ({node_id[:12]})"


def node_address(ray: Any, node_id: str) -> str:
    """The address Ray registered for node ``node_id`` (what ``ray start
    --node-ip-address`` gave it, e.g. 127.0.0.1): the cluster's own record, where
    ``ray.util.get_node_ip_address()`` answers from the worker process's view (in Ray
    versions whose workers do not know their node, the machine's default-route address)."""
    with contextlib.suppress(Exception):  # the registry unreachable: fall back to the guess
        for node in ray.nodes():
            if node.get("NodeID") == node_id and node.get("NodeManagerAddress"):
                return str(node["NodeManagerAddress"])
    return str(ray.util.get_node_ip_address())


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendError(
            "engine backend 'ray' needs Ray: pip install 'sparsedp[ray]' "
            '(or use backend = "local")'
        ) from exc
    return ray


def connect(ray: Any) -> bool:
    """Join the cluster at ``$RAY_ADDRESS`` or start a private Ray on 127.0.0.1.

    True when this call initialised Ray (so the backend shuts it down again).
    """
    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS") or None
    try:
        if address is None:
            _single_machine()  # else Ray starts the node on the machine's address instead
            # "local": a new instance, never the cluster a `ray start` here left running
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        else:
            host, _, port = address.split("://")[-1].rpartition(":")
            if host and port.isdigit():  # ("auto" finds a cluster started on this machine)
                _reachable(host, port, address)  # Ray itself would retry for ever
            if host in ("127.0.0.1", "localhost"):
                _single_machine()
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"RAY_ADDRESS={address}" if address else "a local Ray instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(f"cannot connect to {where}: {first} (start a cluster with "
                           "`ray start --head`, or unset RAY_ADDRESS)") from exc
    return True


class RayBackend:
    """``workers`` Ray actors, each running up to ``interleave`` trials side by side.

    ``actor_options`` are passed to Ray for every worker actor (e.g. custom resources).
    """

    def __init__(self, workers: int, context_args: tuple, interleave: int = 1, *,
                 actor_options: dict[str, Any] | None = None,
                 start_timeout: float | None = None) -> None:
        ray = _import_ray()
        self._ray = ray
        self._owns_ray = connect(ray)
        self.interleave = max(1, interleave)
        self.capacity = workers * self.interleave
        engine = context_args[0]
        # Ray starts each worker with as many torch threads as CPUs it asks for.
        options: dict[str, Any] = {"num_cpus": engine.threads or 1, "max_restarts": 0,
                                   "scheduling_strategy": "SPREAD"}
        if str(engine.device).startswith("cuda"):
            options["num_gpus"] = 1
        options.update(actor_options or {})
        self._context_args = context_args
        self._board = ray.remote(num_cpus=0)(LimitBoard).remote(engine.keep_complete)
        self._worker_cls = ray.remote(RayTrialWorker).options(**options)
        self._slots = [self._new_slot() for _ in range(workers)]
        self._queue: deque[tuple[int, Work]] = deque()
        self._next_id = 0
        self._start_failures = 0
        timeout = start_timeout or float(os.environ.get("SPARSEDP_RAY_START_TIMEOUT",
                                                        START_TIMEOUT_S))
        self._start_timeout = timeout
        self._idle_since: float | None = None

    def _new_slot(self) -> _Slot:
        actor = self._worker_cls.remote(self._context_args, self._board)
        return _Slot(actor, actor.describe.remote())

    def wait_for_workers(self, count: int, timeout: float = 120.0) -> None:
        """Block until ``count`` workers have started (benchmarks, tests)."""
        deadline = time.monotonic() + timeout
        while len(self.workers()) < count and time.monotonic() < deadline:
            pending = {s.ready: s for s in self._slots if s.ready is not None}
            done, _ = self._ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in done:
                slot = pending[ref]
                slot.ready = None
                try:
                    slot.identity = self._ray.get(ref)
                except self._ray.exceptions.RayError as exc:
                    self._start_failed(slot, exc)
        if len(self.workers()) < count:
            raise BackendError(f"only {len(self.workers())} of {count} Ray workers started "
                               f"within {timeout:.0f} s")

    def workers(self, busy: bool = False) -> list[tuple[str, str, int]]:
        """``(node address, node id, pid)`` of every worker that has started (``busy``: of
        those computing now, i.e. holding trials with a round whose answer has not come back;
        a worker that already answered may hold nothing the driver still needs)."""
        slots = [s for s in list(self._slots) if s.identity is not None]
        if not busy:
            return [s.identity for s in slots]
        computing = []
        for slot in slots:
            call = slot.call
            if slot.works and call is not None:
                ready, _ = self._ray.wait([call], num_returns=1, timeout=0)
                if not ready:
                    computing.append(slot.identity)
        return computing

    def submit(self, work: Work) -> None:
        self._next_id += 1
        self._queue.append((self._next_id, work))

    def in_flight(self) -> int:
        return len(self._queue) + sum(len(s.works) for s in self._slots)

    def update_limit(self, study_key: str, steps: int) -> None:
        self._board.limit.remote(study_key, steps)

    def _assign(self) -> None:
        """Hand queued work to started workers with room; start a round where work waits."""
        for slot in sorted((s for s in self._slots if s.identity is not None),
                           key=lambda s: len(s.works)):
            while self._queue and len(slot.works) < self.interleave:
                work_id, work = self._queue.popleft()
                slot.works[work_id] = work
                slot.remaining[work_id] = len(tasks_of(work))
                slot.new.append((work_id, work))
        for slot in self._slots:
            if slot.identity is not None and slot.call is None and slot.works:
                slot.call = slot.actor.round.remote(slot.new)
                slot.new = []

    def _replace(self, slot: _Slot, why: str) -> list[tuple[TrialTask, Outcome]]:
        outcomes = [pair for work_id, work in slot.works.items()
                    for pair in lost(work, why, slot.reported.get(work_id, ()))]
        self._ray.kill(slot.actor, no_restart=True)
        self._slots[self._slots.index(slot)] = self._new_slot()
        return outcomes

    def _check_start(self) -> None:
        """Raise when no worker has started for too long (nothing hangs)."""
        if any(s.identity is not None for s in self._slots):
            self._idle_since = None
            return
        now = time.monotonic()
        self._idle_since = self._idle_since or now
        if now - self._idle_since > self._start_timeout:
            resources = self._ray.cluster_resources()
            raise BackendError(
                f"no Ray worker started within {self._start_timeout:.0f} s (each needs "
                f"{self._worker_cls_options()}; the cluster has {resources}): add nodes or "
                "free resources, or set SPARSEDP_RAY_START_TIMEOUT")

    def _worker_cls_options(self) -> str:
        engine = self._context_args[0]
        return f"{engine.threads or 1} CPU" + (
            " and 1 GPU" if str(engine.device).startswith("cuda") else "")

    def completed(self) -> Iterator[tuple[TrialTask, Outcome]]:
        ray = self._ray
        while self.in_flight():
            self._assign()
            waiting = {s.call: s for s in self._slots if s.call is not None}
            waiting.update({s.ready: s for s in self._slots if s.ready is not None})
            done, _ = ray.wait(list(waiting), num_returns=1, timeout=1.0)
            self._check_start()
            yielded = False
            for ref in done:
                slot = waiting[ref]
                if ref is slot.ready:
                    slot.ready = None
                    try:
                        slot.identity = ray.get(ref)
                        self._start_failures = 0
                    except ray.exceptions.RayError as exc:
                        self._start_failed(slot, exc)
                    continue
                slot.call = None
                try:
                    kind, payload = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    yielded = True
                    yield from self._replace(slot, f"{slot.label()} died: {_first_line(exc)}")
                    continue
                if kind == "data":
                    raise WorkerDataError(payload)
                for work_id, task, outcome in payload:
                    if work_id not in slot.works:
                        continue
                    slot.remaining[work_id] -= 1
                    slot.reported.setdefault(work_id, set()).add(task.index)
                    if not slot.remaining[work_id]:
                        del slot.works[work_id], slot.remaining[work_id]
                        slot.reported.pop(work_id, None)
                    yielded = True
                    yield task, outcome
            if yielded:
                return

    def _start_failed(self, slot: _Slot, exc: Exception) -> None:
        self._start_failures += 1
        if self._start_failures >= 3:
            raise BackendError(f"Ray workers fail to start: {_first_line(exc)} (are sparsedp "
                               "and the experiment's plugins installed on every node?)")
        self._ray.kill(slot.actor, no_restart=True)
        self._slots[self._slots.index(slot)] = self._new_slot()

    def shutdown(self) -> None:
        ray = self._ray
        for slot in self._slots:
            ray.kill(slot.actor, no_restart=True)
        ray.kill(self._board, no_restart=True)
        self._slots.clear()
        self._queue.clear()
        if self._owns_ray:
            ray.shutdown()


def _single_machine() -> None:
    """Keep Ray on loopback: it rewrites 127.0.0.1 to the machine's default-route address
    unless told that this is a single-machine cluster."""
    import ray._private.ray_constants as constants

    constants.ENABLE_RAY_CLUSTER = False


def _reachable(host: str, port: str, address: str) -> None:
    """Raise :class:`BackendError` unless something listens at ``host:port``."""
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=10):
            pass
    except OSError as exc:
        raise BackendError(f"cannot reach the Ray cluster at RAY_ADDRESS={address} ({exc}); "
                           "start it with `ray start --head` or fix RAY_ADDRESS") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
