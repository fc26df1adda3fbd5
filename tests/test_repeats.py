"""Seed repeats: their seeds, storage apart from the search, resume after kill -9,
determinism per seed, and the analysis (spread, intervals that widen when seeds disagree)."""

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

import numpy as np
import pandas as pd
import pytest

from small_mnist import small_mnist_tables
from sparsedp.analysis import best_trials
from sparsedp.analysis.repeats import repeat_spread, seed_ratio_intervals, seed_runs
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.runner import run_experiment
from sparsedp.repeats.run import repeat_seeds, repeat_task, run_repeats
from sparsedp.search.space import Dimension, SearchSpace
from sparsedp.specs import SEED_STRIDE, StudySpec, load_experiment
from sparsedp.store import ResultStore, repeats_frame, trials_frame
from sparsedp.store.sqlite import _SCHEMA

# --------------------------------------------------------------------------- seeds


def test_repeat_seeds_are_new_paired_across_studies_and_move_the_batch_order() -> None:
    dense = StudySpec("mnist-simplecnn-momentum", 0.0, 16, seed=2, data_seed=5)
    sparse = StudySpec("mnist-simplecnn-momentum", 0.9, 256, seed=2, data_seed=5)
    search = {dense.trial_seed(i) for i in range(1000)}
    seeds = [repeat_seeds(dense, r) for r in range(1, 6)]
    assert seeds == [repeat_seeds(sparse, r) for r in range(1, 6)]  # paired: same per r
    assert not {s for s, _ in seeds} & search
    assert len({s for s, _ in seeds}) == len({d for _, d in seeds}) == 5
    assert all(d != 5 for _, d in seeds)
    assert seeds[0] == (2 * SEED_STRIDE + SEED_STRIDE - 1, 5 + SEED_STRIDE)
    config = repeat_task(sparse, 3, {"lr": 0.1, "momentum": 0.9}).study.trial_config(
        SEED_STRIDE - 3, {"lr": 0.1, "momentum": 0.9})
    assert (config.seed, config.data_seed) == repeat_seeds(sparse, 3)
    with pytest.raises(ValueError, match="repeat index"):
        repeat_seeds(dense, 0)


# --------------------------------------------------------------------------- analysis


def _trials(spec: dict[tuple[float, int], list[float]]) -> pd.DataFrame:
    """A trial table: (sparsity, batch size) → each trial's steps (NaN: no result)."""
    rows = []
    for (sparsity, batch), steps in spec.items():
        for i, s in enumerate(steps):
            rows.append({"workload": "w", "sparsity": sparsity, "batch_size": batch,
                         "study_key": f"k{sparsity}-{batch}", "trial_index": i, "seed": i,
                         "status": "complete" if np.isfinite(s) else "incomplete",
                         "steps_to_result": s, "lr": 0.1, "momentum": np.nan,
                         "decay_steps": np.nan, "end_lr_factor": np.nan,
                         "final_val_error": 0.01, "optimizer": "sgd", "dataset": "d",
                         "dataset_label": "D", "model": "m", "goal_error": 0.1})
    return pd.DataFrame(rows)


def _repeats(spec: dict[tuple[float, int, int], list[float]]) -> pd.DataFrame:
    """(sparsity, batch size, source trial) → each repeat's steps (NaN: no result)."""
    rows = []
    for (sparsity, batch, source), steps in spec.items():
        for r, s in enumerate(steps, start=1):
            rows.append({"study_key": f"k{sparsity}-{batch}", "workload": "w",
                         "sparsity": sparsity, "batch_size": batch, "source_trial": source,
                         "repeat_index": r, "status": "complete" if np.isfinite(s)
                         else "incomplete", "steps_to_result": s})
    return pd.DataFrame(rows)


TRIALS = _trials({
    (0.0, 16): [400, 520, np.nan, 480], (0.0, 64): [150, 170, 160, 210],
    (0.9, 16): [900, 1100, 1000, np.nan], (0.9, 64): [330, 300, 360, 420],
})


