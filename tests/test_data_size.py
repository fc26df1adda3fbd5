"""Training-set size as an axis (`train_examples`): the data subset, the study key (old keys
unchanged), the experiment file, the curve identity, and end to end on real MNIST."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.test_analysis import table_from_best

import sparsedp
from small_mnist import small_mnist_tables
from sparsedp.analysis import analysis_to_dict, analyze
from sparsedp.analysis.data_size import curve_workload, with_curve_labels
from sparsedp.analysis.data_size_table import data_size_table
from sparsedp.api.events import TrialStarted
from sparsedp.data.sources import load_dataset
from sparsedp.data.splits import prepare_splits
from sparsedp.execution.backends.worker import WorkerContext
from sparsedp.planning.estimate import snip_groups
from sparsedp.specs import EngineOptions, ExperimentFileError, StudySpec, load_experiment

REPO = Path(__file__).resolve().parents[1]
W = "mnist-simplecnn-momentum"


# ------------------------------------------------------------------ study keys


def test_an_unset_size_leaves_every_existing_study_key_unchanged():
    assert StudySpec(W, 0.9, 128).key == "0965bf6cfe61ec76"  # the key before the option
    assert StudySpec(W, 0.9, 128, train_examples=None).key == "0965bf6cfe61ec76"
    assert StudySpec(W, 0.9, 128, train_examples=6000).key != "0965bf6cfe61ec76"
    # the keys a stored database of today's paper run registered, from its file as it is
    spec = load_experiment(REPO / "examples" / "paper-w2-momentum.toml")
    with sqlite3.connect(REPO / "results" / "paper-w2-momentum" / "sparsedp.sqlite") as db:
        stored = {k for (k,) in db.execute(
            "SELECT study_key FROM experiment_studies WHERE current = 1")}
    assert len(stored) == 20 and {s.key for s in spec.studies()} == stored


def test_each_size_is_its_own_study_and_its_label_says_so():
    a, b = StudySpec(W, 0.9, 64, train_examples=6000), StudySpec(W, 0.9, 64, train_examples=12000)
    assert a.key != b.key
    assert a.label == f"{W} n=6000 s=0.9 B=64" and StudySpec(W, 0.9, 64).label == f"{W} s=0.9 B=64"
    assert a.trial_config(0, {"lr": 0.1, "momentum": 0.9}).train_examples == 6000
    with pytest.raises(ValueError, match="train_examples must be a whole number >= 1"):
        StudySpec(W, 0.9, 64, train_examples=0)


# ------------------------------------------------------------------ the data


def test_the_first_n_of_the_training_split_share_validation(shared_data_dir, tmp_path):
    full = prepare_splits(load_dataset("mnist", shared_data_dir / "mnist", cache_dir=tmp_path))
    small = full.first(6000)
    assert small.num_train == 6000 and full.num_train == 54_000
    np.testing.assert_array_equal(small.train_index, full.train_index[:6000])
    assert small.validation() is full.validation()  # the same 6,000 held-out examples
    assert full.first(None) is full and full.first(54_000) is full
    x_small, y_small = small.train_batch(np.arange(5))
    x_full, y_full = full.train_batch(np.arange(5))
    assert bool((x_small == x_full).all()) and bool((y_small == y_full).all())
    with pytest.raises(ValueError, match=r"outside 1\.\.54,000"):
        full.first(54_001)


def test_the_worker_trains_a_study_on_its_subset(shared_data_dir, tmp_path):
    context = WorkerContext(EngineOptions(), str(shared_data_dir / "mnist"), str(tmp_path), {})
    assert context.data("mnist").num_train == 54_000
    assert context.data("mnist", 6000).num_train == 6000
    assert context.data("mnist", 6000) is context.data("mnist", 6000)  # one copy per size


def test_one_trial_of_a_sized_study_trains_on_its_subset(shared_data_dir, monkeypatch,
                                                        tmp_path):
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path))
    study = StudySpec(W, 0.0, 16, goal_error=0.9, max_steps=8, eval_every=8, train_examples=500)
    events: list = []
    sparsedp.measure_trial_config(study.trial_config(0, {"lr": 0.05, "momentum": 0.9}),
                                  data_dir=shared_data_dir / "mnist", on_event=events.append)
    started = next(e for e in events if isinstance(e, TrialStarted))
    assert (started.num_train, started.num_val) == (500, 6000)
    too_many = StudySpec(W, 0.0, 16, train_examples=60_000).trial_config(
        0, {"lr": 0.05, "momentum": 0.9})
    with pytest.raises(sparsedp.SparsedpError, match="more than the training split"):
        sparsedp.measure_trial_config(too_many, data_dir=shared_data_dir / "mnist")


# ------------------------------------------------------------------ the experiment file


def _file(tmp_path: Path, line: str, batch_sizes: str = "[16, 64]") -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(f'name = "n"\nworkloads = ["{W}"]\nsparsities = [0.0, 0.9]\n'
                    f"batch_sizes = {batch_sizes}\n{line}\n")
    return path


def test_a_list_of_sizes_is_an_axis_and_one_size_is_allowed(tmp_path):
    spec = load_experiment(_file(tmp_path, "train_examples = [6000, 12000]"))
    studies = spec.studies()
    assert len(studies) == 8 and len({s.key for s in studies}) == 8
    assert [s.train_examples for s in studies] == [6000] * 4 + [12000] * 4
    assert spec.to_dict()["train_examples"] == [6000, 12000]
    one = load_experiment(_file(tmp_path, "train_examples = 6000")).studies()
    assert {s.train_examples for s in one} == {6000} and len(one) == 4
    plain = load_experiment(_file(tmp_path, ""))
    assert {s.train_examples for s in plain.studies()} == {None}
    assert "train_examples" not in plain.to_dict()


@pytest.mark.parametrize("line, batch_sizes, message", [
    ("train_examples = 0", "[16]", "train_examples: must be >= 1, got 0"),
    ("train_examples = [6000, 6000]", "[16]", "train_examples[1]: duplicate size 6000"),
    ("train_examples = [60000]", "[16]",
     "train_examples[0]: 60,000 is more than the mnist training split (54,000 examples)"),
    ("train_examples = [100]", "[16, 256]",
     "train_examples[0]: 100 examples are fewer than the batch size 256"),
    ('train_examples = "6000"', "[16]", "train_examples: expected a whole number"),
    ("train_examples = []", "[16]", "train_examples: the list is empty"),
])
def test_bad_sizes_are_one_line_naming_the_key(tmp_path, line, batch_sizes, message):
    with pytest.raises(ExperimentFileError) as info:
        load_experiment(_file(tmp_path, line, batch_sizes))
    text = str(info.value)
    assert message in text and "\n" not in text and ":5" in text  # file:line of the key


def test_the_command_line_refuses_a_bad_size_in_one_line(tmp_path):
    path = _file(tmp_path, "train_examples = [60000]")
    out = subprocess.run([sys.executable, "-m", "sparsedp.cli.main", "status", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "60,000 is more than the mnist training split" in lines[0]


def test_the_plan_counts_one_snip_saliency_per_size():
    groups = snip_groups(load_experiment(REPO / "examples" / "data-size.toml"))
    assert sorted((key[-1], len(studies)) for key, studies in groups.items()) == [
        (6000, 3), (24000, 3)]  # sparsity 0.9 × 3 batch sizes, per size


# ------------------------------------------------------------------ curve identity


def _sized(table: pd.DataFrame, size: int) -> pd.DataFrame:
    return table.assign(train_examples=size, study_key=table["study_key"] + f"/n{size}")


def test_two_sizes_of_one_cell_are_two_curves_not_pooled():
    small = _sized(table_from_best({("w-sgd", 0.0): {16: 1000, 32: 500, 64: 320}}), 6000)
    large = _sized(table_from_best({("w-sgd", 0.0): {16: 900, 32: 450, 64: 225}}), 54000)
    analysis = analyze(pd.concat([small, large], ignore_index=True), n_resamples=0)
    assert set(analysis.curves) == {("w-sgd n=6000", 0.0), ("w-sgd n=54000", 0.0)}
    assert list(analysis.curves[("w-sgd n=6000", 0.0)].steps) == [1000, 500, 320]
    curves = {c["workload"]: c for c in analysis_to_dict(analysis)["curves"]}
    assert curves["w-sgd n=6000"]["train_examples"] == 6000
    assert curves["w-sgd n=6000"]["base_workload"] == "w-sgd"
    table = data_size_table(analysis)
    assert list(table["train_examples"]) == [6000, 54000]
    assert table["b_overhead"].iloc[0] == pytest.approx(53.392, abs=1e-3)  # as by hand
    assert np.isnan(table["b_overhead"].iloc[1])  # 1.0 at B = 64: beyond


def test_tables_without_sizes_are_left_as_they_are():
    plain = table_from_best({("w-sgd", 0.0): {16: 1000, 32: 500, 64: 320}})
    assert with_curve_labels(plain) is plain
    assert with_curve_labels(plain.assign(train_examples=None)) is not None
    assert "base_workload" not in with_curve_labels(plain.assign(train_examples=None))
    assert "train_examples" not in analysis_to_dict(analyze(plain, n_resamples=0))["curves"][0]
    assert curve_workload("w", None) == "w" and curve_workload("w", 6000.0) == "w n=6000"


def test_seed_repeats_take_their_size_from_the_study_key():
    trials = _sized(table_from_best({("w-sgd", 0.0): {16: 1000}}), 6000)
    repeats = pd.DataFrame({"study_key": trials["study_key"].iloc[:1], "workload": ["w-sgd"]})
    labelled = with_curve_labels(repeats, trials)
    assert list(labelled["workload"]) == ["w-sgd n=6000"]


# ------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_two_sizes_on_real_mnist_give_two_curves_and_the_figure(tmp_path, mnist_small):
    """On the cut MNIST (tests/small_mnist.py: 5,400 training examples, of which both sizes
    are subsets, and 600 validation examples for quick checks)."""
    w = "sizes-cnn"
    path = tmp_path / "exp.toml"
    path.write_text("""
