"""Experiment reports: a self-contained HTML page and a JSON summary.

The page leads with the findings; other parts of sparsedp add findings (``finding_sources``)
and sections (``sections``) to :func:`write_report`; see :mod:`sparsedp.report.sections`.
"""

from sparsedp.report.findings import (
    KIND_TITLES,
    PREDICTED_VS_MEASURED,
    Finding,
    predicted_vs_measured,
)
from sparsedp.report.html import write_report
from sparsedp.report.notes import experiment_name
from sparsedp.report.sections import FindingSource, ReportInputs, Section
from sparsedp.report.tables import expected_study_status

__all__ = [
    "KIND_TITLES",
    "PREDICTED_VS_MEASURED",
    "Finding",
    "FindingSource",
    "ReportInputs",
    "Section",
    "expected_study_status",
    "experiment_name",
    "predicted_vs_measured",
    "write_report",
]
