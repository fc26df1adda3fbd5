"""Hooks for other parts of sparsedp to add findings and sections to the report.

``write_report(..., finding_sources=[...], sections=[...])``:

* a :data:`FindingSource` is called with the :class:`ReportInputs` and returns
  :class:`~sparsedp.report.findings.Finding` entries; they join the measured findings at the
  top of the page under their kind's heading (e.g. ``PREDICTED_VS_MEASURED``, built with
  :func:`~sparsedp.report.findings.predicted_vs_measured`);
* a :class:`Section` names a template under ``sparsedp/report/templates/`` and a context
  function; it is rendered in its ``place``: after the findings, among the figures, among
  the tables, or in the configuration at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure as MplFigure

from sparsedp.analysis.summary import Analysis
from sparsedp.report.figures import ReportFigure, save_report_figure
from sparsedp.report.findings import Finding

PLACES = ("findings", "figures", "tables", "configuration")
"""Where a :class:`Section` can go, in page order."""


@dataclass
class ReportInputs:
    """What the report is made from, for finding sources and section contexts.

    ``summary`` is ``analysis_to_dict(analysis)``; ``config``, ``provenance`` and
    ``engine_notes`` are :func:`~sparsedp.report.write_report`'s arguments.
    """

    analysis: Analysis
    summary: Mapping[str, Any]
    config: Mapping[str, Any]
    provenance: Mapping[str, Any]
    engine_notes: Mapping[str, Any]
    out_dir: Path
    formats: Sequence[str]
    dpi: int
    figures: list[ReportFigure] = field(default_factory=list)

    def figure(self, stem: str, caption: str, fig: MplFigure) -> ReportFigure:
        """Save ``fig`` beside the report's figures (listed in ``summary.json``); render it
        in a section template with ``{{ m.figure(fig) }}``."""
        saved = save_report_figure(
            fig, self.out_dir / "figures", stem, caption, self.formats, self.dpi
        )
        self.figures.append(saved)
        return saved


FindingSource = Callable[[ReportInputs], Iterable[Finding]]
"""Returns findings to show at the top of the report."""


@dataclass(frozen=True)
class Section:
    """A part of the report from its own template.

    ``template``: a file name under ``sparsedp/report/templates/`` (it may
    ``{% import "_macros.html" as m %}`` for tables and figures); ``context`` returns the
    template's variables; ``place`` is one of :data:`PLACES`. The page gives the section an
    ``<h2>`` or ``<h3>`` with ``title`` and the anchor ``id``.
    """

    id: str
    title: str
    template: str
    context: Callable[[ReportInputs], Mapping[str, Any]]
    place: str = "tables"

    def __post_init__(self) -> None:
        if self.place not in PLACES:
            raise ValueError(f"Section {self.id!r}: place {self.place!r}, use one of {PLACES}")
