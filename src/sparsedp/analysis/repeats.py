"""Seed repeats: the spread of a study's result over seeds, and intervals that include it.

``sparsedp repeat`` trains each study's best metaparameters again with ``k`` new seeds
(initialisation and batch order; see :mod:`sparsedp.repeats.run`). A study then has
``k + 1`` *runs* at its best metaparameters: the search's best trial (run 0) and its repeats.
Only repeats of the study's current best trial count.

* :func:`repeat_spread`: per study, the runs' steps to result: how many reached the goal,
  median, min, max, and the max/min ratio. The error bars of the scaling figures span
  min…max of the runs that reached the goal.
* :func:`seed_ratio_intervals`: the sparse/dense step ratio per batch size and its geometric
  mean over the dense curve's perfect-scaling region, each with two intervals over the same
  resamples: *trials only* (each study's trials drawn with replacement, the minimum is its
  result, as the fit's bootstrap does) and *trials and seeds*, where each resampled result is
  also multiplied by a seed factor ``S_j / S_0`` drawn from the study's runs ``j = 0 … k``
  (``S_0``: the best trial; factor 1 for a study without repeats). When every repeat equals
  the best trial both intervals are the same; the more the seeds disagree, the wider the
  second. A resample in which a study has no result (no trial reached the goal, or a drawn
  repeat did not) gives no ratio; ``fraction`` is the share of resamples with one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparsedp.analysis.censoring import interval_or_reason, study_trial_outcomes
from sparsedp.analysis.compare import (
    DENSE_SPARSITY,
    RatioSamples,
    perfect_scaling_ratio,
    sparse_dense_ratios,
    step_ratio_samples,
)
from sparsedp.analysis.curves import STUDY_COLUMNS, result_steps, steps_curves
from sparsedp.analysis.regimes import PERFECT_SCALING_TOL

SPREAD_COLUMNS = ("workload", "sparsity", "batch_size", "study_key", "best_trial_index",
                  "best_steps", "n_runs", "n_complete", "median", "min", "max",
                  "max_over_min", "runs")


def seed_runs(best: pd.DataFrame, repeats: pd.DataFrame | None) -> dict[tuple, np.ndarray]:
    """Per study ``(workload, sparsity, batch_size)`` with a result: the steps of its runs at
    the best metaparameters, the best trial first (``inf`` for a run without a result)."""
    out: dict[tuple, np.ndarray] = {}
    if best is None or len(best) == 0:
        return out
    have = best[np.isfinite(best["steps"].astype(float))]
    by_key: dict[tuple[str, int], np.ndarray] = {}
    if repeats is not None and len(repeats):
        steps = result_steps(repeats)
        frame = repeats.assign(_steps=steps).sort_values("repeat_index", kind="mergesort")
        for (key, source), group in frame.groupby(["study_key", "source_trial"]):
            by_key[(str(key), int(source))] = group["_steps"].to_numpy(dtype=float)
    for _, row in have.iterrows():
        extra = by_key.get((str(row["study_key"]), int(row["best_trial_index"])), np.array([]))
        study = (str(row["workload"]), float(row["sparsity"]), int(row["batch_size"]))
        out[study] = np.concatenate([[float(row["steps"])], extra])
    return out


def repeat_spread(best: pd.DataFrame, repeats: pd.DataFrame | None) -> pd.DataFrame:
    """One row per study with a result: its runs' spread (see the module docstring);
    ``runs`` lists every run's steps (``None``: no result)."""
    runs = seed_runs(best, repeats)
    rows = []
    for _, row in best.iterrows() if best is not None else ():
        study = (str(row["workload"]), float(row["sparsity"]), int(row["batch_size"]))
        if study not in runs:
            continue
        values = runs[study]
        done = values[np.isfinite(values)]
        rows.append([*study, row["study_key"], int(row["best_trial_index"]), float(values[0]),
                     len(values), len(done), float(np.median(done)), float(done.min()),
                     float(done.max()), float(done.max() / done.min()),
                     [float(v) if math.isfinite(v) else None for v in values]])
    return pd.DataFrame(rows, columns=list(SPREAD_COLUMNS))


@dataclass(frozen=True)
class SeedRatioIntervals:
    """Sparse/dense ratios with intervals over trials only, and over trials and seeds."""

    per_batch: pd.DataFrame  # workload, sparsity, batch_size, ratio, ci_trials, ci, fraction…
    perfect_scaling: pd.DataFrame  # workload, sparsity, batch_sizes, geomean_ratio, ci…
    n_resamples: int
    confidence: float


