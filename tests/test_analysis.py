"""Analysis: best trials, scaling fit and bootstrap, regimes, sparse/dense ratios, summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from sparsedp.analysis import (
    analyze,
    best_trials,
    bootstrap_scaling,
    fit_scaling,
    max_parallelism_onset,
    normalized_steps,
    perfect_scaling,
    perfect_scaling_end,
    sparse_dense_ratios,
    steps_curves,
    study_outcomes,
    summarize,
)


def trial_row(
    workload: str,
    sparsity: float,
    batch_size: int,
    trial_index: int,
    status: str,
    steps: float | None,
    *,
    lr: float = 0.1,
    momentum: float = float("nan"),
    experiment: str = "synthetic",
) -> dict:
    """One synthetic trial row with every column of the trial table."""
    optimizer = workload.rsplit("-", 1)[-1]
    complete = status == "complete"
    return {
        "experiment": experiment,
        "study_key": f"{workload}/s{sparsity:g}/b{batch_size}",
        "workload": workload,
        "dataset": "mnist",
        "dataset_label": "MNIST",
        "model": "simple-cnn",
        "optimizer": optimizer,
        "sparsity": float(sparsity),
        "batch_size": int(batch_size),
        "trial_index": int(trial_index),
        "seed": 1000 + int(trial_index),
        "lr": float(lr),
        "momentum": float(momentum),
        "decay_steps": float("nan"),
        "end_lr_factor": float("nan"),
        "status": status,
        "steps_to_result": float(steps) if complete and steps is not None else float("nan"),
        "steps_taken": int(steps) if steps is not None else 100,
        "final_val_error": 0.019 if complete else 0.5,
        "goal_error": 0.02,
        "max_steps": 40_000,
        "eval_every": 16,
        "wall_time": 1.0,
        "samples_per_second": 1000.0,
        "eval_share": 0.1,
    }


def table_from_best(
    spec: dict[tuple[str, float], dict[int, float]], n_trials: int = 4, seed: int = 0
) -> pd.DataFrame:
    """Trials whose study bests are exactly ``spec[(workload, sparsity)][batch_size]``.

    A NaN best gives a study with trials but no complete one.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for (workload, sparsity), curve in spec.items():
        for batch_size, best in curve.items():
            for i in range(n_trials):
                lr = float(10 ** rng.uniform(-3, 0))
                if not np.isfinite(best):
                    rows.append(trial_row(workload, sparsity, batch_size, i, "incomplete", None))
                elif i == 1:
                    rows.append(
                        trial_row(workload, sparsity, batch_size, i, "complete", best, lr=lr)
                    )
                elif i % 3 == 0:
                    rows.append(trial_row(workload, sparsity, batch_size, i, "infeasible", 10))
                else:
                    worse = best * (1.0 + rng.uniform(0.05, 0.5))
                    rows.append(
                        trial_row(workload, sparsity, batch_size, i, "complete", worse, lr=lr)
                    )
    return pd.DataFrame(rows)


def model_steps(s_min: float, b_crit: float, batch_sizes: np.ndarray) -> np.ndarray:
    return s_min * (1.0 + b_crit / batch_sizes)


BATCHES = 2.0 ** np.arange(4, 14)


@pytest.mark.parametrize(
    ("s_min", "b_crit", "seed"),
    [(500.0, 512.0, 0), (2000.0, 2048.0, 1), (100.0, 128.0, 2), (1000.0, 64.0, 3)],
)
def test_fit_recovers_parameters_from_noisy_curve(s_min, b_crit, seed):
    rng = np.random.default_rng(seed)
    steps = model_steps(s_min, b_crit, BATCHES) * np.exp(rng.normal(0.0, 0.05, len(BATCHES)))
    fit = fit_scaling(BATCHES, steps)
    assert fit is not None and not fit.at_bound
    assert fit.s_min == pytest.approx(s_min, rel=0.1)
    assert fit.b_crit == pytest.approx(b_crit, rel=0.1)
    assert fit.n_points == len(BATCHES)


