"""Which stored trials are an experiment's own: the indices its configuration asks for.

Trials belong to studies, and experiments sharing a results directory share the trials of
identical studies; each counts only search trials ``0 … trials-1`` and refine trials
``REFINE_BASE + 0 … + refine.trials-1`` of them (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from sparsedp.search.refine import REFINE_BASE


@dataclass(frozen=True)
class TrialScope:
    """The trial indices an experiment's configuration asks for of each of its studies."""

    trials: int
    refine_trials: int = 0

    @classmethod
    def of(cls, config: dict | None) -> TrialScope | None:
        """The scope of a stored configuration (None: not known, e.g. imported results)."""
        trials = (config or {}).get("trials")
        if isinstance(trials, bool) or not isinstance(trials, int):
            return None
        refine = (config or {}).get("refine") or {}
        extra = refine.get("trials", 0) if isinstance(refine, dict) else 0
        return cls(trials, extra if isinstance(extra, int) and not isinstance(extra, bool)
                   else 0)

    def sql(self, column: str = "trial_index") -> tuple[str, tuple[int, ...]]:
        """A SQL condition on ``column`` and its parameters."""
        return (f"({column} < ? OR ({column} >= ? AND {column} < ?))",
                (self.trials, REFINE_BASE, REFINE_BASE + self.refine_trials))

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and (
            index < self.trials or REFINE_BASE <= index < REFINE_BASE + self.refine_trials)
