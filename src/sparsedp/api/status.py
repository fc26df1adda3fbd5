"""What :meth:`Experiment.run` and :meth:`Experiment.status` return."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sparsedp.analysis.data_size import curve_workload
from sparsedp.analysis.edges import EdgeHit
from sparsedp.api.errors import EXIT_OK, EXIT_STOPPED, EXIT_TRIALS_FAILED
from sparsedp.specs import StudySpec

STATUSES = ("complete", "incomplete", "infeasible", "stopped", "failed")
"""Trial statuses, in the order tables show them."""
METAPARAMETERS = ("lr", "momentum", "decay_steps", "end_lr_factor")


@dataclass(frozen=True)
class RunResult:
    """What one :meth:`Experiment.run` did, and what is still missing afterwards."""

    planned: int  # trials that were missing when the run started
    finished: int  # trials stored by this run
    failed_attempts: int
    statuses: dict[str, int]  # stored trials of this run by status
    failed: int  # trials of the experiment stored as failed (retry with retry_failed=True)
    missing: int  # trials of the experiment without a stored result
    elapsed_s: float

    @property
    def exit_code(self) -> int:
        """``sparsedp run``'s exit code for this outcome: 0 every trial has a result, 4 some
        are missing, 3 some are stored as failed."""
        if self.missing:
            return EXIT_STOPPED
        return EXIT_TRIALS_FAILED if self.failed else EXIT_OK

    def describe(self) -> str:
        """One line, e.g. ``ran 24 of 24 missing trials in 93 s (7 complete, 17 stopped);
        failed attempts: 0``."""
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) or "nothing"
        return (f"ran {self.finished} of {self.planned} missing trials in {self.elapsed_s:.0f} s "
                f"({counts}); failed attempts: {self.failed_attempts}")


@dataclass(frozen=True)
class StudyStatus:
    """Stored progress of one study: trials done, counts by status, its best trial."""

    study: StudySpec
    done: int
    counts: dict[str, int]  # every status of STATUSES, zero included
    best_steps: int | None
    best_trial: int | None
    best_metaparameters: dict[str, float] = field(default_factory=dict)
    edges: list[EdgeHit] = field(default_factory=list)  # best metaparameters at a range edge
    converged: bool = False  # search adequacy (docs/analysis.md): shown converged
    adequacy_note: str = ""  # why not, when it is not
    refined: int = 0  # refine-stage trials stored ([refine]); not in ``done`` or ``counts``
    refined_best_steps: int | None = None  # the best over search and refine trials


@dataclass(frozen=True)
class ExperimentStatus:
    """What ``sparsedp status`` shows: every current study, and how many stored trials
    belong to studies of earlier configurations of the experiment."""

    name: str
    trials_per_study: int
    studies: list[StudyStatus]
    earlier_trials: int  # stored trials of studies of earlier configurations (kept)
    earlier_studies: int
    saved: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    """Unfinished trials saved mid-run, per current study key: ``(trial index, step)``; the
    next run continues them (:mod:`sparsedp.execution.trial_checkpoints`)."""

    def to_frame(self) -> pd.DataFrame:
        """One row per study: workload, sparsity, batch_size, study_key, done, the status
        counts, best_steps, best_trial and the best trial's metaparameters."""
        rows = []
        for s in self.studies:
            rows.append({
                "workload": curve_workload(s.study.workload, s.study.train_examples),
                "sparsity": s.study.sparsity,
                "batch_size": s.study.batch_size, "study_key": s.study.key, "done": s.done,
                **s.counts, "best_steps": s.best_steps, "best_trial": s.best_trial,
                **{k: s.best_metaparameters.get(k) for k in METAPARAMETERS},
                "converged": s.converged, "adequacy_note": s.adequacy_note,
                "refined": s.refined, "refined_best_steps": s.refined_best_steps,
            })
        frame = pd.DataFrame.from_records(rows)
        for column in ("best_steps", "best_trial", "refined_best_steps"):
            if column in frame:
                frame[column] = frame[column].astype("Int64")
        return frame