def test_fit_exact_and_too_few_points():
    steps = model_steps(300.0, 700.0, BATCHES)
    fit = fit_scaling(BATCHES, steps)
    assert fit.s_min == pytest.approx(300.0, rel=1e-4)
    assert fit.b_crit == pytest.approx(700.0, rel=1e-4)
    assert fit.rmse_log < 1e-6
    np.testing.assert_allclose(fit.predict(BATCHES), steps, rtol=1e-4)
    assert fit_scaling(BATCHES[:2], steps[:2]) is None
    # NaN points do not count towards the three needed.
    assert fit_scaling(BATCHES[:3], [steps[0], np.nan, steps[2]]) is None


def test_pure_power_law_fit_is_flagged_at_bound():
    fit = fit_scaling(BATCHES, 1e6 / BATCHES)
    assert fit is not None and fit.at_bound


def test_bootstrap_interval_contains_truth():
    s_min, b_crit = 400.0, 256.0
    rng = np.random.default_rng(7)
    rows = []
    for b in BATCHES.astype(int):
        truth = model_steps(s_min, b_crit, np.array([b]))[0]
        for i in range(20):
            if i % 5 == 4:
                rows.append(trial_row("w-sgd", 0.0, b, i, "incomplete", None))
            else:
                steps = truth * np.exp(abs(rng.normal(0.0, 0.05)))  # best metaparameters hit truth
                rows.append(trial_row("w-sgd", 0.0, b, i, "complete", steps))
    trials = pd.DataFrame(rows)
    outcomes = study_outcomes(trials)[("w-sgd", 0.0)]
    boot = bootstrap_scaling(outcomes, n_resamples=200, seed=0, key="w-sgd@0")
    assert boot.fraction_fit == 1.0
    lo, hi = boot.b_crit_ci
    assert lo <= b_crit <= hi
    # The best of a resample is never below the best of the sample, so S_min intervals sit
    # at or just above the sample's best: allow that small upward bias.
    lo, hi = boot.s_min_ci
    assert lo <= s_min * 1.01 and s_min <= hi
    again = bootstrap_scaling(outcomes, n_resamples=200, seed=0, key="w-sgd@0")
    assert again.b_crit_ci == boot.b_crit_ci  # seeded


def test_bootstrap_fraction_counts_resamples_without_enough_points():
    # Three studies, one with a single complete trial among many: often lost in resampling.
    outcomes = {
        16: np.array([1000.0, 1100.0]),
        32: np.array([600.0, 700.0]),
        64: np.array([400.0] + [np.inf] * 9),
    }
    boot = bootstrap_scaling(outcomes, n_resamples=200, seed=1)
    expected = 1.0 - (1.0 - 0.1) ** 10  # probability the lone result is drawn
    assert 0.0 < boot.fraction_fit < 1.0
    assert boot.fraction_fit == pytest.approx(expected, abs=0.1)
    assert np.isnan(boot.b_crit_samples).sum() == 200 - boot.n_fit


def test_best_per_study_tie_breaking_and_counts():
    rows = [
        trial_row("w-sgd", 0.5, 64, 3, "complete", 200),
        trial_row("w-sgd", 0.5, 64, 1, "complete", 200, lr=0.05),
        trial_row("w-sgd", 0.5, 64, 2, "complete", 250),
        trial_row("w-sgd", 0.5, 64, 0, "incomplete", None),
        trial_row("w-sgd", 0.5, 64, 4, "stopped", 120),
        trial_row("w-sgd", 0.5, 64, 5, "weird-status", 100),
        trial_row("w-sgd", 0.5, 128, 0, "infeasible", 5),
        trial_row("w-sgd", 0.5, 128, 1, "failed", None),
    ]
    best = best_trials(pd.DataFrame(rows))
    assert len(best) == 2
    first = best.iloc[0]
    assert first["batch_size"] == 64
    assert first["best_trial_index"] == 1
    assert first["steps"] == 200
    assert first["lr"] == pytest.approx(0.05)
    assert first["n_trials"] == 6
    assert (first["n_complete"], first["n_incomplete"], first["n_stopped"]) == (3, 1, 1)
    assert first["n_other"] == 1
    second = best.iloc[1]
    assert pd.isna(second["best_trial_index"]) and np.isnan(second["steps"])
    assert (second["n_infeasible"], second["n_failed"]) == (1, 1)


