"""Best trial per study, and steps-to-result curves over batch size.

A *study* is one (workload, sparsity, batch size) cell of an experiment; its result is the
lowest ``steps_to_result`` among its complete trials (ties go to the lower ``trial_index``).
Studies without a complete trial have no result: they are kept as rows with NaN steps and
are never interpolated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

STATUSES: tuple[str, ...] = ("complete", "incomplete", "infeasible", "stopped", "failed")
"""Known trial statuses; any other string is counted as ``other``."""

METAPARAMETERS: tuple[str, ...] = ("lr", "momentum", "decay_steps", "end_lr_factor")
"""Metaparameter columns a trial table may carry (NaN where a workload does not use one)."""

STUDY_COLUMNS: tuple[str, ...] = ("workload", "sparsity", "batch_size")
"""Columns that identify a study."""

CURVE_COLUMNS: tuple[str, ...] = ("workload", "sparsity")
"""Columns that identify a curve (one line of steps-to-result over batch size)."""


def normalize_status(status: object) -> str:
    """Lower-cased, stripped status string (``"unknown"`` for missing values)."""
    if status is None or (isinstance(status, float) and np.isnan(status)):
        return "unknown"
    return str(status).strip().lower()


def result_steps(trials: pd.DataFrame) -> np.ndarray:
    """Per-trial steps-to-result, ``inf`` for trials that did not reach the goal.

    Only ``complete`` trials with a finite positive ``steps_to_result`` count as results.
    """
    status = trials["status"].map(normalize_status).to_numpy()
    steps = pd.to_numeric(trials["steps_to_result"], errors="coerce").to_numpy(dtype=float)
    ok = (status == "complete") & np.isfinite(steps) & (steps > 0)
    return np.where(ok, steps, np.inf)


def searched_metaparameters(trials: pd.DataFrame) -> list[str]:
    """Metaparameter columns with at least one non-NaN value in ``trials``."""
    out = []
    for name in METAPARAMETERS:
        if name in trials.columns and pd.to_numeric(trials[name], errors="coerce").notna().any():
            out.append(name)
    return out


def _first(values: pd.Series) -> object:
    non_null = values.dropna()
    return non_null.iloc[0] if len(non_null) else None


def best_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per study: the best trial, its metaparameters, and trial counts by status.

    Columns: ``workload, dataset, dataset_label, model, optimizer, sparsity, batch_size,
    study_key, best_trial_index, steps, best_seed, best_final_val_error, <metaparameters>,
    goal_error, n_trials, n_<status>`` for each status in :data:`STATUSES` and ``n_other``.
    ``steps`` and ``best_trial_index`` are NaN / ``<NA>`` when the study has no result.
    Rows are sorted by workload, sparsity, batch size.

    Raises ``ValueError`` when a cell holds trials of more than one study (``study_key``):
    two configurations of one cell (e.g. before and after a change of goal) are never
    pooled; select one configuration first (``trials_frame`` does, by default).
    """
    columns = [
        "workload",
        "dataset",
        "dataset_label",
        "model",
        "optimizer",
        "sparsity",
        "batch_size",
        "study_key",
        "best_trial_index",
        "steps",
        "best_seed",
        "best_final_val_error",
        *METAPARAMETERS,
        "goal_error",
        "n_trials",
        *(f"n_{s}" for s in STATUSES),
        "n_other",
    ]
    if trials is None or len(trials) == 0:
        return pd.DataFrame(columns=columns)
    df = trials.copy()
    df["_status"] = df["status"].map(normalize_status)
    df["_steps"] = result_steps(df)
    df["sparsity"] = df["sparsity"].astype(float)
    df["batch_size"] = df["batch_size"].astype(int)
    _check_one_study_per_cell(df)
    rows = []
    for (workload, sparsity, batch_size), group in df.groupby(list(STUDY_COLUMNS), sort=True):
        ranked = group.sort_values(["_steps", "trial_index"], kind="mergesort")
        best = ranked.iloc[0]
        has_result = bool(np.isfinite(best["_steps"]))
        goal = _first(group["goal_error"]) if "goal_error" in group else None
        keys = sorted({str(k) for k in group["study_key"].dropna()}) if "study_key" in group else []
        row: dict[str, object] = {
            "workload": workload,
            "dataset": _first(group["dataset"]) if "dataset" in group else None,
            "dataset_label": _first(group["dataset_label"]) if "dataset_label" in group else None,
            "model": _first(group["model"]) if "model" in group else None,
            "optimizer": _first(group["optimizer"]) if "optimizer" in group else None,
            "sparsity": float(sparsity),
            "batch_size": int(batch_size),
            "study_key": ",".join(keys) if keys else None,
            "best_trial_index": int(best["trial_index"]) if has_result else pd.NA,
            "steps": float(best["_steps"]) if has_result else np.nan,
            "best_seed": int(best["seed"]) if has_result and "seed" in best else pd.NA,
            "best_final_val_error": (
                float(best["final_val_error"])
                if has_result and "final_val_error" in best
                else np.nan
            ),
            "goal_error": float(goal) if goal is not None else np.nan,
            "n_trials": len(group),
        }
        for name in METAPARAMETERS:
            row[name] = float(best[name]) if has_result and name in best else np.nan
        counts = group["_status"].value_counts()
        for status in STATUSES:
            row[f"n_{status}"] = int(counts.get(status, 0))
        row["n_other"] = int(len(group) - sum(int(counts.get(s, 0)) for s in STATUSES))
        rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    out["best_trial_index"] = out["best_trial_index"].astype("Int64")
    out["best_seed"] = out["best_seed"].astype("Int64")
    return out.reset_index(drop=True)


