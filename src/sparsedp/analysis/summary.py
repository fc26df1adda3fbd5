"""All analyses of a trial table at once, and their JSON-ready summary."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sparsedp.analysis.adequacy import Adequacy, study_adequacy
from sparsedp.analysis.censoring import MAX_CENSORED, study_trial_outcomes
from sparsedp.analysis.compare import (
    DENSE_SPARSITY,
    CriticalBatchRatio,
    PerfectScalingRatio,
    critical_batch_ratio,
    perfect_scaling_ratio,
    sparse_dense_ratios,
    step_ratio_interval,
)
from sparsedp.analysis.curves import (
    Curve,
    best_trials,
    normalize_status,
    normalized_steps,
    steps_curves,
)
from sparsedp.analysis.data_size import curve_sizes, with_curve_labels
from sparsedp.analysis.fit import (
    MIN_POINTS,
    BootstrapFit,
    ScalingFit,
    bootstrap_scaling,
    fit_scaling,
)
from sparsedp.analysis.overhead import OverheadCrit, overhead_crit
from sparsedp.analysis.regimes import (
    MAX_PARALLELISM_FRACTION,
    PERFECT_SCALING_TOL,
    Regimes,
    regimes,
)
from sparsedp.analysis.repeats import curve_runs, repeat_spread, seed_runs


@dataclass
class Analysis:
    """Every derived quantity of one trial table (see :func:`analyze`)."""

    options: dict[str, Any]
    trials: pd.DataFrame
    best: pd.DataFrame
    curves: dict[tuple[str, float], Curve]
    fits: dict[tuple[str, float], ScalingFit | None]
    bootstraps: dict[tuple[str, float], BootstrapFit | None]
    regimes: dict[tuple[str, float], Regimes]
    ratios: pd.DataFrame
    perfect_scaling_ratios: list[PerfectScalingRatio] = field(default_factory=list)
    critical_ratios: dict[tuple[str, float], CriticalBatchRatio] = field(default_factory=dict)
    repeats: pd.DataFrame | None = None  # stored seed repeats, when given to analyze()
    adequacy: dict[tuple[str, float, int], Adequacy] = field(default_factory=dict)
    seed_spread: pd.DataFrame | None = None  # repeat_spread of the best trials and repeats
    overheads: dict[tuple[str, float], OverheadCrit] = field(default_factory=dict)


def curve_name(key: tuple[str, float]) -> str:
    """Stable text name of a curve, e.g. ``mnist-simplecnn-sgd@0.9``."""
    return f"{key[0]}@{key[1]:g}"


def analyze(
    trials: pd.DataFrame,
    *,
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    tol: float = PERFECT_SCALING_TOL,
    fraction: float = MAX_PARALLELISM_FRACTION,
    dense_sparsity: float = DENSE_SPARSITY,
    min_points: int = MIN_POINTS,
    repeats: pd.DataFrame | None = None,
) -> Analysis:
    """Best trials, curves, fits with bootstrap intervals, regimes and sparse/dense ratios.

    ``n_resamples = 0`` skips the bootstrap. ``repeats`` (stored seed repeats,
    :func:`sparsedp.store.repeats_frame`) add the seed spread, and the perfect-scaling step
    ratio's interval then covers trials *and* seeds (``ci``; ``ci_trials`` keeps the
    trials-only one, see :func:`~sparsedp.analysis.compare.step_ratio_interval`).
    """
    options = {
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "confidence": float(confidence),
        "tol": float(tol),
        "fraction": float(fraction),
        "dense_sparsity": float(dense_sparsity),
        "min_points": int(min_points),
    }
    trials = with_curve_labels(trials)  # a training-set size is part of a curve's identity
    repeats = with_curve_labels(repeats, trials)
    best = best_trials(trials)
    curves = steps_curves(best)
    outcomes = study_trial_outcomes(trials)
    adequacy = {(w, s, b): study_adequacy(o) for (w, s), studies in outcomes.items()
                for b, o in studies.items()}
    with_repeats = repeats is not None and len(repeats) > 0
    runs = seed_runs(best, repeats) if with_repeats else {}
    fits: dict[tuple[str, float], ScalingFit | None] = {}
    boots: dict[tuple[str, float], BootstrapFit | None] = {}
    regs: dict[tuple[str, float], Regimes] = {}
    overheads: dict[tuple[str, float], OverheadCrit] = {}
    for key, curve in curves.items():
        fits[key] = fit_scaling(curve.batch_sizes, curve.steps, min_points=min_points)
        boots[key] = (
            bootstrap_scaling(
                outcomes.get(key, {}),
                n_resamples=n_resamples,
                seed=seed,
                confidence=confidence,
                min_points=min_points,
                key=curve_name(key),
            )
            if n_resamples > 0
            else None
        )
        regs[key] = regimes(curve.batch_sizes, curve.steps, tol=tol, fraction=fraction)
        overheads[key] = overhead_crit(curve.batch_sizes, curve.steps, outcomes.get(key, {}),
                                       n_resamples=n_resamples, seed=seed,
                                       confidence=confidence, key=curve_name(key))
    ratios = sparse_dense_ratios(best, dense_sparsity)
    ps_ratios: list[PerfectScalingRatio] = []
    crit: dict[tuple[str, float], CriticalBatchRatio] = {}
    for key in curves:
        workload, sparsity = key
        if math.isclose(sparsity, dense_sparsity, abs_tol=1e-9):
            continue
        dense_key = next(
            (
                k
                for k in curves
                if k[0] == workload and math.isclose(k[1], dense_sparsity, abs_tol=1e-9)
            ),
            None,
        )
        if dense_key is None:
            continue
        ps = perfect_scaling_ratio(ratios, curves[dense_key], sparsity, tol=tol)
        interval = dict(
            n_resamples=n_resamples, seed=seed, confidence=confidence, key=curve_name(key)
        )
        args = (outcomes.get(key, {}), outcomes.get(dense_key, {}), ps.batch_sizes)
        ci_trials, reason = step_ratio_interval(*args, **interval)
        ci = ci_trials
        if with_repeats:
            ci, reason = step_ratio_interval(
                *args, **interval, sparse_runs=curve_runs(runs, *key),
                dense_runs=curve_runs(runs, *dense_key),
            )
        ps_ratios.append(
            dataclasses.replace(ps, ci=ci, ci_trials=ci_trials, ci_includes_seeds=with_repeats,
                                ci_reason=reason if ps.geomean_ratio is not None else "")
        )
        crit[key] = critical_batch_ratio(
            fits[key], fits[dense_key], boots[key], boots[dense_key], confidence
        )
    return Analysis(
        options=options,
        trials=trials,
        best=best,
        curves=curves,
        fits=fits,
        bootstraps=boots,
        regimes=regs,
        ratios=ratios,
        perfect_scaling_ratios=ps_ratios,
        critical_ratios=crit,
        repeats=repeats if with_repeats else None,
        seed_spread=repeat_spread(best, repeats) if with_repeats else None,
        adequacy=adequacy,
        overheads=overheads,
    )


def to_jsonable(value: Any) -> Any:
    """Plain Python values for JSON: numpy scalars unwrapped, NaN/inf/NA to None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, str):
        return value
    return str(value)


