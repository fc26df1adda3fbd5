"""Fit of S(B) = S_min·(1 + B_crit/B) (McCandlish et al., 2018) and its bootstrap.

The fit is least squares in log space: residuals ``log S_model(B) − log S(B)`` with
parameters ``a = log S_min`` and ``c = log B_crit``, so each point weighs by its relative
error. See ``docs/analysis.md`` for the definitions.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from sparsedp.analysis.censoring import Outcomes, interval_or_reason, resample_curve_bests

MIN_POINTS = 3
"""A curve needs at least this many measured points to be fitted."""

_LN2 = math.log(2.0)
_CRIT_MARGIN = 8 * _LN2  # B_crit may lie up to 2^8 beyond the measured batch sizes.
MAX_OPEN_STUDIES = 3
"""A resample with more studies whose best is censored gives an unbounded range (2^n fits)."""


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
    """Bootstrap distribution of a curve's fit, honest under censoring.

    Each resample draws every study's trials with replacement and refits; a resample whose
    best trial of some study is censored (a stopped trial might have done better) gives a
    range of fits, ``[*_lo, *_hi]``, over that study's possible bests (its bound and its best
    known value), never a made-up point. ``*_samples`` hold the fits of the resamples with no
    censored study (NaN elsewhere). Intervals come from
    :func:`~sparsedp.analysis.censoring.interval_or_reason`: None, with ``reason``, when some
    study's best is censored in more than ``MAX_CENSORED`` of the resamples, when a bound is
    not finite, or when the resamples do not vary. ``censored`` maps each batch size to the
    share of resamples in which its study's best was censored.
    """

    n_resamples: int
    n_fit: int
    confidence: float
    s_min_ci: tuple[float, float] | None
    b_crit_ci: tuple[float, float] | None
    s_min_samples: np.ndarray
    b_crit_samples: np.ndarray
    b_crit_lo: np.ndarray | None = None
    b_crit_hi: np.ndarray | None = None
    s_min_lo: np.ndarray | None = None
    s_min_hi: np.ndarray | None = None
    censored: dict[int, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def fraction_fit(self) -> float:
        """Fraction of resamples where the fit was possible."""
        return self.n_fit / self.n_resamples if self.n_resamples else 0.0

    @property
    def censored_share(self) -> float:
        """The largest share of censored resamples among the curve's studies."""
        return max(self.censored.values(), default=0.0)


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
    outcomes: Mapping[int, np.ndarray | Outcomes],
    *,
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    min_points: int = MIN_POINTS,
    key: str = "",
) -> BootstrapFit:
    """Bootstrap the fit of one curve by resampling each study's trials.

    ``outcomes`` maps batch size to the study's trials: :class:`Outcomes` (stopped trials as
    lower bounds), or an array of steps-to-result (``inf`` without a result; all exact). Each
    resample draws every study's trials with replacement, takes the best of each (a study
    whose drawn trials have no result is left out of that resample's fit) and refits; where
    a study's best is censored, the fit is made with that best at both ends of its range (at
    its bound, and at its best known value or left out) and the resample keeps the range of
    the fits (up to three censored studies; more gives an unbounded range). The random stream
    is seeded from ``seed`` and ``key`` (e.g. the curve's name).
    """
    rng = np.random.default_rng(stable_seed(seed, key))
    sizes, lo, hi = resample_curve_bests(outcomes, rng, n_resamples)
    censored = {b: float(np.mean(lo[:, j] < hi[:, j])) for j, b in enumerate(sizes)}
    size_arr = np.asarray(sizes, dtype=float)
    cache: dict[bytes, ScalingFit | None] = {}

    def fit(row: np.ndarray) -> ScalingFit | None:
        token = row.tobytes()
        if token not in cache:
            ok = np.isfinite(row)
            cache[token] = fit_scaling(size_arr[ok], row[ok], min_points=min_points)
        return cache[token]

    out = {name: np.full(n_resamples, np.nan) for name in
           ("s", "b", "s_lo", "s_hi", "b_lo", "b_hi")}
    for r in range(n_resamples):
        open_cols = np.flatnonzero(lo[r] < hi[r])
        if len(open_cols) == 0:
            f = fit(hi[r])
            if f is not None:
                for name, value in (("s", f.s_min), ("b", f.b_crit)):
                    out[name][r] = out[f"{name}_lo"][r] = out[f"{name}_hi"][r] = value
            continue
        if len(open_cols) > MAX_OPEN_STUDIES:
            for name in ("s", "b"):
                out[f"{name}_lo"][r], out[f"{name}_hi"][r] = -np.inf, np.inf
            continue
        fits = []
        for ends in itertools.product((0, 1), repeat=len(open_cols)):
            row = hi[r].copy()
            for col, end in zip(open_cols, ends, strict=True):
                row[col] = lo[r, col] if end == 0 else hi[r, col]
            f = fit(row)
            if f is not None:
                fits.append(f)
        if not fits:
            continue  # no fit at either end: as a resample with too few points
        for name, attr in (("s", "s_min"), ("b", "b_crit")):
            values = [getattr(f, attr) for f in fits]
            out[f"{name}_lo"][r], out[f"{name}_hi"][r] = min(values), max(values)
    n_fit = int(np.sum(~np.isnan(out["b_lo"])))
    fitted = ~np.isnan(out["b_lo"])  # resamples with too few points are not a range
    share = max(censored.values(), default=0.0)
    s_ci, reason = interval_or_reason(out["s_lo"][fitted], out["s_hi"][fitted], share,
                                      confidence)
    b_ci, b_reason = interval_or_reason(out["b_lo"][fitted], out["b_hi"][fitted], share,
                                        confidence)
    return BootstrapFit(
        n_resamples=n_resamples,
        n_fit=n_fit,
        confidence=confidence,
        s_min_ci=s_ci,
        b_crit_ci=b_ci,
        s_min_samples=out["s"],
        b_crit_samples=out["b"],
        b_crit_lo=out["b_lo"],
        b_crit_hi=out["b_hi"],
        s_min_lo=out["s_lo"],
        s_min_hi=out["s_hi"],
        censored=censored,
        reason=b_reason or reason,
    )
