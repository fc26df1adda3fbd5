"""The report's robustness parts: seed repeats and search-edge warnings.

:func:`robustness` computes them from an :class:`~sparsedp.analysis.summary.Analysis`, the
stored repeats and the studies' search spaces; the HTML page shows :attr:`Robustness.warning`
near its top and :attr:`Robustness.html` as a section, and ``summary.json`` carries
:attr:`Robustness.summary` under ``robustness``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import pandas as pd

from sparsedp.analysis.edges import EDGE_MARGIN, search_edges
from sparsedp.analysis.repeats import repeat_spread, seed_ratio_intervals
from sparsedp.analysis.summary import Analysis, to_jsonable
from sparsedp.plots.scaling import sparsity_label
from sparsedp.search.space import SearchSpace


@dataclass
class Robustness:
    """What the report shows about seeds and search ranges."""

    spread: pd.DataFrame
    warning: str  # HTML, empty when no study is at an edge
    html: str
    summary: dict[str, Any]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _n(value: object, digits: int = 3) -> str:
    if value is None:
        return "—"
    v = float(value)  # type: ignore[arg-type]
    return f"{v:.0f}" if v.is_integer() and abs(v) >= 10 else f"{v:.{digits}g}"


def _ci(ci: Sequence[float] | None) -> str:
    return f"[{_n(ci[0])}, {_n(ci[1])}]" if ci else "—"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def robustness(
    analysis: Analysis,
    repeats: pd.DataFrame | None = None,
    search_spaces: Mapping[str, SearchSpace] | None = None,
) -> Robustness:
    """Seed spread, seed-inclusive ratio intervals and edge warnings of ``analysis``."""
    opts = analysis.options
    spread = repeat_spread(analysis.best, repeats)
    intervals = seed_ratio_intervals(
        analysis.trials, analysis.best, repeats, n_resamples=opts["n_resamples"] or 200,
        seed=opts["seed"], confidence=opts["confidence"], dense_sparsity=opts["dense_sparsity"],
        tol=opts["tol"])
    edges = search_edges(analysis.best, search_spaces or {})
    n_repeated = int((spread["n_runs"] > 1).sum()) if len(spread) else 0

    parts = ["<h2 id='search-edges'>Search ranges</h2>"]
    if search_spaces is None:
        parts.append("<p>The studies' search spaces are not known here: edges not checked.</p>")
    elif len(edges):
        parts.append(f"<p class='warning'>{len(edges)} best-trial metaparameter(s) lie within "
                     f"{EDGE_MARGIN:.0%} of a bound of the searched range (in the unit interval "
                     "of that dimension): the range may be too narrow, and those studies' "
                     "steps may be overestimates.</p>")
        parts.append(_table(["workload", "sparsity", "batch size", "warning"], [
            [r.workload, sparsity_label(r.sparsity), r.batch_size, r.message]
            for r in edges.itertuples()]))
    else:
        parts.append(f"<p>No study's best trial lies within {EDGE_MARGIN:.0%} of a bound of its "
                     "searched ranges.</p>")

    parts.append("<h2 id='seed-repeats'>Seed repeats</h2>")
    if n_repeated == 0:
        parts.append("<p>No seed repeats stored (<code>sparsedp repeat EXP.toml --seeds K</code> "
                     "trains each study's best metaparameters again with K new seeds). The "
                     "intervals below then cover the bootstrap over trials only.</p>")
    else:
        parts.append(
            f"<p>{n_repeated} studies have repeats: their best metaparameters trained again "
            "with new initialisation (and SNIP mask) and batch order. Runs: the search's best "
            "trial plus its repeats; the scaling figures' error bars span the smallest to the "
            "largest steps of the runs that reached the goal.</p>")
        parts.append(_table(
            ["workload", "sparsity", "batch size", "best steps", "runs", "reached goal",
             "median", "min", "max", "max / min"],
            [[r.workload, sparsity_label(r.sparsity), r.batch_size, _n(r.best_steps),
              r.n_runs, r.n_complete, _n(r.median), _n(r.min), _n(r.max),
              _n(r.max_over_min)] for r in spread.itertuples()]))
    conf = int(100 * opts["confidence"])
    parts.append(
        f"<p>Sparse/dense steps ratios with {conf}% intervals over {intervals.n_resamples} "
        "resamples: over the trials only (each study's trials drawn with replacement), and "
        "over trials and seeds (each resampled result also scaled by a seed factor drawn from "
        "the study's runs, S_j / S_best). 'with result' is the share of resamples where both "
        "studies have a result.</p>")
    per = intervals.per_batch
    if len(per):
        parts.append(_table(
            ["workload", "sparsity", "batch size", "ratio", "CI (trials)", "CI (trials + seeds)",
             "with result", "runs sparse / dense"],
            [[r.workload, sparsity_label(r.sparsity), r.batch_size, _n(r.ratio),
              _ci(r.ci_trials), _ci(r.ci), f"{100 * r.fraction:.0f}%",
              f"{r.n_runs_sparse} / {r.n_runs_dense}"] for r in per.itertuples()]))
    ps = intervals.perfect_scaling
    if len(ps):
        parts.append("<p>Geometric mean over the dense curve's perfect-scaling region:</p>")
        parts.append(_table(
            ["workload", "sparsity", "batch sizes", "geo-mean ratio", "CI (trials)",
             "CI (trials + seeds)", "with result"],
            [[r.workload, sparsity_label(r.sparsity), ", ".join(map(str, r.batch_sizes)),
              _n(r.geomean_ratio), _ci(r.ci_trials), _ci(r.ci), f"{100 * r.fraction:.0f}%"]
             for r in ps.itertuples()]))

    warning = ""
    if len(edges):
        warning = (f"<p class='warning'>{len(edges)} best-trial metaparameter(s) at the edge "
                   "of the searched range: the range may be too narrow (<a href='#search-edges'>"
                   "search ranges</a>).</p>")
    summary = to_jsonable({
        "edge_margin": EDGE_MARGIN,
        "search_edges": edges.to_dict(orient="records"),
        "seed_spread": spread.to_dict(orient="records"),
        "ratio_intervals": per.to_dict(orient="records"),
        "perfect_scaling_ratio_intervals": ps.to_dict(orient="records"),
    })
    return Robustness(spread=spread, warning=warning, html="".join(parts), summary=summary)
