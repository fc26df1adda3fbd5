"""The 20%-overhead critical batch size (Zhang et al., ICLR 2025): exact answers on small
curves worked by hand, the interval rules under censoring, summary.json, the finding and
Figure 1."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.test_analysis import table_from_best

from sparsedp.analysis import analysis_to_dict, analyze
from sparsedp.analysis.censoring import NO_SPREAD, TOO_FEW, Outcomes
from sparsedp.analysis.overhead import (
    BEYOND,
    BEYOND_NOTE,
    MEASURED,
    TOO_FEW_POINTS,
    _bootstrap,
    overhead_batch_size,
    overhead_crit,
)
from sparsedp.plots.scaling import plot_scaling
from sparsedp.report.findings import NOT_ENOUGH, OK, WARNING
from sparsedp.report.overhead_findings import overhead_finding

# ------------------------------------------------------------------ exact answers by hand


def test_crossing_exactly_at_a_measured_point():
    # S_lin = 1000·16/B: 500 at 32, 250 at 64; 1.2·250 = 300 is measured exactly at B = 64.
    value, first = overhead_batch_size([16, 32, 64, 128], [1000, 520, 300, 200])
    assert value == pytest.approx(64.0, rel=1e-12) and not first


def test_crossing_between_points_is_interpolated_in_log_log():
    # S/S_lin: 1.0 at B = 32, 320·64/16000 = 1.28 at B = 64; log(S/S_lin) is straight in
    # log B between them, so log2(B/32) = ln 1.2 / ln 1.28 = 0.7386: B = 53.39.
    value, first = overhead_batch_size([16, 32, 64], [1000, 500, 320])
    assert value == pytest.approx(32 * 2 ** (math.log(1.2) / math.log(1.28)), rel=1e-12)
    assert value == pytest.approx(53.392, abs=1e-3) and not first


def test_the_first_crossing_counts_even_if_the_curve_falls_back():
    # 1.25 at B = 32 (over), 0.9 at 64 (under again): the first crossing, in the first pair.
    # log2(B/16) = ln 1.2 / ln 1.25 = 0.8170: B = 28.2.
    value, first = overhead_batch_size([16, 32, 64], [1000, 625, 225])
    assert value == pytest.approx(16 * 2 ** (math.log(1.2) / math.log(1.25)), rel=1e-12)
    assert first


def test_never_exceeded_is_beyond_the_largest_measured():
    value, first = overhead_batch_size([16, 32, 64], [1000, 500, 290])  # 1.16 at 64
    assert value == math.inf and not first
    found = overhead_crit([16, 32, 64], [1000, 500, 290])
    assert (found.state, found.value, found.largest) == (BEYOND, None, 64)


def test_points_without_a_result_are_left_out_and_order_does_not_matter():
    # B = 32 has no result: the crossing is interpolated between 16 (1.0) and 64 (1.28).
    value, _ = overhead_batch_size([64, 32, 16], [320, math.inf, 1000])
    assert value == pytest.approx(16 * 4 ** (math.log(1.2) / math.log(1.28)), rel=1e-12)


def test_fewer_than_two_points_give_no_value():
    assert math.isnan(overhead_batch_size([16, 32], [1000, math.nan])[0])
    found = overhead_crit([16, 32], [1000, math.nan])
    assert found.state == TOO_FEW_POINTS and found.value is None and found.ci is None


# ------------------------------------------------------------------ interval rules


def _trials(best: float, rng: np.random.Generator, n: int = 12) -> np.ndarray:
    """A study of ``n`` complete trials whose best is ``best``."""
    return np.concatenate([[best], best * (1 + rng.uniform(0.02, 0.4, n - 1))])


def test_an_interval_from_complete_trials_holds_the_value_and_has_two_bounds():
    rng = np.random.default_rng(0)
    steps = {16: 1000.0, 32: 500.0, 64: 320.0, 128: 250.0}
    found = overhead_crit(list(steps), list(steps.values()),
                          {b: _trials(s, rng) for b, s in steps.items()}, n_resamples=200)
    assert found.state == MEASURED and found.reason == ""
    low, high = found.ci
    assert 16 < low < high <= 128
    assert found.censored_share == 0.0


def test_one_trial_per_study_gives_no_spread_never_equal_bounds():
    steps = {16: 1000.0, 32: 500.0, 64: 320.0}
    found = overhead_crit(list(steps), list(steps.values()),
                          {b: np.array([s]) for b, s in steps.items()}, n_resamples=50)
    assert found.ci is None and found.reason == NO_SPREAD
    assert found.value == pytest.approx(53.392, abs=1e-3)  # the value stays


def test_a_censored_best_is_a_range_of_batch_sizes():
    # B = 64's only trial was stopped at 250 steps: its steps are 250 or more (or none).
    # At 250 the curve stays within 20% (beyond); with arbitrarily many the crossing comes
    # right after B = 32; with no result only two points remain, within 20% (beyond).
    outcomes = {16: Outcomes.exact([1000.0]), 32: Outcomes.exact([500.0]),
                64: Outcomes(np.array([250.0]), np.array([np.inf]))}
    lo, hi, share = _bootstrap(outcomes, 20, 0, "c", 0.2)
    assert share == 1.0
    assert np.all((lo > 32) & (lo < 32.01)) and np.all(hi == np.inf)
    found = overhead_crit([16, 32], [1000.0, 500.0], outcomes, n_resamples=20)
    assert found.ci is None and found.reason == TOO_FEW


def test_trials_stopped_at_the_best_give_too_few_completed_trials():
    rng = np.random.default_rng(1)
    outcomes = {}
    for b, best in {16: 1000.0, 32: 500.0, 64: 320.0}.items():
        values = _trials(best, rng, 16)
        stopped = values > best  # keep_complete = 1: every other trial stopped at the best
        outcomes[b] = Outcomes(np.where(stopped, best, values), np.where(stopped, np.inf, values))
    found = overhead_crit([16, 32, 64], [1000.0, 500.0, 320.0], outcomes, n_resamples=100)
    assert found.ci is None and found.reason == TOO_FEW
    assert found.censored_share > 0.3


def test_a_curve_beyond_in_many_resamples_says_so():
    rng = np.random.default_rng(2)
    steps = {16: 1000.0, 32: 500.0, 64: 280.0}  # 1.12 at B = 64: beyond
    found = overhead_crit(list(steps), list(steps.values()),
                          {b: _trials(s, rng) for b, s in steps.items()}, n_resamples=100)
    assert found.state == BEYOND and found.ci is None and found.reason == BEYOND_NOTE


# ------------------------------------------------------------------ summary, finding, figure


def test_summary_json_has_the_overhead_batch_size_per_curve():
    trials = table_from_best({("w-sgd", 0.0): {16: 1000, 32: 500, 64: 320, 128: 250},
                              ("w-sgd", 0.9): {16: 1000, 32: 500, 64: 290}}, n_trials=6)
    analysis = analyze(trials, n_resamples=50)
    curves = {c["sparsity"]: c for c in analysis_to_dict(analysis)["curves"]}
    dense, sparse = curves[0.0]["b_crit_overhead"], curves[0.9]["b_crit_overhead"]
    assert dense["value"] == pytest.approx(53.392, abs=1e-3) and dense["state"] == MEASURED
    assert dense["reference_batch_size"] == 16 and dense["overhead"] == 0.2
    assert 16 < dense["ci"][0] < 53.392 < dense["ci"][1] <= 128  # 6 trials, 2 complete
    assert dense["interval_note"] is None and dense["bootstrap_resamples"] == 50
    assert sparse["value"] is None and sparse["state"] == BEYOND
    assert sparse["largest_batch_size"] == 64 and sparse["ci"] is None


def _curve(found: dict, sparsity: float = 0.9, sizes=(16, 32, 64)) -> dict:
    return {"workload": "w", "sparsity": sparsity, "batch_sizes": list(sizes),
            "fit": {"b_crit": 80.4}, "b_crit_overhead": found}


def test_the_finding_states_value_interval_and_the_fitted_b_crit():
    found = overhead_crit([16, 32, 64], [1000, 500, 320]).to_dict()
    found["ci"] = [41.2, 60.7]
    f = overhead_finding(_curve(found), {"confidence": 0.95})
    assert f.level == OK and f.kind == "critical-batch-size"
    assert f.text == ("At 90% sparsity, the steps exceed linear scaling from B = 16 by 20% at "
                      "B ≈ 53 (95% interval 41–61); this overhead critical batch size needs no "
                      "model of the curve (the fitted B_crit is ≈ 80).")


def test_the_finding_says_beyond_first_pair_and_too_few():
    beyond = overhead_finding(_curve(overhead_crit([16, 64], [1000, 290]).to_dict(), 0.0), {})
    assert beyond.level == WARNING and beyond.text.startswith("For the dense network")
    assert "beyond the largest measured" in beyond.text and "B = 64" in beyond.text
    first = overhead_finding(_curve(overhead_crit([16, 32, 64], [1000, 625, 225]).to_dict()),
                             {})
    assert first.level == WARNING and "between the two smallest batch sizes" in first.text
    assert "B ≈ 28" in first.text and "no interval" not in first.text
    few = overhead_finding(_curve(overhead_crit([16], [1000]).to_dict(), sizes=(16,)), {})
    assert few.level == NOT_ENOUGH and "≈" not in few.text


def test_figure_one_marks_the_overhead_batch_size():
    trials = table_from_best({("w-sgd", 0.0): {16: 1000, 32: 500, 64: 320, 128: 250}})
    fig = plot_scaling(trials, "w-sgd")
    panel = fig.axes[0]
    marks = [line for line in panel.lines if line.get_marker() == "D"]
    assert len(marks) == 1
    assert marks[0].get_xdata()[0] == pytest.approx(53.392, abs=1e-3)
    assert marks[0].get_ydata()[0] == pytest.approx(1.2 * 16000 / 53.392, rel=1e-4)
    labels = [line.get_label() for line in panel.lines]
    assert "+20% over perfect scaling" in labels and "20%-overhead B≈53" in labels
