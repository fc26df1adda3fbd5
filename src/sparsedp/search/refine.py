"""The refinement stage (beyond the paper): more quasi-random trials around a study's best.

After a study's search (its first-stage trials, the paper's protocol), ``[refine]`` runs
``trials`` more trials in a box of the search space's unit cube (the scaled coordinates every
dimension is searched in: log, reverse-log or linear) around the study's ``around`` best
search trials: the smallest box holding their points, widened by ``margin`` on every side and
clipped to the cube. The box's points are the first Sobol points of the space's dimension,
mapped into the box, so the stage is deterministic and resumable. Refinement never changes the
search's trials or the study's key: its trials are stored beside them with stage ``refine``
(docs/analysis.md, "Refinement").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sparsedp.search.sobol import sobol_unit_points
from sparsedp.search.space import SearchSpace

REFINE_BASE = 500_000
"""Refine trial ``j`` of a study is stored as trial index ``REFINE_BASE + j`` and seeded with
``seed · 1,000,003 + REFINE_BASE + j``: apart from the search's indices (below it) and the
seed repeats' seeds (counted down from the top of the seed block)."""
DEFAULT_MARGIN = 0.1
DEFAULT_AROUND = 3


@dataclass(frozen=True)
class RefineBox:
    """A box in the unit cube of a study's search space (one ``low``/``high`` per dimension)."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {"low": list(self.low), "high": list(self.high)}


def refine_box(units: np.ndarray, best: Sequence[int], margin: float = DEFAULT_MARGIN
               ) -> RefineBox:
    """The box around the unit points ``units[best]`` (the study's best search trials)."""
    if not len(best):
        raise ValueError("a refine box needs at least one trial")
    chosen = np.asarray(units, dtype=float)[list(best)]
    low = np.clip(chosen.min(axis=0) - margin, 0.0, 1.0)
    high = np.clip(chosen.max(axis=0) + margin, 0.0, 1.0)
    return RefineBox(tuple(float(v) for v in low), tuple(float(v) for v in high))


def refine_points(space: SearchSpace, box: RefineBox, n: int) -> list[dict[str, float | int]]:
    """The first ``n`` Sobol points of the space's dimension, mapped into ``box`` and then
    through each dimension (as :meth:`SearchSpace.points` maps the search's)."""
    units = sobol_unit_points(len(space.dimensions), n, space.sequence)
    low, high = np.asarray(box.low), np.asarray(box.high)
    inside = low + units * (high - low)
    return [
        {d.name: d.from_unit(float(u), space.integer_mapping)
         for d, u in zip(space.dimensions, row, strict=True)}
        for row in inside
    ]