def _fit_dict(fit: ScalingFit | None, boot: BootstrapFit | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "s_min": fit.s_min if fit else None,
        "b_crit": fit.b_crit if fit else None,
        "log2_b_crit": math.log2(fit.b_crit) if fit else None,
        "at_bound": fit.at_bound if fit else None,
        "rmse_log": fit.rmse_log if fit else None,
        "n_points": fit.n_points if fit else None,
        "s_min_ci": None,
        "b_crit_ci": None,
        "bootstrap_fraction_fit": None,
        "bootstrap_resamples": None,
        "interval_note": None,
        "censored_share": None,
    }
    if boot is not None:
        out.update(
            s_min_ci=list(boot.s_min_ci) if boot.s_min_ci else None,
            b_crit_ci=list(boot.b_crit_ci) if boot.b_crit_ci else None,
            bootstrap_fraction_fit=boot.fraction_fit,
            bootstrap_resamples=boot.n_resamples,
            interval_note=boot.reason or None,
            censored_share={str(b): v for b, v in boot.censored.items()},
        )
    return out


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    """Number of trials per (normalised) status, known statuses first."""
    if trials is None or len(trials) == 0:
        return {}
    counts = trials["status"].map(normalize_status).value_counts()
    known = ("complete", "incomplete", "infeasible", "stopped", "failed")
    ordered = [s for s in known if s in counts] + sorted(s for s in counts.index if s not in known)
    return {s: int(counts[s]) for s in ordered}