def test_curves_normalisation_and_perfect_scaling_skip_missing():
    spec = {("w-sgd", 0.0): {16: np.nan, 32: 1000.0, 64: 500.0, 128: np.nan, 256: 200.0}}
    curves = steps_curves(best_trials(table_from_best(spec)))
    curve = curves[("w-sgd", 0.0)]
    assert list(curve.batch_sizes) == [32, 64, 256]
    assert curve.missing == [16, 128]
    np.testing.assert_allclose(normalized_steps(curve), [1.0, 0.5, 0.2])
    np.testing.assert_allclose(perfect_scaling(curve), [1000.0, 500.0, 125.0])


def test_perfect_scaling_end_on_hand_made_curves():
    b = [16, 32, 64, 128, 256, 512]
    # Exactly perfect, then 1.2x (within 25%), then 1.3x (outside).
    steps = [1600, 800, 400, 200 * 1.2, 100 * 1.3, 50 * 5]
    assert perfect_scaling_end(b, steps) == 128
    assert perfect_scaling_end(b, steps, tol=0.35) == 256
    # A later point back within tolerance does not extend the region.
    assert perfect_scaling_end(b, [1600, 800, 600, 200, 100, 50]) == 32
    assert perfect_scaling_end(b, [1600, 800, 400, 200, 100, 50]) == 512
    assert perfect_scaling_end([], []) is None
    assert perfect_scaling_end([64], [10]) == 64


def test_max_parallelism_onset_on_hand_made_curves():
    b = [16, 32, 64, 128, 256]
    # Reductions per doubling: 50%, 50%, 20%, 5%.
    steps = [1600, 800, 400, 320, 304]
    assert max_parallelism_onset(b, steps) == 128
    assert max_parallelism_onset(b, steps, fraction=0.25) == 64
    assert max_parallelism_onset(b, [1600, 800, 400, 200, 100]) is None
    # A gap of two doublings: 400 -> 361 is 5% per doubling (0.95^2 = 0.9025).
    assert max_parallelism_onset([16, 32, 128], [1600, 400, 361]) == 32
    # Steps going up counts as no reduction.
    assert max_parallelism_onset([16, 32], [100, 120]) == 16


