"""Results store: one SQLite file per experiment directory (the embedded default)."""

from sparsedp.store.frames import repeats_frame, trials_frame
from sparsedp.store.sqlite import TRIAL_COLUMNS, ResultStore

__all__ = ["TRIAL_COLUMNS", "ResultStore", "repeats_frame", "trials_frame"]