def test_spread_counts_only_repeats_of_the_current_best_trial() -> None:
    best = best_trials(TRIALS)
    repeats = _repeats({(0.0, 16, 0): [440, np.nan, 480], (0.0, 16, 3): [10, 10],
                        (0.9, 64, 1): [390, 330]})
    runs = seed_runs(best, repeats)
    assert runs[("w", 0.0, 16)].tolist() == [400, 440, np.inf, 480]
    assert runs[("w", 0.9, 64)].tolist() == [300, 390, 330]
    assert runs[("w", 0.0, 64)].tolist() == [150]  # no repeats: the best trial alone
    spread = repeat_spread(best, repeats).set_index(["sparsity", "batch_size"])
    row = spread.loc[(0.0, 16)]
    assert (row["n_runs"], row["n_complete"], row["median"], row["min"], row["max"]) == (
        4, 3, 440.0, 400.0, 480.0)
    assert row["runs"] == [400.0, 440.0, None, 480.0]
    assert spread.loc[(0.9, 64), "max_over_min"] == pytest.approx(1.3)


def _width(ci) -> float:
    return ci[1] / ci[0]


def test_seed_interval_equals_the_trial_interval_when_seeds_agree_and_widens_otherwise(
) -> None:
    best = best_trials(TRIALS)
    agree = _repeats({(0.0, 16, 0): [400] * 4, (0.0, 64, 0): [150] * 4,
                      (0.9, 16, 0): [900] * 4, (0.9, 64, 1): [300] * 4})
    disagree = _repeats({(0.0, 16, 0): [600, 300, 800, 450], (0.0, 64, 0): [150] * 4,
                         (0.9, 16, 0): [900, 1800, 700, 1200], (0.9, 64, 1): [300] * 4})
    none = seed_ratio_intervals(TRIALS, best, None, n_resamples=400)
    same = seed_ratio_intervals(TRIALS, best, agree, n_resamples=400)
    wide = seed_ratio_intervals(TRIALS, best, disagree, n_resamples=400)
    for table in (none.per_batch, same.per_batch, wide.per_batch):
        assert table["ratio"].tolist() == pytest.approx([900 / 400, 300 / 150])
    # the trials-only interval does not depend on the repeats
    assert none.per_batch["ci_trials"].tolist() == wide.per_batch["ci_trials"].tolist()
    # seeds that agree add nothing; without repeats the two intervals are the same too
    assert same.per_batch["ci"].tolist() == same.per_batch["ci_trials"].tolist()
    assert none.per_batch["ci"].tolist() == none.per_batch["ci_trials"].tolist()
    b16, b64 = wide.per_batch.iloc[0], wide.per_batch.iloc[1]
    assert _width(b16["ci"]) > 1.5 * _width(b16["ci_trials"])  # seeds disagree at B=16
    assert b16["ci"][0] < b16["ci_trials"][0] and b16["ci"][1] > b16["ci_trials"][1]
    assert b64["ci"] == b64["ci_trials"]  # and agree at B=64
    assert (b16["n_runs_sparse"], b16["n_runs_dense"]) == (5, 5)
    ps = wide.perfect_scaling.iloc[0]
    assert ps["batch_sizes"] == [16]
    assert _width(ps["ci"]) > _width(ps["ci_trials"])


def test_the_analysis_interval_includes_seeds_only_when_repeats_are_given() -> None:
    from sparsedp.analysis import analyze

    disagree = _repeats({(0.0, 16, 0): [600, 300, 800, 450], (0.9, 16, 0): [900, 1800, 700]})
    plain = analyze(TRIALS, n_resamples=300).perfect_scaling_ratios[0]
    wide = analyze(TRIALS, n_resamples=300, repeats=disagree)
    ps = wide.perfect_scaling_ratios[0]
    assert not plain.ci_includes_seeds and plain.ci == plain.ci_trials
    assert ps.ci_includes_seeds and ps.ci_trials == plain.ci  # same trial draws
    assert _width(ps.ci) > _width(ps.ci_trials)
    # one definition: the report's per-curve table gives the same intervals
    table = seed_ratio_intervals(TRIALS, best_trials(TRIALS), disagree,
                                 n_resamples=300).perfect_scaling.iloc[0]
    assert (tuple(table["ci"]), tuple(table["ci_trials"])) == (ps.ci, ps.ci_trials)
    assert wide.seed_spread is not None and len(wide.seed_spread) == 4


def test_a_repeat_without_result_takes_the_study_out_of_the_resamples_that_draw_it() -> None:
    best = best_trials(TRIALS)
    repeats = _repeats({(0.9, 16, 0): [np.nan, np.nan, np.nan, np.nan]})  # 4 of 5 runs fail
    out = seed_ratio_intervals(TRIALS, best, repeats, n_resamples=1000).per_batch.iloc[0]
    assert out["fraction"] < 0.35 * out["fraction_trials"]