def test_sparse_dense_ratio_recovers_two_to_one_point_five():
    sizes = [16, 32, 64, 128, 256, 512]
    dense = {b: 16000.0 / b if b <= 128 else 125.0 * 0.9 ** (b // 128) for b in sizes}
    factor = 2.0**1.5
    sparse = {b: dense[b] * factor if b <= 128 else 400.0 for b in sizes}
    sparse[32] = np.nan  # a missing sparse study is skipped, not interpolated
    spec = {("w-momentum", 0.0): dense, ("w-momentum", 0.9): sparse}
    trials = table_from_best(spec)
    ratios = sparse_dense_ratios(best_trials(trials))
    assert set(ratios["batch_size"]) == {16, 64, 128, 256, 512}
    row = ratios[ratios["batch_size"] == 64].iloc[0]
    assert row["ratio"] == pytest.approx(factor)
    analysis = analyze(trials, n_resamples=20)
    (ps,) = analysis.perfect_scaling_ratios
    assert ps.dense_perfect_scaling_end == 128
    assert ps.batch_sizes == [16, 64, 128]
    assert ps.log2_ratio == pytest.approx(1.5)
    assert ps.geomean_ratio == pytest.approx(factor)


# Tolerances for a fit on 7 (or 6) points, each with 3% log-normal noise: the estimator's
# standard deviation, simulated over 3,000 noise draws, is 4.8% for B_crit, 3.5% for S_min
# and 6.5% for the ratio of two B_crits; the checks below allow about three of them.
B_CRIT_REL, S_MIN_REL, B_CRIT_RATIO_REL = 0.15, 0.10, 0.20


def test_summarize_is_plain_json_and_handles_partial_results():
    rng = np.random.default_rng(3)
    spec = {}
    truth = {}  # sparsity -> (S_min, B_crit) the curve was made from
    for sparsity, scale in ((0.0, 1.0), (0.5, 1.5), (0.9, 2.8)):
        truth[sparsity] = (300 * scale, 400 / scale)
        spec[("w-momentum", sparsity)] = {
            int(b): float(model_steps(*truth[sparsity], np.array([b]))[0])
            * float(np.exp(rng.normal(0, 0.03)))
            for b in BATCHES[:7]
        }
    spec[("w-momentum", 0.5)][256] = np.nan
    spec[("w-momentum", 0.9)] = {16: 5000.0, 32: np.nan}  # too few points to fit
    summary = summarize(table_from_best(spec, n_trials=5), n_resamples=30, seed=5)
    text = json.dumps(summary, allow_nan=False)
    assert "NaN" not in text
    assert summary["counts"]["n_studies"] == 7 + 7 + 2
    assert summary["counts"]["n_studies_without_result"] == 2
    by_curve = {c["sparsity"]: c for c in summary["curves"]}
    assert by_curve[0.5]["missing_batch_sizes"] == [256]
    assert by_curve[0.9]["fit"]["b_crit"] is None
    assert by_curve[0.9]["fit"]["bootstrap_fraction_fit"] == 0.0
    for sparsity, points in ((0.0, 7), (0.5, 6)):
        fit = by_curve[sparsity]["fit"]
        s_min, b_crit = truth[sparsity]
        assert fit["n_points"] == points
        assert fit["b_crit"] == pytest.approx(b_crit, rel=B_CRIT_REL)
        assert fit["s_min"] == pytest.approx(s_min, rel=S_MIN_REL)
        lo, hi = fit["b_crit_ci"]
        assert lo <= b_crit <= hi  # the interval holds the true value
        lo, hi = fit["s_min_ci"]
        assert lo <= s_min <= hi
    comparisons = {c["sparsity"]: c for c in summary["sparse_vs_dense"]["summary"]}
    true_ratio = truth[0.5][1] / truth[0.0][1]
    assert comparisons[0.5]["b_crit_ratio"] == pytest.approx(true_ratio, rel=B_CRIT_RATIO_REL)
    lo, hi = comparisons[0.5]["b_crit_ratio_ci"]
    assert lo <= true_ratio <= hi
    assert comparisons[0.9]["b_crit_ratio"] is None
    # the sparse/dense step ratio over the dense curve's perfect-scaling region (B <= 128):
    # the geometric mean of four ratios of noisy points, whose log has a standard deviation
    # of 3% * sqrt(2) / 2 = 2.1%; allowed: three of them
    sizes = comparisons[0.5]["perfect_scaling_batch_sizes"]
    assert sizes == [16, 32, 64, 128]
    ratios = [model_steps(*truth[0.5], np.array([b]))[0] / model_steps(*truth[0.0],
                                                                       np.array([b]))[0]
              for b in sizes]
    true_geomean = float(np.exp(np.mean(np.log(ratios))))
    assert comparisons[0.5]["geomean_ratio"] == pytest.approx(true_geomean, rel=0.065)
    assert comparisons[0.5]["log2_ratio"] == pytest.approx(
        math.log2(comparisons[0.5]["geomean_ratio"]), abs=1e-12)
    assert isinstance(summary["studies"][0]["batch_size"], int)


def test_empty_table():
    summary = summarize(pd.DataFrame(columns=list(trial_row("w-sgd", 0, 16, 0, "x", 1))))
    assert summary["counts"]["n_studies"] == 0
    assert summary["curves"] == []
