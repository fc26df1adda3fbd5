"""Shallue et al.'s batch_science layout: export, import, round trip, their own files."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from sparsedp.analysis import analyze
from sparsedp.analysis.edges import search_edges
from sparsedp.api import import_batch_science
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


# --------------------------------------------------------------------------- hostile input

_BAD = "fix that value or remove the file's folder from the import"
_STUDY16 = Path("mnist/simple_cnn_base/momentum/16")
_EXPORTED64 = Path("mnist/simple_cnn/momentum/64")


def _edit(path: Path, change) -> None:
    """Rewrite the JSON object in ``path`` after ``change(document)``."""
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _set(path: Path, **fields) -> None:
    _edit(path, lambda d: d.update(fields))


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _outside_trial(src: Path) -> str:
    elsewhere = src.parent / "elsewhere"
    (elsewhere / "9").mkdir(parents=True)
    (elsewhere / "9" / "metadata.json").write_text(json.dumps(
        {"parameters": {"learning_rate": 0.1}, "status": "COMPLETE", "steps": 10,
         "trial_id": 9}))
    (elsewhere / "9" / "measurements.csv").write_text("step,val/classification_error\n10,0.01\n")
    (src / _STUDY16 / "9").symlink_to(elsewhere / "9", target_is_directory=True)
    return (f"{src / _STUDY16 / '9'}: a link to {(elsewhere / '9').resolve()}, outside the "
            f"import folder {src}; copy what it points to into the folder or remove the link")


def _loop(src: Path) -> str:
    (src / "mnist" / "loop").symlink_to(src, target_is_directory=True)
    return (f"{src / 'mnist' / 'loop'}: reached a second time (a link inside the import "
            f"folder leads to {src.resolve()} again); remove the link")


def _meta(src: Path, trial: int = 1) -> Path:
    return src / _STUDY16 / str(trial) / "metadata.json"


def _field(path: Path, field: str, shown: str, expected: str) -> str:
    return f"{path}: {field} is {shown}, expected {expected}; {_BAD}"


# id → (source tree, edit of the tree that returns the exact one-line message)
HOSTILE = {
    "steps NaN": ("shallue", lambda s: (_set(_meta(s), steps=float("nan")), _field(
        _meta(s), "steps", "nan", "a whole number >= 0"))[1]),
    "steps inf": ("shallue", lambda s: (_set(_meta(s), steps=float("inf")), _field(
        _meta(s), "steps", "inf", "a whole number >= 0"))[1]),
    "steps text": ("shallue", lambda s: (_set(_meta(s), steps="2000"), _field(
        _meta(s), "steps", "'2000'", "a whole number >= 0"))[1]),
    "steps huge": ("shallue", lambda s: (_set(_meta(s), steps=10**30), _field(
        _meta(s), "steps", str(10**30), "a whole number up to 9223372036854775807"))[1]),
    "steps negative": ("shallue", lambda s: (_set(_meta(s), steps=-5), _field(
        _meta(s), "steps", "-5", "a whole number >= 0"))[1]),
    "parameters list": ("shallue", lambda s: (_set(_meta(s), parameters=[0.05, 0.95]), _field(
        _meta(s), "parameters", "[0.05, 0.95]", "a JSON object"))[1]),
    "learning rate text": ("shallue", lambda s: (_edit(_meta(s), lambda d: d["parameters"].update(
        learning_rate="0.05")), _field(_meta(s), "parameters.learning_rate", "'0.05'",
                                       "a finite number"))[1]),
    "status unknown": ("shallue", lambda s: (_set(_meta(s), status="DONE"), _field(
        _meta(s), "status", "'DONE'", "COMPLETE, INCOMPLETE or INFEASIBLE"))[1]),
    "sparsedp {} in study.json": ("shallue", lambda s: (_set(s / _STUDY16 / "study.json",
                                                             sparsedp={}), _field(
        s / _STUDY16 / "study.json", "sparsedp.study_key", "missing", "a non-empty text"))[1]),
    "goal text": ("shallue", lambda s: (_set(s / _STUDY16 / "study.json", goal_error="abc"),
                                        _field(s / _STUDY16 / "study.json", "goal_error",
                                               "'abc'", "a number in (0, 1)"))[1]),
    "goal NaN": ("shallue", lambda s: (_set(s / _STUDY16 / "study.json", goal_error=math.nan),
                                       _field(s / _STUDY16 / "study.json", "goal_error", "nan",
                                              "a number in (0, 1)"))[1]),
    "sparsity 7.5": ("shallue", lambda s: (_set(s / _STUDY16 / "study.json", sparsity=7.5),
                                           _field(s / _STUDY16 / "study.json", "sparsity",
                                                  "7.5", "a number in [0, 1)"))[1]),
    "batch size 0": ("shallue", lambda s: (_set(s / _STUDY16 / "study.json", batch_size=0),
                                           _field(s / _STUDY16 / "study.json", "batch_size",
                                                  "0", "a whole number >= 1"))[1]),
    "duplicate trial id": ("shallue", lambda s: (_set(_meta(s, 2), trial_id=1),
                                                 f"{_meta(s, 1)} and {_meta(s, 2)} are both "
                                                 "trial 1; give each trial of a study its own "
                                                 "trial_id")[1]),
    "step text in csv": ("shallue", lambda s: (
        _replace(s / _STUDY16 / "1" / "measurements.csv", "\n1000,", "\nabc,"),
        f"{s / _STUDY16 / '1' / 'measurements.csv'}: line 3, column 'step' is 'abc', expected "
        "a whole number >= 0; fix that value or remove the trial folder")[1]),
    "error text in csv": ("shallue", lambda s: (
        _replace(s / _STUDY16 / "1" / "measurements.csv", ",2.2,0.08,", ",2.2,low,"),
        f"{s / _STUDY16 / '1' / 'measurements.csv'}: line 3, column "
        "'val/classification_error' is 'low', expected a number or nothing; fix that value or "
        "remove the trial folder")[1]),
    "trial linked outside": ("shallue", _outside_trial),
    "link loop": ("shallue", _loop),
    "sparsedp {} in metadata.json": ("export", lambda s: (
        _set(s / _EXPORTED64 / "1" / "metadata.json", sparsedp={}),
        _field(s / _EXPORTED64 / "1" / "metadata.json", "sparsedp.status", "missing",
               "complete, incomplete, infeasible, stopped, failed"))[1]),
    "complete without steps": ("export", lambda s: (
        _edit(s / _EXPORTED64 / "0" / "metadata.json", lambda d: d["sparsedp"].update(
            status="complete", steps_to_result=None)),
        _field(s / _EXPORTED64 / "0" / "metadata.json", "sparsedp.steps_to_result", "None",
               "a whole number >= 0 for a complete trial"))[1]),
}


def _files(results: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(results.iterdir()) if p.is_file()}


def _rows(results: Path) -> dict[str, list[tuple]]:
    """Every row of the tables an import writes, in storage order."""
    db = sqlite3.connect(f"file:{results / ResultStore.FILENAME}?mode=ro", uri=True)
    try:
        return {table: [tuple(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]
                for table in ("experiments", "studies", "experiment_studies", "trials")}
    finally:
        db.close()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_is_one_line_naming_the_file_and_changes_nothing(
        case: str, experiment: Path, tmp_path: Path, capsys) -> None:
    base, edit = HOSTILE[case]
    results = load_experiment(experiment).results_dir
    if base == "shallue":
        source = _shallue_tree(tmp_path / "src")
    else:
        source = tmp_path / "src"
        assert main(["export", str(experiment), "--format", "batch-science",
                     "--out", str(source)]) == 0
    expected = edit(source)
    before = _files(results)
    capsys.readouterr()
    code = main(["import", str(source), "--out", str(results), "--name", "imported",
                 "--goal", "0.05"])
    captured = capsys.readouterr()
    assert (code, captured.err) == (2, f"sparsedp: error: {expected}\n")
    assert captured.out == ""
    assert _files(results) == before  # byte for byte, and no new file


def test_import_of_an_edited_export_never_replaces_measured_trials(
        experiment: Path, tmp_path: Path, capsys) -> None:
    results = load_experiment(experiment).results_dir
    out = tmp_path / "layout"
    assert main(["export", str(experiment), "--format", "batch-science", "--out", str(out)]) == 0
    meta = next(p for p in sorted(out.rglob("metadata.json"))
                if json.loads(p.read_text())["sparsedp"]["status"] == "complete")
    trial = json.loads(meta.read_text())
    measured = trial["sparsedp"]["steps_to_result"]
    assert measured >= 100
    _edit(meta, lambda d: d["sparsedp"].update(steps_to_result=1))  # the review's edit
    before = _rows(results)
    database = results / ResultStore.FILENAME
    capsys.readouterr()
    assert main(["import", str(out), "--out", str(results), "--name", "bs"]) == 2
    assert capsys.readouterr().err == (
        f"sparsedp: error: {database} holds an experiment named 'bs' already; an import never "
        "replaces one: choose another name with --name\n")
    first = out / "mnist/simple_cnn/momentum/16/study.json"  # the first study walked
    key = json.loads(first.read_text())["sparsedp"]["study_key"]
    assert main(["import", str(out), "--out", str(results), "--name", "copy"]) == 2
    assert capsys.readouterr().err == (
        f"sparsedp: error: {first}: study {key} is in {database} already (experiment bs); an "
        "import never replaces stored trials; import into another results directory\n")
    assert _rows(results) == before
    with ResultStore(results, read_only=True) as store:
        assert store.experiment_names() == ["bs"]
        frame = trials_frame(store, "bs")
    row = frame[(frame["study_key"] == trial["_internal_study_name"])
                & (frame["trial_index"] == trial["trial_id"])]
    assert row["steps_to_result"].tolist() == [measured]  # not the edited 1


def test_a_trial_stored_without_its_study_is_never_replaced(
        experiment: Path, tmp_path: Path, capsys) -> None:
    out, results = tmp_path / "layout", tmp_path / "other"
    assert main(["export", str(experiment), "--format", "batch-science", "--out", str(out)]) == 0
    key = json.loads((out / _EXPORTED64 / "study.json").read_text())["sparsedp"]["study_key"]
    with ResultStore(results) as store:  # a trial row no experiment links (e.g. an old file)
        store.write_trial(_record(key, 2, "complete", 77, 0.1, 0.9))
    before = _rows(results)
    capsys.readouterr()
    assert main(["import", str(out), "--out", str(results), "--name", "copy"]) == 2
    assert capsys.readouterr().err == (
        f"sparsedp: error: {out / _EXPORTED64 / '2' / 'metadata.json'}: trial 2 of study {key} "
        f"is in {results / ResultStore.FILENAME} already; an import never replaces stored "
        "trials; import into another results directory\n")
    assert _rows(results) == before


def test_a_failure_half_way_leaves_no_experiment_studies_or_trials(
        experiment: Path, tmp_path: Path, monkeypatch) -> None:
    source = _shallue_tree(tmp_path / "src")
    results = load_experiment(experiment).results_dir
    before = _rows(results)
    written = []
    write_trial = ResultStore.write_trial

    def disk_full_at_the_third(self, record, **options):
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        write_trial(self, record, **options)
        written.append(record.trial_index)

    monkeypatch.setattr(ResultStore, "write_trial", disk_full_at_the_third)
    with pytest.raises(OSError, match="No space left"):
        import_batch_science(source, results, name="half", goal=0.05)
    assert len(written) == 2  # it failed half-way, after two trials
    assert _rows(results) == before  # no experiment 'half', no study, no trial
    fresh = tmp_path / "new" / "results"  # a new results directory is not left behind
    written.clear()
    with pytest.raises(OSError, match="No space left"):
        import_batch_science(source, fresh, name="half", goal=0.05)
    assert written == [1, 2] and not (tmp_path / "new").exists()


def test_import_beside_a_measured_experiment_stores_the_files_values_and_names_strays(
        experiment: Path, tmp_path: Path, capsys) -> None:
    results = load_experiment(experiment).results_dir
    source = _shallue_tree(tmp_path / "src")
    study = source / _STUDY16
    (source / "README.md").write_text("released data\n")
    (source / "mnist" / "empty").mkdir()
    (study / ".DS_Store").write_text("")
    (study / "notes").mkdir()
    (study / "notes" / "todo.txt").write_text("")
    (study / "1" / "checkpoint.bin").write_bytes(b"\0")
    (source / "mnist/simple_cnn_base/momentum/64/7/x").symlink_to(study / "study.json")
    measured = _rows(results)["trials"]
    capsys.readouterr()
    assert main(["import", str(source), "--out", str(results), "--goal", "0.05",
                 "--name", "shallue"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "note: skipped 6 entries of the source that are not part of the layout (not "
        "study.json, a trial folder or its two files): README.md, mnist/empty/, "
        "mnist/simple_cnn_base/momentum/16/.DS_Store, "
        "mnist/simple_cnn_base/momentum/16/1/checkpoint.bin, "
        "mnist/simple_cnn_base/momentum/16/notes/, mnist/simple_cnn_base/momentum/64/7/x",
        f"imported 6 trials of 2 studies into {results} as experiment shallue; "
        f"`sparsedp report {results}` analyses them"]
    assert _rows(results)["trials"][:len(measured)] == measured  # measured rows untouched
    with ResultStore(results, read_only=True) as store:
        assert store.experiment_names() == ["bs", "shallue"]
        studies = {r["batch_size"]: r for r in store.study_rows("shallue")}
        trials = {(r["batch_size"], r["trial_index"]): r for r in store.trial_rows("shallue")}
    assert {b: (s["workload"], s["dataset"], s["model"], s["optimizer"], s["sparsity"])
            for b, s in studies.items()} == {
        b: ("mnist/simple_cnn_base/momentum", "mnist", "simple_cnn_base", "momentum", 0.0)
        for b in (16, 64)}
    spec = json.loads(studies[16]["spec_json"])
    assert (spec["goal_error"], spec["max_steps"], spec["metric"], spec["imported_from"]) == (
        0.05, 3000, "val/classification_error", "mnist/simple_cnn_base/momentum/16")
    assert [(d["name"], d["low"], d["high"], d["scale"]) for d in spec["search_space"]] == [
        ("lr", 0.0001, 10.0, "log"), ("momentum", 0.9, 0.9999, "reverse-log")]
    for (batch, index), row in trials.items():
        _, lr, momentum, points = _TRIALS[batch][index]
        assert (row["lr"], row["momentum"], row["seed"], row["steps_taken"],
                row["final_val_error"], row["final_error_exact"]) == (
            lr, momentum, 0, points[-1][0], points[-1][1], 1), (batch, index)
        assert json.loads(row["curve_json"]) == [[s, e, True] for s, e in points]
        source_meta = json.loads(row["provenance_json"])["metadata"]
        assert source_meta == json.loads(
            (source / f"mnist/simple_cnn_base/momentum/{batch}/{index}/metadata.json")
            .read_text())
    assert (trials[(16, 2)]["status"], trials[(16, 2)]["steps_to_result"]) == ("complete", 1500)
