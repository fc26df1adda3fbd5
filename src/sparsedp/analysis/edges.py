"""Search-edge warnings: a study's best trial close to a bound of its searched range.

A best trial whose metaparameter sits near a bound of the range searched for it (within
``margin`` of 0 or 1 in the unit interval of that dimension, see
:meth:`sparsedp.search.space.Dimension.to_unit`) suggests that a better value lies outside the
range: the study's steps-to-result may be an overestimate and the range may be too narrow.
For a ``reverse-log`` dimension (momentum) the unit interval's 0 is the *upper* bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from sparsedp.search.space import SearchSpace

EDGE_MARGIN = 0.05
"""Distance from a bound, in the unit interval of a dimension, that counts as "at the edge"."""


@dataclass(frozen=True)
class EdgeHit:
    """One metaparameter of a best trial at the edge of its searched range."""

    name: str
    value: float
    unit: float  # position in the unit interval (outside [0, 1]: beyond the range)
    side: str  # "lower" or "upper": which bound of the *value* range it is near
    bound: float
    scale: str
    margin: float = EDGE_MARGIN

    def describe(self) -> str:
        """One sentence naming the metaparameter and the bound."""
        return (f"{self.name} = {self.value:.4g} is within {self.margin:.0%} of the {self.side} "
                f"bound {self.bound:g} of its searched range ({self.scale} scale): the range "
                "may be too narrow")


def edge_hits(
    values: Mapping[str, object], space: SearchSpace, margin: float = EDGE_MARGIN
) -> list[EdgeHit]:
    """The searched metaparameters of ``values`` (a best trial) within ``margin`` of a bound.

    Metaparameters missing from ``values`` (or NaN) are skipped.
    """
    hits = []
    for dim in space.dimensions:
        raw = values.get(dim.name)
        if raw is None or raw is pd.NA:
            continue
        value = float(raw)  # type: ignore[arg-type]
        if not math.isfinite(value):
            continue
        u = dim.to_unit(value)
        if not math.isfinite(u) or margin <= u <= 1.0 - margin:
            continue
        near_zero = u < margin
        # u = 0 is the low bound, except on a reverse-log scale, where it is the high one
        lower = near_zero != (dim.scale == "reverse-log")
        hits.append(EdgeHit(dim.name, value, u, "lower" if lower else "upper",
                            dim.low if lower else dim.high, dim.scale, margin))
    return hits


def search_edges(
    best: pd.DataFrame, spaces: Mapping[str, SearchSpace], margin: float = EDGE_MARGIN
) -> pd.DataFrame:
    """Edge warnings of a :func:`~sparsedp.analysis.curves.best_trials` table.

    ``spaces`` maps a ``study_key`` to the study's search space; studies without a result
    or without a known space are skipped. One row per hit: ``workload, sparsity,
    batch_size, study_key, metaparameter, value, unit, side, bound, scale, message``.
    """
    columns = ["workload", "sparsity", "batch_size", "study_key", "metaparameter", "value",
               "unit", "side", "bound", "scale", "message"]
    rows = []
    for _, row in best.iterrows() if best is not None else ():
        space = spaces.get(str(row.get("study_key")))
        steps = row.get("steps")
        if space is None or steps is None or not math.isfinite(float(steps)):
            continue
        for hit in edge_hits(row.to_dict(), space, margin):
            rows.append([row["workload"], float(row["sparsity"]), int(row["batch_size"]),
                         row["study_key"], hit.name, hit.value, hit.unit, hit.side, hit.bound,
                         hit.scale, hit.describe()])
    return pd.DataFrame(rows, columns=columns)
