"""Search adequacy: would fewer trials have found the same best? (docs/analysis.md).

For a study of N trials, the best of k trials drawn at random from them (without
replacement) is the i-th lowest steps-to-result with a probability that depends only on i,
k and N: it is at most the i-th lowest ``v_(i)`` unless all k trials come from the
``N − i`` others, so ``P(best of k ≤ v_(i)) = 1 − C(N − i, k) / C(N, k)``. The quantiles of
the best of k follow exactly from the order statistics: this needs the values only where
they are known to be the lowest (:meth:`~sparsedp.analysis.censoring.Outcomes.exact_prefix`:
complete trials no stopped trial can undercut); beyond them a quantile is censored.
Quantiles, not means: a mean needs every trial's value, and a trial that never reaches the
goal has none (it is ``inf``).

**Converged** (the verdict in ``sparsedp status``, the report and ``summary.json``): in at
least 3 of 4 random halves of the search (k = ⌈N/2⌉), the best is within 5% of the study's
best, i.e. the 75th percentile of the best of ⌈N/2⌉ trials is at most 1.05 × the best. For
N ≥ 4 this holds exactly when at least two trials lie within 5% of the best: a lone lucky
trial does not make a converged search. It cannot be shown when the values it needs are
censored (stopped trials below 1.05 × the best; ``keep_complete`` ≥ 2 avoids that) or the
study has no result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sparsedp.analysis.censoring import Outcomes

CONVERGED_QUANTILE = 0.75
CONVERGED_TOLERANCE = 0.05
BAND = (0.1, 0.9)  # the band drawn around the median best of k


def best_of_k_cdf(n: int, k: int, i: np.ndarray | int) -> np.ndarray:
    """``P(best of k of n trials is among the i lowest) = 1 − C(n − i, k) / C(n, k)``."""
    i = np.asarray(i)
    out = np.ones(i.shape, dtype=float)
    for idx, value in np.ndenumerate(i):
        rest = n - int(value)
        out[idx] = 1.0 - (math.comb(rest, k) / math.comb(n, k) if rest >= k else 0.0)
    return out


def best_of_k_quantile(outcomes: Outcomes, k: int, q: float) -> tuple[float, bool]:
    """The ``q`` quantile of the best of ``k`` trials drawn without replacement from the
    study's trials, and whether it is exact (False: only a lower bound, censored)."""
    n = len(outcomes)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    prefix = outcomes.exact_prefix()
    cdf = best_of_k_cdf(n, k, np.arange(1, n + 1))
    i = int(np.searchsorted(cdf, q - 1e-12))  # 0-based rank of the quantile
    if i < len(prefix):
        return float(prefix[i]), True
    censored = outcomes.lower[outcomes.censored]
    if len(censored) == 0:  # no censoring: beyond the exact values lie trials without result
        return math.inf, True
    return float(np.min(censored)), False


@dataclass(frozen=True)
class Adequacy:
    """A study's best of k trials for k = 1 … N (median and band), and its verdict."""

    n_trials: int
    best: float  # the study's best steps-to-result (inf: none)
    k: list[int] = field(default_factory=list)
    median: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)  # BAND[0] quantile
    high: list[float] = field(default_factory=list)  # BAND[1] quantile
    exact: list[bool] = field(default_factory=list)  # False: the median is a lower bound
    converged: bool = False
    reason: str = ""
    half_q75: float | None = None  # 75th percentile of the best of ⌈N/2⌉ trials

    def to_dict(self) -> dict:
        return {
            "converged": self.converged, "reason": self.reason, "n_trials": self.n_trials,
            "best": None if not math.isfinite(self.best) else self.best,
            "best_of_half_q75": self.half_q75,
            "best_of_k": {"k": self.k, "median": self.median, "low": self.low,
                          "high": self.high, "exact": self.exact,
                          "band": list(BAND)},
        }


def study_adequacy(outcomes: Outcomes) -> Adequacy:
    """:class:`Adequacy` of one study's trials."""
    n = len(outcomes)
    best_lo, best_hi = outcomes.best() if n else (math.inf, math.inf)
    if n == 0 or not math.isfinite(best_hi):
        return Adequacy(n, math.inf, reason="no trial reached the goal" if n else "no trials")
    if best_lo < best_hi:  # cannot happen with stopping (a stopped trial is above a limit)
        return Adequacy(n, best_hi, reason="the best itself is censored")
    ks = list(range(1, n + 1))
    med, low, high, exact = [], [], [], []
    for k in ks:
        m, m_exact = best_of_k_quantile(outcomes, k, 0.5)
        med.append(_finite(m))
        exact.append(m_exact)
        low.append(_finite(best_of_k_quantile(outcomes, k, BAND[0])[0]))
        high.append(_finite(best_of_k_quantile(outcomes, k, BAND[1])[0]))
    half = math.ceil(n / 2)
    q75, q75_exact = best_of_k_quantile(outcomes, half, CONVERGED_QUANTILE)
    limit = (1 + CONVERGED_TOLERANCE) * best_hi
    if n < 4:
        converged, reason = False, f"too few trials ({n}) to judge"
    elif q75 <= limit:  # a lower bound above the limit already settles "not converged"
        converged = q75_exact
        reason = ("" if q75_exact else "cannot tell: stopped trials below 1.05 × the best "
                  "(raise keep_complete)")
    else:  # above the limit (a censored value is a lower bound: the truth is higher still)
        converged = False
        reason = (f"the best of {half} trials is more than {CONVERGED_TOLERANCE:.0%} worse than "
                  f"the best of {n} in over {1 - CONVERGED_QUANTILE:.0%} of random halves")
    return Adequacy(n, best_hi, ks, med, low, high, exact, converged, reason,
                    _finite(q75) if q75_exact else None)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.inf