def _interval(samples: RatioSamples | None, confidence: float
              ) -> tuple[tuple[float, float] | None, float]:
    """The honest interval of the resamples with a result at every batch size
    (:func:`~sparsedp.analysis.censoring.interval_or_reason`), and their share."""
    if samples is None:
        return None, 0.0
    keep = ~(np.isnan(samples.lo) | np.isnan(samples.hi))
    if not keep.any():
        return None, 0.0
    interval, _ = interval_or_reason(samples.lo[keep], samples.hi[keep], samples.censored,
                                     confidence)
    return interval, float(keep.mean())


def curve_runs(runs: dict[tuple, np.ndarray], workload: str, sparsity: float
               ) -> dict[int, np.ndarray]:
    """Batch size → seed runs of one curve, from :func:`seed_runs`."""
    return {b: values for (w, s, b), values in runs.items()
            if w == workload and math.isclose(s, sparsity, abs_tol=1e-9)}


def seed_ratio_intervals(
    trials: pd.DataFrame,
    best: pd.DataFrame,
    repeats: pd.DataFrame | None,
    *,
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    dense_sparsity: float = DENSE_SPARSITY,
    tol: float = PERFECT_SCALING_TOL,
) -> SeedRatioIntervals:
    """Sparse/dense step ratios with intervals over trials only and over trials and seeds.

    ``trials`` is the search's trial table, ``best`` its :func:`best_trials`, ``repeats`` the
    stored repeats (``None`` or empty: the two intervals coincide). Both intervals come from
    :func:`~sparsedp.analysis.compare.step_ratio_samples` (the same trial draws, seed factors
    from their own stream); random streams are seeded from ``seed`` and the curve's name
    (plus the batch size per batch), so a curve's intervals do not depend on the others and
    the perfect-scaling trials-only interval equals the analysis's ``geomean_ratio_ci``
    without repeats.
    """
    ratios = sparse_dense_ratios(best, dense_sparsity)
    outcomes = study_trial_outcomes(trials)
    runs = seed_runs(best, repeats)
    curves = steps_curves(best)
    per_rows, ps_rows = [], []
    for (workload, sparsity), group in ratios.groupby(["workload", "sparsity"], sort=True):
        dense_key = next((k for k in curves if k[0] == workload
                          and math.isclose(k[1], dense_sparsity, abs_tol=1e-9)), None)
        if dense_key is None:
            continue
        sparse_o, dense_o = outcomes[(workload, float(sparsity))], outcomes[dense_key]
        sparse_r = curve_runs(runs, workload, float(sparsity))
        dense_r = curve_runs(runs, *dense_key)
        name = f"{workload}@{float(sparsity):g}"  # as the analysis names the curve
        sides = (sparse_o, dense_o, sparse_r, dense_r)

        def samples(sizes: list[int], key: str, with_seeds: bool,
                    sides: tuple = sides) -> RatioSamples | None:
            return step_ratio_samples(
                sides[0], sides[1], sizes, n_resamples=n_resamples, seed=seed, key=key,
                sparse_runs=sides[2] if with_seeds else None,
                dense_runs=sides[3] if with_seeds else None)

        for b, ratio in zip(group["batch_size"], group["ratio"], strict=True):
            b = int(b)
            ci_t, frac_t = _interval(samples([b], f"{name}/B={b}", False), confidence)
            ci_s, frac_s = _interval(samples([b], f"{name}/B={b}", True), confidence)
            per_rows.append([workload, float(sparsity), b, float(ratio), ci_t, frac_t, ci_s,
                             frac_s, len(sparse_r.get(b, [1.0])), len(dense_r.get(b, [1.0]))])
        ps = perfect_scaling_ratio(ratios, curves[dense_key], float(sparsity), tol=tol)
        if ps.geomean_ratio is None:
            continue
        ci_t, frac_t = _interval(samples(ps.batch_sizes, name, False), confidence)
        ci_s, frac_s = _interval(samples(ps.batch_sizes, name, True), confidence)
        ps_rows.append([workload, float(sparsity), ps.batch_sizes, ps.geomean_ratio, ci_t,
                        frac_t, ci_s, frac_s])
    per_batch = pd.DataFrame(per_rows, columns=[
        *STUDY_COLUMNS, "ratio", "ci_trials", "fraction_trials", "ci", "fraction",
        "n_runs_sparse", "n_runs_dense"])
    perfect = pd.DataFrame(ps_rows, columns=[
        "workload", "sparsity", "batch_sizes", "geomean_ratio", "ci_trials", "fraction_trials",
        "ci", "fraction"])
    return SeedRatioIntervals(per_batch, perfect, n_resamples, confidence)
