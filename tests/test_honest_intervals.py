"""Intervals honest under censoring, and search adequacy, against known answers.

Simulated searches are drawn from a known distribution (a known B_crit), stopped as the
engine stops them (``keep_complete = K``), and analysed as real ones are."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sparsedp.analysis.adequacy import best_of_k_cdf, best_of_k_quantile, study_adequacy
from sparsedp.analysis.censoring import (
    NO_SPREAD,
    TOO_FEW,
    Outcomes,
    best_of,
    robust_interval,
    trial_outcomes,
)
from sparsedp.analysis.fit import bootstrap_scaling

SIZES = (16, 32, 64, 128, 256, 512, 1024)
S_MIN, B_CRIT, TRIALS = 100.0, 200.0, 32


def _stopped(values: np.ndarray, keep: int | None) -> Outcomes | np.ndarray:
    """The trials as a search with ``keep_complete = keep`` stores them: the K best
    complete, every other trial stopped at the K-th best (None: no stopping)."""
    if keep is None:
        return values
    limit = np.sort(values)[keep - 1]
    return Outcomes(np.where(values <= limit, values, limit),
                    np.where(values <= limit, values, np.inf))


def _search(rng: np.random.Generator, keep: int | None) -> dict[int, Outcomes | np.ndarray]:
    """One experiment's curve: every trial's steps are S(B) times a trial quality shared
    across batch sizes (a search point is as good at every B) and some noise; 30% of the
    trials never reach the goal. B_crit of every per-batch-size quantile is B_CRIT."""
    quality = np.abs(rng.standard_normal(TRIALS))
    out = {}
    for b in SIZES:
        noise = 0.7 * quality + 0.3 * np.abs(rng.standard_normal(TRIALS))
        values = S_MIN * (1 + B_CRIT / b) * np.exp(0.5 * noise)
        values[rng.random(TRIALS) < 0.3] = np.inf
        out[b] = _stopped(values, keep)
    return out


@pytest.mark.slow
def test_the_b_crit_interval_covers_the_true_value_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    covered = given = 0
    runs = 40
    for run in range(runs):
        boot = bootstrap_scaling(_search(rng, keep=3), n_resamples=100, seed=run)
        if boot.b_crit_ci is not None:
            given += 1
            covered += boot.b_crit_ci[0] <= B_CRIT <= boot.b_crit_ci[1]
    # Measured with 100 runs and 200 resamples: 94% without stopping, 93% with K = 3, 95%
    # with K = 5; here fewer, for speed (binomial spread about ±4%).
    assert given >= 0.9 * runs
    assert 0.85 <= covered / given <= 1.0


def test_stopping_at_the_best_gives_no_interval_ever():
    rng = np.random.default_rng(3)
    for run in range(3):
        boot = bootstrap_scaling(_search(rng, keep=1), n_resamples=100, seed=run)
        assert boot.b_crit_ci is None and boot.reason == TOO_FEW
        assert 0.3 < boot.censored_share < 0.5  # (1 - 1/32)^32: the best missing in 36%


def test_degenerate_input_gives_no_interval_never_equal_bounds():
    one_trial = {b: np.array([S_MIN * (1 + B_CRIT / b)]) for b in SIZES}
    boot = bootstrap_scaling(one_trial, n_resamples=50)
    assert boot.b_crit_ci is None and boot.s_min_ci is None and boot.reason == NO_SPREAD
    assert robust_interval(np.full(5, 2.0), np.full(5, 2.0)) is None


def test_a_censored_best_is_a_range_from_the_stop_to_the_best_known_value():
    # trials: complete 40, stopped at 32 (true value above 32), complete 50, no result
    lower = np.array([[40.0, 32.0, 50.0, np.inf], [40.0, 50.0, 50.0, 50.0]])
    upper = np.array([[40.0, np.inf, 50.0, np.inf], [40.0, 50.0, 50.0, 50.0]])
    lo, hi = best_of(lower, upper)
    assert list(lo) == [32.0, 40.0] and list(hi) == [40.0, 40.0]
    # a stopped trial at or past the best known value cannot have done better: exact
    assert best_of(np.array([40.0, 48.0]), np.array([40.0, np.inf])) == (40.0, 40.0)


def test_trial_tables_become_bounds():
    frame = pd.DataFrame({
        "status": ["complete", "stopped", "incomplete", "infeasible", "failed"],
        "steps_to_result": [64.0, np.nan, np.nan, np.nan, np.nan],
        "steps_taken": [64, 80, 40000, 16, 0],
    })
    out = trial_outcomes(frame)
    assert list(out.lower) == [64.0, 80.0, np.inf, np.inf, np.inf]
    assert list(out.upper) == [64.0, np.inf, np.inf, np.inf, np.inf]
    assert out.n_complete == 1 and list(out.censored) == [False, True, False, False, False]


# ---------------------------------------------------------------------------- adequacy


def test_best_of_k_probabilities_by_hand():
    # 4 trials, k = 2: the best of 2 is the lowest unless both come from the other 3:
    # 1 - C(3,2)/C(4,2) = 1 - 3/6; among the 2 lowest: 1 - C(2,2)/C(4,2) = 5/6
    assert best_of_k_cdf(4, 2, np.array([1, 2, 3, 4])) == pytest.approx([0.5, 5 / 6, 1, 1])
    values = Outcomes.exact(np.array([100.0, 130.0, 200.0, np.inf]))
    assert best_of_k_quantile(values, 2, 0.5) == (100.0, True)
    assert best_of_k_quantile(values, 2, 0.75) == (130.0, True)
    assert best_of_k_quantile(values, 1, 0.9) == (math.inf, True)  # 1 in 4 has no result


def test_a_lone_lucky_trial_is_not_a_converged_search():
    lone = Outcomes.exact(np.array([100.0, 180.0, 200.0, 210.0, 220.0, 300.0]))
    assert not study_adequacy(lone).converged
    assert "worse than the best" in study_adequacy(lone).reason
    pair = Outcomes.exact(np.array([100.0, 104.0, 200.0, 210.0, 220.0, 300.0]))
    found = study_adequacy(pair)
    assert found.converged and found.half_q75 == 104.0
    assert found.k == [1, 2, 3, 4, 5, 6] and found.median[-1] == 100.0


def test_adequacy_cannot_be_shown_from_trials_stopped_at_the_best():
    stopped = _stopped(np.array([100.0, 102.0, 150.0, 160.0, 170.0, 180.0]), keep=1)
    found = study_adequacy(stopped)
    assert not found.converged and found.reason.startswith("cannot tell")
    kept = _stopped(np.array([100.0, 102.0, 150.0, 160.0, 170.0, 180.0]), keep=2)
    assert study_adequacy(kept).converged
    assert not study_adequacy(Outcomes.exact(np.full(6, np.inf))).converged
