"""On real MNIST: the fast engine decides as the plain one at every check; stopping never
changes a study's best; switching it off reruns `stopped` trials; `--retry-failed`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from small_mnist import small_mnist_tables
from sparsedp.cli.main import main
from sparsedp.data.splits import SplitData
from sparsedp.execution.backends.worker import WorkerContext
from sparsedp.execution.runner import run_experiment
from sparsedp.pruning.prune import PruneSettings
from sparsedp.specs import EngineOptions, load_experiment
from sparsedp.store import ResultStore
from sparsedp.training.trainer import EngineSettings, TrialResult, run_trial
from sparsedp.training.trial_config import TrialConfig

pytestmark = pytest.mark.slow

SNIP = PruneSettings(snip_batches=1)


def _same_decisions(fast: TrialResult, plain: TrialResult, goal: float) -> None:
    assert (fast.status, fast.steps_to_result, fast.steps_taken) == (
        plain.status, plain.steps_to_result, plain.steps_taken)
    assert [c[0] for c in fast.curve] == [c[0] for c in plain.curve]
    for (step, error, exact), (_, plain_error, plain_exact) in zip(fast.curve, plain.curve,
                                                                  strict=True):
        assert plain_exact
        assert (error <= goal) == (plain_error <= goal), step  # the same decision
        if exact:
            assert error == plain_error, step
        else:  # early exit: a lower bound, above the goal, never above the true error
            assert goal < error <= plain_error, step


@pytest.mark.parametrize("lr", [0.05, 0.0001])  # meets the goal mid-way / never does
def test_fast_engine_decides_as_the_plain_engine_at_every_check(mnist: SplitData, lr: float):
    goal = 0.3
    config = TrialConfig("mnist-simplecnn-momentum", 0.0, 32, lr, momentum=0.9, seed=1,
                         goal_error=goal, max_steps=48, eval_every=8)
    plain = run_trial(config, mnist, engine=EngineSettings())  # full passes, batch 1,000
    # The settings the experiment runner measures on this machine (layout and eval batch).
    measured = WorkerContext(EngineOptions(), None, None, {}).engine_settings(config, mnist)
    assert measured.early_exit
    forced = EngineSettings(early_exit=True, channels_last=True, eval_batch_size=96)
    for engine in (measured, forced):
        _same_decisions(run_trial(config, mnist, engine=engine), plain, goal)
    if lr == 0.05:
        assert plain.status == "complete" and len(plain.curve) > 2
    else:
        assert plain.status == "incomplete"


TINY = """
name = "stopping"
sparsities = [0.0]
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


def _write(directory: Path, npz: Path, name: str, stop: bool, engine: str = "") -> Path:
    """``engine``: more lines of the ``[engine]`` table."""
    path = directory / f"{name}.toml"
    path.write_text(TINY.format(results=directory / name,
                                stop=str(stop).lower()).replace("[16, 32]", "[16]")
                    + engine + small_mnist_tables(npz, "stopping-cnn"))
    return path


def _rows(path: Path) -> list[tuple]:
    spec = load_experiment(path)
    with sqlite3.connect(spec.results_dir / ResultStore.FILENAME) as db:
        return db.execute("SELECT study_key, trial_index, status, steps_to_result, "
                          "steps_taken, final_val_error FROM trials "
                          "ORDER BY study_key, trial_index").fetchall()


def _run(path: Path, **kwargs):
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        return run_experiment(spec, store, **kwargs)


def _bests(rows: list[tuple]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for key, index, status, steps, *_ in rows:
        if status == "complete" and (key not in out or (steps, index) < out[key]):
            out[key] = (steps, index)
    return out


def test_stopping_on_and_off_settle_the_same_bests(tmp_path, mnist_small, monkeypatch):
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    on = _write(tmp_path, mnist_small, "on", stop=True)
    off = _write(tmp_path, mnist_small, "off", stop=False)
    _run(on)
    _run(off)
    rows_on, rows_off = _rows(on), _rows(off)
    assert len(_bests(rows_off)) == 1 and _bests(rows_on) == _bests(rows_off)
    stopped = [r for r in rows_on if r[2] == "stopped"]
    assert stopped and not any(r[2] == "stopped" for r in rows_off)
    for row_on, row_off in zip(rows_on, rows_off, strict=True):
        assert row_on[4] <= row_off[4]  # stopping never trains more
        if row_on[2] != "stopped":
            assert row_on == row_off

    # The same file with stopping switched off: only the stopped trials run again, and the
    # table becomes the one a run without stopping stores.
    on.write_text(on.read_text().replace("stop_hopeless = true", "stop_hopeless = false"))
    summary = _run(on)
    assert summary.planned == len(stopped)
    assert _rows(on) == rows_off


def test_retry_failed_runs_failed_trials_again(tmp_path, mnist_small, monkeypatch, capsys):
    from sparsedp.execution.backends import worker

    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    path = _write(tmp_path, mnist_small, "retry", stop=False, engine="max_retries = 0\n")
    original = worker.TrialRun

    def failing(config, data, **kwargs):
        if config.seed == 1:
            raise RuntimeError("simulated crash")
        return original(config, data, **kwargs)

    monkeypatch.setattr(worker, "TrialRun", failing)
    assert _run(path).failed_attempts == 1
    statuses = [r[2] for r in _rows(path)]
    assert statuses[1] == "failed" and "failed" not in statuses[::2]
    assert _run(path).planned == 0  # a failed trial is stored: not rerun by default
    monkeypatch.setattr(worker, "TrialRun", original)  # the cause is fixed
    assert main(["run", str(path), "--retry-failed"]) == 0
    rows = _rows(path)
    assert len(rows) == 3 and rows[1][2] != "failed"
    reference = _write(tmp_path, mnist_small, "reference", stop=False)
    reference.write_text(path.read_text().replace(str(tmp_path / "retry"),
                                                  str(tmp_path / "reference")))
    _run(reference)
    assert _rows(reference) == rows  # the retried trial stored its own, normal outcome
