"""Chaos: ``sparsedp run`` killed with SIGKILL again and again, workers and driver alike.

An experiment of 48 short trials on real MNIST runs in a child process with ``workers = 2``;
at seeded random moments a worker process or the driver itself is killed with SIGKILL, and
``sparsedp run`` is started again each time, as a user would. The final table must equal an
undisturbed run's: every trial once, with the same status and steps-to-result. The same on a
real Ray cluster: Ray workers killed repeatedly, the driver killed, and a new driver run
against the cluster that is still up. Stopping is off, so each trial's outcome is its own
whatever the order and timing (docs/faults.md, "Chaos test").
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from small_mnist import small_mnist_dataset_table
from sparsedp.execution.runner import run_experiment
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore

EXPERIMENT = """
name = "chaos"
sparsities = [0.0, 0.5]
batch_sizes = [16, 32]
trials = {trials}
workers = 2
results = "{results}"
[workloads.chaos-cnn]
extends = "mnist-simplecnn-momentum"
dataset = "mnist-small"
goal_error = 0.6
max_steps = 24
eval_every = 8
[pruning]
snip_batches = 1
[engine]
eval_batch_size = 1000
threads = 1
backend = "{backend}"
stop_hopeless = false  # each trial's outcome is its own: the table cannot depend on timing
"""  # then the cut MNIST's table (tests/small_mnist.py; 600 validation examples: a check
# costs a tenth of the full split's, which keeps 48 trials and every restart in time)
TRIALS = 48  # 4 studies x 12
ROUNDS = 3  # each: a worker killed, then the driver: 6 kills
RAY_TRIALS = 16  # 4 studies x 4
RUN = [sys.executable, "-m", "sparsedp.cli.main", "run"]


@pytest.fixture(scope="module", autouse=True)
def _shared_cache(tmp_path_factory):
    """One array cache for the module and the processes it starts."""
    previous = os.environ.get("SPARSEDP_CACHE_DIR")
    os.environ["SPARSEDP_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("SPARSEDP_CACHE_DIR", None)
    else:
        os.environ["SPARSEDP_CACHE_DIR"] = previous


def write_experiment(directory: Path, npz: Path, *, trials: int = 12,
                     backend: str = "local") -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / "chaos.toml"
    path.write_text(EXPERIMENT.format(trials=trials, results=directory / "results",
                                      backend=backend) + small_mnist_dataset_table(npz))
    return path


def undisturbed(directory: Path, npz: Path, trials: int) -> list[tuple]:
    """The experiment run once, in this process, with the local backend."""
    spec = load_experiment(write_experiment(directory, npz, trials=trials))
    with ResultStore(spec.results_dir) as store:
        assert run_experiment(spec, store, workers=1).finished == trials * 4
    rows = table(spec.results_dir)
    assert len(rows) == trials * 4 and {row[2] for row in rows} >= {"complete", "incomplete"}
    return rows


def table(results: Path) -> list[tuple]:
    """What a trial's outcome is, in a fixed order (not its attempts or timings)."""
    if not (results / "sparsedp.sqlite").exists():
        return []
    db = sqlite3.connect(f"file:{results / 'sparsedp.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT study_key, trial_index, status, steps_to_result, steps_taken, "
            "final_val_error, lr, momentum FROM trials ORDER BY study_key, trial_index"
        ).fetchall()
    finally:
        db.close()


def stored(results: Path) -> int:
    try:
        return len(table(results))
    except sqlite3.Error:  # not created yet
        return 0


def failures(results: Path) -> list[str]:
    with sqlite3.connect(results / "sparsedp.sqlite") as db:
        return [error for (error,) in db.execute("SELECT error FROM failures")]


