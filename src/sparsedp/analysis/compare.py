"""Sparse versus dense: step ratios per batch size, their mean in perfect scaling, B_crit ratios.

* ``ratio(B) = S_sparse(B) / S_dense(B)`` for every (workload, batch size) where both
  studies have a result.
* The *perfect-scaling ratio* is the geometric mean of ``ratio(B)`` over the batch sizes in
  the dense curve's perfect-scaling region (``B <= perfect_scaling_end`` of the dense
  curve), also reported as ``log2`` (the paper reads about 2^1.5 at 90% sparsity).
* Its interval (``step_ratio_interval``) resamples every study's trials, as the fit's
  bootstrap does, and recomputes the geometric mean over the same batch sizes; given the
  studies' seed repeats it also draws a seed factor per study (trials *and* seeds).
* The *critical batch ratio* is ``B_crit(sparse) / B_crit(dense)`` from the fits; its
  interval pairs the curves' independent bootstrap resamples one to one.
* Every interval counts resamples whose best is censored (a stopped trial is a lower bound)
  with their range, and there is none where too few trials completed
  (:mod:`sparsedp.analysis.censoring`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparsedp.analysis.censoring import Outcomes, interval_or_reason, resample_best
from sparsedp.analysis.curves import Curve
from sparsedp.analysis.fit import BootstrapFit, ScalingFit, stable_seed
from sparsedp.analysis.regimes import PERFECT_SCALING_TOL, perfect_scaling_end

DENSE_SPARSITY = 0.0


def _is_dense(sparsity: pd.Series | float, dense_sparsity: float) -> pd.Series | bool:
    return np.isclose(sparsity, dense_sparsity, rtol=0.0, atol=1e-9)


def sparse_dense_ratios(best: pd.DataFrame, dense_sparsity: float = DENSE_SPARSITY) -> pd.DataFrame:
    """Per (workload, sparsity, batch size): steps over the dense study's steps.

    Columns ``workload, sparsity, batch_size, steps, dense_steps, ratio, log2_ratio``; only
    rows where both the sparse and the dense study have a result, dense rows excluded.
    """
    columns = ["workload", "sparsity", "batch_size", "steps", "dense_steps", "ratio", "log2_ratio"]
    if best is None or len(best) == 0:
        return pd.DataFrame(columns=columns)
    have = best[np.isfinite(best["steps"].astype(float))]
    dense_mask = _is_dense(have["sparsity"].astype(float), dense_sparsity)
    dense = have[dense_mask][["workload", "batch_size", "steps"]].rename(
        columns={"steps": "dense_steps"}
    )
    sparse = have[~dense_mask][["workload", "sparsity", "batch_size", "steps"]]
    merged = sparse.merge(dense, on=["workload", "batch_size"], how="inner")
    merged["ratio"] = merged["steps"].astype(float) / merged["dense_steps"].astype(float)
    merged["log2_ratio"] = np.log2(merged["ratio"])
    merged = merged.sort_values(["workload", "sparsity", "batch_size"]).reset_index(drop=True)
    return merged[columns]


@dataclass(frozen=True)
class PerfectScalingRatio:
    """Geometric-mean sparse/dense step ratio over the dense perfect-scaling region."""

    workload: str
    sparsity: float
    dense_perfect_scaling_end: int | None
    batch_sizes: list[int]
    geomean_ratio: float | None
    log2_ratio: float | None
    ci: tuple[float, float] | None = None  # over trials and seeds when repeats exist
    ci_trials: tuple[float, float] | None = None  # over the trials only
    ci_includes_seeds: bool = False
    ci_reason: str = ""  # why ``ci`` is None ("" when there is one)


def perfect_scaling_ratio(
    ratios: pd.DataFrame,
    dense_curve: Curve,
    sparsity: float,
    *,
    tol: float = PERFECT_SCALING_TOL,
) -> PerfectScalingRatio:
    """Mean ratio of one sparse curve to its dense curve over dense perfect scaling.

    ``ratios`` is the output of :func:`sparse_dense_ratios`; ``dense_curve`` is the dense
    curve of the same workload. The ratio is None when no batch size qualifies.
    """
    end = perfect_scaling_end(dense_curve.batch_sizes, dense_curve.steps, tol)
    rows = ratios[
        (ratios["workload"] == dense_curve.workload)
        & np.isclose(ratios["sparsity"].astype(float), sparsity, rtol=0.0, atol=1e-9)
    ]
    rows = rows[rows["batch_size"].astype(int) <= end] if end is not None else rows.iloc[0:0]
    sizes = [int(b) for b in rows["batch_size"]]
    if not sizes:
        return PerfectScalingRatio(dense_curve.workload, float(sparsity), end, [], None, None)
    log2_mean = float(np.mean(np.log2(rows["ratio"].astype(float))))
    return PerfectScalingRatio(
        workload=dense_curve.workload,
        sparsity=float(sparsity),
        dense_perfect_scaling_end=end,
        batch_sizes=sizes,
        geomean_ratio=float(2.0**log2_mean),
        log2_ratio=log2_mean,
    )


def _seed_factors(
    rng: np.random.Generator, runs: np.ndarray | None, n_resamples: int
) -> np.ndarray:
    """``S_j / S_0`` for ``n_resamples`` runs ``j`` drawn from a study's seed runs (its best
    trial first; ``inf`` where a run has no result); 1 without repeats."""
    values = np.asarray(runs if runs is not None else [], dtype=float)
    if len(values) <= 1:
        return np.ones(n_resamples)
    return (values / values[0])[rng.integers(0, len(values), size=n_resamples)]


@dataclass(frozen=True)
class RatioSamples:
    """Bootstrap resamples of a geometric-mean step ratio, each a range ``[lo, hi]`` (equal
    where no study's best is censored; NaN where some batch size has no result on either
    side), and the largest share of censored resamples among the studies involved."""

    lo: np.ndarray
    hi: np.ndarray
    censored: float


def step_ratio_samples(
    sparse_outcomes: Mapping[int, np.ndarray | Outcomes],
    dense_outcomes: Mapping[int, np.ndarray | Outcomes],
    batch_sizes: Sequence[int],
    *,
    n_resamples: int = 200,
    seed: int = 0,
    key: str = "",
    sparse_runs: Mapping[int, np.ndarray] | None = None,
    dense_runs: Mapping[int, np.ndarray] | None = None,
) -> RatioSamples | None:
    """Bootstrap resamples of the geometric-mean step ratio over ``batch_sizes``.

    ``*_outcomes`` map batch size to each study's trials (:class:`Outcomes`, or arrays of
    steps-to-result, ``inf`` without a result). Each resample draws every study's trials
    with replacement and takes the best; a censored best (a stopped trial might have done
    better) makes the ratio a range, from the sparse side's lowest and the dense side's
    highest possible best to the reverse. With ``*_runs`` (batch size → the study's seed
    runs at its best metaparameters, the best trial first; see
    :mod:`sparsedp.analysis.repeats`) each resampled best is also multiplied by a seed factor
    ``S_j / S_0`` of a run ``j`` drawn from them, from a separate random stream: the trial
    draws, hence the trials-only samples, are the same with and without runs. NaN marks a
    resample where some batch size has no result on either side. None without batch sizes or
    resamples, or when a study has no trials.
    """
    sizes = [int(b) for b in batch_sizes]
    if not sizes or n_resamples <= 0:
        return None
    rng = np.random.default_rng(stable_seed(seed, f"step-ratio:{key}"))
    seeds_rng = np.random.default_rng(stable_seed(seed, f"step-ratio-seeds:{key}"))
    log_lo = np.zeros(n_resamples)
    log_hi = np.zeros(n_resamples)
    censored = 0.0
    for b in sizes:
        drawn = []
        for outcomes in (sparse_outcomes, dense_outcomes):
            study = outcomes.get(b)
            if study is None or len(study) == 0:
                return None
            study = study if isinstance(study, Outcomes) else Outcomes.exact(study)
            lo, hi = resample_best(study, rng, n_resamples)
            censored = max(censored, float(np.mean(lo < hi)))
            drawn.append([lo, hi])
        if sparse_runs is not None or dense_runs is not None:
            for side, runs in enumerate((sparse_runs, dense_runs)):
                factor = _seed_factors(seeds_rng, (runs or {}).get(b), n_resamples)
                drawn[side] = [drawn[side][0] * factor, drawn[side][1] * factor]
        (s_lo, s_hi), (d_lo, d_hi) = drawn
        with np.errstate(invalid="ignore", divide="ignore"):
            # no result at all (both ends inf) on a side: NaN, as before
            ok = np.isfinite(s_lo) & np.isfinite(d_lo)
            low = np.full(n_resamples, np.nan)
            high = np.full(n_resamples, np.nan)
            low[ok] = np.log2(s_lo[ok] / d_hi[ok])  # d_hi may be inf: -inf
            high[ok] = np.log2(s_hi[ok] / d_lo[ok])  # s_hi may be inf: inf
        log_lo += low
        log_hi += high
    return RatioSamples(2.0 ** (log_lo / len(sizes)), 2.0 ** (log_hi / len(sizes)), censored)


def step_ratio_interval(
    sparse_outcomes: Mapping[int, np.ndarray | Outcomes],
    dense_outcomes: Mapping[int, np.ndarray | Outcomes],
    batch_sizes: Sequence[int],
    *,
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    key: str = "",
    sparse_runs: Mapping[int, np.ndarray] | None = None,
    dense_runs: Mapping[int, np.ndarray] | None = None,
) -> tuple[tuple[float, float] | None, str]:
    """Bootstrap interval of the geometric-mean step ratio over ``batch_sizes``, and why
    there is none ("" when there is one).

    Over the trials only by default; with ``sparse_runs``/``dense_runs`` (seed repeats)
    over trials and seeds (see :func:`step_ratio_samples`). A resample where some batch
    size has no result on either side is left out; a censored one counts with its range
    (:func:`~sparsedp.analysis.censoring.interval_or_reason`).
    """
    samples = step_ratio_samples(
        sparse_outcomes, dense_outcomes, batch_sizes, n_resamples=n_resamples, seed=seed,
        key=key, sparse_runs=sparse_runs, dense_runs=dense_runs,
    )
    if samples is None:
        return None, "no interval: no resamples"
    keep = ~(np.isnan(samples.lo) | np.isnan(samples.hi))
    if not keep.any():
        return None, "no interval: no resample has a result at every batch size"
    return interval_or_reason(samples.lo[keep], samples.hi[keep], samples.censored,
                              confidence)


@dataclass(frozen=True)
class CriticalBatchRatio:
    """``B_crit(sparse) / B_crit(dense)`` with a bootstrap interval when available."""

    ratio: float | None
    ci: tuple[float, float] | None
    fraction_fit: float | None
    reason: str = ""  # why there is no interval ("" when there is one)


def critical_batch_ratio(
    sparse_fit: ScalingFit | None,
    dense_fit: ScalingFit | None,
    sparse_boot: BootstrapFit | None = None,
    dense_boot: BootstrapFit | None = None,
    confidence: float = 0.95,
) -> CriticalBatchRatio:
    """Ratio of fitted critical batch sizes, sparse over dense.

    The interval takes resample ``r`` of each curve's bootstrap together (the curves are
    resampled independently): the ratio's range runs from the sparse fit's lowest over the
    dense fit's highest to the reverse (a point where neither is censored), and the interval
    is :func:`~sparsedp.analysis.censoring.interval_or_reason` over the resamples where both
    fits succeeded; ``fraction_fit`` is the share of such resamples.
    """
    ratio = None
    if sparse_fit is not None and dense_fit is not None:
        ratio = sparse_fit.b_crit / dense_fit.b_crit
    ci, fraction, reason = None, None, ""
    if sparse_boot is not None and dense_boot is not None:
        n = min(len(sparse_boot.b_crit_samples), len(dense_boot.b_crit_samples))
        if n:
            s_lo, s_hi = _ends(sparse_boot, n)
            d_lo, d_hi = _ends(dense_boot, n)
            with np.errstate(invalid="ignore", divide="ignore"):
                lo, hi = s_lo / d_hi, s_hi / d_lo
            ok = ~(np.isnan(lo) | np.isnan(hi))
            fraction = float(ok.mean())
            share = max(sparse_boot.censored_share, dense_boot.censored_share)
            ci, reason = interval_or_reason(lo[ok], hi[ok], share, confidence) if ok.any() \
                else (None, "no interval: no resample fits both curves")
    return CriticalBatchRatio(ratio=ratio, ci=ci, fraction_fit=fraction, reason=reason)


def _ends(boot: BootstrapFit, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` resamples' B_crit ranges (points for a bootstrap without ranges)."""
    lo = boot.b_crit_lo if boot.b_crit_lo is not None else boot.b_crit_samples
    hi = boot.b_crit_hi if boot.b_crit_hi is not None else boot.b_crit_samples
    return np.asarray(lo[:n], dtype=float), np.asarray(hi[:n], dtype=float)
