"""The fitted critical batch sizes of an analysis as a table."""

from __future__ import annotations

import pandas as pd

from sparsedp.analysis import Analysis


def critical_batch_sizes(analysis: Analysis) -> pd.DataFrame:
    """One row per curve (workload, sparsity): the fit's ``s_min`` and ``b_crit`` with their
    bootstrap intervals (``*_low``/``*_high``; NaN without one), ``n_points``, ``at_bound``
    (B_crit not identified by the measured range) and the regime boundaries."""
    rows = []
    for key, curve in analysis.curves.items():
        fit, boot, reg = analysis.fits[key], analysis.bootstraps[key], analysis.regimes[key]
        s_ci = boot.s_min_ci if boot and boot.s_min_ci else (float("nan"),) * 2
        b_ci = boot.b_crit_ci if boot and boot.b_crit_ci else (float("nan"),) * 2
        rows.append({
            "workload": curve.workload, "sparsity": curve.sparsity,
            "n_points": len(curve),
            "s_min": fit.s_min if fit else float("nan"),
            "s_min_low": s_ci[0], "s_min_high": s_ci[1],
            "b_crit": fit.b_crit if fit else float("nan"),
            "b_crit_low": b_ci[0], "b_crit_high": b_ci[1],
            "at_bound": fit.at_bound if fit else None,
            "perfect_scaling_end": reg.perfect_scaling_end,
            "max_parallelism_onset": reg.max_parallelism_onset,
        })
    return pd.DataFrame.from_records(rows, columns=[
        "workload", "sparsity", "n_points", "s_min", "s_min_low", "s_min_high", "b_crit",
        "b_crit_low", "b_crit_high", "at_bound", "perfect_scaling_end",
        "max_parallelism_onset"])