class Run:
    """``sparsedp run`` in a child process (its own session), stderr collected."""

    def __init__(self, path: Path, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        env.pop("SPARSEDP_DEBUG", None)
        self.results = path.parent / "results"
        self.process = subprocess.Popen([*RUN, str(path)], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.strip():
                self.lines.append(line.rstrip("\n"))

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_until_stored(self, count: int, timeout: float = 600.0) -> bool:
        """Wait until ``count`` trials are stored (True) or the run has ended (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stored(self.results) >= count:
                return True
            if not self.running():
                return stored(self.results) >= count
            time.sleep(0.1)
        raise AssertionError(f"{count} trials not stored in {timeout} s: {self.lines}")

    def finish(self, timeout: float = 600.0) -> int:
        """Its exit code, once it ended with no traceback and never met a held lock."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert code != 5, self.lines  # another run held the results directory
        for line in self.lines:
            assert "Traceback" not in line and "another `sparsedp run`" not in line and \
                "locked" not in line, self.lines
        return code


def spawned_children(pid: int) -> list[psutil.Process]:
    """The worker processes of the run ``pid``: children started by multiprocessing's spawn
    that run Python (not the shell launcher, not an ended helper)."""
    found = []
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return []
    for process in children:
        try:
            command = process.cmdline()
        except psutil.Error:
            continue
        if any("spawn_main" in part for part in command) and \
                not any(part.endswith(".sh") for part in command[:2]):
            found.append(process)
    return found


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def reap(processes: list[psutil.Process], timeout: float = 60.0) -> list[psutil.Process]:
    """Wait for ``processes`` to exit; kill and return those that did not."""
    _, left = psutil.wait_procs([p for p in processes if alive(p)], timeout=timeout)
    for process in left:  # do not leave them behind if the test fails
        process.kill()
    return left


def check_progress(before: list[tuple], results: Path, reference: list[tuple]) -> list[tuple]:
    """Stored rows after a killed run: the earlier ones kept, each once, each the
    undisturbed run's."""
    after = table(results)
    assert len({row[:2] for row in after}) == len(after)  # no trial twice
    assert set(before) <= set(after) <= set(reference)  # nothing lost, nothing wrong
    return after


@pytest.mark.slow
def test_workers_and_driver_killed_at_random_moments_then_resumed(tmp_path, mnist_small):
    """Three rounds of: a random worker killed with SIGKILL at a random moment, then the
    driver alone (its workers orphaned); each round starts ``sparsedp run`` again. Every
    stored row is the undisturbed run's, none is duplicated, no run meets a held lock or a
    traceback, orphaned workers exit, and the last run ends with the undisturbed table."""
    reference = undisturbed(tmp_path / "reference", mnist_small, TRIALS // 4)
    path = write_experiment(tmp_path / "chaos", mnist_small)
    results = path.parent / "results"
    rng = random.Random(22)
    kills: list[str] = []
    workers_seen: list[psutil.Process] = []
    before: list[tuple] = []
    for _ in range(ROUNDS):
        run = Run(path)
        # the moments: after a random number of further trials, plus a random fraction of a
        # second (so mid-trial, mid-check or mid-write), whatever the machine's load
        for victim in ("worker", "driver"):
            run.wait_until_stored(stored(results) + rng.randint(1, 5))
            time.sleep(rng.uniform(0.0, 1.5))
            workers = spawned_children(run.process.pid)
            workers_seen += workers
            if not run.running():
                break
            if victim == "worker" and workers:
                target = rng.choice(workers)
                target.send_signal(signal.SIGKILL)
                kills.append(f"worker {target.pid}")
            elif victim == "driver":
                run.process.send_signal(signal.SIGKILL)  # the driver alone
                kills.append(f"driver {run.process.pid}")
        assert run.finish() in (0, -signal.SIGKILL), run.lines
        before = check_progress(before, results, reference)
    assert len(kills) >= 5 and {k.split()[0] for k in kills} == {"worker", "driver"}, kills
    assert 0 < len(before) < TRIALS

    run = Run(path)
    assert run.finish() == 0, run.lines
    assert table(results) == reference
    assert failures(results) and all("died" in e for e in failures(results))  # the killed
    assert not reap(workers_seen)  # orphaned workers noticed and exited


def ray_worker_processes(cluster) -> list[psutil.Process]:
    """The sparsedp worker actors' processes on ``cluster``'s nodes (children of its
    raylets; nothing of another cluster on this machine)."""
    from ray._private import ray_constants

    found = []
    for node in [cluster.head_node, *cluster.worker_nodes]:
        for info in node.all_processes.get(ray_constants.PROCESS_TYPE_RAYLET, []):
            try:
                children = psutil.Process(info.process.pid).children(recursive=True)
            except psutil.Error:
                continue
            for process in children:
                try:
                    if "RayTrialWorker" in " ".join(process.cmdline()) and alive(process):
                        found.append(process)
                except psutil.Error:
                    continue
    return found


def kill_ray_worker(cluster, rng: random.Random) -> int | None:
    """SIGKILL one worker actor, a computing one where there is one; its pid."""
    workers = ray_worker_processes(cluster)
    busy = []
    for process in workers:
        try:
            if ".round" in " ".join(process.cmdline()):
                busy.append(process)
        except psutil.Error:
            continue
    candidates = busy or workers
    if not candidates:
        return None
    victim = rng.choice(candidates)
    victim.send_signal(signal.SIGKILL)
    return victim.pid


def kill_busy_ray_worker(cluster, rng: random.Random, run: Run,
                         timeout: float = 300.0) -> int | None:
    """SIGKILL a worker actor of ``run`` once one computes a trial; its pid, or None if
    ``run`` ended (or ``timeout`` passed) before any worker was seen computing."""
    deadline = time.monotonic() + timeout
    while run.running() and time.monotonic() < deadline:
        busy = [p for p in ray_worker_processes(cluster) if ".round" in title(p)]
        if busy:
            time.sleep(rng.uniform(0.0, 0.3))  # a random moment within the trial
            victim = rng.choice(busy)
            victim.send_signal(signal.SIGKILL)
            return victim.pid
        time.sleep(0.05)
    return None


def title(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


@pytest.mark.slow
def test_ray_workers_and_driver_killed_then_rerun_on_the_running_cluster(
        ray_cluster, tmp_path, mnist_small):
    """On a real Ray cluster: two Ray workers killed in turn, then the driver (SIGKILL); a
    new ``sparsedp run`` against the cluster, still up, has another worker killed and
    finishes. The table equals a local run's; the killed driver's workers are gone."""
    reference = undisturbed(tmp_path / "local", mnist_small, RAY_TRIALS // 4)
    path = write_experiment(tmp_path / "ray", mnist_small, trials=RAY_TRIALS // 4,
                            backend="ray")
    results = path.parent / "results"
    env = {"RAY_ADDRESS": ray_cluster.address}
    rng = random.Random(23)
    kills: list[str] = []
    orphans: list[psutil.Process] = []

    run = Run(path, env)
    for victim in ("worker", "worker", "driver"):
        run.wait_until_stored(stored(results) + rng.randint(1, 3))
        time.sleep(rng.uniform(0.0, 1.0))
        if not run.running():
            break
        if victim == "worker":
            pid = kill_ray_worker(ray_cluster, rng)
            kills.extend([f"worker {pid}"] if pid else [])
        else:
            orphans = ray_worker_processes(ray_cluster)
            run.process.send_signal(signal.SIGKILL)
            kills.append(f"driver {run.process.pid}")
    assert run.finish() == -signal.SIGKILL, (kills, run.lines)
    assert not reap(orphans, timeout=120)  # Ray ends a dead driver's workers
    before = check_progress([], results, reference)
    assert 0 < len(before) < RAY_TRIALS

    run = Run(path, env)  # the cluster is still up: the new driver joins it
    # at least one trial is left, so the new driver's workers compute: kill the first one
    # seen computing (waiting for a stored trial first could find the run already done)
    pid = kill_busy_ray_worker(ray_cluster, rng, run)
    kills.extend([f"worker {pid}"] if pid else [])
    assert run.finish() == 0, run.lines
    assert [k.split()[0] for k in kills] == ["worker", "worker", "driver", "worker"], kills
    assert table(results) == reference
    assert sum("died" in e for e in failures(results)) >= 1
    assert all("died" in e for e in failures(results))
