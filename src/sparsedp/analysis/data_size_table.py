"""B_crit (fitted, and at 20% overhead) against training-set size, per sparsity: the table
behind the report's data-size figure (Shallue et al.'s MNIST-subsets design)."""

from __future__ import annotations

import math

import pandas as pd

from sparsedp.analysis.data_size import curve_sizes
from sparsedp.analysis.summary import Analysis

SIZE_COLUMNS = ("base_workload", "train_examples", "sparsity", "workload", "b_crit",
                "b_crit_low", "b_crit_high", "at_bound", "b_overhead", "b_overhead_low",
                "b_overhead_high", "overhead_state")


def data_size_table(analysis: Analysis) -> pd.DataFrame:
    """Per (base workload, training-set size, sparsity): the fitted B_crit with its interval
    and the 20%-overhead critical batch size with its interval (NaN where there is none).
    Empty without sizes."""
    sizes = curve_sizes(analysis.trials)
    rows = []
    for key, curve in analysis.curves.items():
        if curve.workload not in sizes:
            continue
        base, n = sizes[curve.workload]
        fit, boot = analysis.fits.get(key), analysis.bootstraps.get(key)
        over = analysis.overheads.get(key)
        ci = boot.b_crit_ci if boot is not None and boot.b_crit_ci else (math.nan, math.nan)
        oci = over.ci if over is not None and over.ci else (math.nan, math.nan)
        rows.append({
            "base_workload": base, "train_examples": n, "sparsity": curve.sparsity,
            "workload": curve.workload,
            "b_crit": fit.b_crit if fit else math.nan, "b_crit_low": ci[0], "b_crit_high": ci[1],
            "at_bound": bool(fit.at_bound) if fit else False,
            "b_overhead": over.value if over is not None and over.value else math.nan,
            "b_overhead_low": oci[0], "b_overhead_high": oci[1],
            "overhead_state": over.state if over is not None else None,
        })
    out = pd.DataFrame(rows, columns=list(SIZE_COLUMNS))
    return out.sort_values(["base_workload", "sparsity", "train_examples"]).reset_index(drop=True)