def _check_one_study_per_cell(df: pd.DataFrame) -> None:
    if "study_key" not in df:
        return
    keys = df.dropna(subset=["study_key"]).groupby(list(STUDY_COLUMNS))["study_key"].nunique()
    pooled = keys[keys > 1]
    if len(pooled):
        (workload, sparsity, batch_size), n = next(iter(pooled.items()))
        raise ValueError(
            f"trials of {n} different studies (configurations) for {workload} "
            f"s={sparsity:g} B={batch_size}; analyse one configuration at a time "
            "(filter the table by study_key or 'current')"
        )


@dataclass
class Curve:
    """Measured steps-to-result over batch size for one (workload, sparsity).

    ``batch_sizes``/``steps`` hold only studies with a result, sorted by batch size;
    ``missing`` lists batch sizes whose study has trials but no result.
    """

    workload: str
    sparsity: float
    optimizer: str | None
    batch_sizes: np.ndarray
    steps: np.ndarray
    missing: list[int] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, float]:
        """``(workload, sparsity)``."""
        return (self.workload, self.sparsity)

    def __len__(self) -> int:
        return len(self.batch_sizes)


def steps_curves(best: pd.DataFrame) -> dict[tuple[str, float], Curve]:
    """Curves keyed by ``(workload, sparsity)`` from a :func:`best_trials` table."""
    curves: dict[tuple[str, float], Curve] = {}
    if best is None or len(best) == 0:
        return curves
    for (workload, sparsity), group in best.groupby(list(CURVE_COLUMNS), sort=True):
        group = group.sort_values("batch_size")
        steps = group["steps"].to_numpy(dtype=float)
        sizes = group["batch_size"].to_numpy(dtype=int)
        ok = np.isfinite(steps)
        curves[(str(workload), float(sparsity))] = Curve(
            workload=str(workload),
            sparsity=float(sparsity),
            optimizer=_first(group["optimizer"]) if "optimizer" in group else None,
            batch_sizes=sizes[ok],
            steps=steps[ok],
            missing=[int(b) for b in sizes[~ok]],
        )
    return curves


def normalized_steps(curve: Curve) -> np.ndarray:
    """Steps divided by the steps at the curve's smallest batch size that has a result."""
    if len(curve) == 0:
        return np.array([], dtype=float)
    return curve.steps / curve.steps[0]


def perfect_scaling(curve: Curve, batch_sizes: Iterable[float] | None = None) -> np.ndarray:
    """Perfect-scaling reference ``S(B0)·B0/B`` through the curve's first measured point.

    Evaluated at ``batch_sizes`` (default: the curve's measured batch sizes).
    """
    sizes = curve.batch_sizes if batch_sizes is None else np.asarray(list(batch_sizes), float)
    if len(curve) == 0:
        return np.full(len(sizes), np.nan)
    return curve.steps[0] * curve.batch_sizes[0] / np.asarray(sizes, dtype=float)


def study_outcomes(
    trials: pd.DataFrame,
) -> dict[tuple[str, float], dict[int, np.ndarray]]:
    """Per curve, per batch size: each trial's steps-to-result (``inf`` without a result).

    The raw material for bootstrap resampling of study results.
    """
    out: dict[tuple[str, float], dict[int, np.ndarray]] = {}
    if trials is None or len(trials) == 0:
        return out
    df = trials.assign(_steps=result_steps(trials))
    _check_one_study_per_cell(df)
    for (workload, sparsity, batch_size), group in df.groupby(list(STUDY_COLUMNS), sort=True):
        key = (str(workload), float(sparsity))
        out.setdefault(key, {})[int(batch_size)] = group["_steps"].to_numpy(dtype=float)
    return out
