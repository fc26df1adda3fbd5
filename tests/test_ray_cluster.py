"""Experiments on a real Ray cluster on 127.0.0.1 (head + worker node, see conftest).

Same rows as the local backend; stopping across the cluster; faults with real processes
(a killed Ray worker, a removed node, a killed driver); a node that cannot read the data.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from small_mnist import small_mnist_tables
from sparsedp.execution import runner as runner_module
from sparsedp.execution.backends.contract import WorkerDataError
from sparsedp.execution.runner import run_experiment
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore

WORKLOAD = "cluster-cnn"
EXPERIMENT = """
name = "cluster"
{workloads_line}
sparsities = [0.0]
batch_sizes = [16, 32]
trials = 2
workers = 2
results = "{results}"
{data_line}
goal_error = 0.6
max_steps = 24
eval_every = 8
[engine]
eval_batch_size = 1000
stop_hopeless = {stop}
backend = "{backend}"
"""  # then, for runs on the cut MNIST, its tables (tests/small_mnist.py)
TRIALS = 4


def _write(directory: Path, name: str, data: Path | None = None, *, npz: Path | None = None,
           backend: str = "ray", stop: bool = False) -> Path:
    """The experiment on the cut MNIST ``npz`` (workload ``WORKLOAD``), or on the built-in
    MNIST read from ``data`` (or resolved by each node itself when ``data`` is None)."""
    path = directory / f"{name}.toml"
    data_line = f'data_dir = "{data}"' if data is not None else ""
    workloads_line = "" if npz is not None else 'workloads = ["mnist-simplecnn-momentum"]'
    text = EXPERIMENT.format(results=directory / name, data_line=data_line,
                             workloads_line=workloads_line, stop=str(stop).lower(),
                             backend=backend)
    if npz is not None:
        text += small_mnist_tables(npz, WORKLOAD)
    path.write_text(text)
    return path


def _table(path: Path) -> list[tuple]:
    spec = load_experiment(path)
    with sqlite3.connect(spec.results_dir / "sparsedp.sqlite") as db:
        return db.execute(
            "SELECT study_key, trial_index, status, steps_to_result, steps_taken, "
            "final_val_error, lr, momentum FROM trials ORDER BY study_key, trial_index"
        ).fetchall()


def _run(path: Path, on_event=None, workers: int | None = None):
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        return run_experiment(spec, store, on_event=on_event, workers=workers)


def _bests(table: list[tuple]) -> dict[str, int]:
    best: dict[str, int] = {}
    for key, _, status, steps, *_ in table:
        if status == "complete":
            best[key] = min(steps, best.get(key, steps))
    return best


def _failures(path: Path) -> list[str]:
    spec = load_experiment(path)
    with sqlite3.connect(spec.results_dir / "sparsedp.sqlite") as db:
        return [error for (error,) in db.execute("SELECT error FROM failures")]


@pytest.fixture(scope="module")
def local_table(tmp_path_factory, mnist_small):
    """The experiment with the local backend, stopping off: every trial's own outcome."""
    directory = tmp_path_factory.mktemp("local")
    path = _write(directory, "local", npz=mnist_small, backend="local")
    _run(path, workers=1)
    table = _table(path)
    assert len(table) == TRIALS and {row[2] for row in table} >= {"complete"}
    return table


