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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparsedp.analysis.curves import Curve
from sparsedp.analysis.fit import BootstrapFit, ScalingFit, percentile_interval, stable_seed
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


def step_ratio_samples(
    sparse_outcomes: Mapping[int, np.ndarray],
    dense_outcomes: Mapping[int, np.ndarray],
    batch_sizes: Sequence[int],
    *,
    n_resamples: int = 200,
    seed: int = 0,
    key: str = "",
    sparse_runs: Mapping[int, np.ndarray] | None = None,
    dense_runs: Mapping[int, np.ndarray] | None = None,
) -> np.ndarray | None:
    """Bootstrap resamples of the geometric-mean step ratio over ``batch_sizes``.

    ``*_outcomes`` map batch size to each trial's steps-to-result (``inf`` without a
    result). Each resample draws every study's trials with replacement and takes the
    minimum. With ``*_runs`` (batch size → the study's seed runs at its best
    metaparameters, the best trial first; see :mod:`sparsedp.analysis.repeats`) each
    resampled minimum is also multiplied by a seed factor ``S_j / S_0`` of a run ``j``
    drawn from them, from a separate random stream: the trial draws, hence the
    trials-only samples, are the same with and without runs. NaN marks a resample where
    some batch size has no result on either side. None without batch sizes or resamples,
    or when a study has no trials.
    """
    sizes = [int(b) for b in batch_sizes]
    if not sizes or n_resamples <= 0:
        return None
    rng = np.random.default_rng(stable_seed(seed, f"step-ratio:{key}"))
    seeds_rng = np.random.default_rng(stable_seed(seed, f"step-ratio-seeds:{key}"))
    log_ratio = np.zeros(n_resamples)
    for b in sizes:
        drawn = []
        for outcomes in (sparse_outcomes, dense_outcomes):
            values = np.asarray(outcomes.get(b, []), dtype=float)
            if len(values) == 0:
                return None
            idx = rng.integers(0, len(values), size=(n_resamples, len(values)))
            drawn.append(values[idx].min(axis=1))
        if sparse_runs is not None or dense_runs is not None:
            for side, runs in enumerate((sparse_runs, dense_runs)):
                drawn[side] = drawn[side] * _seed_factors(
                    seeds_rng, (runs or {}).get(b), n_resamples
                )
        ok = np.isfinite(drawn[0]) & np.isfinite(drawn[1])
        step = np.full(n_resamples, np.nan)
        step[ok] = np.log2(drawn[0][ok] / drawn[1][ok])  # only where both have a result
        log_ratio += step
    return 2.0 ** (log_ratio / len(sizes))


def step_ratio_interval(
    sparse_outcomes: Mapping[int, np.ndarray],
    dense_outcomes: Mapping[int, np.ndarray],
    batch_sizes: Sequence[int],
    *,
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    key: str = "",
    sparse_runs: Mapping[int, np.ndarray] | None = None,
    dense_runs: Mapping[int, np.ndarray] | None = None,
) -> tuple[float, float] | None:
    """Bootstrap interval of the geometric-mean step ratio over ``batch_sizes``.

    Over the trials only by default; with ``sparse_runs``/``dense_runs`` (seed repeats)
    over trials and seeds (see :func:`step_ratio_samples`). A resample where some batch
    size lost its result on either side is left out. None without batch sizes,
    resamples, or any resample with all results.
    """
    samples = step_ratio_samples(
        sparse_outcomes, dense_outcomes, batch_sizes, n_resamples=n_resamples, seed=seed,
        key=key, sparse_runs=sparse_runs, dense_runs=dense_runs,
    )
    return None if samples is None else percentile_interval(samples, confidence)


@dataclass(frozen=True)
class CriticalBatchRatio:
    """``B_crit(sparse) / B_crit(dense)`` with a bootstrap interval when available."""

    ratio: float | None
    ci: tuple[float, float] | None
    fraction_fit: float | None


def critical_batch_ratio(
    sparse_fit: ScalingFit | None,
    dense_fit: ScalingFit | None,
    sparse_boot: BootstrapFit | None = None,
    dense_boot: BootstrapFit | None = None,
    confidence: float = 0.95,
) -> CriticalBatchRatio:
    """Ratio of fitted critical batch sizes, sparse over dense.

    The interval takes resample ``r`` of each curve's bootstrap together (the curves are
    resampled independently) and is the percentile interval of the ratios where both fits
    succeeded; ``fraction_fit`` is the share of such resamples.
    """
    ratio = None
    if sparse_fit is not None and dense_fit is not None:
        ratio = sparse_fit.b_crit / dense_fit.b_crit
    ci, fraction = None, None
    if sparse_boot is not None and dense_boot is not None:
        n = min(len(sparse_boot.b_crit_samples), len(dense_boot.b_crit_samples))
        if n:
            samples = sparse_boot.b_crit_samples[:n] / dense_boot.b_crit_samples[:n]
            fraction = float(np.isfinite(samples).mean())
            ci = percentile_interval(samples, confidence)
    return CriticalBatchRatio(ratio=ratio, ci=ci, fraction_fit=fraction)
