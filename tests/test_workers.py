"""Local worker processes (``workers > 1``) with real processes: a killed worker loses only its
trials, which are retried (also for groups of batched trials); an orphaned worker exits; a
group-mate's success stops a beaten trial of its group."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil

from small_mnist import small_mnist_tables
from sparsedp.execution.backends.worker import WorkerContext
from sparsedp.execution.runner import run_experiment
from sparsedp.execution.tasks import TrialGroup, TrialTask
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore

EXPERIMENT = """
name = "workers"
{workloads_line}
sparsities = [0.0]
batch_sizes = [16]
trials = 4
workers = {workers}
results = "{results}"
{data_line}
goal_error = {goal}
max_steps = {max_steps}
eval_every = 8
[engine]
eval_batch_size = 1000
stop_hopeless = {stop}
keep_complete = 1  # stopping at the best: what these tests follow
batched_trials = {batched}
{search}"""  # then, for runs on the cut MNIST, its tables (tests/small_mnist.py)


def _write(directory: Path, name: str, data: Path | None = None, *, npz: Path | None = None,
           workers: int = 2, batched: int = 1, stop: bool = False, max_steps: int = 24,
           goal: float = 0.6, search: str = "") -> Path:
    """The experiment on the cut MNIST ``npz``, or on the built-in MNIST in ``data``."""
    path = directory / f"{name}.toml"
    text = EXPERIMENT.format(
        results=directory / name, workers=workers, batched=batched,
        data_line=f'data_dir = "{data / "mnist"}"' if npz is None else "",
        workloads_line='workloads = ["mnist-simplecnn-momentum"]' if npz is None else "",
        stop=str(stop).lower(), max_steps=max_steps, goal=goal, search=search)
    path.write_text(text + (small_mnist_tables(npz, "workers-cnn") if npz is not None else ""))
    return path


def _table(path: Path) -> list[tuple]:
    with sqlite3.connect(load_experiment(path).results_dir / "sparsedp.sqlite") as db:
        return db.execute("SELECT study_key, trial_index, status, steps_to_result, steps_taken, "
                          "final_val_error FROM trials ORDER BY trial_index").fetchall()


def _worker_processes() -> list[psutil.Process]:
    """This process's spawned worker processes (not multiprocessing's resource tracker)."""
    return _spawned_children(psutil.Process())


def _spawned_children(parent: psutil.Process) -> list[psutil.Process]:
    """Children of ``parent`` started by multiprocessing's spawn, once they run Python (not
    while the shell launcher still starts them; a short-lived helper process that has
    already ended, a zombie, is skipped)."""
    found = []
    for process in parent.children():
        try:
            command = process.cmdline()
            if any("spawn_main" in part for part in command) and \
                    not any(part.endswith(".sh") for part in command[:2]):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_killed_workers_with_batched_groups_are_replaced_and_their_trials_retried(
        tmp_path, mnist_small, monkeypatch):
    """Two groups of two batched trials on two workers; every worker is killed once the first
    trial is stored. The groups in flight come back as failed attempts, run again on new
    workers, and the table is the one a plain in-process run stores."""
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    plain = _write(tmp_path, "plain", npz=mnist_small, workers=1)
    spec = load_experiment(plain)
    with ResultStore(spec.results_dir) as store:
        run_experiment(spec, store)

    path = _write(tmp_path, "killed", npz=mnist_small, batched=2)
    spec = load_experiment(path)
    kills: list[int] = []

    def on_event(event):
        if event.kind == "trial" and not kills:
            for process in _worker_processes():
                process.send_signal(signal.SIGKILL)
                kills.append(process.pid)

    with ResultStore(spec.results_dir) as store:
        summary = run_experiment(spec, store, on_event=on_event)
        failures = [row[0] for row in store._db.execute("SELECT error FROM failures")]
    assert len(kills) == 2
    assert summary.failed_attempts >= 2  # a whole group was lost and retried
    assert all("died" in error for error in failures)
    assert _table(path) == _table(plain)
    assert not _worker_processes()  # shut down at the end


def _two_workers_of(main: subprocess.Popen) -> list[psutil.Process]:
    """The two worker processes of a running ``sparsedp run``, once both are up."""
    workers: list[psutil.Process] = []
    for _ in range(600):  # start-up takes seconds
        workers = _spawned_children(psutil.Process(main.pid))
        if len(workers) == 2 or main.poll() is not None:
            break
        time.sleep(0.2)
    assert len(workers) == 2
    return workers


def _has_started_a_trial(worker: psutil.Process, cache: Path) -> bool:
    """A worker loads its data set when it starts its first trial: the cached arrays, which
    it memory-maps, then show among its mappings."""
    try:
        return any(m.path.startswith(str(cache)) for m in worker.memory_maps())
    except psutil.Error:
        return False


def test_orphaned_workers_exit(tmp_path, shared_data_dir):
    """kill -9 of the main process while both workers are inside a trial: they notice the
    parent is gone (at the trial's next check) and exit.

    The trials cannot end on their own while the test watches (an unreachable goal, a
    budget of a million steps, learning rates too small to diverge), and a busy worker
    neither reads nor writes its pipes, so a closed pipe cannot be what ends them: only the
    parent-death check can.

    On the built-in MNIST: a trial is seen to have started by the data cache it maps."""
    path = _write(tmp_path, "orphans", shared_data_dir, max_steps=1_000_000, stop=False,
                  goal=0.001, search="[search.lr]\nlow = 1e-4\nhigh = 1e-3\n")
    cache = tmp_path / "cache"
    env = {**os.environ, "SPARSEDP_CACHE_DIR": str(cache)}
    main = subprocess.Popen([sys.executable, "-m", "sparsedp.cli.main", "run", str(path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    workers: list[psutil.Process] = []
    try:
        workers = _two_workers_of(main)
        deadline = time.monotonic() + 240
        while not all(_has_started_a_trial(w, cache) for w in workers):
            assert main.poll() is None and time.monotonic() < deadline, "no trials started"
            time.sleep(0.2)
        assert all(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        main.send_signal(signal.SIGKILL)  # the main process only, not its group
        main.wait()
    _, alive = psutil.wait_procs(workers, timeout=120)  # 26 s seen at load 9 on 2 cores
    for process in alive:  # do not leave them behind if the test fails
        process.kill()
    assert not alive


def test_ctrl_c_with_workers_prints_one_line_and_no_worker_traceback(tmp_path, mnist_small):
    """Ctrl-C reaches the whole foreground process group: the workers leave it to the main
    process, which ends with one line and exit 130, and no process is left behind."""
    path = _write(tmp_path, "ctrl-c", npz=mnist_small, max_steps=4000, stop=False)
    env = {**os.environ, "SPARSEDP_CACHE_DIR": str(tmp_path / "cache")}
    main = subprocess.Popen([sys.executable, "-m", "sparsedp.cli.main", "run", str(path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    workers: list[psutil.Process] = []
    try:
        workers = _two_workers_of(main)
        for process in workers:  # while they still import, before any handler of their own
            process.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert all(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers)
        os.killpg(main.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, stderr = main.communicate(timeout=120)
    finally:
        if main.poll() is None:
            os.killpg(main.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(workers, timeout=60)
    for process in alive:
        process.kill()
    assert main.returncode == 130
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("sparsedp: interrupted by Ctrl-C")
    assert not alive


def test_a_group_mates_success_stops_a_beaten_trial_of_the_group(tmp_path, mnist_small,
                                                                 monkeypatch):
    """In a batched group the slow trial alone would train to the budget; once its
    group-mate meets the goal it cannot be the best and ends ``stopped`` there."""
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    path = _write(tmp_path, "group", npz=mnist_small, stop=True, max_steps=160, workers=1,
                  batched=2)  # both trials live at once
    spec = load_experiment(path)
    study = spec.studies()[0]
    context = WorkerContext(spec.engine, None, None, {}, spec.plugins)
    slow = TrialTask(study, 0, {"lr": 0.0003, "momentum": 0.9})
    fast = TrialTask(study, 1, {"lr": 0.02, "momentum": 0.9})
    beaten, winner = context.run_group(TrialGroup((slow, fast)))
    assert winner.status == "complete" and winner.steps_to_result < 160
    assert (beaten.status, beaten.steps_taken) == ("stopped", winner.steps_to_result)
