"""The report's tables as data (headers, text cells); the templates turn them into HTML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sparsedp.analysis.curves import METAPARAMETERS, STATUSES
from sparsedp.report.format import fmt, interval, sparsity, steps


@dataclass(frozen=True)
class Table:
    """Rows of text cells; the first ``text_columns`` columns are left-aligned text and
    ``row_classes`` (one CSS class or ``""`` per row) marks rows, e.g. ``missing``."""

    headers: list[str]
    rows: list[list[str]]
    text_columns: int = 0
    row_classes: list[str] = field(default_factory=list)


def key_value_table(items: Sequence[tuple[str, object]], headers: Sequence[str]) -> Table:
    """Two text columns, e.g. settings and their values."""
    return Table(list(headers), [[str(k), fmt(v)] for k, v in items], text_columns=2)


def best_table(best: pd.DataFrame) -> Table:
    """One row per study: its best trial, metaparameters and trial counts by status."""
    params = [p for p in METAPARAMETERS if p in best and best[p].notna().any()]
    headers = [
        "workload", "sparsity", "batch size", "study key", "best trial", "steps",
        *params, "trials", *STATUSES, "other",
    ]
    rows, classes = [], []
    for _, r in best.iterrows():
        has = bool(np.isfinite(float(r["steps"])))
        rows.append(
            [
                str(r["workload"]),
                sparsity(r["sparsity"]),
                fmt(r["batch_size"]),
                str(r["study_key"] or "—"),
                fmt(r["best_trial_index"]) if has else "—",
                steps(r["steps"]) if has else "no result",
                *(fmt(r[p]) for p in params),
                fmt(r["n_trials"]),
                *(fmt(r[f"n_{s}"]) for s in STATUSES),
                fmt(r["n_other"]),
            ]
        )
        classes.append("" if has else "missing")
    return Table(headers, rows, text_columns=4, row_classes=classes)


def fit_table(summary: Mapping[str, Any]) -> Table:
    """One row per curve: fit with intervals, regime boundaries, batch sizes without result."""
    headers = [
        "workload", "sparsity", "points", "S_min", "S_min CI", "B_crit", "log2 B_crit",
        "B_crit CI", "B_crit at bound", "fit RMSE (log)", "bootstrap fits",
        "perfect scaling ends at", "max. parallelism from", "batch sizes without result",
    ]
    rows = []
    for c in summary["curves"]:
        f, g = c["fit"], c["regimes"]
        frac = f["bootstrap_fraction_fit"]
        rows.append(
            [
                str(c["workload"]),
                sparsity(c["sparsity"]),
                str(len(c["batch_sizes"])),
                steps(f["s_min"]),
                interval(f["s_min_ci"]),
                fmt(f["b_crit"]),
                fmt(f["log2_b_crit"], 3),
                interval(f["b_crit_ci"]),
                fmt(f["at_bound"]),
                fmt(f["rmse_log"], 3),
                "—" if frac is None else f"{100 * frac:.0f}% of {f['bootstrap_resamples']}",
                fmt(g["perfect_scaling_end"]),
                fmt(g["max_parallelism_onset"]),
                ", ".join(str(b) for b in c["missing_batch_sizes"]) or "—",
            ]
        )
    return Table(headers, rows, text_columns=1)


def comparison_table(summary: Mapping[str, Any]) -> Table:
    """One row per sparse curve: mean step ratio over dense perfect scaling, B_crit ratio."""
    headers = [
        "workload", "sparsity", "dense perfect scaling up to", "batch sizes used",
        "geo-mean steps ratio", "steps ratio CI", "log2 ratio", "B_crit ratio",
        "B_crit ratio CI", "bootstrap pairs fitted",
    ]
    rows = []
    for c in summary["sparse_vs_dense"]["summary"]:
        frac = c["b_crit_ratio_fraction_fit"]
        rows.append(
            [
                str(c["workload"]),
                sparsity(c["sparsity"]),
                fmt(c["dense_perfect_scaling_end"]),
                ", ".join(str(b) for b in c["perfect_scaling_batch_sizes"]) or "—",
                fmt(c["geomean_ratio"], 3),
                interval(c["geomean_ratio_ci"], 3),
                fmt(c["log2_ratio"], 3),
                fmt(c["b_crit_ratio"], 3),
                interval(c["b_crit_ratio_ci"], 3),
                "—" if frac is None else f"{100 * frac:.0f}%",
            ]
        )
    return Table(headers, rows, text_columns=1)


def ratio_table(summary: Mapping[str, Any]) -> Table | None:
    """Sparse/dense step ratio per batch size (None without any ratio)."""
    ratios = pd.DataFrame(summary["sparse_vs_dense"]["ratios"])
    if not len(ratios):
        return None
    pivot = ratios.pivot_table(
        index=["workload", "sparsity"], columns="batch_size", values="ratio", aggfunc="first"
    )
    rows = [
        [str(w), sparsity(s), *(fmt(v, 3) for v in vals)]
        for (w, s), vals in zip(pivot.index, pivot.to_numpy(), strict=True)
    ]
    return Table(["workload", "sparsity", *(str(b) for b in pivot.columns)], rows, text_columns=1)


def missing_table(
    best: pd.DataFrame, expected_status: Sequence[Mapping[str, Any]] | None
) -> Table | None:
    """Studies without a result: expected ones with their state, else those with trials."""
    if expected_status is not None:
        missing = [e for e in expected_status if e["state"] != "result"]
        rows = [
            [str(e["workload"]), sparsity(e["sparsity"]), str(e["batch_size"]), e["state"],
             str(e["n_trials"])]
            for e in missing
        ]
        headers = ["workload", "sparsity", "batch size", "state", "trials"]
    else:
        without = best[~np.isfinite(best["steps"].astype(float))] if len(best) else best
        rows = [
            [str(r["workload"]), sparsity(r["sparsity"]), str(r["batch_size"]),
             str(r["n_trials"])]
            for _, r in without.iterrows()
        ]
        headers = ["workload", "sparsity", "batch size", "trials"]
    return Table(headers, rows, text_columns=1) if rows else None


def expected_study_status(
    best: pd.DataFrame, expected: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """For each expected study: ``result``, ``no result yet`` (trials, none complete) or
    ``not started`` (no trials)."""
    out = []
    for item in expected:
        workload = str(item.get("workload"))
        sparsity_value = float(item.get("sparsity", float("nan")))
        batch_size = int(item.get("batch_size", -1))
        rows = (
            best[
                (best["workload"] == workload)
                & np.isclose(best["sparsity"].astype(float), sparsity_value, rtol=0.0, atol=1e-9)
                & (best["batch_size"].astype(int) == batch_size)
            ]
            if len(best)
            else best
        )
        if len(rows) == 0:
            state = "not started"
        elif np.isfinite(float(rows["steps"].iloc[0])):
            state = "result"
        else:
            state = "no result yet"
        out.append(
            {
                "workload": workload,
                "sparsity": sparsity_value,
                "batch_size": batch_size,
                "state": state,
                "n_trials": int(rows["n_trials"].iloc[0]) if len(rows) else 0,
            }
        )
    return out