# --------------------------------------------------------------------------- store


def test_an_old_database_without_repeats_still_opens(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / ResultStore.FILENAME)
    start = _SCHEMA.index("CREATE TABLE IF NOT EXISTS repeats")
    end = _SCHEMA.index("CREATE TABLE IF NOT EXISTS failures")
    db.executescript(_SCHEMA[:start] + _SCHEMA[end:])
    db.execute("INSERT INTO experiments VALUES ('e', '{}', 0, 0)")
    db.commit()
    db.close()
    with ResultStore(tmp_path, read_only=True) as store:
        assert store.repeat_rows("e") == []
        assert repeats_frame(store, "e").empty
    with ResultStore(tmp_path) as store:  # a writer adds the table in place
        assert store.finished_repeats("k", 0) == {}


# --------------------------------------------------------------------------- real runs

TINY = """
name = "rep"
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
"""  # then the cut MNIST's tables (tests/small_mnist.py)


def _write(path: Path, results: Path, npz: Path) -> Path:
    path.write_text(TINY.format(results=results) + small_mnist_tables(npz, "rep-cnn"))
    return path


def _rows(results: Path) -> list[tuple]:
    db = sqlite3.connect(results / ResultStore.FILENAME)
    rows = db.execute("SELECT study_key, source_trial, repeat_index, seed, data_seed, lr, "
                      "momentum, status, steps_to_result, steps_taken, final_val_error, "
                      "curve_json FROM repeats ORDER BY repeat_index").fetchall()
    db.close()
    return rows


@pytest.fixture(scope="module")
def searched(tmp_path_factory, mnist_small) -> Path:
    """The tiny experiment's search, run once (no repeats yet)."""
    directory = tmp_path_factory.mktemp("repeats")
    os.environ.setdefault("SPARSEDP_CACHE_DIR", str(directory / "cache"))
    path = _write(directory / "rep.toml", directory / "search", mnist_small)
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        run_experiment(spec, store)
    return path


def _copy(searched: Path, target: Path) -> Path:
    spec = load_experiment(searched)
    shutil.copytree(spec.results_dir, target / "results")
    path = target / "rep.toml"
    path.write_text(searched.read_text().replace(str(spec.results_dir), str(target / "results")))
    return path


def test_repeats_resume_after_kill_9_and_are_deterministic_per_seed(
        searched: Path, tmp_path: Path) -> None:
    reference = _copy(searched, tmp_path / "a")
    spec = load_experiment(reference)
    with ResultStore(spec.results_dir) as store:
        summary = run_repeats(spec, store, 2)
        assert summary.planned == summary.finished == 2
        # stored apart: the search's trials are what they were
        assert len(trials_frame(store, spec.name)) == 2
        best = store.best_steps(spec.studies()[0].key)
    expected = _rows(spec.results_dir)
    study = spec.studies()[0]
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in expected] == [
        (study.key, best[1], r, *repeat_seeds(study, r)) for r in (1, 2)]
    db = sqlite3.connect(spec.results_dir / ResultStore.FILENAME)
    best_curve = db.execute("SELECT curve_json FROM trials WHERE trial_index = ?",
                            (best[1],)).fetchone()[0]
    db.close()
    assert all(r[11] != best_curve for r in expected)  # a new initialisation trains otherwise

    killed = _copy(searched, tmp_path / "b")
    results = load_experiment(killed).results_dir
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "sparsedp.cli.main", "repeat", str(killed),
                             "--seeds", "2"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_rows(results)) >= 1:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(_rows(results)) == 1
    spec = load_experiment(killed)
    with ResultStore(spec.results_dir) as store:
        summary = run_repeats(spec, store, 2)
    assert summary.planned == 1  # only the missing one
    assert _rows(results) == expected
    with ResultStore(spec.results_dir, read_only=True) as store:
        frame = repeats_frame(store, spec.name)
    assert frame["repeat_index"].tolist() == [1, 2]
    assert [json.loads(c) for c in frame["curve"]] == [json.loads(r[11]) for r in expected]


def _record(index: int) -> TrialRecord:
    return TrialRecord(
        study_key="k", trial_index=index, seed=index, metaparameters={"lr": 0.1},
        status="complete", steps_to_result=8, steps_taken=8, final_val_error=0.1,
        final_error_exact=True, curve=[(8, 0.1, True)], wall_time=1.0, train_time=0.5,
        eval_time=0.5, prune_time=0.0, samples_per_second=1.0, eval_share=0.5,
        eval_examples=10, message="", attempts=1)


