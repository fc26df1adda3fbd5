"""One conformance suite for every execution backend (docs/cluster.md, "The backend contract").

Each backend (in this process, local worker processes, Ray on a real two-node cluster on
127.0.0.1) must yield exactly one outcome per trial, the same outcomes, let a best found by
one worker stop a trial running on another at its next check, fail with one line naming the
worker when the data cannot be read, and leave no worker running after ``shutdown``.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from small_mnist import small_mnist_tables
from sparsedp.execution.backends.contract import Backend, WorkerDataError
from sparsedp.execution.backends.local import InProcessBackend, ProcessBackend
from sparsedp.execution.backends.worker import WorkerContext
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.tasks import TrialGroup, TrialTask
from sparsedp.specs import load_experiment

KINDS = ["in-process", "processes", "ray"]

STUDY = """
name = "contract"
{workloads_line}
sparsities = [0.0]
batch_sizes = [32]
trials = 4
results = "{results}"
goal_error = 0.5
max_steps = {max_steps}
eval_every = 8
[engine]
eval_batch_size = 1000
stop_hopeless = {stop}
keep_complete = 1  # _drain reports each best as the limit, as the runner does with K = 1
"""  # then the cut MNIST's tables (tests/small_mnist.py); built-in MNIST without them
FAST = {"lr": 0.02, "momentum": 0.9}  # meets the goal within a few checks
SLOW = {"lr": 0.00003, "momentum": 0.9}  # does not meet it within the budget


def _spec(tmp_path: Path, npz: Path | None, *, max_steps: int, stop: bool):
    """The study on the cut MNIST ``npz``, or (None) on the built-in MNIST."""
    path = tmp_path / f"contract-{max_steps}-{stop}.toml"
    workloads_line = "" if npz is not None else 'workloads = ["mnist-simplecnn-momentum"]'
    text = STUDY.format(results=tmp_path / "results", max_steps=max_steps,
                        stop=str(stop).lower(), workloads_line=workloads_line)
    path.write_text(text + (small_mnist_tables(npz, "contract-cnn") if npz else ""))
    return load_experiment(path)


def _backend(kind: str, spec, data_dir: str | None, request, workers: int = 2) -> Backend:
    """A backend of ``kind`` with one trial per worker (two per process in-process)."""
    context_args = (spec.engine, data_dir, None, {}, spec.plugins)
    if kind == "in-process":
        return InProcessBackend(WorkerContext(*context_args), {}, interleave=2)
    if kind == "processes":
        return ProcessBackend(workers, context_args, [s.key for s in spec.studies()], 1)
    request.getfixturevalue("ray_cluster")
    from sparsedp.execution.backends.ray_cluster import RayBackend

    backend = RayBackend(workers, context_args, 1)
    backend.wait_for_workers(workers)
    return backend


def _drain(backend: Backend) -> list[tuple[TrialTask, object]]:
    """What the runner does: collect every outcome, report every new best."""
    pairs = []
    while backend.in_flight():
        for task, outcome in backend.completed():
            pairs.append((task, outcome))
            if isinstance(outcome, TrialRecord) and outcome.steps_to_result is not None:
                backend.update_limit(task.study.key, outcome.steps_to_result)
    return pairs


def _key(record: TrialRecord) -> tuple:
    return (record.status, record.steps_to_result, record.steps_taken, record.curve,
            record.final_val_error)


@pytest.fixture(scope="module")
def expected(mnist_small, tmp_path_factory):
    """Each trial run alone in this process, with stopping off."""
    spec = _spec(tmp_path_factory.mktemp("expected"), mnist_small, max_steps=16, stop=False)
    context = WorkerContext(spec.engine, None, None, {}, spec.plugins)
    study = spec.studies()[0]
    return {i: _key(context.run(TrialTask(study, i, p))) for i, p in enumerate(
        [FAST, SLOW, FAST, SLOW])}


@pytest.mark.parametrize("kind", KINDS)
def test_one_outcome_per_trial_and_the_same_outcomes(kind, expected, mnist_small, tmp_path,
                                                     request):
    spec = _spec(tmp_path, mnist_small, max_steps=16, stop=False)
    study = spec.studies()[0]
    backend = _backend(kind, spec, None, request)
    try:
        assert isinstance(backend, Backend)
        backend.submit(TrialTask(study, 0, FAST))
        backend.submit(TrialTask(study, 1, SLOW))
        backend.submit(TrialGroup((TrialTask(study, 2, FAST), TrialTask(study, 3, SLOW))))
        assert backend.in_flight() == 3  # pieces of work: a group counts once
        pairs = _drain(backend)
        assert backend.in_flight() == 0
    finally:
        backend.shutdown()
    assert sorted(task.index for task, _ in pairs) == [0, 1, 2, 3]  # one pair per trial
    for task, outcome in pairs:
        assert isinstance(outcome, TrialRecord), outcome  # one record, never a list
        assert (outcome.study_key, outcome.trial_index) == (study.key, task.index)
        assert _key(outcome) == expected[task.index]
    statuses = {outcome.status for _, outcome in pairs}
    assert statuses == {"complete", "incomplete"}  # the cases really differ


@pytest.mark.parametrize("kind", KINDS)
def test_a_best_from_one_worker_stops_a_trial_running_on_another(kind, mnist_small,
                                                                 tmp_path, request):
    """The slow trial alone would train 160 steps; the fast one, on another worker, meets
    the goal early, and the slow one ends ``stopped`` at its next check."""
    spec = _spec(tmp_path, mnist_small, max_steps=160, stop=True)
    study = spec.studies()[0]
    backend = _backend(kind, spec, None, request)
    try:
        backend.submit(TrialTask(study, 0, FAST))
        backend.submit(TrialTask(study, 1, SLOW))
        outcomes = {task.index: outcome for task, outcome in _drain(backend)}
    finally:
        backend.shutdown()
    fast, slow = outcomes[0], outcomes[1]
    assert isinstance(fast, TrialRecord) and isinstance(slow, TrialRecord)
    assert fast.status == "complete" and fast.steps_to_result < 48
    assert slow.status == "stopped" and slow.steps_taken < 160
    assert f"({fast.steps_to_result})" in slow.message
    if kind != "in-process":
        assert fast.provenance["worker"] != slow.provenance["worker"]


@pytest.mark.parametrize("kind", KINDS)
def test_unreadable_data_stops_with_one_line_naming_the_worker(kind, tmp_path, request):
    spec = _spec(tmp_path, None, max_steps=16, stop=True)  # the built-in data's directory
    missing = tmp_path / "no-data-here"
    backend = _backend(kind, spec, str(missing), request, workers=1)
    try:
        backend.submit(TrialTask(spec.studies()[0], 0, FAST))
        with pytest.raises(WorkerDataError) as caught:
            _drain(backend)
    finally:
        backend.shutdown()
    message = str(caught.value)
    assert str(missing) in message and "\n" not in message
    where = {"in-process": "this process", "processes": "worker process",
             "ray": "Ray node 127.0.0.1"}[kind]
    assert where in message


# How long a worker may outlive ``shutdown()``: local processes are killed and reaped before
# it returns; Ray kills actors asynchronously (the raylet ends and reaps the process).
SHUTDOWN_GRACE_S = {"processes": 0.0, "ray": 10.0}


def _running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running or left as zombies (psutil counts a zombie as running; a pid
    reused by a new process is not the same ``Process`` and counts as ended)."""
    return [p for p in processes if p.is_running()]


@pytest.mark.parametrize("kind", ["processes", "ray"])
def test_shutdown_leaves_no_worker_running(kind, mnist_small, tmp_path, request):
    spec = _spec(tmp_path, mnist_small, max_steps=160, stop=False)
    backend = _backend(kind, spec, None, request)
    try:
        backend.submit(TrialTask(spec.studies()[0], 1, SLOW))
        if kind == "processes":
            pids = backend.worker_pids()
        else:
            pids = [pid for _, _, pid in backend.workers()]
        assert len(pids) == 2
        # taken while the workers surely run (psutil.NoSuchProcess otherwise), so the
        # checks below follow these processes and not whatever later reuses their pids
        processes = [psutil.Process(pid) for pid in pids]
        assert all(p.status() != psutil.STATUS_ZOMBIE for p in processes)
    finally:
        backend.shutdown()
    deadline = time.monotonic() + SHUTDOWN_GRACE_S[kind]
    while _running(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [(p.pid, p.status()) for p in _running(processes)]
    for process in _running(processes):  # do not leave them behind if the test fails
        process.kill()
    assert not left, f"alive after shutdown (+{SHUTDOWN_GRACE_S[kind]} s): {left}"
