"""Analysis of trial tables: best trials, curves, scaling fits, regimes, sparse vs dense.

Definitions are documented in ``docs/analysis.md``.
"""

from sparsedp.analysis.compare import (
    CriticalBatchRatio,
    PerfectScalingRatio,
    critical_batch_ratio,
    perfect_scaling_ratio,
    sparse_dense_ratios,
)
from sparsedp.analysis.curves import (
    METAPARAMETERS,
    STATUSES,
    Curve,
    best_trials,
    normalize_status,
    normalized_steps,
    perfect_scaling,
    result_steps,
    searched_metaparameters,
    steps_curves,
    study_outcomes,
)
from sparsedp.analysis.fit import (
    BootstrapFit,
    ScalingFit,
    bootstrap_scaling,
    fit_scaling,
    percentile_interval,
)
from sparsedp.analysis.overhead import OverheadCrit, overhead_batch_size, overhead_crit
from sparsedp.analysis.regimes import (
    Regimes,
    max_parallelism_onset,
    perfect_scaling_end,
    regimes,
)
from sparsedp.analysis.summary import (
    Analysis,
    analysis_to_dict,
    analyze,
    status_counts,
    summarize,
    to_jsonable,
)

__all__ = [
    "METAPARAMETERS",
    "STATUSES",
    "Analysis",
    "BootstrapFit",
    "CriticalBatchRatio",
    "Curve",
    "OverheadCrit",
    "PerfectScalingRatio",
    "Regimes",
    "ScalingFit",
    "analysis_to_dict",
    "analyze",
    "best_trials",
    "bootstrap_scaling",
    "critical_batch_ratio",
    "fit_scaling",
    "max_parallelism_onset",
    "normalize_status",
    "normalized_steps",
    "overhead_batch_size",
    "overhead_crit",
    "percentile_interval",
    "perfect_scaling",
    "perfect_scaling_end",
    "perfect_scaling_ratio",
    "regimes",
    "result_steps",
    "searched_metaparameters",
    "sparse_dense_ratios",
    "status_counts",
    "steps_curves",
    "study_outcomes",
    "summarize",
    "to_jsonable",
]