@pytest.fixture()
def capture_backend(monkeypatch):
    """The backend the runner makes, for tests that reach into the cluster mid-run."""
    made: list = []
    original = runner_module._make_backend

    def make(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(runner_module, "_make_backend", make)
    return made


def test_every_node_is_on_loopback(ray_cluster):
    import ray

    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) >= 2
    assert {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
    assert ray_cluster.address.startswith("127.0.0.1:")
    assert ray.util.get_node_ip_address() == "127.0.0.1"


def test_same_rows_as_local_with_stopping_off(ray_cluster, local_table, tmp_path,
                                              mnist_small):
    path = _write(tmp_path, "ray", npz=mnist_small)
    summary = _run(path)
    assert summary.finished == TRIALS and summary.failed_attempts == 0
    assert _table(path) == local_table


def test_same_bests_as_local_with_stopping_on(ray_cluster, local_table, tmp_path,
                                              mnist_small):
    path = _write(tmp_path, "ray-stop", npz=mnist_small, stop=True)
    _run(path)
    table = _table(path)
    assert len(table) == TRIALS
    assert _bests(table) == _bests(local_table) and _bests(table)


def _while_computing(capture_backend, act) -> tuple[threading.Thread, threading.Event]:
    """Watch the run from a thread; call ``act(busy workers)`` until it returns True.

    Acting from the driver's own trial event is racy: trials end together, so the other
    workers may already have sent their last answer. Only a worker whose round is still being
    computed (``workers(busy=True)``) surely holds trials the driver has yet to receive.
    """
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if capture_backend and act(capture_backend[0].workers(busy=True)):
                done.set()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, done


def test_killed_ray_worker_loses_only_its_trials(ray_cluster, local_table, tmp_path,
                                                 mnist_small, capture_backend):
    path = _write(tmp_path, "kill-worker", npz=mnist_small)
    killed: list[int] = []

    def kill(busy) -> bool:
        if busy:
            os.kill(busy[0][2], signal.SIGKILL)
            killed.append(busy[0][2])
        return bool(busy)

    thread, done = _while_computing(capture_backend, kill)
    try:
        summary = _run(path)
    finally:
        done.set()
        thread.join()
    assert killed
    assert summary.failed_attempts >= 1
    assert any("died" in error for error in _failures(path))
    assert _table(path) == local_table  # retried, stored once, same outcomes


def test_removed_node_hands_its_trials_to_the_others(ray_cluster, local_table, tmp_path,
                                                     mnist_small, capture_backend):
    extra = ray_cluster.add_node(**ray_cluster.node_args)  # head + 2 nodes: one may go
    # three workers, one per node: the driver needs the head, either other node may go
    path = _write(tmp_path, "remove-node", npz=mnist_small)
    removed: list[str] = []

    def remove(busy) -> bool:
        busy_nodes = {node_id for _, node_id, _ in busy}
        for node in list(ray_cluster.worker_nodes):
            if node.node_id in busy_nodes:
                ray_cluster.remove_node(node, allow_graceful=False)
                removed.append(node.node_id)
                return True
        return False  # only the head is computing: look again

    thread, done = _while_computing(capture_backend, remove)
    try:
        summary = _run(path, workers=3)
    finally:  # whichever worker node went, the head and one worker node remain
        done.set()
        thread.join()
        if not removed:
            ray_cluster.remove_node(extra)
    assert removed
    assert summary.failed_attempts >= 1
    assert _table(path) == local_table


def test_killed_driver_then_rerun_finishes_only_the_missing_trials(
        ray_cluster, local_table, tmp_path, mnist_small):
    path = _write(tmp_path, "kill-driver", npz=mnist_small)
    database = load_experiment(path).results_dir / "sparsedp.sqlite"
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.address, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "driver.log"
    with log.open("w") as sink:
        driver = subprocess.Popen([sys.executable, "-m", "sparsedp.cli.main", "run", str(path)],
                                  env=env, stdout=sink, stderr=sink, start_new_session=True)
    stored = 0
    try:
        while driver.poll() is None and stored == 0:
            time.sleep(0.05)  # on the cut MNIST the last trials follow the first within ~1 s
            stored = _count(database)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    assert driver.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    before = _count(database)
    assert 0 < before < TRIALS
    summary = _run(path)
    assert summary.planned == TRIALS - before
    assert _table(path) == local_table


def _count(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_node_without_the_data_stops_the_experiment_naming_node_and_path(
        ray_cluster, tmp_path, shared_data_dir, monkeypatch):
    missing = tmp_path / "not-on-this-node"
    monkeypatch.setenv("SPARSEDP_DATA_DIR", str(missing))
    node = ray_cluster.add_node(**ray_cluster.node_args, resources={"no_data": 1})
    monkeypatch.setenv("SPARSEDP_DATA_DIR", str(shared_data_dir / "mnist"))  # driver: fine
    from sparsedp.execution.backends.ray_cluster import RayBackend

    def on_that_node(spec, workers, context_args, keys, best):
        return RayBackend(1, context_args, 1, actor_options={"resources": {"no_data": 1}})

    monkeypatch.setattr(runner_module, "_make_backend", on_that_node)
    path = _write(tmp_path, "no-data", None)  # each node resolves the data itself
    try:
        with pytest.raises(WorkerDataError) as caught:
            _run(path)
    finally:
        ray_cluster.remove_node(node)
    message = str(caught.value)
    assert "\n" not in message
    assert "Ray node 127.0.0.1" in message and str(missing) in message
    assert _table(path) == []


_PRIVATE_RAY = """
import sys
from sparsedp.execution.backends.contract import WorkerDataError
from sparsedp.execution.runner import run_experiment
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore

spec = load_experiment(sys.argv[1])
with ResultStore(spec.results_dir) as store:
    try:
        run_experiment(spec, store)
    except WorkerDataError as exc:
        print(exc)
"""


def test_private_ray_runs_on_loopback_and_failures_name_that_node(tmp_path):
    # No RAY_ADDRESS: the backend starts a private Ray, which must stay on 127.0.0.1 (Ray
    # moves a node to the machine's default-route address unless told otherwise), and a
    # failure names the node by the address Ray registered. A fresh process, without the
    # ray_cluster fixture's environment, as `sparsedp run` starts.
    missing = tmp_path / "no-data-here"
    path = _write(tmp_path, "private", missing)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "SPARSEDP_DATA_DIR")}
    done = subprocess.run([sys.executable, "-c", _PRIVATE_RAY, str(path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    message = done.stdout.strip()
    assert message and "\n" not in message, done.stdout
    assert "Ray node 127.0.0.1 " in message and str(missing) in message
    assert _table(path) == []
