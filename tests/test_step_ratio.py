"""Bootstrap interval of the sparse/dense geometric-mean step ratio."""

from __future__ import annotations

import numpy as np
import pytest

from sparsedp.analysis.compare import step_ratio_interval


def test_single_trials_give_the_exact_ratio():
    sparse = {16: np.array([300.0]), 64: np.array([120.0])}
    dense = {16: np.array([100.0]), 64: np.array([30.0])}
    lo, hi = step_ratio_interval(sparse, dense, [16, 64], n_resamples=50)
    assert lo == pytest.approx(np.sqrt(3 * 4)) and hi == pytest.approx(np.sqrt(3 * 4))


def test_interval_spans_the_resampled_minima_and_drops_lost_results():
    sparse = {16: np.array([200.0, 400.0])}
    dense = {16: np.array([100.0, np.inf])}  # a resample may lose the dense result
    lo, hi = step_ratio_interval(sparse, dense, [16], n_resamples=400, confidence=0.99)
    assert (lo, hi) == pytest.approx((2.0, 4.0))
    assert step_ratio_interval(sparse, {16: np.array([np.inf])}, [16]) is None
    assert step_ratio_interval(sparse, dense, []) is None
    assert step_ratio_interval(sparse, {}, [16]) is None


def test_resamples_without_results_on_both_sides_raise_no_warning() -> None:
    import warnings

    sparse = {16: np.array([np.inf, 900.0])}
    dense = {16: np.array([np.inf, 400.0])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf / inf once warned "invalid value in divide"
        lo, hi = step_ratio_interval(sparse, dense, [16], n_resamples=200)
    assert lo == hi == 900.0 / 400.0
