"""The ``[refine]`` table: a refinement stage after each study's search (beyond the paper)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sparsedp.search.refine import DEFAULT_AROUND, DEFAULT_MARGIN, REFINE_BASE
from sparsedp.specs.values import is_int, is_number


@dataclass(frozen=True)
class RefineOptions:
    """``trials`` more trials per study in a box around its ``around`` best search trials,
    widened by ``margin`` (a share of each dimension's scaled range) on every side
    (:mod:`sparsedp.search.refine`). Never part of a study's key."""

    trials: int
    around: int = DEFAULT_AROUND
    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        if not is_int(self.trials) or not 1 <= self.trials < REFINE_BASE:
            raise ValueError(f"refine trials must be a whole number in 1..{REFINE_BASE - 1}, "
                             f"got {self.trials!r}")
        if not is_int(self.around) or self.around < 1:
            raise ValueError(f"refine around must be a whole number >= 1, got {self.around!r}")
        if not is_number(self.margin) or not math.isfinite(self.margin) or \
                not 0 <= self.margin <= 0.5:
            raise ValueError(f"refine margin must be in [0, 0.5], got {self.margin!r}")
        object.__setattr__(self, "margin", float(self.margin))
