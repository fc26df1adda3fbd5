"""The refinement stage in the report: the paper-protocol curve beside the refined one.

The page's main analysis keeps the paper's protocol (the search's trials); this section
analyses the search's and the refinement's trials together and draws both curves with their
fits, one panel per sparsity, and a table of each study's best before and after refinement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from sparsedp.analysis import analyze
from sparsedp.analysis.summary import Analysis
from sparsedp.plots.scaling import new_figure, sparsity_label
from sparsedp.report.findings import WARNING, Finding
from sparsedp.report.format import batch, interval
from sparsedp.report.sections import ReportInputs, Section
from sparsedp.report.tables import Table

REFINEMENT = "refinement"


def _search(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[trials["stage"].fillna("search") == "search"]


def _fit_text(analysis: Analysis, key: tuple[str, float]) -> tuple[str, str]:
    fit, boot = analysis.fits.get(key), analysis.bootstraps.get(key)
    if fit is None:
        return "—", "too few results to fit"
    if boot is None or boot.b_crit_ci is None:
        return batch(fit.b_crit), (boot.reason if boot else "") or "no interval"
    return batch(fit.b_crit), interval(boot.b_crit_ci)


def refine_section(trials: pd.DataFrame, n_resamples: int) -> Section:
    """The section: both curves per sparsity, and the table of bests and fits."""

    def context(inputs: ReportInputs) -> dict[str, Any]:
        paper = inputs.analysis
        refined = analyze(trials, n_resamples=n_resamples)
        figures = []
        for workload in sorted({k[0] for k in refined.curves}):
            keys = sorted(k for k in refined.curves if k[0] == workload)
            fig, axes = new_figure(1, len(keys), panel_size=(4.2, 3.4))
            for ax, key in zip(axes.flat, keys, strict=False):
                for name, analysis, style in (("paper protocol", paper, "o-"),
                                              ("refined", refined, "s--")):
                    curve = analysis.curves.get(key)
                    if curve is None:
                        continue
                    line = ax.plot(curve.batch_sizes, curve.steps, style, label=name)[0]
                    fit = analysis.fits.get(key)
                    if fit is not None:
                        b = np.geomspace(min(curve.batch_sizes), max(curve.batch_sizes), 50)
                        ax.plot(b, fit.predict(b), "-", color=line.get_color(), alpha=0.5,
                                label=f"{name} fit, B_crit ≈ {batch(fit.b_crit)}")
                ax.set(xscale="log", yscale="log", xlabel="batch size",
                       ylabel="steps to result",
                       title=f"{workload} S={sparsity_label(key[1])}")
                ax.grid(alpha=0.3, which="both")
                ax.legend(fontsize=7)
            figures.append(inputs.figure(
                f"refinement-{workload}", f"{workload}: best steps per batch size from the "
                "search alone (the paper's protocol, circles) and with the refinement stage "
                "(squares), each with its fit S_min(1 + B_crit/B).", fig))
        rows = []
        for key in sorted(refined.curves):
            before, after = paper.curves.get(key), refined.curves[key]
            for b, steps_after in zip(after.batch_sizes, after.steps, strict=True):
                steps_before = (dict(zip(before.batch_sizes, before.steps, strict=True)).get(b)
                                if before else None)
                rows.append([key[0], sparsity_label(key[1]), str(b),
                             "—" if steps_before is None else f"{steps_before:.0f}",
                             f"{steps_after:.0f}", "", ""])
            for label, analysis in (("search", paper), ("refined", refined)):
                value, ci = _fit_text(analysis, key)
                rows.append([key[0], sparsity_label(key[1]), f"B_crit ({label})", "", "",
                             value, ci])
        table = Table(["workload", "sparsity", "B", "best (search)", "best (refined)",
                       "B_crit", "interval"], rows, text_columns=2)
        return {"refine_figures": figures, "refine_table": table}

    return Section("refinement", "Refinement stage (beyond the paper)", "refinement.html",
                   context, place="figures")


def refine_findings(trials: pd.DataFrame, n_resamples: int):
    """A finding per curve: the fitted B_crit before and after refinement."""

    def source(inputs: ReportInputs) -> Iterable[Finding]:
        paper = inputs.analysis
        refined = analyze(trials, n_resamples=n_resamples)
        n_refine = int((trials["stage"].fillna("search") == "refine").sum())
        for key in sorted(refined.curves):
            before, ci_before = _fit_text(paper, key)
            after, ci_after = _fit_text(refined, key)
            moved = _moved(paper.curves.get(key), refined.curves[key])
            text = (f"Refinement ({n_refine} trials in all, beyond the paper) at "
                    f"{sparsity_label(key[1])} sparsity: B_crit ≈ {before} from the search "
                    f"({ci_before}) and ≈ {after} with the refinement ({ci_after}); "
                    + (f"refinement lowered the best at {moved}." if moved else
                       "refinement found no better best."))
            values: Mapping[str, Any] = {"b_crit_search": before, "b_crit_refined": after}
            yield Finding(REFINEMENT, text, key[0], key[1], WARNING if moved else "ok", values)

    return source


def _moved(before, after) -> str:
    if before is None:
        return ""
    old = dict(zip(before.batch_sizes, before.steps, strict=True))
    lower = [f"B = {b} ({old[b]:.0f} → {s:.0f})" for b, s in
             zip(after.batch_sizes, after.steps, strict=True)
             if b in old and s < old[b] and not math.isclose(s, old[b])]
    return ", ".join(lower)
