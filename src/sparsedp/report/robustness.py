"""The report's robustness parts: seed repeats and search-edge warnings.

They enter the page through the report's hooks (:mod:`sparsedp.report.sections`), like any
other part: :func:`robustness_parts` returns finding sources (a warning per best trial at the
edge of its searched range, a sentence per curve on the seed spread) and two sections
(``#seed-repeats`` and ``#search-edges``, among the tables). The scaling figures draw the
seed error bars themselves (``Analysis.seed_spread``). :func:`robustness_summary` is what
``summary.json`` carries under ``robustness``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sparsedp.analysis.edges import EDGE_MARGIN, search_edges
from sparsedp.analysis.repeats import SeedRatioIntervals, repeat_spread, seed_ratio_intervals
from sparsedp.analysis.summary import Analysis, to_jsonable
from sparsedp.report.findings import (
    OK,
    SEARCH_RANGE,
    SEED_REPEATS,
    WARNING,
    Finding,
)
from sparsedp.report.format import batch, interval, sparsity, steps, times
from sparsedp.report.sections import FindingSource, ReportInputs, Section
from sparsedp.report.tables import Table
from sparsedp.search.space import SearchSpace


def _at(s: float) -> str:
    return "For the dense network" if s == 0 else f"At {sparsity(s)} sparsity"


def _intervals(analysis: Analysis) -> SeedRatioIntervals:
    opts = analysis.options
    return seed_ratio_intervals(
        analysis.trials, analysis.best, analysis.repeats,
        n_resamples=opts["n_resamples"] or 200, seed=opts["seed"],
        confidence=opts["confidence"], dense_sparsity=opts["dense_sparsity"], tol=opts["tol"],
    )


def _spread(analysis: Analysis) -> pd.DataFrame:
    if analysis.seed_spread is not None:
        return analysis.seed_spread
    return repeat_spread(analysis.best, None)


def edge_findings(edges: pd.DataFrame) -> list[Finding]:
    """A warning per best-trial metaparameter at the edge of its searched range."""
    return [
        Finding(
            SEARCH_RANGE,
            f"{_at(float(r.sparsity))}, B = {batch(int(r.batch_size))}: the best trial's "
            f"{r.message}.",
            str(r.workload), float(r.sparsity), WARNING,
            {"batch_size": int(r.batch_size), "metaparameter": r.metaparameter,
             "value": r.value, "side": r.side, "bound": r.bound, "margin": EDGE_MARGIN},
        )
        for r in edges.itertuples()
    ]


def seed_findings(spread: pd.DataFrame) -> list[Finding]:
    """Per curve with repeats: how much its steps to result vary between seeds."""
    out = []
    repeated = spread[spread["n_runs"] > 1] if len(spread) else spread
    for (w, s), rows in repeated.groupby(["workload", "sparsity"], sort=True):
        worst = rows.loc[rows["max_over_min"].idxmax()]
        runs = sorted(set(int(n) for n in rows["n_runs"]))
        failed = int((rows["n_runs"] - rows["n_complete"]).sum())
        text = (
            f"{_at(float(s))}, {'/'.join(map(str, runs))} runs per study at the best "
            f"metaparameters (the search's best trial plus seed repeats) at "
            f"{len(rows)} batch size{'s' if len(rows) != 1 else ''}: steps to result vary "
            f"by up to {times(float(worst['max_over_min']))} between seeds (max/min, at "
            f"B = {batch(int(worst['batch_size']))})."
        )
        level = OK
        if failed:
            text += f" {failed} run{'s' if failed != 1 else ''} did not reach the goal."
            level = WARNING
        out.append(Finding(SEED_REPEATS, text, str(w), float(s), level, {
            "batch_sizes": [int(b) for b in rows["batch_size"]],
            "max_over_min": float(worst["max_over_min"]), "runs_without_result": failed,
        }))
    return out


def _spread_table(spread: pd.DataFrame) -> Table:
    rows = [
        [str(r.workload), sparsity(r.sparsity), str(r.batch_size), steps(r.best_steps),
         str(r.n_runs), str(r.n_complete), steps(r.median), steps(r.min), steps(r.max),
         f"{r.max_over_min:.3g}"]
        for r in spread.itertuples() if r.n_runs > 1
    ]
    return Table(["workload", "sparsity", "batch size", "best steps", "runs", "reached goal",
                  "median", "min", "max", "max / min"], rows, text_columns=1)


def _ci(ci: Sequence[float] | None) -> str:
    return interval(ci, 3) if ci else "—"


def _ratio_tables(intervals: SeedRatioIntervals) -> tuple[Table, Table]:
    per = Table(
        ["workload", "sparsity", "batch size", "ratio", "CI (trials)", "CI (trials + seeds)",
         "with result", "runs sparse / dense"],
        [[str(r.workload), sparsity(r.sparsity), str(r.batch_size), f"{r.ratio:.3g}",
          _ci(r.ci_trials), _ci(r.ci), f"{100 * r.fraction:.0f}%",
          f"{r.n_runs_sparse} / {r.n_runs_dense}"] for r in intervals.per_batch.itertuples()],
        text_columns=1,
    )
    ps = Table(
        ["workload", "sparsity", "batch sizes", "geo-mean ratio", "CI (trials)",
         "CI (trials + seeds)", "with result"],
        [[str(r.workload), sparsity(r.sparsity), ", ".join(map(str, r.batch_sizes)),
          f"{r.geomean_ratio:.3g}", _ci(r.ci_trials), _ci(r.ci), f"{100 * r.fraction:.0f}%"]
         for r in intervals.perfect_scaling.itertuples()],
        text_columns=1,
    )
    return per, ps


def _seed_context(inputs: ReportInputs) -> Mapping[str, Any]:
    analysis = inputs.analysis
    spread = _spread(analysis)
    per, ps = _ratio_tables(_intervals(analysis))
    n = int((spread["n_runs"] > 1).sum()) if len(spread) else 0
    return {"n_repeated": n, "spread_table": _spread_table(spread), "per_batch_table": per,
            "perfect_scaling_table": ps,
            "confidence_pct": f"{100 * analysis.options['confidence']:.0f}",
            "n_resamples": analysis.options["n_resamples"] or 200}


def _edge_context(edges: pd.DataFrame | None) -> Mapping[str, Any]:
    if edges is None:
        intro = "The studies' search spaces are not known here: edges not checked."
    elif len(edges):
        intro = (f"{len(edges)} best-trial metaparameter(s) lie within {EDGE_MARGIN:.0%} of "
                 "a bound of the searched range (in the unit interval of that dimension): "
                 "the range may be too narrow, and those studies' steps may be "
                 "overestimates.")
    else:
        intro = (f"No study's best trial lies within {EDGE_MARGIN:.0%} of a bound of its "
                 "searched ranges.")
    rows = [] if edges is None else [
        [str(r.workload), sparsity(r.sparsity), str(r.batch_size), str(r.message)]
        for r in edges.itertuples()
    ]
    return {"intro": intro,
            "table": Table(["workload", "sparsity", "batch size", "warning"], rows,
                           text_columns=1)}


def _edges(analysis: Analysis, spaces: Mapping[str, SearchSpace] | None
           ) -> pd.DataFrame | None:
    return None if spaces is None else search_edges(analysis.best, spaces)


def robustness_parts(
    search_spaces: Mapping[str, SearchSpace] | None,
) -> tuple[list[FindingSource], list[Section]]:
    """Finding sources and sections for seed repeats (from the analysis's repeats) and
    search edges (``search_spaces`` by study key; None: not checked)."""

    def edges_source(inputs: ReportInputs) -> list[Finding]:
        edges = _edges(inputs.analysis, search_spaces)
        return [] if edges is None else edge_findings(edges)

    def seeds_source(inputs: ReportInputs) -> list[Finding]:
        return seed_findings(_spread(inputs.analysis))

    sections = [
        Section("seed-repeats", "Seed repeats", "seed_repeats.html", _seed_context),
        Section("search-edges", "Search ranges", "table_section.html",
                lambda inputs: _edge_context(_edges(inputs.analysis, search_spaces))),
    ]
    return [edges_source, seeds_source], sections


def robustness_summary(
    analysis: Analysis, search_spaces: Mapping[str, SearchSpace] | None
) -> dict[str, Any]:
    """``summary.json``'s ``robustness``: edges, seed spread and both ratio intervals."""
    edges = _edges(analysis, search_spaces)
    intervals = _intervals(analysis)
    return to_jsonable({
        "edge_margin": EDGE_MARGIN,
        "search_edges": [] if edges is None else edges.to_dict(orient="records"),
        "seed_spread": _spread(analysis).to_dict(orient="records"),
        "ratio_intervals": intervals.per_batch.to_dict(orient="records"),
        "perfect_scaling_ratio_intervals": intervals.perfect_scaling.to_dict(orient="records"),
    })


__all__ = ["edge_findings", "robustness_parts", "robustness_summary", "seed_findings"]