def test_repeats_wait_for_the_search_to_finish(tmp_path: Path, mnist_small: Path) -> None:
    path = _write(tmp_path / "rep.toml", tmp_path / "r", mnist_small)
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        from sparsedp.execution.runner import study_descriptor

        store.register_experiment(spec.name, spec.to_dict(),
                                  [study_descriptor(s) for s in spec.studies()])
        key = spec.studies()[0].key
        store.write_trial(TrialRecord(**{**_record(0).__dict__, "study_key": key}))
        summary = run_repeats(spec, store, 3)
    assert (summary.planned, summary.unfinished) == (0, [spec.studies()[0].label])


def test_the_report_shows_spread_seed_intervals_and_edge_warnings(tmp_path: Path) -> None:
    from sparsedp.report import write_report

    space = SearchSpace((Dimension("lr", 0.1, 1.0, "log"),))  # every best lr = 0.1: an edge
    repeats = _repeats({(0.0, 16, 0): [600, 300, 800, 450], (0.9, 16, 0): [900, 1800]})
    path = write_report(TRIALS, tmp_path, experiment_config={"name": "toy"}, provenance={},
                        engine_notes={}, analysis_options={"n_resamples": 50},
                        formats=("png",), repeats=repeats,
                        search_spaces={k: space for k in TRIALS["study_key"]})
    html = path.read_text()
    # the edge warnings are findings, at the top of the page; the sections among the tables
    warning = html.index("lr = 0.1 is within 5% of the lower bound 0.1")
    assert warning < html.index('id="figures"') < html.index('id="seed-repeats"')
    assert html.index('id="search-edges"') < html.index('id="configuration"')
    assert "steps to result vary by up to 2.0× between seeds" in html  # 0.9 at B=16: 1800/900
    assert "the interval covers trials and seed repeats" in html
    assert "range over 5 seeds" not in html  # the legend is in the figure, not the page
    full = json.loads((tmp_path / "summary.json").read_text())
    kinds = {f["kind"] for f in full["findings"]}
    assert {"search-range", "seed-repeats"} <= kinds
    comparison = full["sparse_vs_dense"]["summary"][0]
    assert comparison["ci_includes_seeds"]
    assert comparison["geomean_ratio_ci"] != comparison["geomean_ratio_ci_trials"]
    summary = full["robustness"]
    assert len(summary["search_edges"]) == 4
    spread = {(r["sparsity"], r["batch_size"]): r for r in summary["seed_spread"]}
    assert spread[(0.0, 16)]["runs"] == [400, 600, 300, 800, 450]
    assert spread[(0.9, 16)]["max"] == 1800
    ratio = summary["ratio_intervals"][0]
    assert ratio["batch_size"] == 16 and ratio["n_runs_sparse"] == 3
    assert ratio["ci"] != ratio["ci_trials"]


def test_scaling_figure_draws_seed_error_bars_only_where_there_are_repeats() -> None:
    from matplotlib.container import ErrorbarContainer

    from sparsedp.plots.scaling import plot_scaling

    best = best_trials(TRIALS)
    spread = repeat_spread(best, _repeats({(0.9, 16, 0): [1200, 800]}))
    fig = plot_scaling(TRIALS, "w", best=best, spread=spread)
    bars = {ax.get_title(): [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
            for ax in fig.axes}
    assert len(bars["S=0%"]) == 0 and len(bars["S=90%"]) == 1
    (segments,) = bars["S=90%"][0].lines[2]
    (x0, y0), (_, y1) = segments.get_segments()[0]
    assert (x0, y0, y1) == (16, 800, 1200)


def test_the_api_refuses_repeats_before_a_run_and_bad_seed_counts(tmp_path: Path) -> None:
    import sparsedp

    exp = sparsedp.Experiment.from_dict({
        "name": "r", "workloads": ["mnist-simplecnn-momentum"], "sparsities": [0.0],
        "batch_sizes": [16], "trials": 1, "results": str(tmp_path / "r")})
    with pytest.raises(sparsedp.SparsedpError, match="no results yet") as info:
        exp.repeat(seeds=2)
    assert info.value.exit_code == 2
    with pytest.raises(sparsedp.SparsedpError, match="seeds 0: use 1 to 1000"):
        exp.repeat(seeds=0)
    assert not (tmp_path / "r").exists()  # nothing created
