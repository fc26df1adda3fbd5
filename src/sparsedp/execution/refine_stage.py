"""Which refinement trials a study still needs (``[refine]``; :mod:`sparsedp.search.refine`).

A study's refinement starts once its search is finished (every search trial stored and none
left to rerun): its box is then fixed by the ``around`` best stored search trials, and its
refine trials are trial indices ``REFINE_BASE + j`` for ``j < trials``. A study whose search
has fewer complete trials than ``around`` gets no refinement (its note says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sparsedp.execution.records import Ledger
from sparsedp.search.refine import REFINE_BASE, RefineBox, refine_box, refine_points
from sparsedp.specs import ExperimentSpec, StudySpec


@dataclass(frozen=True)
class RefineWork:
    """A study's refinement: its box, the refine trials still to run and their points."""

    box: RefineBox | None
    pending: list[int] = field(default_factory=list)
    points: dict[int, dict[str, float | int]] = field(default_factory=dict)
    note: str = ""

    @property
    def info(self) -> dict:
        """What a refine trial stores about its stage."""
        return {"box": self.box.to_dict() if self.box else None, "note": self.note}


def refine_work(spec: ExperimentSpec, ledger: Ledger, study: StudySpec,
                units: np.ndarray, retry_failed: bool = False) -> RefineWork:
    """The refinement of ``study`` given what ``ledger`` holds (its search must be done)."""
    options = spec.refine
    if options is None:
        return RefineWork(None)
    rows = ledger.completed_trials(study.key)  # (steps, index), lowest first
    search = [(steps, index) for steps, index in rows if index < spec.trials]
    if len(search) < options.around:
        return RefineWork(None, note=f"no refinement: {len(search)} complete search trial(s), "
                                     f"fewer than around = {options.around}")
    best = [index for _, index in search[: options.around]]
    box = refine_box(units, best, options.margin)
    stored = ledger.finished_trials(study.key)
    points = refine_points(study.space(), box, options.trials)
    pending = [REFINE_BASE + j for j in range(options.trials)
               if REFINE_BASE + j not in stored
               or (retry_failed and stored[REFINE_BASE + j] == "failed")]
    return RefineWork(box, pending, {REFINE_BASE + j: p for j, p in enumerate(points)},
                      f"around trials {', '.join(map(str, best))}")


def is_refine(index: int) -> bool:
    """Whether a trial index is a refine trial's."""
    return index >= REFINE_BASE
