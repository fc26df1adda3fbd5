"""The public Python API (docs/python-api.md): experiments, one trial, progress, errors.

It sits above analysis and the report and below the CLI, which is a thin layer over it.
Everything here is also available as ``sparsedp.<name>``.
"""

from sparsedp.api.batch_science import ImportResult, import_batch_science, report_results
from sparsedp.api.errors import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_STOPPED,
    EXIT_TRIALS_FAILED,
    RunInterrupted,
    SparsedpError,
)
from sparsedp.api.events import (
    AttemptFailed,
    ChecksPassed,
    RunEvent,
    RunFinished,
    RunNote,
    RunPlanned,
    StudyStarted,
    TrialChecked,
    TrialEvent,
    TrialFinished,
    TrialStarted,
    format_event,
    print_progress,
)
from sparsedp.api.experiment import Experiment
from sparsedp.api.fits import critical_batch_sizes
from sparsedp.api.repeats import RepeatEvent, RepeatResult, format_repeat_event
from sparsedp.api.status import ExperimentStatus, RunResult, StudyStatus
from sparsedp.api.trial import TrialMeasurement, measure_trial, measure_trial_config

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BUSY",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_STOPPED",
    "EXIT_TRIALS_FAILED",
    "AttemptFailed",
    "ChecksPassed",
    "Experiment",
    "ExperimentStatus",
    "ImportResult",
    "RepeatEvent",
    "RepeatResult",
    "RunEvent",
    "RunFinished",
    "RunInterrupted",
    "RunNote",
    "RunPlanned",
    "RunResult",
    "SparsedpError",
    "StudyStarted",
    "StudyStatus",
    "TrialChecked",
    "TrialEvent",
    "TrialFinished",
    "TrialMeasurement",
    "TrialStarted",
    "critical_batch_sizes",
    "format_event",
    "format_repeat_event",
    "import_batch_science",
    "measure_trial",
    "measure_trial_config",
    "print_progress",
    "report_results",
]