def analysis_to_dict(analysis: Analysis) -> dict[str, Any]:
    """JSON-ready dictionary of an :class:`Analysis`."""
    best = analysis.best
    n_result = int(np.isfinite(best["steps"].astype(float)).sum()) if len(best) else 0
    studies = []
    for row in best.to_dict(orient="records"):
        study = {k: to_jsonable(v) for k, v in row.items()}
        found = analysis.adequacy.get((str(row["workload"]), float(row["sparsity"]),
                                       int(row["batch_size"])))
        if found is not None:  # search adequacy (docs/analysis.md): converged, best of k
            study["converged"] = found.converged
            study["adequacy"] = to_jsonable(found.to_dict())
        studies.append(study)
    curves = []
    sizes = curve_sizes(analysis.trials)
    for key, curve in analysis.curves.items():
        reg = analysis.regimes[key]
        size = ({"base_workload": sizes[curve.workload][0],
                 "train_examples": sizes[curve.workload][1]}
                if curve.workload in sizes else {})  # only where the curve has a size
        curves.append(
            {
                "workload": curve.workload,
                **size,
                "optimizer": curve.optimizer,
                "sparsity": curve.sparsity,
                "batch_sizes": curve.batch_sizes,
                "steps": curve.steps,
                "normalized_steps": normalized_steps(curve),
                "missing_batch_sizes": curve.missing,
                "fit": _fit_dict(analysis.fits[key], analysis.bootstraps[key]),
                "b_crit_overhead": (analysis.overheads[key].to_dict()
                                    if key in analysis.overheads else None),
                "unconverged_batch_sizes": sorted(
                    b for (w, s, b), a in analysis.adequacy.items()
                    if (w, s) == key and b in curve.batch_sizes and not a.converged),
                "regimes": {
                    "perfect_scaling_end": reg.perfect_scaling_end,
                    "max_parallelism_onset": reg.max_parallelism_onset,
                    "tol": reg.tol,
                    "fraction": reg.fraction,
                    "later_saving": reg.later_saving,
                    "later_saving_between": (list(reg.later_saving_between)
                                             if reg.later_saving_between else None),
                },
            }
        )
    comparisons = []
    for ps in analysis.perfect_scaling_ratios:
        crit = analysis.critical_ratios.get((ps.workload, ps.sparsity))
        comparisons.append(
            {
                "workload": ps.workload,
                "sparsity": ps.sparsity,
                "dense_sparsity": analysis.options["dense_sparsity"],
                "dense_perfect_scaling_end": ps.dense_perfect_scaling_end,
                "perfect_scaling_batch_sizes": ps.batch_sizes,
                "geomean_ratio": ps.geomean_ratio,
                "geomean_ratio_ci": list(ps.ci) if ps.ci else None,
                "geomean_ratio_ci_trials": list(ps.ci_trials) if ps.ci_trials else None,
                "geomean_ratio_interval_note": ps.ci_reason or None,
                "ci_includes_seeds": ps.ci_includes_seeds,
                "log2_ratio": ps.log2_ratio,
                "b_crit_ratio": crit.ratio if crit else None,
                "b_crit_ratio_ci": list(crit.ci) if crit and crit.ci else None,
                "b_crit_ratio_fraction_fit": crit.fraction_fit if crit else None,
                "b_crit_ratio_interval_note": (crit.reason or None) if crit else None,
            }
        )
    summary = {
        "options": {**analysis.options, "max_censored_share": MAX_CENSORED},
        "counts": {
            "n_trials": len(analysis.trials) if analysis.trials is not None else 0,
            "n_studies": len(best),
            "n_studies_with_result": n_result,
            "n_studies_without_result": len(best) - n_result,
            "by_status": status_counts(analysis.trials),
        },
        "studies": studies,
        "curves": curves,
        "sparse_vs_dense": {
            "ratios": analysis.ratios.to_dict(orient="records"),
            "summary": comparisons,
        },
    }
    return to_jsonable(summary)


def summarize(trials: pd.DataFrame, **options: Any) -> dict[str, Any]:
    """JSON-ready summary of every analysis; ``options`` are those of :func:`analyze`."""
    return analysis_to_dict(analyze(trials, **options))
