"""Bootstrap interval of the sparse/dense geometric-mean step ratio, honest under censoring."""

from __future__ import annotations

import numpy as np
import pytest

from sparsedp.analysis.censoring import NO_SPREAD, TOO_FEW, Outcomes
from sparsedp.analysis.compare import step_ratio_interval, step_ratio_samples


def test_single_trials_give_no_interval_never_equal_bounds():
    sparse = {16: np.array([300.0]), 64: np.array([120.0])}
    dense = {16: np.array([100.0]), 64: np.array([30.0])}
    samples = step_ratio_samples(sparse, dense, [16, 64], n_resamples=50)
    assert samples is not None
    assert samples.lo == pytest.approx(np.full(50, np.sqrt(3 * 4)))  # every resample: 3.46
    assert step_ratio_interval(sparse, dense, [16, 64], n_resamples=50) == (None, NO_SPREAD)


def test_interval_spans_the_resampled_minima_and_drops_lost_results():
    sparse = {16: np.array([200.0, 400.0])}
    dense = {16: np.array([100.0, np.inf])}  # a resample may lose the dense result
    ci, reason = step_ratio_interval(sparse, dense, [16], n_resamples=400, confidence=0.99)
    assert ci == pytest.approx((2.0, 4.0)) and reason == ""
    assert step_ratio_interval(sparse, {16: np.array([np.inf])}, [16])[0] is None
    assert step_ratio_interval(sparse, dense, [])[0] is None
    assert step_ratio_interval(sparse, {}, [16])[0] is None


def test_resamples_without_results_on_both_sides_raise_no_warning() -> None:
    import warnings

    sparse = {16: np.array([np.inf, 900.0])}
    dense = {16: np.array([np.inf, 400.0])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf / inf once warned "invalid value in divide"
        samples = step_ratio_samples(sparse, dense, [16], n_resamples=200)
    kept = samples.lo[~np.isnan(samples.lo)]
    assert len(kept) and (kept == 900.0 / 400.0).all()


def _stopped_at_the_best(values: list[float], keep: int = 1) -> Outcomes:
    """A study whose trials beyond the K best were stopped at the K-th best."""
    values = np.asarray(values, dtype=float)
    limit = np.sort(values)[keep - 1]
    lower = np.where(values <= limit, values, limit)
    upper = np.where(values <= limit, values, np.inf)
    return Outcomes(lower, upper)


def test_a_censored_best_counts_as_a_range_not_a_dropped_resample():
    # Sparse: one complete trial (300), the other 19 stopped at 300. A resample without the
    # complete trial has a best somewhere in [300, inf): it is counted with that range.
    sparse = {16: _stopped_at_the_best([300.0] + [500.0] * 19)}
    dense = {16: np.array([100.0] * 20)}
    samples = step_ratio_samples(sparse, dense, [16], n_resamples=400)
    open_ = samples.lo < samples.hi
    assert 0.25 < open_.mean() < 0.5  # (19/20)^20 = 36% of resamples miss the complete one
    assert samples.lo[open_] == pytest.approx(3.0) and np.isinf(samples.hi[open_]).all()
    assert samples.lo[~open_] == pytest.approx(samples.hi[~open_])
    assert samples.censored == pytest.approx(open_.mean())
    assert step_ratio_interval(sparse, dense, [16], n_resamples=400) == (None, TOO_FEW)


def test_a_dense_censored_best_bounds_the_ratio_from_above():
    dense = {16: _stopped_at_the_best([100.0, 120.0, 140.0] + [400.0] * 17, keep=3)}
    sparse = {16: np.array([300.0] * 20)}
    samples = step_ratio_samples(sparse, dense, [16], n_resamples=2000)
    open_ = samples.lo < samples.hi
    assert 0.02 < open_.mean() < 0.1  # about (17/20)^20 = 3.9%
    assert (samples.lo[open_] == 0.0).all()  # the dense best might be arbitrarily large
    assert samples.hi[open_] == pytest.approx(300.0 / 140.0)  # …not below the limit 140
    # Under MAX_CENSORED (10%), but more than the interval's lower tail (2.5%): its lower
    # bound would be 0, which is no bound, so there is no interval.
    assert step_ratio_interval(sparse, dense, [16], n_resamples=2000) == (None, TOO_FEW)
    # With one censored resample in 2,000 the interval stands, set by the exact ones.
    rare = {16: _stopped_at_the_best([100.0, 120.0, 140.0, 150.0, 160.0] + [400.0] * 45,
                                     keep=5)}
    ci, reason = step_ratio_interval(sparse, rare, [16], n_resamples=2000)
    # dense best >= 150 in (47/50)^50 = 4.5% of resamples: the 2.5% bound is 300/150
    assert reason == "" and ci == pytest.approx((300.0 / 150.0, 3.0))
