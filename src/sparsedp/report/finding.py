"""A finding of the report: its kind, level and sentence; shared phrasing (docs/report.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparsedp.report.format import batch
from sparsedp.report.format import sparsity as sparsity_text

OVERVIEW = "overview"
CRITICAL_BATCH = "critical-batch-size"
PREDICTED_VS_MEASURED = "predicted-vs-measured"
REGIMES = "regimes"
SPARSE_VS_DENSE = "sparse-vs-dense"
SEED_REPEATS = "seed-repeats"
SEARCH_RANGE = "search-range"
SEARCH_ADEQUACY = "search-adequacy"

KIND_TITLES: dict[str, str] = {
    OVERVIEW: "Results so far",
    CRITICAL_BATCH: "Critical batch size (fit)",
    PREDICTED_VS_MEASURED: "Predicted versus measured critical batch size",
    REGIMES: "Regimes (measured curve)",
    SPARSE_VS_DENSE: "Sparse versus dense",
    SEED_REPEATS: "Seed repeats",
    SEARCH_RANGE: "Search ranges",
    SEARCH_ADEQUACY: "Search adequacy",
}
"""Heading of each known kind, in page order; other kinds follow, titled by their name."""

OK, WARNING, NOT_ENOUGH, PENDING = "ok", "warning", "not-enough-results", "pending"
LEVELS = (OK, WARNING, NOT_ENOUGH, PENDING)
"""``ok``: a number to act on; ``warning``: a number with a caveat that matters;
``not-enough-results``: no number, and why; ``pending``: a slot nothing has filled yet."""


@dataclass(frozen=True)
class Finding:
    """One finding of the report.

    ``kind`` groups findings under a heading (:data:`KIND_TITLES`; a new kind gets its own
    heading after the known ones); ``workload`` is None for the whole experiment;
    ``sparsity`` orders findings within a kind. ``text`` is plain text (escaped on the page).
    """

    kind: str
    text: str
    workload: str | None = None
    sparsity: float | None = None
    level: str = OK
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"Finding.level {self.level!r}: use one of {', '.join(LEVELS)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``summary.json``'s ``findings``)."""
        return {
            "kind": self.kind,
            "workload": self.workload,
            "sparsity": self.sparsity,
            "level": self.level,
            "text": self.text,
            "values": dict(self.values),
        }


def _range(sizes: Sequence[int]) -> str:
    if len(sizes) == 1:
        return f"B = {batch(sizes[0])}"
    return f"B = {batch(sizes[0])}–{batch(sizes[-1])}"


def _list(sizes: Sequence[int]) -> str:
    return "B = " + ", ".join(batch(b) for b in sizes)


def _ci(ci: Sequence[float] | None, confidence: float, fmt=batch, suffix: str = "",
        note: str | None = None) -> str:
    if not ci:
        return note or "no bootstrap interval"
    return f"{100 * confidence:.0f}% interval {fmt(ci[0])}–{fmt(ci[1])}{suffix}"


def _at(sparsity: float) -> str:
    return "For the dense network" if sparsity == 0 else f"At {sparsity_text(sparsity)} sparsity"
