"""Small faults of issue 22: each bad input is one line and exit code 2, nothing more.

Worker count capped by the trials to run, CPUs and memory; negative seeds of ``sparsedp
trial``; a plugin calling ``sys.exit`` at import; a ``data_dir`` that is a symlink loop; an
IDX header whose sizes overflow 64 bits; very long experiment names and values; a results
directory shared by two experiments (the Ray node's address is in tests/test_ray_cluster.py).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

import sparsedp
from small_mnist import small_mnist_tables
from sparsedp.cli.main import main
from sparsedp.data import DataError
from sparsedp.data.idx import read_idx
from sparsedp.execution import runner as runner_module
from sparsedp.execution.backends.local import InProcessBackend
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.runner import study_descriptor
from sparsedp.execution.worker_cap import cap_workers, usable_cpus, worker_threads
from sparsedp.specs import ExperimentFileError, load_experiment
from sparsedp.specs.loader import NAME_LIMIT
from sparsedp.store import ResultStore

EXPERIMENT = """
name = "{name}"
{workloads}
sparsities = [0.0]
batch_sizes = [16]
trials = {trials}
results = "{results}"
goal_error = 0.6
max_steps = 16
eval_every = 8
[pruning]
snip_batches = 1
[engine]
eval_batch_size = 1000
"""  # then, for runs on the cut MNIST, its tables (tests/small_mnist.py)
BUILT_IN = 'workloads = ["mnist-simplecnn-momentum"]\ndata_dir = "{data}"'
TRIAL = ["trial", "--workload", "mnist-simplecnn-momentum", "--sparsity", "0.5",
         "--batch-size", "16", "--lr", "0.01", "--momentum", "0.9", "--max-steps", "8"]


def _write(path: Path, *, name: str = "small", trials: int = 1, results: Path | None = None,
           data: Path | str = "data", npz: Path | None = None) -> Path:
    """Built-in MNIST in ``data``; or, given ``npz``, the cut MNIST (workload ``small-cnn``)."""
    text = EXPERIMENT.format(name=name, trials=trials, results=results or path.parent / "results",
                             workloads="" if npz else BUILT_IN.format(data=data))
    path.write_text(text + (small_mnist_tables(npz, "small-cnn") if npz else ""))
    return path


def _cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """``sparsedp ARGV`` in this process: exit code and the non-empty stderr lines."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip()]


