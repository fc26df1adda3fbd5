"""SIGTERM and Ctrl-C during `sparsedp repeat`: the exact exit code and line, every repeat
stored before the signal kept, and a rerun that ends with the undisturbed repeats
(docs/faults.md; kill -9 is tests/test_repeats.py's)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from small_mnist import small_mnist_tables
from sparsedp.cli.main import main
from sparsedp.execution.runner import run_experiment
from sparsedp.repeats.run import run_repeats
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore

SEEDS = 4
EXPERIMENT = """
name = "repeat-signals"
sparsities = [0.5]
batch_sizes = [16]
trials = 2
results = "{results}"
goal_error = 0.7
max_steps = 16
eval_every = 16
[pruning]
snip_batches = 1
[engine]
eval_batch_size = 1000
threads = 1  # the same numerics in this process (tests run on 1 thread) and in `repeat`
"""  # then the cut MNIST's tables (tests/small_mnist.py)


def _write(path: Path, results: Path, npz: Path) -> Path:
    path.write_text(EXPERIMENT.format(results=results)
                    + small_mnist_tables(npz, "repeat-signals-cnn"))
    return path


def repeat_rows(results: Path) -> list[tuple]:
    try:
        db = sqlite3.connect(f"file:{results / ResultStore.FILENAME}?mode=ro", uri=True)
        rows = db.execute("SELECT study_key, source_trial, repeat_index, seed, data_seed, "
                          "status, steps_to_result, steps_taken, final_val_error, curve_json "
                          "FROM repeats ORDER BY study_key, repeat_index").fetchall()
        db.close()
    except sqlite3.Error:  # not created yet
        return []
    return rows


@pytest.fixture(scope="module")
def searched(tmp_path_factory, mnist_small) -> tuple[Path, list[tuple]]:
    """The experiment's search, run once; and the repeats of an undisturbed `repeat`."""
    directory = tmp_path_factory.mktemp("repeat-signals")
    os.environ.setdefault("SPARSEDP_CACHE_DIR", str(directory / "cache"))
    path = _write(directory / "exp.toml", directory / "search", mnist_small)
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        run_experiment(spec, store)
    reference = directory / "reference"
    shutil.copytree(spec.results_dir, reference)
    spec_ref = load_experiment(_retarget(path, reference, directory / "ref.toml"))
    with ResultStore(spec_ref.results_dir) as store:
        assert run_repeats(spec_ref, store, SEEDS).finished == SEEDS
    return spec.results_dir, repeat_rows(reference)


def _retarget(path: Path, results: Path, new: Path) -> Path:
    spec = load_experiment(path)
    new.write_text(path.read_text().replace(str(spec.results_dir), str(results)))
    return new


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_repeat_keeps_what_was_stored(searched, tmp_path, mnist_small, signum):
    """Once a repeat of this run is stored, after a random delay of up to half a second (cut
    short when the next one is stored), `repeat` is frozen with SIGSTOP, so it is surely
    alive with repeats left, sent the signal and continued. SPARSEDP_TEST_SEED repeats a
    moment."""
    seed = int(os.environ.get("SPARSEDP_TEST_SEED", random.randrange(2**32)))
    rng = random.Random(seed * 3 + signum)
    where = f"SPARSEDP_TEST_SEED={seed}"
    search_results, reference = searched
    results = tmp_path / "results"
    shutil.copytree(search_results, results)
    path = _write(tmp_path / "exp.toml", results, mnist_small)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SPARSEDP_DEBUG", None)
    process = subprocess.Popen([sys.executable, "-m", "sparsedp.cli.main", "repeat", str(path),
                                "--seeds", str(SEEDS)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not repeat_rows(results):
            assert process.poll() is None and time.monotonic() < deadline, \
                (where, process.poll())
            time.sleep(0.01)
        target, stored = time.monotonic() + rng.uniform(0.0, 0.5), len(repeat_rows(results))
        while time.monotonic() < target and len(repeat_rows(results)) == stored:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGSTOP)
        at_signal = repeat_rows(results)
        assert process.poll() is None, (where, "repeat ended before the signal")
        assert 1 <= len(at_signal) < SEEDS, (where, len(at_signal))
        if signum == signal.SIGINT:
            os.killpg(process.pid, signum)  # what a terminal's Ctrl-C does
        else:
            os.kill(process.pid, signum)
        os.kill(process.pid, signal.SIGCONT)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    after = repeat_rows(results)
    assert "Traceback" not in stderr, stderr
    assert process.returncode == {signal.SIGTERM: 143, signal.SIGINT: 130}[signum], \
        (where, process.returncode, stderr)
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    lines = [line for line in stderr.splitlines() if line.startswith("sparsedp:")]
    assert lines == [f"sparsedp: interrupted by {name} after storing {len(after)} repeats; "
                     "the repeats stored so far are kept; run the same command again to "
                     "finish"], (where, stderr)
    assert stderr.strip().splitlines()[-1] == lines[0]
    assert set(at_signal) <= set(after) <= set(reference), where  # nothing lost or wrong
    assert len(after) <= len(at_signal) + 1, where  # at most a write under way finished
    assert main(["repeat", str(path), "--seeds", str(SEEDS)]) == 0
    assert repeat_rows(results) == reference

