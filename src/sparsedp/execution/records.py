"""What a finished trial leaves behind, independent of where it is stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial: its identity, metaparameters, outcome and measurements."""

    study_key: str
    trial_index: int
    seed: int
    metaparameters: dict[str, float]
    status: str
    steps_to_result: int | None
    steps_taken: int
    final_val_error: float | None
    final_error_exact: bool
    curve: list[tuple[int, float, bool]]
    wall_time: float
    train_time: float
    eval_time: float
    prune_time: float
    samples_per_second: float
    eval_share: float
    eval_examples: int
    message: str
    attempts: int
    peak_rss_mb: float = 0.0
    mask_report: dict[str, Any] | None = None
    engine: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    stage: str = "search"  # "search" (the paper's protocol) or "refine" (sparsedp.search.refine)
    stage_info: dict[str, Any] | None = None  # a refine trial's box


class Ledger(Protocol):
    """Where an experiment's trials are kept (the SQLite store implements this)."""

    def register_experiment(self, name: str, config: dict, studies: list[dict]) -> None: ...

    def finished_trials(self, study_key: str) -> dict[int, str]: ...

    def best_steps(self, study_key: str) -> tuple[int, int] | None: ...

    def completed_steps(self, study_key: str) -> list[int]: ...

    def completed_trials(self, study_key: str) -> list[tuple[int, int]]: ...

    def stopped_steps(self, study_key: str) -> dict[int, int]: ...

    def write_trial(self, trial: TrialRecord, *, replace: bool = False) -> None: ...

    def record_failure(
        self, study_key: str, trial_index: int, attempt: int, error: str, traceback: str
    ) -> None: ...

    def failure_count(self, study_key: str, trial_index: int) -> int: ...
