"""Experiment reports: a self-contained HTML page and a JSON summary."""

from sparsedp.report.html import expected_study_status, experiment_name, write_report

__all__ = ["expected_study_status", "experiment_name", "write_report"]
