"""End-to-end runs of tiny experiments on real MNIST (cut short, tests/small_mnist.py):
storage, resume, kill -9, failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from small_mnist import small_mnist_tables
from sparsedp.execution.runner import run_experiment
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore, trials_frame

TINY = """
name = "tiny"
sparsities = [0.0, 0.5]
batch_sizes = [16, 32]
trials = 3
results = "{results}"
goal_error = 0.6
max_steps = 24
eval_every = 8
[pruning]
snip_batches = 1
[engine]
eval_batch_size = 1000
stop_hopeless = {stop}
keep_complete = 1  # stopping at the best: what these tests follow
"""  # then the cut MNIST's tables (tests/small_mnist.py)


def _writer(directory: Path, npz: Path):
    def make(name: str = "exp", stop: bool = True) -> Path:
        path = directory / f"{name}.toml"
        path.write_text(TINY.format(results=directory / name, stop=str(stop).lower())
                        + small_mnist_tables(npz, "tiny-cnn"))
        return path

    return make


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_small):
    """One uninterrupted run of the tiny experiment: (file, its table)."""
    directory = tmp_path_factory.mktemp("reference")
    os.environ.setdefault("SPARSEDP_CACHE_DIR", str(directory / "cache"))
    path = _writer(directory, mnist_small)("reference")
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        summary = run_experiment(spec, store)
    assert summary.planned == summary.finished == 12
    return path, _table(spec.results_dir)


@pytest.fixture()
def tiny_file(tmp_path, mnist_small, monkeypatch):
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    return _writer(tmp_path, mnist_small)


def _copy_of(reference_path: Path, tmp_path: Path) -> Path:
    """A copy of the reference experiment (file and results) that a test may change."""
    spec = load_experiment(reference_path)
    target = tmp_path / "copy"
    shutil.copytree(spec.results_dir, target)
    path = tmp_path / "copy.toml"
    path.write_text(reference_path.read_text().replace(str(spec.results_dir), str(target)))
    return path


def _with_engine(text: str, line: str) -> str:
    """``text`` with ``line`` added to its [engine] table (the file ends in other tables)."""
    return text.replace("\n[engine]\n", f"\n[engine]\n{line}\n", 1)


def _table(results_dir: Path) -> list[tuple]:
    db = sqlite3.connect(results_dir / "sparsedp.sqlite")
    rows = db.execute(
        "SELECT study_key, trial_index, status, steps_to_result, steps_taken, final_val_error, "
        "lr, momentum FROM trials ORDER BY study_key, trial_index"
    ).fetchall()
    db.close()
    return rows


def test_run_stores_every_trial_and_resume_is_a_no_op(reference, tmp_path):
    path = _copy_of(reference[0], tmp_path)
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        frame = trials_frame(store, spec.name)
    assert len(frame) == 12
    assert set(frame["status"]) <= {"complete", "incomplete", "infeasible", "stopped"}
    assert (frame["status"] == "complete").any()
    # every trial of a study gets the same Sobol point for the same index
    first = frame[frame.trial_index == 0]
    assert first["lr"].nunique() == 1 and first["lr"].iloc[0] == pytest.approx(0.01)
    assert first["momentum"].iloc[0] == pytest.approx(0.99684, abs=1e-5)
    with ResultStore(spec.results_dir) as store:
        again = run_experiment(spec, store)
    assert again.planned == 0
    assert _table(spec.results_dir) == reference[1]


def test_more_trials_continue_the_study(reference, tmp_path):
    path = _copy_of(reference[0], tmp_path)
    path.write_text(path.read_text().replace("trials = 3", "trials = 4"))
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        summary = run_experiment(spec, store)
    assert summary.planned == 4  # one new trial per study, nothing redone
    table = _table(spec.results_dir)
    assert [row for row in table if row[1] < 3] == reference[1]


def test_changing_a_result_affecting_option_makes_new_studies(reference, tmp_path):
    path = _copy_of(reference[0], tmp_path)
    text = path.read_text().replace("goal_error = 0.6", "goal_error = 0.7")
    path.write_text(text.replace("trials = 3", "trials = 1"))
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        assert run_experiment(spec, store).planned == 4  # 4 new studies, 1 trial each
    after = _table(spec.results_dir)
    assert len(after) == 16
    assert [row for row in after if row in reference[1]] == reference[1]  # old rows untouched


def test_same_config_same_results(reference, tiny_file):
    spec = load_experiment(tiny_file("again"))
    with ResultStore(spec.results_dir) as store:
        run_experiment(spec, store)
    assert _table(spec.results_dir) == reference[1]


def _stored(results: Path) -> int:
    try:
        with sqlite3.connect(f"file:{results / 'sparsedp.sqlite'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def test_kill_minus_nine_and_resume_matches_uninterrupted(reference, tiny_file):
    """Each run is killed as soon as it has stored a new trial, so every kill lands with
    the table part-written (0 < rows < all); the resumed table equals the reference."""
    path = tiny_file("killed")
    results = load_experiment(path).results_dir
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "sparsedp.cli.main", "run", str(path)]
    partial = []
    for _ in range(2):
        before = _stored(results)
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 240
        while _stored(results) == before and process.poll() is None:
            assert time.monotonic() < deadline, "no trial stored within 240 s"
            time.sleep(0.05)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        partial.append(_stored(results))
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert partial[0] > 0 and all(0 < n < 12 for n in partial), partial
    assert _table(results) == reference[1]


def test_failing_trials_are_recorded_and_retried(tiny_file, monkeypatch):
    from sparsedp.execution.backends import worker

    calls = {"n": 0}
    original = worker.TrialRun

    def flaky(config, data, **kwargs):
        calls["n"] += 1
        if config.batch_size == 32 and config.sparsity == 0.5 and config.seed % 1_000_003 == 1:
            raise RuntimeError("simulated crash")
        return original(config, data, **kwargs)

    monkeypatch.setattr(worker, "TrialRun", flaky)
    spec = load_experiment(tiny_file())
    with ResultStore(spec.results_dir) as store:
        summary = run_experiment(spec, store)
        frame = trials_frame(store, spec.name)
        failures = store.failure_count(spec.studies()[-1].key, 1)
    assert summary.failed_attempts == 3  # first attempt + max_retries (2)
    assert failures == 3
    failed = frame[frame.status == "failed"]
    assert len(failed) == 1 and "simulated crash" in failed["message"].iloc[0]
    assert len(frame) == 12  # the experiment went on


def test_batched_trials_give_the_same_table_as_one_at_a_time(reference, tmp_path):
    """Trials of a study run in lockstep (the GPU path, exercised here on CPU) store exactly
    what one-at-a-time trials store when stopping is off. The pruned studies only (each
    trial has its own mask), to halve the time: the dense ones add nothing to batching."""
    plain = _copy_of(reference[0], tmp_path)
    text = plain.read_text().replace("stop_hopeless = true", "stop_hopeless = false")
    text = text.replace("sparsities = [0.0, 0.5]", "sparsities = [0.5]")
    one = tmp_path / "one.toml"
    one.write_text(text.replace(str(tmp_path / "copy"), str(tmp_path / "one")))
    batched = tmp_path / "batched.toml"
    batched.write_text(_with_engine(text.replace(str(tmp_path / "copy"),
                                                 str(tmp_path / "batched")), "batched_trials = 3"))
    tables = []
    for path in (one, batched):
        spec = load_experiment(path)
        with ResultStore(spec.results_dir) as store:
            run_experiment(spec, store)
        tables.append(_table(spec.results_dir))
    assert len(tables[0]) == 6
    assert tables[0] == tables[1]
    with sqlite3.connect(tmp_path / "batched" / "sparsedp.sqlite") as db:
        groups = [json.loads(e)["batched_trials"] for (e,) in
                  db.execute("SELECT engine_json FROM trials")]
    assert groups == [3] * 6  # every study's 3 trials really ran as one group


def _best(table: list[tuple]) -> dict[str, tuple[int, int]]:
    best: dict[str, tuple[int, int]] = {}
    for key, index, status, steps, *_ in table:
        if status == "complete" and (key not in best or (steps, index) < best[key]):
            best[key] = (steps, index)
    return best


def test_interleaved_trials_settle_the_same_best_with_no_more_training(reference, tmp_path):
    """The reference ran with the default interleaving (all 3 trials of a study advanced in
    turn); one trial after another must find the same bests, and never train less."""
    text = _copy_of(reference[0], tmp_path).read_text()
    path = tmp_path / "sequential.toml"
    path.write_text(_with_engine(text.replace(str(tmp_path / "copy"),
                                              str(tmp_path / "sequential")), "interleave = 1"))
    spec = load_experiment(path)
    assert spec.engine.resolved_interleave() == 1
    with ResultStore(spec.results_dir) as store:
        run_experiment(spec, store)
    sequential, interleaved = _table(spec.results_dir), reference[1]
    assert _best(interleaved) == _best(sequential) and len(_best(sequential)) >= 2
    assert any(row[2] == "stopped" for row in interleaved)
    for seq_row, int_row in zip(sequential, interleaved, strict=True):
        assert int_row[4] <= seq_row[4]  # steps taken
        if "stopped" not in (seq_row[2], int_row[2]):
            assert int_row == seq_row  # a trial that was not stopped has its own outcome
