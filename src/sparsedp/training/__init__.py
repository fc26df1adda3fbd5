"""Training: optimizers (TF semantics; AdamW), schedules, workloads, the steps-to-result
trainer."""

from sparsedp.training.evaluation import EvalResult, Evaluator, error_allowance
from sparsedp.training.optimizers import OPTIMIZERS, AdamW, TFOptimizer, make_optimizer
from sparsedp.training.schedules import SCHEDULES, Schedule
from sparsedp.training.trainer import (
    COMPLETE,
    INCOMPLETE,
    INFEASIBLE,
    STATUSES,
    STOPPED,
    EngineSettings,
    TrialResult,
    TrialRun,
    run_trial,
)
from sparsedp.training.trial_config import TrialConfig
from sparsedp.training.workloads import METAPARAMETERS, WORKLOADS, Workload, get_workload

__all__ = [
    "COMPLETE",
    "INCOMPLETE",
    "INFEASIBLE",
    "METAPARAMETERS",
    "OPTIMIZERS",
    "SCHEDULES",
    "STATUSES",
    "STOPPED",
    "WORKLOADS",
    "AdamW",
    "EngineSettings",
    "EvalResult",
    "Evaluator",
    "Schedule",
    "TFOptimizer",
    "TrialConfig",
    "TrialResult",
    "TrialRun",
    "Workload",
    "error_allowance",
    "get_workload",
    "make_optimizer",
    "run_trial",
]
