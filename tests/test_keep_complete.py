"""``keep_complete = K``: the stopping rule keeps the K best trials of every study running to
their result, in every engine (one process interleaved, worker processes, batched groups; Ray
in test_ray_cluster.py), records K with every trial, and reruns what a larger K needs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from small_mnist import small_mnist_tables
from sparsedp.execution.backends.ray_cluster import LimitBoard
from sparsedp.execution.runner import pending_trials, run_experiment
from sparsedp.specs import EngineOptions, ExperimentFileError, load_experiment
from sparsedp.store import ResultStore, trials_frame
from sparsedp.training.stopping import CompletedSteps, combined_limit, stop_message

EXPERIMENT = """
name = "kc"
sparsities = [0.0]
batch_sizes = [32]
trials = 8
results = "{results}"
goal_error = 0.3
max_steps = 64
eval_every = 8
[pruning]
snip_batches = 1
[engine]
eval_batch_size = 1000
{engine}
"""  # then the cut MNIST's tables (tests/small_mnist.py)


# ---------------------------------------------------------------------------- the rule


def test_the_limit_is_the_kth_best_once_k_trials_completed():
    steps = CompletedSteps(3)
    assert steps.limit is None
    assert not steps.add(48) and steps.limit is None  # no limit before K trials completed
    assert not steps.add(16)
    assert steps.add(32) and steps.limit == 48  # 16, 32, 48
    assert steps.add(16) and steps.limit == 32  # 16, 16, 32: ties count twice
    assert not steps.add(40) and steps.limit == 32
    assert steps.best == [16, 16, 32]
    assert CompletedSteps(1, [30, 20]).limit == 20  # K = 1: the best, as stopping always was


def test_limits_combine_by_the_smallest_set_one():
    assert combined_limit(None, None) is None
    assert combined_limit(None, 40) == 40
    assert combined_limit(32, 40, None) == 32


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_keep_complete_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(ValueError, match="keep_complete"):
        CompletedSteps(bad)
    with pytest.raises(ValueError, match="keep_complete"):
        EngineOptions(keep_complete=bad)


def test_the_experiment_file_rejects_a_bad_keep_complete_with_its_line(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(EXPERIMENT.format(results=tmp_path / "r", engine="keep_complete = 0")
                    + small_mnist_tables(tmp_path / "mnist-small.npz", "kc-cnn"))
    with pytest.raises(ExperimentFileError) as caught:
        load_experiment(path)
    line = path.read_text().splitlines().index("keep_complete = 0") + 1
    assert str(caught.value) == (f"{path}:{line}: engine.keep_complete: must be >= 1, got 0; "
                                 "use a value >= 1")


def test_stop_messages_name_the_kth_best():
    assert stop_message(32, 16, 1) == "stopped at step 32: cannot beat the study's best (16)"
    assert stop_message(48, 32, 3) == ("stopped at step 48: cannot beat the study's 3rd best "
                                       "(32; keep_complete = 3)")
    assert "2nd best" in stop_message(8, 8, 2) and "11th best" in stop_message(8, 8, 11)


def test_the_ray_board_counts_each_trial_once_and_takes_the_drivers_limit():
    board = LimitBoard(keep=2)
    board.complete("s", 0, 40)
    board.complete("s", 0, 40)  # the same trial posted twice (a retried round)
    assert board.snapshot() == {}
    board.complete("s", 1, 24)
    assert board.snapshot() == {"s": 40}
    board.limit("s", 32)  # the driver knows more (trials of other workers)
    board.limit("s", 48)  # limits only fall
    assert board.snapshot() == {"s": 32}


# ---------------------------------------------------------------------------- real runs


def _write(directory: Path, npz: Path, name: str, engine: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(EXPERIMENT.format(results=directory / name, engine=engine)
                    + small_mnist_tables(npz, "kc-cnn"))
    return path


def _run(path: Path, **kwargs):
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        return run_experiment(spec, store, **kwargs)


def _rows(path: Path) -> dict[int, tuple]:
    spec = load_experiment(path)
    with sqlite3.connect(spec.results_dir / ResultStore.FILENAME) as db:
        return {index: (status, steps, taken, json.loads(engine)) for index, status, steps,
                taken, engine in db.execute("SELECT trial_index, status, steps_to_result, "
                                            "steps_taken, engine_json FROM trials")}


@pytest.fixture(scope="module")
def own_outcomes(tmp_path_factory, mnist_small) -> dict[int, tuple]:
    """Every trial run to its own end (stopping off): the truth the stopping rule keeps."""
    directory = tmp_path_factory.mktemp("kc-off")
    path = _write(directory, mnist_small, "off", "stop_hopeless = false")
    _run(path)
    rows = _rows(path)
    complete = sorted(r[1] for r in rows.values() if r[0] == "complete")
    assert len(complete) >= 4 and complete[2] < complete[-1]  # a 3rd best that stops someone
    return rows


def _check_keeps_the_k_best(rows: dict[int, tuple], own: dict[int, tuple], keep: int,
                            stored_keep: bool = True) -> None:
    complete = sorted((r[1], i) for i, r in own.items() if r[0] == "complete")
    limit = complete[keep - 1][0]
    for index, (status, steps, taken, engine) in rows.items():
        if stored_keep:
            assert engine["keep_complete"] == keep  # stored with the trial
        own_status, own_steps = own[index][:2]
        if own_status == "complete" and own_steps <= limit:  # among the K best (ties too)
            assert (status, steps) == ("complete", own_steps), index
        elif status == "stopped":  # a lower bound at or past the K-th best, never below it
            assert taken >= limit and taken <= own[index][2], index
        else:  # ran before K trials completed: its own outcome
            assert (status, steps, taken) == own[index][:3], index
    assert sum(1 for r in rows.values() if r[0] == "complete") >= keep
    assert any(r[0] == "stopped" for r in rows.values())


@pytest.mark.slow
@pytest.mark.parametrize("engine, workers", [
    ("keep_complete = 3", 1),                                 # one process, interleaved
    ("keep_complete = 3\ninterleave = 2", 2),                 # worker processes
    ("keep_complete = 3\nbatched_trials = 3", 1),             # a rolling batched group
])
def test_every_engine_keeps_the_k_best_trials_running(own_outcomes, tmp_path, mnist_small,
                                                     engine, workers, monkeypatch):
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    path = _write(tmp_path, mnist_small, "kc", engine)
    _run(path, workers=workers)
    keep = int(engine.split("\n")[0].split("=")[1])
    _check_keeps_the_k_best(_rows(path), own_outcomes, keep)
    spec = load_experiment(path)
    with ResultStore(spec.results_dir, read_only=True) as store:
        frame = trials_frame(store, spec.name)
    assert set(frame["keep_complete"]) == {keep}


@pytest.mark.slow
def test_ray_workers_keep_the_k_best_trials_running(ray_cluster, own_outcomes, tmp_path,
                                                   mnist_small):
    path = _write(tmp_path, mnist_small, "kc-ray",
                  'keep_complete = 3\ninterleave = 2\nbackend = "ray"')
    _run(path, workers=2)
    _check_keeps_the_k_best(_rows(path), own_outcomes, 3)


@pytest.mark.slow
def test_raising_k_reruns_only_the_trials_stopped_short_of_the_new_limit(
        own_outcomes, tmp_path, mnist_small, monkeypatch):
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    path = _write(tmp_path, mnist_small, "kc", "keep_complete = 1")
    _run(path)
    first = _rows(path)
    spec = load_experiment(path)
    with ResultStore(spec.results_dir, read_only=True) as store:  # K = 1 is settled
        assert pending_trials(spec, store, spec.studies()[0]) == []
    path.write_text(path.read_text().replace("keep_complete = 1", "keep_complete = 3"))
    spec = load_experiment(path)
    complete = sorted(r[1] for r in own_outcomes.values() if r[0] == "complete")
    short = sorted(i for i, r in first.items() if r[0] == "stopped" and r[2] < complete[2])
    with ResultStore(spec.results_dir, read_only=True) as store:
        assert pending_trials(spec, store, spec.studies()[0]) == short and short
    summary = _run(path)
    assert summary.planned == len(short)
    rows = _rows(path)
    for index in set(rows) - set(short):  # kept as they were
        assert rows[index] == first[index]
    assert {rows[i][3]["keep_complete"] for i in short} == {3}
    _check_keeps_the_k_best(rows, own_outcomes, 3, stored_keep=False)