name = "sizes"
train_examples = [1000, 4000]
sparsities = [0.0]
batch_sizes = [16, 32, 64]
trials = 2
results = "results"
goal_error = 0.5
max_steps = 64
eval_every = 8
[search.momentum]
low = 0.9
high = 0.99
scale = "reverse-log"
""" + small_mnist_tables(mnist_small, w))
    exp = sparsedp.Experiment.from_file(path)
    exp.run()
    trials = exp.trials()
    assert sorted(trials["train_examples"].unique()) == [1000, 4000]
    assert trials.groupby("train_examples")["study_key"].nunique().to_dict() == {1000: 3,
                                                                                 4000: 3}
    status = exp.status().to_frame()
    assert status.groupby("workload")["done"].sum().to_dict() == {f"{w} n=1000": 6,
                                                                   f"{w} n=4000": 6}
    html = exp.report(tmp_path / "report", bootstrap=20, formats=("png",))
    summary = json.loads((html.parent / "summary.json").read_text())
    curves = {c["workload"]: c for c in summary["curves"]}
    assert set(curves) == {f"{w} n=1000", f"{w} n=4000"}
    assert {c["train_examples"] for c in curves.values()} == {1000, 4000}
    assert all("b_crit_overhead" in c for c in curves.values())
    figure = html.parent / "figures" / f"data-size-{w}.png"
    assert figure.stat().st_size > 1000
    assert f"data-size-{w}" in html.read_text()
