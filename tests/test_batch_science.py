"""Shallue et al.'s batch_science layout: export, import, round trip, their own files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sparsedp.analysis import analyze
from sparsedp.analysis.edges import search_edges
from sparsedp.cli.main import main
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.runner import study_descriptor
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore, trials_frame
from sparsedp.store.batch_science import search_space_of

TOML = """
name = "bs"
workloads = ["mnist-simplecnn-momentum", "mnist-simplecnn-sgd"]
sparsities = [0.0, 0.9]
batch_sizes = [16, 64, 256]
trials = 3
results = "{results}"
goal_error = 0.05
max_steps = 1500
"""


def _record(key: str, index: int, status: str, steps: int | None, lr: float,
            momentum: float | None) -> TrialRecord:
    meta = {"lr": lr} if momentum is None else {"lr": lr, "momentum": momentum}
    taken = steps or 1500
    curve = [(s, 0.9 - s / 2000, True) for s in range(16, taken, 64)]
    curve.append((taken, 0.04 if steps else 0.3, True))
    if status == "stopped":
        curve[-1] = (taken, 0.3, False)  # an early-exit check: a lower bound only
    return TrialRecord(
        study_key=key, trial_index=index, seed=index, metaparameters=meta, status=status,
        steps_to_result=steps, steps_taken=taken, final_val_error=curve[-1][1],
        final_error_exact=curve[-1][2], curve=curve, wall_time=1.5, train_time=1.0,
        eval_time=0.5, prune_time=0.1, samples_per_second=321.0, eval_share=0.3,
        eval_examples=1000, message="" if status != "failed" else "RuntimeError: x",
        attempts=1, peak_rss_mb=100.0, mask_report={"kept": 10}, engine={"stop_hopeless": True},
        provenance={"dataset_label": "MNIST"})


@pytest.fixture()
def experiment(tmp_path: Path) -> Path:
    """A stored experiment (hand-made trials, no training) of 12 studies."""
    path = tmp_path / "bs.toml"
    path.write_text(TOML.format(results=tmp_path / "results"))
    spec = load_experiment(path)
    statuses = ("complete", "stopped", "complete", "incomplete", "infeasible", "failed")
    with ResultStore(spec.results_dir) as store:
        store.register_experiment(spec.name, spec.to_dict(),
                                  [study_descriptor(s) for s in spec.studies()])
        for n, study in enumerate(spec.studies()):
            points = study.space().points(spec.trials)
            for i in range(spec.trials):
                status = statuses[(n + i) % len(statuses)]
                steps = (100 + 37 * n + 11 * i) if status == "complete" else None
                store.write_trial(_record(study.key, i, status, steps, points[i]["lr"],
                                          points[i].get("momentum")))
    return path


def test_export_then_import_gives_the_same_trials_and_analysis(
        experiment: Path, tmp_path: Path, capsys) -> None:
    spec = load_experiment(experiment)
    out, results = tmp_path / "layout", tmp_path / "imported"
    assert main(["export", str(experiment), "--format", "batch-science", "--out", str(out)]) == 0
    study_files = sorted(p.relative_to(out).as_posix() for p in out.rglob("study.json"))
    assert len(study_files) == 12
    assert "mnist/simple_cnn_sparsity0.9/nesterov_momentum/16/study.json" not in study_files
    assert "mnist/simple_cnn_sparsity0.9/momentum/256/study.json" in study_files
    assert "mnist/simple_cnn/sgd/16/study.json" in study_files
    study = json.loads((out / "mnist/simple_cnn/momentum/64/study.json").read_text())
    assert {k: study[k] for k in ("batch_size", "dataset", "model", "optimizer", "train_steps",
                                  "early_stopping")} == {
        "batch_size": 64, "dataset": "mnist", "model": "simple_cnn", "optimizer": "momentum",
        "train_steps": 1500, "early_stopping": True}
    assert study["parameter_configs"]["momentum"] == {
        "max_value": 0.9999, "min_value": 0.9, "scale": "REVERSE_LOG_SCALE", "type": "DOUBLE"}
    meta = json.loads((out / "mnist/simple_cnn/momentum/64/1/metadata.json").read_text())
    assert set(meta) >= {"parameters", "status", "steps", "trial_id"}
    assert set(meta["parameters"]) == {"learning_rate", "momentum"}
    header = (out / "mnist/simple_cnn/momentum/64/0/measurements.csv").read_text().split("\n")[0]
    assert header.startswith("step,val/classification_error")

    assert main(["import", str(out), "--out", str(results), "--name", "bs"]) == 0
    keys = {s.key for s in spec.studies()}
    with ResultStore(spec.results_dir, read_only=True) as store:
        before = trials_frame(store, spec.name, study_keys=keys)
    with ResultStore(results, read_only=True) as store:
        after = trials_frame(store, "bs")
        spaces = {r["key"]: search_space_of(json.loads(r["spec_json"]))
                  for r in store.study_rows("bs")}
    columns = [c for c in before.columns if c != "current"]
    order = ["study_key", "trial_index"]
    pd.testing.assert_frame_equal(before[columns].sort_values(order).reset_index(drop=True),
                                  after[columns].sort_values(order).reset_index(drop=True))
    a, b = analyze(before, n_resamples=20), analyze(after, n_resamples=20)
    pd.testing.assert_frame_equal(a.best, b.best)
    assert a.curves.keys() == b.curves.keys()
    for key, curve in a.curves.items():
        assert curve.steps.tolist() == b.curves[key].steps.tolist()
        assert curve.batch_sizes.tolist() == b.curves[key].batch_sizes.tolist()
    assert a.ratios.equals(b.ratios)
    assert spaces == {s.key: s.space() for s in spec.studies()}  # edge checks work on imports
    # the report runs on the imported results directory
    capsys.readouterr()
    assert main(["report", str(results), "--bootstrap", "5", "--formats", "png"]) == 0
    assert (results / "report" / "report.html").exists()


def test_export_refuses_a_folder_in_use(experiment: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert main(["export", str(experiment), "--format", "batch-science",
                 "--out", str(tmp_path / "full")]) == 2
    assert "not an empty folder" in capsys.readouterr().err


# Two studies as Shallue et al. released them (fields as in their README; values made up):
# MNIST, Simple CNN base, momentum, batch sizes 16 and 64.
_STUDY = {
    "batch_size": 0, "dataset": "mnist", "early_stopping": False, "model": "simple_cnn_base",
    "optimizer": "momentum",
    "parameter_configs": {
        "learning_rate": {"max_value": 10.0, "min_value": 0.0001, "scale": "LOG_SCALE",
                          "type": "DOUBLE"},
        "momentum": {"max_value": 0.9999, "min_value": 0.9, "scale": "REVERSE_LOG_SCALE",
                     "type": "DOUBLE"},
        "label_smoothing": {"feasible_points": [0.0, 0.1], "type": "DISCRETE"},
    },
    "train_steps": 3000,
}
_HEADER = ("step,train/cross_entropy_error,train/classification_error,val/cross_entropy_error,"
           "val/classification_error,test/cross_entropy_error,test/classification_error")
# batch size → trial id → (status, lr, momentum, [(step, val/classification_error)])
_TRIALS = {
    16: {1: ("COMPLETE", 0.05, 0.95, [(0, 0.9), (1000, 0.08), (2000, 0.05), (3000, 0.03)]),
         2: ("COMPLETE", 0.2, 0.99989, [(0, 0.9), (1000, 0.06), (1500, 0.049), (3000, 0.02)]),
         3: ("INFEASIBLE", 8.0, 0.999, [(0, 0.9), (500, 0.04), (1000, 0.9)]),
         4: ("INCOMPLETE", 0.1, 0.9, [(0, 0.9), (800, 0.04)])},
    64: {1: ("COMPLETE", 0.3, 0.97, [(0, 0.9), (600, 0.07), (1200, 0.1)]),
         7: ("COMPLETE", 0.4, 0.98, [(0, 0.9), (500, 0.05), (1000, 0.04)])},
}


def _shallue_tree(root: Path) -> Path:
    for batch, trials in _TRIALS.items():
        study_dir = root / "mnist" / "simple_cnn_base" / "momentum" / str(batch)
        study_dir.mkdir(parents=True)
        (study_dir / "study.json").write_text(json.dumps({**_STUDY, "batch_size": batch},
                                                         indent=2))
        for trial_id, (status, lr, momentum, points) in trials.items():
            trial_dir = study_dir / str(trial_id)
            trial_dir.mkdir()
            (trial_dir / "metadata.json").write_text(json.dumps({
                "_internal_study_name": f"cnn-bs{batch}", "_internal_trial_id": trial_id + 40,
                "parameters": {"learning_rate": lr, "momentum": momentum,
                               "label_smoothing": 0.1},
                "status": status, "steps": points[-1][0], "trial_id": trial_id}, indent=2))
            rows = [f"{s},2.1,{e + 0.01},2.2,{e},2.3,{e + 0.02}" for s, e in points]
            (trial_dir / "measurements.csv").write_text("\n".join([_HEADER, *rows]) + "\n")
    return root


def test_import_of_shallue_et_al_files_finds_steps_to_result(tmp_path: Path, capsys) -> None:
    source = _shallue_tree(tmp_path / "batch_science")
    results = tmp_path / "results"
    assert main(["import", str(source), "--out", str(results)]) == 2
    assert "names no goal: give the target val/classification_error with --goal" in \
        capsys.readouterr().err
    assert main(["import", str(source), "--out", str(results), "--goal", "0.05"]) == 0
    with ResultStore(results, read_only=True) as store:
        frame = trials_frame(store, "batch_science")
        spaces = {r["key"]: search_space_of(json.loads(r["spec_json"]))
                  for r in store.study_rows("batch_science")}
        meta = json.loads(store.trial_rows("batch_science")[0]["provenance_json"])["metadata"]
    got = {(int(r.batch_size), int(r.trial_index)): (
        r.status, None if pd.isna(r.steps_to_result) else int(r.steps_to_result))
        for r in frame.itertuples()}
    assert got == {
        (16, 1): ("complete", 2000), (16, 2): ("complete", 1500),
        (16, 3): ("infeasible", None), (16, 4): ("stopped", None),  # as Shallue et al.: only
        (64, 1): ("incomplete", None), (64, 7): ("complete", 500),  # COMPLETE trials count
    }
    assert meta["parameters"]["label_smoothing"] == 0.1  # nothing of the source is lost
    best = analyze(frame, n_resamples=0).best
    assert best[["batch_size", "steps", "best_trial_index"]].values.tolist() == [
        [16, 1500, 2], [64, 500, 7]]
    assert set(best["workload"]) == {"mnist/simple_cnn_base/momentum"}
    edges = search_edges(best, spaces)  # momentum 0.99989 of [0.9, 0.9999]: the upper edge
    assert edges[["batch_size", "metaparameter", "side", "bound"]].values.tolist() == [
        [16, "momentum", "upper", 0.9999]]
    assert main(["import", str(source), "--out", str(results), "--goal", "0.05",
                 "--metric", "val/nope"]) == 2
    assert "no column 'val/nope'" in capsys.readouterr().err
