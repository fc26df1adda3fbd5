"""Trial ordering near a neighbour's best, and the paired bootstrap of the critical batch
size ratio."""

from __future__ import annotations

import numpy as np
import pytest

from sparsedp.analysis.censoring import NO_SPREAD
from sparsedp.analysis.compare import critical_batch_ratio
from sparsedp.analysis.fit import BootstrapFit, ScalingFit, bootstrap_scaling
from sparsedp.execution.ordering import neighbours, order_trials
from sparsedp.specs import StudySpec

W = "mnist-simplecnn-momentum"


def _grid() -> list[StudySpec]:
    return [StudySpec(W, s, b) for s in (0.0, 0.5, 0.9) for b in (16, 32, 64, 128)]


def test_neighbours_are_nearest_batch_sizes_then_nearest_sparsities() -> None:
    grid = _grid()
    study = StudySpec(W, 0.5, 32)
    assert [(s.sparsity, s.batch_size) for s in neighbours(study, grid)] == [
        (0.5, 16), (0.5, 64), (0.5, 128),  # same sparsity: nearest batch size, smaller first
        (0.9, 32), (0.0, 32),  # then same batch size: 0.4 away before 0.5 away
    ]
    # a study of another goal (another configuration) is no neighbour
    other = StudySpec(W, 0.5, 16, goal_error=0.1)
    assert other not in neighbours(study, [*grid, other])


def test_pending_trials_start_nearest_the_neighbours_best() -> None:
    grid = _grid()
    study = StudySpec(W, 0.5, 32)
    points = np.array([[0.0, 0.0], [0.9, 0.9], [0.5, 0.5], [0.1, 0.2], [0.8, 1.0]])
    best = {StudySpec(W, 0.5, 64).key: 1, StudySpec(W, 0.9, 32).key: 3}

    def best_index(s: StudySpec) -> int | None:
        return best.get(s.key)

    order, used = order_trials(study, grid, [0, 2, 3, 4], points, best_index)
    # (0.5, 16) has no best yet; (0.5, 64)'s best is trial 1 at (0.9, 0.9)
    assert used == StudySpec(W, 0.5, 64).key
    assert order == [4, 2, 3, 0]
    # a best index beyond the points known here is skipped for the next neighbour
    best[StudySpec(W, 0.5, 64).key] = 7
    order, used = order_trials(study, grid, [0, 1, 2, 4], points, best_index)
    assert used == StudySpec(W, 0.9, 32).key and order == [0, 2, 1, 4]
    # nobody has a best: plain index order
    order, used = order_trials(study, grid, [4, 0, 2], points, lambda s: None)
    assert (order, used) == ([0, 2, 4], None)


def _boot(b_crit: list[float]) -> BootstrapFit:
    samples = np.asarray(b_crit, dtype=float)
    return BootstrapFit(len(samples), int(np.isfinite(samples).sum()), 0.95, None, None,
                        np.ones_like(samples), samples)


def test_critical_batch_ratio_pairs_resample_r_of_each_curve() -> None:
    sparse = _boot([100.0, 200.0, 300.0, 400.0, np.nan])
    dense = _boot([50.0, 100.0, 150.0, 200.0, 80.0])
    out = critical_batch_ratio(ScalingFit(10, 120, 4, 0.0, False),
                               ScalingFit(10, 60, 4, 0.0, False),
                               sparse, dense)
    assert out.ratio == pytest.approx(2.0)
    # resample r with resample r: every ratio is 2 (unpaired draws would spread 0.5..8), so
    # the resamples do not vary: no interval rather than [2, 2]
    assert out.ci is None and out.reason == NO_SPREAD
    assert out.fraction_fit == pytest.approx(0.8)  # resample 4 failed for the sparse curve
    # unequal numbers of resamples: the first min(n) are paired
    short = critical_batch_ratio(None, None, _boot([100.0, 400.0]), dense)
    assert short.ratio is None and short.ci == pytest.approx((2.0, 4.0))  # of [2, 4]


def test_bootstrap_resamples_trials_within_each_study() -> None:
    # Each study has one trial with a result: resamples that miss it leave the study
    # without a result, and the curve drops below the minimum of points to fit.
    outcomes = {16: np.array([400.0, np.inf]), 32: np.array([200.0, np.inf]),
                64: np.array([120.0, np.inf]), 128: np.array([100.0, np.inf])}
    boot = bootstrap_scaling(outcomes, n_resamples=400, seed=0, key="k")
    assert 0.0 < boot.fraction_fit < 1.0
    # all four studies keep their result with probability (3/4)^4; fewer than 3 points:
    # no fit. P(at least 3 of 4) = (3/4)^4 + 4 (3/4)^3 (1/4) ≈ 0.74
    assert boot.fraction_fit == pytest.approx(0.74, abs=0.06)
    full = bootstrap_scaling({b: v[:1] for b, v in outcomes.items()}, n_resamples=50, seed=0)
    assert full.n_fit == 50 and np.ptp(full.b_crit_samples) == 0  # nothing to resample
