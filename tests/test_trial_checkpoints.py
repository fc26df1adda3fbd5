"""Unfinished trials saved and continued: the save's rules, and a real ``sparsedp run``
killed with SIGKILL mid-trial whose rerun continues the trial and stores what an undisturbed
run stores (docs/faults.md, "Unfinished trials")."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from small_mnist import small_mnist_tables
from sparsedp.data.splits import SplitData
from sparsedp.execution.provenance import machine_description
from sparsedp.execution.runner import run_experiment
from sparsedp.execution.tasks import TrialTask
from sparsedp.execution.trial_checkpoints import TrialCheckpoints
from sparsedp.pruning.prune import PruneSettings
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore
from sparsedp.training.trainer import EngineSettings, TrialRun
from sparsedp.training.trial_config import TrialConfig

ENGINE = EngineSettings(early_exit=True, eval_batch_size=250)
POINT = {"lr": 0.005, "momentum": 0.9}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Study:
    """The part of a StudySpec the saves use."""

    def __init__(self, key: str) -> None:
        self.key = key


def _task(key: str = "study-a", index: int = 0) -> TrialTask:
    return TrialTask(Study(key), index, dict(POINT))  # type: ignore[arg-type]


def _run(mnist: SplitData, seed: int = 0) -> TrialRun:
    config = TrialConfig("mnist-simplecnn-momentum", 0.9, 32, seed=seed, goal_error=0.1,
                         max_steps=40, eval_every=8, pruning=PruneSettings(snip_batches=1),
                         **POINT)
    return TrialRun(config, mnist, engine=ENGINE)


def test_saved_every_so_often_and_continued(tmp_path: Path, mnist: SplitData) -> None:
    clock = Clock()
    saves = TrialCheckpoints(tmp_path, every=10, clock=clock)
    task, run = _task(), _run(mnist)
    assert saves.resume(task, run) is None  # nothing saved yet
    run.advance(checks=1)
    clock.now = 9.0
    assert not saves.save_if_due(task, run) and not saves.path(task).exists()
    clock.now = 10.0
    assert saves.save_if_due(task, run) and saves.path(task).exists()
    run.advance(checks=1)
    clock.now = 15.0
    assert not saves.save_if_due(task, run)  # 5 s after the last save
    clock.now = 20.0
    assert saves.save_if_due(task, run)  # at step 16

    later = TrialCheckpoints(tmp_path, every=10, clock=clock)  # the next run's worker
    again = _run(mnist)
    assert later.resume(task, again) == 16 and later.resumed_at(task) == [16]
    run.advance()
    again.advance()
    assert again.result().curve == run.result().curve
    clock.now = 40.0
    assert not later.save_if_due(task, again)  # finished: nothing to save
    later.discard(task)
    assert not saves.path(task).exists() and later.resumed_at(task) == []


def test_resumed_twice_lists_both_steps(tmp_path: Path, mnist: SplitData) -> None:
    task = _task()
    first = _run(mnist)
    first.advance(checks=1)
    TrialCheckpoints(tmp_path, every=1).save(task, first)
    saves = TrialCheckpoints(tmp_path, every=1)
    second = _run(mnist)
    assert saves.resume(task, second) == 8
    second.advance(checks=2)
    saves.save(task, second)
    third = _run(mnist)
    assert TrialCheckpoints(tmp_path, every=1).resume(task, third) == 24
    assert saves.resumed_at(task) == [8]
    saved = torch.load(saves.path(task), weights_only=True)
    assert saved["resumed_at"] == [8]
    here = machine_description("cpu")
    assert saved["machines"] == [here, here]  # one per stretch: before step 8, and since


def test_the_machine_of_each_stretch_is_listed(tmp_path: Path, mnist: SplitData) -> None:
    task = _task()
    first = _run(mnist)
    first.advance(checks=1)
    TrialCheckpoints(tmp_path, every=1).save(task, first)
    path = TrialCheckpoints(tmp_path, every=1).path(task)
    saved = torch.load(path, weights_only=True)
    saved["machines"] = ["Another CPU, family 6 model 143 stepping 8 (AVX2)"]
    torch.save(saved, path)
    saves = TrialCheckpoints(tmp_path, every=1)
    assert saves.resume(task, _run(mnist)) == 8
    assert saves.resumed_on(task) == ["Another CPU, family 6 model 143 stepping 8 (AVX2)"]

    del saved["machines"]  # a save written before machines were recorded
    torch.save(saved, path)
    older = TrialCheckpoints(tmp_path, every=1)
    assert older.resume(task, _run(mnist)) == 8
    assert older.resumed_at(task) == [8] and older.resumed_on(task) == ["not recorded"]


@pytest.mark.parametrize("change", ["other trial", "other threads", "damaged"])
def test_a_save_that_does_not_fit_is_dropped(tmp_path: Path, mnist: SplitData,
                                             change: str) -> None:
    task, run = _task(), _run(mnist)
    run.advance(checks=1)
    saves = TrialCheckpoints(tmp_path, every=1)
    saves.save(task, run)
    path = saves.path(task)
    threads = torch.get_num_threads()
    if change == "other trial":  # same file name, another study's trial (a stale save)
        other = _task("study-b")
        saved = torch.load(path, weights_only=True)
        saved["identity"]["study_key"] = other.study.key
        torch.save(saved, path)
    elif change == "other threads":  # results depend on the thread count
        torch.set_num_threads(threads + 1)
    else:
        path.write_bytes(path.read_bytes()[:1000])
    fresh = _run(mnist)
    try:
        assert TrialCheckpoints(tmp_path, every=1).resume(task, fresh) is None
    finally:
        torch.set_num_threads(threads)
    assert fresh.step == 0 and not path.exists()


def test_every_zero_never_saves(tmp_path: Path, mnist: SplitData) -> None:
    clock = Clock()
    saves = TrialCheckpoints(tmp_path / "inflight", every=0, clock=clock)
    task, run = _task(), _run(mnist)
    saves.resume(task, run)
    run.advance(checks=1)
    clock.now = 1e9
    assert not saves.save_if_due(task, run) and not (tmp_path / "inflight").exists()


EXPERIMENT = """
name = "checkpoints"
sparsities = [0.9]
batch_sizes = [32]
trials = 2
results = "{results}"
goal_error = 0.001         # never met: both trials run their whole budget
max_steps = 320            # long enough that a kill lands mid-trial on a fast machine
eval_every = 16
[pruning]
snip_batches = 1
[engine]
threads = 1
eval_batch_size = 1000
checkpoint_every = {every}
"""  # then the cut MNIST's tables (tests/small_mnist.py)


def _write(path: Path, npz: Path, results: Path, every: int) -> None:
    path.write_text(EXPERIMENT.format(results=results, every=every)
                    + small_mnist_tables(npz, "checkpoints-cnn"))


def _outcomes(results: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{results / 'sparsedp.sqlite'}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT trial_index, status, steps_taken, final_val_error, curve_json FROM trials "
            "ORDER BY trial_index").fetchall()


def _resumed_at(results: Path, field: str = "resumed_at") -> list[list]:
    with sqlite3.connect(f"file:{results / 'sparsedp.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT engine_json FROM trials ORDER BY trial_index").fetchall()
    return [json.loads(engine).get(field, []) for (engine,) in rows]


def test_killed_run_continues_its_trials(tmp_path: Path, mnist_small: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "array-cache"))
    quiet = tmp_path / "undisturbed"
    quiet.mkdir()
    _write(quiet / "exp.toml", mnist_small, quiet / "results", every=0)
    spec = load_experiment(quiet / "exp.toml")
    with ResultStore(spec.results_dir) as store:
        assert run_experiment(spec, store, workers=1).finished == 2
    reference = _outcomes(spec.results_dir)
    assert [row[1:3] for row in reference] == [("incomplete", 320)] * 2

    killed = tmp_path / "killed"
    killed.mkdir()
    _write(killed / "exp.toml", mnist_small, killed / "results", every=1)
    inflight = killed / "results" / "cache" / "inflight"
    command = [sys.executable, "-m", "sparsedp.cli.main", "run", str(killed / "exp.toml")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(inflight.glob("*.pt"))) < 2:  # both trials saved at least once
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "no save within 300 s"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert not (killed / "results" / "sparsedp.sqlite").exists() or \
        not _outcomes(killed / "results")  # killed before any trial ended

    status = subprocess.run([*command[:3], "status", str(killed / "exp.toml")], env=env,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert re.search(r"saved mid-run: .*B=32: 2 unfinished trials at step [\d,]+(–[\d,]+)? "
                     r"\(the next run continues them\)", status.stdout), status.stdout

    kept = tmp_path / "kept-save.pt"  # as a snapshot copies it while its trial ends
    kept.write_bytes(sorted(inflight.glob("*.pt"))[0].read_bytes())

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    log = rerun.stdout + rerun.stderr
    assert log.count(", continued from step ") == 2, log
    assert _outcomes(killed / "results") == reference
    resumed = _resumed_at(killed / "results")
    assert all(len(steps) == 1 and 0 < steps[0] < 320 and steps[0] % 16 == 0
               for steps in resumed), resumed
    # the machine of the stretch before each continuation (here: this one)
    assert _resumed_at(killed / "results", "resumed_on") == [[machine_description("cpu")]] * 2
    assert not list(inflight.glob("*"))  # every save deleted once its trial ended

    # a save of a trial that is stored (a snapshot's copy, put back) is not an unfinished trial
    (inflight / "stale.pt").write_bytes(kept.read_bytes())
    status = subprocess.run([*command[:3], "status", str(killed / "exp.toml")], env=env,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "saved mid-run" not in status.stdout, status.stdout
