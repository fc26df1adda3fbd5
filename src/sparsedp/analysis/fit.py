"""Fit of S(B) = S_min·(1 + B_crit/B) (McCandlish et al., 2018) and its bootstrap.

The fit is least squares in log space: residuals ``log S_model(B) − log S(B)`` with
parameters ``a = log S_min`` and ``c = log B_crit``, so each point weighs by its relative
error. See ``docs/analysis.md`` for the definitions.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

MIN_POINTS = 3
"""A curve needs at least this many measured points to be fitted."""

_LN2 = math.log(2.0)
_CRIT_MARGIN = 8 * _LN2  # B_crit may lie up to 2^8 beyond the measured batch sizes.


@dataclass(frozen=True)
class ScalingFit:
    """Fitted ``S_min`` and ``B_crit`` of one curve.

    ``at_bound`` is true when ``B_crit`` ended on a search bound (the curve is then a pure
    power law over the measured range, or flat: ``B_crit`` is not identified by the data).
    """

    s_min: float
    b_crit: float
    n_points: int
    rmse_log: float
    at_bound: bool

    def predict(self, batch_sizes: Sequence[float] | np.ndarray) -> np.ndarray:
        """Model steps at ``batch_sizes``."""
        b = np.asarray(batch_sizes, dtype=float)
        return self.s_min * (1.0 + self.b_crit / b)


def _model_log(params: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    a, c = params
    return a + np.logaddexp(0.0, c - log_b)


def fit_scaling(
    batch_sizes: Sequence[float] | np.ndarray,
    steps: Sequence[float] | np.ndarray,
    *,
    min_points: int = MIN_POINTS,
) -> ScalingFit | None:
    """Least-squares fit of ``log S = log S_min + log(1 + B_crit/B)``.

    Points with non-finite or non-positive steps are ignored; returns None when fewer than
    ``min_points`` distinct batch sizes remain. The start point comes from a grid over
    ``log B_crit`` with ``log S_min`` profiled out in closed form; bounds keep ``B_crit``
    within 2^8 of the measured batch sizes.
    """
    b = np.asarray(batch_sizes, dtype=float)
    s = np.asarray(steps, dtype=float)
    ok = np.isfinite(b) & np.isfinite(s) & (b > 0) & (s > 0)
    b, s = b[ok], s[ok]
    if len(np.unique(b)) < max(min_points, 2):
        return None
    x, y = np.log(b), np.log(s)
    c_lo, c_hi = x.min() - _CRIT_MARGIN, x.max() + _CRIT_MARGIN
    a_lo = y.min() - (x.max() - x.min()) - _CRIT_MARGIN - 2 * _LN2
    a_hi = y.max() + _LN2

    grid = np.linspace(c_lo, c_hi, 81)
    g = np.logaddexp(0.0, grid[:, None] - x[None, :])
    a_grid = np.mean(y[None, :] - g, axis=1)
    sse = np.sum((y[None, :] - g - a_grid[:, None]) ** 2, axis=1)
    i = int(np.argmin(sse))
    eps = 1e-9
    x0 = np.array(
        [
            np.clip(a_grid[i], a_lo + eps, a_hi - eps),
            np.clip(grid[i], c_lo + eps, c_hi - eps),
        ]
    )

    def residuals(p: np.ndarray) -> np.ndarray:
        return _model_log(p, x) - y

    def jacobian(p: np.ndarray) -> np.ndarray:
        sig = 1.0 / (1.0 + np.exp(x - p[1]))
        return np.column_stack([np.ones_like(x), sig])

    result = least_squares(
        residuals, x0, jac=jacobian, bounds=([a_lo, c_lo], [a_hi, c_hi]), method="trf"
    )
    a, c = (float(v) for v in result.x)
    tol = 1e-3
    at_bound = bool(c - c_lo < tol or c_hi - c < tol)
    rmse = float(np.sqrt(np.mean(residuals(result.x) ** 2)))
    return ScalingFit(
        s_min=math.exp(a), b_crit=math.exp(c), n_points=len(b), rmse_log=rmse, at_bound=at_bound
    )


@dataclass(frozen=True)
class BootstrapFit:
    """Bootstrap distribution of a curve's fit.

    ``s_min_samples``/``b_crit_samples`` have one entry per resample (NaN where the
    resampled curve had too few points to fit); intervals are percentile intervals over the
    successful resamples (None when there were none).
    """

    n_resamples: int
    n_fit: int
    confidence: float
    s_min_ci: tuple[float, float] | None
    b_crit_ci: tuple[float, float] | None
    s_min_samples: np.ndarray
    b_crit_samples: np.ndarray

    @property
    def fraction_fit(self) -> float:
        """Fraction of resamples where the fit was possible."""
        return self.n_fit / self.n_resamples if self.n_resamples else 0.0


def percentile_interval(
    samples: np.ndarray, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Central percentile interval of the finite ``samples`` (None if there are none)."""
    values = np.asarray(samples, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tail = 50.0 * (1.0 - confidence)
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return (float(lo), float(hi))


def stable_seed(seed: int, key: str) -> list[int]:
    """Seed material for one curve: independent of which other curves exist."""
    return [int(seed), zlib.crc32(key.encode("utf-8"))]


def bootstrap_scaling(
    outcomes: Mapping[int, np.ndarray],
    *,
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    min_points: int = MIN_POINTS,
    key: str = "",
) -> BootstrapFit:
    """Bootstrap the fit of one curve by resampling each study's trials.

    ``outcomes`` maps batch size to the steps-to-result of each trial of that study
    (``inf`` for trials without a result). Each resample draws every study's trials with
    replacement, takes the minimum as the study's result (missing if all are ``inf``) and
    refits. The random stream is seeded from ``seed`` and ``key`` (e.g. the curve's name).
    """
    rng = np.random.default_rng(stable_seed(seed, key))
    sizes = sorted(int(b) for b in outcomes)
    best = np.full((n_resamples, len(sizes)), np.inf)
    for j, b in enumerate(sizes):
        values = np.asarray(outcomes[b], dtype=float)
        if len(values) == 0:
            continue
        idx = rng.integers(0, len(values), size=(n_resamples, len(values)))
        best[:, j] = values[idx].min(axis=1)
    s_min = np.full(n_resamples, np.nan)
    b_crit = np.full(n_resamples, np.nan)
    size_arr = np.asarray(sizes, dtype=float)
    cache: dict[bytes, ScalingFit | None] = {}
    for r in range(n_resamples):
        row = best[r]
        token = row.tobytes()
        if token not in cache:
            ok = np.isfinite(row)
            cache[token] = fit_scaling(size_arr[ok], row[ok], min_points=min_points)
        fit = cache[token]
        if fit is not None:
            s_min[r], b_crit[r] = fit.s_min, fit.b_crit
    n_fit = int(np.isfinite(b_crit).sum())
    return BootstrapFit(
        n_resamples=n_resamples,
        n_fit=n_fit,
        confidence=confidence,
        s_min_ci=percentile_interval(s_min, confidence),
        b_crit_ci=percentile_interval(b_crit, confidence),
        s_min_samples=s_min,
        b_crit_samples=b_crit,
    )
