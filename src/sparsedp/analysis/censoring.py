"""What a study's trials say about its best, when stopped trials are only lower bounds.

A ``complete`` trial's steps-to-result is a value; ``incomplete``, ``infeasible`` and
``failed`` trials have none (``inf``); a ``stopped`` trial is *censored*: it had not met the
goal after ``steps_taken`` steps, so its steps-to-result is above that (or it has none). Each
trial is an interval ``[lower, upper]`` holding its steps-to-result: ``[v, v]``,
``[inf, inf]``, or ``[steps_taken, inf]`` (docs/analysis.md, "Censored trials").

The best of a set of trials is then known exactly when its best value is no larger than every
censored trial's lower bound (a stopped trial had not met the goal by then, so it cannot have
done better); otherwise it is only known to lie in ``[min lower bound, best value]``. A
bootstrap resample whose best is censored is *counted*, never dropped: every statistic of a
resample is a range ``[lo, hi]`` (a point when nothing in it is censored), and
:func:`robust_interval` takes the lower percentile of the ``lo`` and the upper percentile of
the ``hi``, so the interval holds wherever the censored values really lie. Where that is not
finite, or a study is censored in more than :data:`MAX_CENSORED` of its resamples, there is
no interval: too few completed trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparsedp.analysis.curves import STUDY_COLUMNS, normalize_status

MAX_CENSORED = 0.10
"""A study whose resampled best is censored in more than this share of resamples gives no
interval (nor does any statistic built on it). With ``keep_complete = K`` a study of N trials
is censored in about (1 − K/N)^N ≈ e^−K of them: K = 3 gives 4–5%, K = 1 gives 37%."""

TOO_FEW = "no interval: too few completed trials"
NO_SPREAD = "no interval: the resamples do not vary"


@dataclass(frozen=True)
class Outcomes:
    """A study's trials as intervals: ``lower <= steps-to-result <= upper`` (``inf`` for no
    result; ``lower < upper`` only for censored, i.e. stopped, trials)."""

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lower = np.asarray(self.lower, dtype=float)
        upper = np.asarray(self.upper, dtype=float)
        if lower.shape != upper.shape or lower.ndim != 1:
            raise ValueError("lower and upper must be 1-d arrays of one length")
        if np.any(lower > upper):
            raise ValueError("a lower bound lies above its upper bound")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    def __len__(self) -> int:
        return len(self.lower)

    @classmethod
    def exact(cls, values: np.ndarray) -> Outcomes:
        """Trials with known outcomes (``inf`` for no result)."""
        values = np.asarray(values, dtype=float)
        return cls(values, values.copy())

    @property
    def censored(self) -> np.ndarray:
        return self.lower < self.upper

    @property
    def n_complete(self) -> int:
        return int(np.sum(~self.censored & np.isfinite(self.upper)))

    def best(self) -> tuple[float, float]:
        """``(lo, hi)`` holding the best steps-to-result of all the trials."""
        lo, hi = best_of(self.lower[None, :], self.upper[None, :])
        return float(lo[0]), float(hi[0])

    def exact_prefix(self) -> np.ndarray:
        """The complete values known to be the lowest of all trials, lowest first: those no
        censored trial can undercut (at most the smallest censored lower bound)."""
        floor = float(np.min(self.lower[self.censored], initial=np.inf))
        known = np.sort(self.upper[~self.censored])
        return known[known <= floor]


def best_of(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ``(lo, hi)`` of the best of each row of trials (``lo == hi``: exact).

    ``hi`` is the smallest upper bound (the best known value, ``inf`` if none); the best is
    exact when no censored trial of the row has its lower bound below ``hi``, else it may be
    as low as the smallest such lower bound.
    """
    hi = np.min(upper, axis=-1)
    censored_lower = np.where(lower < upper, lower, np.inf)
    floor = np.min(censored_lower, axis=-1)
    lo = np.where(floor < hi, floor, hi)
    return lo, hi