def _one_error(lines: list[str], *expected: str) -> str:
    errors = [line for line in lines if line.startswith("sparsedp:")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


# 1. workers ------------------------------------------------------------------------------

@pytest.mark.slow
def test_workers_beyond_the_trials_to_run_are_not_started(tmp_path, mnist_small, capsys,
                                                           monkeypatch):
    made = []
    original = runner_module._make_backend

    def make(spec, workers, *args):
        made.append(original(spec, workers, *args))
        return made[-1]

    monkeypatch.setattr(runner_module, "_make_backend", make)
    path = _write(tmp_path / "one.toml", npz=mnist_small)
    code, lines = _cli(["run", str(path), "--workers", "4"], capsys)
    assert code == 0, lines
    assert [type(b) for b in made] == [InProcessBackend]  # one worker: this process
    capped = [line for line in lines if line.startswith("workers:")]
    assert capped == ["workers: 4 asked, 1 used (1 trial to run)"]


def test_worker_count_is_capped_by_cpus_and_memory_with_the_reason():
    roomy = {"cpus": 64, "memory_mib": 1e6, "per_worker_mib": 700}
    assert cap_workers(4, 10, **roomy).used == 4 and not cap_workers(4, 10, **roomy).reason
    cap = cap_workers(8, 100, cpus=2, memory_mib=1e6, per_worker_mib=700)
    assert (cap.used, cap.reason) == (2, "2 CPUs")
    assert cap_workers(8, 100, cpus=8, threads=4, memory_mib=1e6).used == 2
    cap = cap_workers(8, 100, cpus=64, memory_mib=2100, per_worker_mib=700)
    assert cap.used == 3 and "2,100 MiB of memory available at ~700 MiB per worker" in cap.reason
    cap = cap_workers(8, 2, cpus=2, memory_mib=1e6, per_worker_mib=700)
    assert cap.used == 2 and cap.reason == "2 trials to run; 2 CPUs"  # both bind
    ray = cap_workers(8, 100, local=False, cpus=1, memory_mib=10)  # Ray places its own
    assert ray.used == 8 and cap_workers(8, 3, local=False).used == 3
    assert cap_workers(1, 1, cpus=1, memory_mib=1).used == 1  # never fewer than one


def test_several_local_workers_share_the_cpus_between_their_threads():
    assert worker_threads(None, 2, cpus=2) == 1  # not torch's default of 2 each
    assert worker_threads(None, 3, cpus=16) == 5
    assert worker_threads(None, 4, cpus=2) == 1  # never 0
    assert worker_threads(4, 2, cpus=2) == 4  # the experiment's own setting is kept
    assert worker_threads(None, 1, cpus=16) is None  # one worker: torch's default


@pytest.mark.slow
def test_worker_processes_are_started_with_their_share_of_threads(tmp_path, mnist_small,
                                                                   capsys, monkeypatch):
    started = []
    original = runner_module._make_backend

    def make(spec, workers, context_args, *args):
        started.append((workers, context_args[0].threads))
        return original(spec, workers, context_args, *args)

    monkeypatch.setattr(runner_module, "_make_backend", make)
    path = _write(tmp_path / "two.toml", trials=2, npz=mnist_small)
    code, lines = _cli(["run", str(path), "--workers", "2"], capsys)
    assert code == 0, lines
    workers = min(2, usable_cpus())
    assert started == [(workers, None if workers == 1 else max(1, usable_cpus() // 2))]


# 2. seeds of `sparsedp trial` ---------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--seed", "--data-seed"])
def test_trial_rejects_a_negative_seed(flag, tmp_path, capsys):
    code, lines = _cli([*TRIAL, flag, "-5", "--data-dir", str(tmp_path / "none")], capsys)
    assert code == 2
    _one_error(lines, f"argument {flag}", "expected a number >= 0, got -5")


def test_measure_trial_rejects_a_negative_seed_before_loading_data(tmp_path):
    with pytest.raises(sparsedp.SparsedpError, match=r"^data_seed must be a whole number >= 0, "
                                                     r"got -1"):
        sparsedp.measure_trial("mnist-simplecnn-momentum", 0.5, 16, 0.01, momentum=0.9,
                               data_seed=-1, data_dir=tmp_path / "none")


# 3. a plugin that exits -------------------------------------------------------------------

def test_plugin_calling_sys_exit_at_import_is_a_plugin_failure(tmp_path, capsys, monkeypatch):
    (tmp_path / "tp_exits_seven.py").write_text("import sys\n\nX = 1\nsys.exit(7)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code, lines = _cli(["workloads", "--plugin", "tp_exits_seven"], capsys)
    finally:
        sys.modules.pop("tp_exits_seven", None)
    assert code == 2
    _one_error(lines, "plugin 'tp_exits_seven'", "called sys.exit(7)", "tp_exits_seven.py:4",
               "a plugin must not exit")


# 4. a symlink loop -------------------------------------------------------------------------

def test_data_dir_that_is_a_symlink_loop(tmp_path, capsys):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    path = _write(tmp_path / "loop.toml", data="a", results=tmp_path / "results")
    code, lines = _cli(["run", str(path)], capsys)
    assert code == 2
    _one_error(lines, f"data directory {tmp_path / 'a'} is a loop of symbolic links",
               f"`data_dir` in {path}")
    assert not (tmp_path / "results").exists()  # nothing left behind
    code, lines = _cli([*TRIAL, "--data-dir", str(tmp_path / "b")], capsys)
    assert code == 2
    _one_error(lines, "is a loop of symbolic links", "--data-dir")
    code, lines = _cli(["status", str(tmp_path / "a")], capsys)  # the file itself
    assert code == 2
    _one_error(lines, "cannot read the experiment file (Too many levels of symbolic links)")


# 5. an IDX header whose sizes overflow --------------------------------------------------

def _huge_images(path: Path) -> Path:
    """An images file whose header claims 4294967295×4294967295×1 bytes (past 2^63)."""
    path.write_bytes(struct.pack(">IIII", 0x803, 2**32 - 1, 2**32 - 1, 1) + bytes(784))
    return path


def test_idx_header_with_huge_sizes_does_not_overflow(tmp_path):
    with pytest.raises(DataError) as caught:
        read_idx(_huge_images(tmp_path / "images"))
    message = str(caught.value)
    assert "the header's sizes do not match the file's length" in message
    assert "4294967295×4294967295×1 needs 18,446,744,065,119,617,025 data bytes, found 784" \
        in message
    assert "trailing" not in message


def test_idx_header_with_huge_sizes_through_the_cli(tmp_path, shared_data_dir, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (data / name).symlink_to(shared_data_dir / "mnist" / name)
    _huge_images(data / "train-images-idx3-ubyte")
    code, lines = _cli([*TRIAL, "--data-dir", str(data)], capsys)
    assert code == 2
    _one_error(lines, "train-images-idx3-ubyte: the header's sizes do not match the file's "
                      "length")


# 6. long names and values ----------------------------------------------------------------

def test_experiment_name_longer_than_the_limit(tmp_path, capsys):
    assert load_experiment(_write(tmp_path / "ok.toml", name="n" * NAME_LIMIT)).name \
        == "n" * NAME_LIMIT
    path = _write(tmp_path / "long.toml", name="n" * 5000)
    code, lines = _cli(["status", str(path)], capsys)
    assert code == 2
    line = _one_error(lines, f"long.toml:2: name: 5,000 characters long, more than "
                             f"{NAME_LIMIT}", "… (5,000 characters)")
    assert len(line) < 300
    with pytest.raises(ExperimentFileError, match=r"101 characters long"):
        load_experiment(_write(tmp_path / "long.toml", name="n" * (NAME_LIMIT + 1)))


@pytest.mark.parametrize("line", ["trials = '{v}'", "{v} = 1", "name = 'x y{v}'",
                                  "workloads = ['{v}']", "batch_sizes = '2^{v}'"])
def test_errors_echo_at_most_the_start_of_a_long_value(line, tmp_path):
    value = "v" * 5000
    text = _write(tmp_path / "e.toml", name="long-values").read_text()
    key = line.split(" = ")[0] if not line.startswith("{v}") else None
    kept = [row for row in text.splitlines() if key is None or not row.startswith(key + " ")]
    (tmp_path / "e.toml").write_text("\n".join([line.format(v=value), *kept]) + "\n")
    with pytest.raises(ExperimentFileError) as caught:
        load_experiment(tmp_path / "e.toml")
    message = str(caught.value)
    assert "\n" not in message and len(message) < 600, message
    assert "characters)" in message and "v" * 300 not in message


# 8. a results directory shared by two experiments ---------------------------------------

def _trial(key: str, index: int, steps: int | None) -> TrialRecord:
    return TrialRecord(
        study_key=key, trial_index=index, seed=index, metaparameters={"lr": 0.01 * (index + 1),
                                                                      "momentum": 0.9},
        status="complete" if steps else "incomplete", steps_to_result=steps,
        steps_taken=steps or 16, final_val_error=0.5, final_error_exact=True,
        curve=[(8, 0.5, True)], wall_time=1.0, train_time=0.5, eval_time=0.5, prune_time=0.0,
        samples_per_second=100.0, eval_share=0.5, eval_examples=6000, message="", attempts=1)


def test_shared_results_directory_counts_only_each_experiments_own_trials(tmp_path):
    results = tmp_path / "shared"
    x = load_experiment(_write(tmp_path / "x.toml", name="x", trials=3, results=results))
    y = load_experiment(_write(tmp_path / "y.toml", name="y", trials=1, results=results))
    (study,) = x.studies()
    assert [s.key for s in y.studies()] == [study.key]  # identical studies: shared trials
    with ResultStore(results) as store:  # what `sparsedp run x` stored
        store.register_experiment("x", x.to_dict(), [study_descriptor(study)])
        for index, steps in ((0, 16), (1, None), (2, 8)):  # x's best is its trial 2
            store.write_trial(_trial(study.key, index, steps))
    with ResultStore(results) as store:  # what `sparsedp run y` sees once it registered
        store.register_experiment("y", y.to_dict(), [study_descriptor(study)])
        assert store.finished_trials(study.key) == {0: "complete"}
        assert store.best_steps(study.key) == (16, 0)  # not x's trial 2
        assert store.completed_steps(study.key) == [16]
    status = sparsedp.Experiment.from_file(tmp_path / "y.toml").status()
    (row,) = status.studies
    assert (row.done, row.best_steps, row.best_trial) == (1, 16, 0)
    assert list(sparsedp.Experiment.from_file(tmp_path / "y.toml").trials().trial_index) == [0]
    (row,) = sparsedp.Experiment.from_file(tmp_path / "x.toml").status().studies
    assert (row.done, row.best_steps, row.best_trial) == (3, 8, 2)  # x's view: all three

