"""The refinement stage (``[refine]``): its box and points by hand, its validation, and a real
run that stores refine trials beside the search's without touching them or the study keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparsedp
from small_mnist import small_mnist_tables
from sparsedp.search import Dimension, SearchSpace
from sparsedp.search.refine import REFINE_BASE, refine_box, refine_points
from sparsedp.specs import ExperimentFileError, load_experiment

WORKLOAD = "refine-cnn"
EXPERIMENT = """
name = "refine"
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
keep_complete = 3
"""  # then the cut MNIST's tables (tests/small_mnist.py)
REFINE = "[refine]\ntrials = 4\naround = 3\nmargin = 0.1\n"


def test_the_box_holds_the_best_points_widened_and_clipped():
    units = np.array([[0.5, 0.5], [0.25, 0.75], [0.75, 0.25], [0.95, 0.05]])
    box = refine_box(units, [0, 1], margin=0.1)
    assert box.low == pytest.approx((0.15, 0.4)) and box.high == pytest.approx((0.6, 0.85))
    edge = refine_box(units, [3], margin=0.1)  # clipped to the unit cube
    assert edge.low == pytest.approx((0.85, 0.0)) and edge.high == pytest.approx((1.0, 0.15))


def test_refine_points_are_sobol_points_mapped_into_the_box():
    space = SearchSpace((Dimension("lr", 1e-4, 1.0, "log"),))
    box = refine_box(np.array([[0.5]]), [0], margin=0.25)  # [0.25, 0.75] of the log range
    points = refine_points(space, box, 3)
    # Sobol 1-d: 0.5, 0.75, 0.25 -> 0.5, 0.625, 0.375 of the box -> 10^(-4 + 4u)
    expected = [10 ** (-4 + 4 * u) for u in (0.5, 0.625, 0.375)]
    assert [p["lr"] for p in points] == pytest.approx(expected)


@pytest.mark.parametrize("table, message", [
    ("[refine]\naround = 2\n", "refine: missing required key trials"),
    ("[refine]\ntrials = 4\naround = 4\n", "needs keep_complete >= 4"),
    ("[refine]\ntrials = 4\nmargin = 0.7\n", "refine.margin: 0.7 is outside [0, 0.5]"),
    ("[refine]\ntrials = 4\naround = 9\n", "more than the 8 trials"),
    ("[refine]\ntrials = 4\nbox = 1\n", "refine.box: unknown key"),
])
def test_bad_refine_tables_are_one_line_errors(tmp_path, table, message):
    path = tmp_path / "e.toml"
    path.write_text(EXPERIMENT.format(results=tmp_path / "r")
                    + small_mnist_tables(tmp_path / "mnist-small.npz", WORKLOAD) + table)
    with pytest.raises(ExperimentFileError) as caught:
        load_experiment(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{path}:")


@pytest.mark.slow
def test_a_refined_run_stores_refine_trials_beside_the_search(tmp_path, mnist_small,
                                                             monkeypatch):
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    tables = small_mnist_tables(mnist_small, WORKLOAD)
    plain = tmp_path / "plain.toml"
    plain.write_text(EXPERIMENT.format(results=tmp_path / "plain") + tables)
    refined = tmp_path / "refined.toml"
    refined.write_text(EXPERIMENT.format(results=tmp_path / "refined") + tables + REFINE)
    a, b = sparsedp.Experiment.from_file(plain), sparsedp.Experiment.from_file(refined)
    assert [s.key for s in a.studies()] == [s.key for s in b.studies()]  # keys unchanged
    a.run()
    result = b.run()
    assert result.planned == 8 + 4 and result.missing == 0
    search, all_rows = a.trials(), b.trials()
    first = all_rows[all_rows["stage"] == "search"].drop(columns=["experiment", "wall_time",
                                                                  "samples_per_second",
                                                                  "eval_share", "peak_rss_mb",
                                                                  "stage"])
    same = search.drop(columns=["experiment", "wall_time", "samples_per_second", "eval_share",
                                "peak_rss_mb", "stage"])
    assert first.reset_index(drop=True).equals(same.reset_index(drop=True))  # untouched
    extra = all_rows[all_rows["stage"] == "refine"]
    assert sorted(extra["trial_index"]) == [REFINE_BASE + j for j in range(4)]
    # The points are the box's: recomputed from the stored search trials' 3 best.
    study = b.studies()[0]
    best = search[search.status == "complete"].sort_values(["steps_to_result", "trial_index"])
    box = refine_box(study.space().units(8), list(best["trial_index"][:3]), 0.1)
    lrs = [p["lr"] for p in refine_points(study.space(), box, 4)]
    assert sorted(extra["lr"]) == pytest.approx(sorted(lrs))
    assert b.run().planned == 0  # resumable: nothing left
    # The analysis keeps the paper's protocol; the report shows both, with the stage.
    assert len(b.analyze(n_resamples=10).trials) == 8
    report = Path(b.report(tmp_path / "report", bootstrap=10, formats=("png",)))
    summary = json.loads((report.parent / "summary.json").read_text())
    assert all(isinstance(s["converged"], bool) for s in summary["studies"])
    assert any(f["kind"] == "refinement" for f in summary["findings"])
    assert (report.parent / "figures" / f"refinement-{WORKLOAD}.png").exists()
    exported = pd.read_csv(b.export(tmp_path / "t.csv")[0])
    assert exported["stage"].value_counts().to_dict() == {"search": 8, "refine": 4}
