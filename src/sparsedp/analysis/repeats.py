"""Seed repeats: the spread of a study's result over seeds, and intervals that include it.

``sparsedp repeat`` trains each study's best metaparameters again with ``k`` new seeds
(initialisation and batch order; see :mod:`sparsedp.experiment.repeats`). A study then has
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

from sparsedp.analysis.compare import DENSE_SPARSITY, perfect_scaling_ratio, sparse_dense_ratios
from sparsedp.analysis.curves import STUDY_COLUMNS, result_steps, steps_curves, study_outcomes
from sparsedp.analysis.fit import percentile_interval, stable_seed
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


def _boot_min(rng: np.random.Generator, values: np.ndarray, n: int) -> np.ndarray:
    if len(values) == 0:
        return np.full(n, np.inf)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    return values[idx].min(axis=1)


def _seed_factor(rng: np.random.Generator, runs: np.ndarray | None, n: int) -> np.ndarray:
    if runs is None or len(runs) == 0:
        return np.ones(n)
    factors = runs / runs[0]  # inf where a repeat has no result
    return factors[rng.integers(0, len(factors), size=n)]


def _interval(samples: np.ndarray, confidence: float) -> tuple[tuple[float, float] | None,
                                                                float]:
    finite = np.isfinite(samples) & (samples > 0)
    return percentile_interval(samples[finite], confidence), float(finite.mean())


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
    stored repeats (``None`` or empty: the two intervals coincide). Random streams are seeded
    from ``seed`` and each curve's name, so a curve's intervals do not depend on the others.
    """
    ratios = sparse_dense_ratios(best, dense_sparsity)
    outcomes = study_outcomes(trials)
    runs = seed_runs(best, repeats)
    curves = steps_curves(best)
    per_rows, ps_rows = [], []
    for (workload, sparsity), group in ratios.groupby(["workload", "sparsity"], sort=True):
        dense_key = next((k for k in curves if k[0] == workload
                          and math.isclose(k[1], dense_sparsity, abs_tol=1e-9)), None)
        if dense_key is None:
            continue
        name = f"{workload}@{sparsity:g}/dense"
        rng = np.random.default_rng(stable_seed(seed, name))  # trials
        seed_rng = np.random.default_rng(stable_seed(seed, name + "/seeds"))  # seed factors
        sizes = [int(b) for b in group["batch_size"]]
        trial_only = np.empty((n_resamples, len(sizes)))
        with_seeds = np.empty((n_resamples, len(sizes)))
        for j, b in enumerate(sizes):
            sparse = _boot_min(rng, outcomes[(workload, float(sparsity))][b], n_resamples)
            dense = _boot_min(rng, outcomes[dense_key][b], n_resamples)
            with np.errstate(invalid="ignore"):
                trial_only[:, j] = sparse / dense
                factor = (_seed_factor(seed_rng, runs.get((workload, float(sparsity), b)),
                                       n_resamples)
                          / _seed_factor(seed_rng, runs.get((*dense_key, b)), n_resamples))
                with_seeds[:, j] = trial_only[:, j] * factor
        for j, (b, ratio) in enumerate(zip(sizes, group["ratio"], strict=True)):
            ci_t, frac_t = _interval(trial_only[:, j], confidence)
            ci_s, frac_s = _interval(with_seeds[:, j], confidence)
            n_sparse = len(runs.get((workload, float(sparsity), b), [1.0]))
            n_dense = len(runs.get((*dense_key, b), [1.0]))
            per_rows.append([workload, float(sparsity), b, float(ratio), ci_t, frac_t, ci_s,
                             frac_s, n_sparse, n_dense])
        ps = perfect_scaling_ratio(ratios, curves[dense_key], float(sparsity), tol=tol)
        if ps.geomean_ratio is None:
            continue
        cols = [sizes.index(b) for b in ps.batch_sizes]
        with np.errstate(invalid="ignore", divide="ignore"):
            geo_t = np.exp(np.log(trial_only[:, cols]).mean(axis=1))
            geo_s = np.exp(np.log(with_seeds[:, cols]).mean(axis=1))
        ci_t, frac_t = _interval(geo_t, confidence)
        ci_s, frac_s = _interval(geo_s, confidence)
        ps_rows.append([workload, float(sparsity), ps.batch_sizes, ps.geomean_ratio, ci_t,
                        frac_t, ci_s, frac_s])
    per_batch = pd.DataFrame(per_rows, columns=[
        *STUDY_COLUMNS, "ratio", "ci_trials", "fraction_trials", "ci", "fraction",
        "n_runs_sparse", "n_runs_dense"])
    perfect = pd.DataFrame(ps_rows, columns=[
        "workload", "sparsity", "batch_sizes", "geomean_ratio", "ci_trials", "fraction_trials",
        "ci", "fraction"])
    return SeedRatioIntervals(per_batch, perfect, n_resamples, confidence)
