"""Self-contained HTML report (figures embedded as PNG) and ``summary.json``.

The page is rendered from the Jinja2 templates in ``templates/``, in this order: findings
(short sentences with the answer), figures, tables, then the configuration. Other parts of
sparsedp add findings and sections through :mod:`sparsedp.report.sections`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from sparsedp.analysis.data_size import with_curve_labels
from sparsedp.analysis.summary import analysis_to_dict, analyze, to_jsonable
from sparsedp.report.figures import make_figures
from sparsedp.report.findings import FindingGroup, arrange_findings, measured_findings
from sparsedp.report.format import flatten, sparsity
from sparsedp.report.notes import experiment_name, is_lossy, precision_note, stopping_note
from sparsedp.report.overhead_findings import overhead_findings
from sparsedp.report.robustness import robustness_parts, robustness_summary
from sparsedp.report.sections import PLACES, FindingSource, ReportInputs, Section
from sparsedp.report.tables import (
    Table,
    best_table,
    comparison_table,
    expected_study_status,
    fit_table,
    key_value_table,
    missing_table,
    ratio_table,
)
from sparsedp.search.space import SearchSpace

LEVEL_LABELS = {
    "ok": "",
    "warning": "caveat",
    "not-enough-results": "not enough results",
    "pending": "pending",
}
"""Badge shown before a finding of each level (none for ``ok``)."""

_ENV = Environment(
    loader=PackageLoader("sparsedp.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _render_sections(sections: Iterable[Section], inputs: ReportInputs) -> dict[str, list[Markup]]:
    """Each extra section rendered from its own template, by place."""
    out: dict[str, list[Markup]] = {place: [] for place in PLACES}
    for section in sections:
        body = _ENV.get_template(section.template).render(**section.context(inputs))
        out[section.place].append(
            Markup(
                _ENV.get_template("section.html").render(
                    section_id=section.id,
                    section_title=section.title,
                    heading="h3",
                    body=Markup(body),
                )
            )
        )
    return out


def _workload_labels(best: pd.DataFrame) -> dict[str, str]:
    labels: dict[str, str] = {}
    if not len(best) or "dataset_label" not in best:
        return labels
    for workload, rows in best.groupby("workload", sort=True):
        values = rows["dataset_label"].dropna()
        if len(values):
            labels[str(workload)] = str(values.iloc[0])
    return labels


def _flat(groups: Sequence[FindingGroup]) -> list[dict[str, Any]]:
    return [f.to_dict() for g in groups for f in g.findings]


def write_report(
    trials_df: pd.DataFrame,
    out_dir: str | Path,
    *,
    experiment_config: dict,
    provenance: dict,
    engine_notes: dict,
    analysis_options: Mapping[str, Any] | None = None,
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = 120,
    finding_sources: Sequence[FindingSource] = (),
    sections: Sequence[Section] = (),
    repeats: pd.DataFrame | None = None,
    search_spaces: Mapping[str, SearchSpace] | None = None,
) -> Path:
    """Write ``out_dir/report.html``, ``out_dir/summary.json`` and ``out_dir/figures/``.

    ``analysis_options`` are passed to :func:`sparsedp.analysis.analyze` (e.g.
    ``n_resamples``); ``formats`` are those saved under ``figures/`` (PNG is always
    embedded), at ``dpi``. If ``experiment_config["expected_studies"]`` lists dicts with
    ``workload``, ``sparsity`` and ``batch_size``, studies without a result are listed.
    ``finding_sources`` add findings to the top of the page and ``sections`` add parts from
    their own templates (:mod:`sparsedp.report.sections`). ``repeats`` (stored seed
    repeats, :func:`sparsedp.store.repeats_frame`) add error bars, a seed-spread finding per
    curve and step-ratio intervals over trials and seeds; ``search_spaces`` (by study key)
    add a warning per best trial at the edge of its searched range; both enter through the
    same hooks (:mod:`sparsedp.report.robustness`). Returns the path of ``report.html``.
    """
    out = Path(out_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    trials_df = with_curve_labels(trials_df)  # a training-set size is part of a curve
    repeats = with_curve_labels(repeats, trials_df)
    options = dict(analysis_options or {})
    if repeats is not None:
        options["repeats"] = repeats
    analysis = analyze(trials_df, **options)
    summary = analysis_to_dict(analysis)
    best = analysis.best
    name = experiment_name(trials_df, experiment_config)
    labels = (
        sorted(set(str(v) for v in trials_df["dataset_label"].dropna()))
        if trials_df is not None and "dataset_label" in trials_df
        else []
    )
    figures = make_figures(analysis, fig_dir, formats, dpi)
    inputs = ReportInputs(
        analysis=analysis,
        summary=summary,
        config=experiment_config,
        provenance=provenance,
        engine_notes=engine_notes,
        out_dir=out,
        formats=tuple(formats),
        dpi=dpi,
    )

    expected = experiment_config.get("expected_studies")
    expected_status = expected_study_status(best, expected) if isinstance(expected, list) else None
    findings = measured_findings(summary, expected_status)
    findings.extend(overhead_findings(summary))  # each beside its curve's fitted B_crit
    own_sources, own_sections = robustness_parts(search_spaces)
    finding_sources = [*own_sources, *finding_sources]
    sections = [*own_sections, *sections]
    for source in finding_sources:
        findings.extend(source(inputs))
    workloads = list(dict.fromkeys(str(c["workload"]) for c in summary["curves"]))
    general, per_workload = arrange_findings(findings, workloads)
    rendered_sections = _render_sections(sections, inputs)
    figures = figures + inputs.figures

    opts = summary["options"]
    n_missing = (
        sum(1 for e in expected_status if e["state"] != "result") if expected_status else 0
    )
    note = " ".join(filter(None, [stopping_note(engine_notes, trials_df),
                                  precision_note(trials_df)]))
    context = {
        "name": name,
        "labels": labels,
        "lossy_labels": [label for label in labels if is_lossy(label)],
        "level_labels": LEVEL_LABELS,
        "general_findings": general,
        "workload_findings": per_workload,
        "workload_labels": _workload_labels(best),
        "sections": rendered_sections,
        "figures": figures,
        "counts": summary["counts"],
        "options": opts,
        "confidence_pct": f"{100 * opts['confidence']:.0f}",
        "n_resamples": opts["n_resamples"],
        "tol_pct": f"{100 * opts['tol']:g}",
        "fraction_pct": f"{100 * opts['fraction']:g}",
        "dense_label": sparsity(opts["dense_sparsity"]),
        "stopping_note": note,
        "fit_table": fit_table(summary),
        "comparison_table": comparison_table(summary),
        "ratio_table": ratio_table(summary),
        "best_table": best_table(best),
        "expected_status": expected_status,
        "n_expected": len(expected_status or []),
        "n_missing": n_missing,
        "missing_table": missing_table(best, expected_status),
        "status_table": Table(
            ["status", "trials"],
            [[s, str(n)] for s, n in summary["counts"]["by_status"].items()],
            text_columns=1,
        ),
        "config_table": key_value_table(flatten(experiment_config), ["setting", "value"]),
        "engine_table": (
            key_value_table(flatten(engine_notes), ["note", "value"]) if engine_notes else None
        ),
        "provenance_table": key_value_table(flatten(provenance), ["item", "value"]),
    }
    path = out / "report.html"
    path.write_text(_ENV.get_template("report.html").render(**context), encoding="utf-8")

    full = dict(summary)
    full.update(
        experiment=name,
        dataset_labels=labels,
        findings=_flat(general) + [f for g in per_workload.values() for f in _flat(g)],
        config=experiment_config,
        provenance=provenance,
        engine_notes=engine_notes,
        expected_studies=expected_status,
        figures=[str(p.relative_to(out)) for f in figures for p in f.files],
        robustness=robustness_summary(analysis, search_spaces),
    )
    (out / "summary.json").write_text(
        json.dumps(to_jsonable(full), indent=2, allow_nan=False), encoding="utf-8"
    )
    return path
