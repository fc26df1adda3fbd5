"""sparsedp: data parallelism in training networks pruned at initialization.

The Python API (docs/python-api.md) is importable from here, e.g.
``sparsedp.Experiment.from_file("examples/quick.toml")``; it loads on first use, so importing
a submodule (``sparsedp.data``, …) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sparsedp.version import __version__ as __version__

if TYPE_CHECKING:
    from sparsedp.api import *  # noqa: F403


# The names of sparsedp.api.__all__ (a test keeps them equal), so that looking up anything
# else (e.g. ``from sparsedp import plugins``) does not import the whole API.
_API_NAMES = frozenset((
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
    "RunEvent",
    "RunFinished",
    "RunInterrupted",
    "RunNote",
    "RunPlanned",
    "RepeatEvent",
    "RepeatResult",
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
))


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        import sparsedp.api as api

        return getattr(api, name)
    raise AttributeError(f"module 'sparsedp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API_NAMES])