def resample_best(outcomes: Outcomes, rng: np.random.Generator, n_resamples: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` of the best of each of ``n_resamples`` bootstrap resamples (the trials
    drawn with replacement, as many as there are)."""
    n = len(outcomes)
    if n == 0:
        return np.full(n_resamples, np.inf), np.full(n_resamples, np.inf)
    idx = rng.integers(0, n, size=(n_resamples, n))
    return best_of(outcomes.lower[idx], outcomes.upper[idx])


def resample_curve_bests(outcomes, rng: np.random.Generator, n_resamples: int
                         ) -> tuple[list[int], np.ndarray, np.ndarray]:
    """A curve's batch sizes (ascending) and, per resample and batch size, the ``(lo, hi)``
    range of the study's resampled best (``inf`` for a study without trials). ``outcomes``
    maps batch size to :class:`Outcomes` or an array of exact values."""
    sizes = sorted(int(b) for b in outcomes)
    lo = np.full((n_resamples, len(sizes)), np.inf)
    hi = np.full((n_resamples, len(sizes)), np.inf)
    for j, b in enumerate(sizes):
        study = outcomes[b]
        study = study if isinstance(study, Outcomes) else Outcomes.exact(study)
        if len(study):
            lo[:, j], hi[:, j] = resample_best(study, rng, n_resamples)
    return sizes, lo, hi


def robust_interval(lo: np.ndarray, hi: np.ndarray, confidence: float = 0.95
                    ) -> tuple[float, float] | None:
    """The percentile interval of resamples known only as ranges ``[lo, hi]``: the lower
    ``(1 − confidence)/2`` percentile of ``lo`` and the upper one of ``hi`` (NaN counts as
    ``−inf``/``inf``). Every quantity here is positive (steps, batch sizes, their ratios), so
    a lower bound of 0 or below is no bound. None when a bound is missing or the two are
    equal."""
    lo = np.where(np.isnan(lo), -np.inf, np.asarray(lo, dtype=float))
    hi = np.where(np.isnan(hi), np.inf, np.asarray(hi, dtype=float))
    if len(lo) == 0:
        return None
    tail = 50.0 * (1.0 - confidence)
    low = float(np.percentile(lo, tail, method="lower"))
    high = float(np.percentile(hi, 100.0 - tail, method="higher"))
    if not (low > 0 and np.isfinite(high)) or low >= high:
        return None
    return low, high


def interval_or_reason(lo: np.ndarray, hi: np.ndarray, censored_share: float,
                       confidence: float = 0.95) -> tuple[tuple[float, float] | None, str]:
    """:func:`robust_interval` with the reason when there is none ("" when there is one):
    too many censored resamples (over :data:`MAX_CENSORED` in some study, or a bound that
    is not finite) or no spread."""
    if censored_share > MAX_CENSORED:
        return None, TOO_FEW
    interval = robust_interval(lo, hi, confidence)
    if interval is not None:
        return interval, ""
    bounded = (np.nan_to_num(lo, nan=-np.inf) > 0) & np.isfinite(np.nan_to_num(hi, nan=np.inf))
    return None, NO_SPREAD if bounded.all() else TOO_FEW


def trial_outcomes(trials: pd.DataFrame) -> Outcomes:
    """One study's trial table as :class:`Outcomes` (``steps_taken`` bounds ``stopped``
    trials; a table without ``steps_taken`` has no stopped trials' bounds: they count as
    censored from 0)."""
    status = trials["status"].map(normalize_status).to_numpy()
    steps = pd.to_numeric(trials["steps_to_result"], errors="coerce").to_numpy(dtype=float)
    taken = (pd.to_numeric(trials["steps_taken"], errors="coerce").to_numpy(dtype=float)
             if "steps_taken" in trials else np.zeros(len(trials)))
    complete = (status == "complete") & np.isfinite(steps) & (steps > 0)
    stopped = status == "stopped"
    upper = np.where(complete, steps, np.inf)
    lower = np.where(stopped, np.nan_to_num(taken, nan=0.0), upper)
    return Outcomes(lower, upper)


def study_trial_outcomes(trials: pd.DataFrame
                         ) -> dict[tuple[str, float], dict[int, Outcomes]]:
    """Per curve (workload, sparsity), per batch size: the study's :class:`Outcomes`."""
    out: dict[tuple[str, float], dict[int, Outcomes]] = {}
    if trials is None or len(trials) == 0:
        return out
    for (workload, sparsity, batch_size), group in trials.groupby(list(STUDY_COLUMNS),
                                                                   sort=True):
        out.setdefault((str(workload), float(sparsity)), {})[int(batch_size)] = \
            trial_outcomes(group)
    return out
