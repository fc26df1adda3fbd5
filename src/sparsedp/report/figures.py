"""The report's figures (Figures 1–5 of the paper), saved beside the page and embedded in it."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure as MplFigure

from sparsedp.analysis.curves import searched_metaparameters
from sparsedp.analysis.data_size import curve_sizes
from sparsedp.analysis.data_size_table import data_size_table
from sparsedp.analysis.summary import Analysis
from sparsedp.plots.adequacy import plot_adequacy
from sparsedp.plots.data_size import plot_data_size
from sparsedp.plots.metaparameters import plot_metaparameters
from sparsedp.plots.scaling import plot_optimizer_comparison, plot_scaling, save_figure
from sparsedp.plots.search import plot_search_space
from sparsedp.report.format import safe_name


@dataclass(frozen=True)
class ReportFigure:
    """A saved figure: ``stem`` (its id on the page), caption, PNG bytes, files written."""

    stem: str
    caption: str
    png: bytes
    files: list[Path]

    @property
    def data_uri(self) -> str:
        """The PNG as a ``data:`` URI, so the page stands alone."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def save_report_figure(
    fig: MplFigure, fig_dir: Path, stem: str, caption: str, formats: Sequence[str], dpi: int
) -> ReportFigure:
    """Save ``fig`` as ``fig_dir/stem.*`` in ``formats`` (PNG is always made, for the page)."""
    all_formats = tuple(dict.fromkeys(("png", *formats)))
    files = save_figure(fig, fig_dir / stem, formats=all_formats, dpi=dpi)
    png = next(p for p in files if p.suffix == ".png").read_bytes()
    keep = [p for p in files if p.suffix.lstrip(".") in formats]
    for p in files:
        if p not in keep:
            p.unlink()
    return ReportFigure(stem=stem, caption=caption, png=png, files=keep)


def make_figures(
    analysis: Analysis, fig_dir: Path, formats: Sequence[str], dpi: int
) -> list[ReportFigure]:
    """Scaling (Figures 1/3), optimizer (2), search-space (4) and metaparameter (5) figures."""
    trials, best = analysis.trials, analysis.best
    figures: list[ReportFigure] = []

    def add(stem: str, caption: str, fig: MplFigure) -> None:
        figures.append(save_report_figure(fig, fig_dir, stem, caption, formats, dpi))

    workloads = sorted(set(best["workload"])) if len(best) else []
    for workload in workloads:
        rows = best[best["workload"] == workload]
        label = (
            str(rows["dataset_label"].dropna().iloc[0])
            if rows["dataset_label"].notna().any()
            else ""
        )
        dataset = str(rows["dataset"].dropna().iloc[0]) if rows["dataset"].notna().any() else ""
        style = "Figure 3" if "cifar" in dataset.lower() else "Figure 1"
        add(
            f"scaling-{safe_name(workload)}",
            f"{style} style. Steps to result against batch size for {workload} ({label}). "
            "One panel per sparsity: measured best steps (studies without a result are gaps), "
            "dashed perfect-scaling line through the first measured point, fitted "
            "S_min(1 + B_crit/B) in red with B_crit as a dotted vertical line; dash-dotted "
            "orange: 20% above perfect scaling, with an orange diamond where the curve crosses "
            "it (the 20%-overhead critical batch size, docs/analysis.md). Then all "
            "sparsities together, then each normalised by its steps at its smallest batch "
            "size with a result."
            + (
                " Error bars: smallest to largest steps to result over the seed runs "
                "(best trial plus repeats) that reached the goal."
                if analysis.seed_spread is not None
                else ""
            ),
            plot_scaling(trials, workload, best=best, min_points=analysis.options["min_points"],
                         spread=analysis.seed_spread),
        )
    sizes = data_size_table(analysis)
    for base, rows in sizes.groupby("base_workload", sort=True):
        if rows["train_examples"].nunique() < 2:
            continue
        add(
            f"data-size-{safe_name(str(base))}",
            f"Critical batch size against training-set size for {base} (the first N "
            "examples of its training split), one colour per sparsity: the fitted B_crit "
            "(filled circles, solid) and the 20%-overhead critical batch size (hollow "
            "diamonds, dashed), with their bootstrap intervals as error bars where there is "
            "one; a curve without a value leaves a gap.",
            plot_data_size(sizes, str(base)),
        )
    groups: dict[tuple[str, str, int], list[str]] = {}
    size_of = curve_sizes(trials)  # optimizers are compared on one training-set size
    for workload in workloads:
        row = best[best["workload"] == workload].iloc[0]
        size = size_of.get(workload, ("", 0))[1]
        groups.setdefault((str(row["dataset"]), str(row["model"]), size), []).append(workload)
    for (dataset, model, size), names in sorted(groups.items()):
        if len(names) < 2:
            continue
        add(
            f"optimizers-{safe_name(dataset)}-{safe_name(model)}" + (f"-n{size}" if size else ""),
            f"Figure 2 style. Optimizers compared on {model} / {dataset}, one panel per "
            f"sparsity (workloads: {', '.join(names)}).",
            plot_optimizer_comparison(trials, workloads=names, best=best),
        )
    for workload in workloads:
        add(
            f"search-{safe_name(workload)}",
            f"Figure 4 style. Every trial of every study of {workload} in metaparameter "
            "space, one small panel per study on shared axes (each sparsity starts a row; more "
            "than 8 batch sizes wrap): learning rate against 1 − momentum (against steps to "
            "result when the workload has no momentum, with trials without a result in the "
            "band at the top). Complete: blue circle; stopped: small orange caret (it could no "
            "longer beat its study's best, so it needed more steps than that); incomplete: grey "
            "hollow square; infeasible: red x; failed: black +; other statuses: purple "
            "diamond; best trial: gold star.",
            plot_search_space(trials, workload, best=best),
        )
    for workload in workloads:
        params = ", ".join(searched_metaparameters(trials[trials["workload"] == workload]))
        add(
            f"metaparameters-{safe_name(workload)}",
            f"Figure 5 style. Each searched metaparameter ({params}) of {workload} against "
            "steps to result, one panel per sparsity and metaparameter, every batch size in "
            "its colour (colour bar). Complete trials (circles) sit at their steps to result; "
            "stopped trials (upward carets) at the step where they were stopped, a lower "
            "bound: they could no longer beat their study's best; trials without a result "
            "(incomplete: hollow square, infeasible: x, failed: +) in the band above the "
            "dotted line, the smallest batch size lowest; each study's best trial: a star in "
            "its batch size's colour.",
            plot_metaparameters(trials, workload, best=best),
        )
    for workload in workloads:
        if not any(key[0] == workload and a.k for key, a in analysis.adequacy.items()):
            continue
        add(
            f"adequacy-{safe_name(workload)}",
            f"Search adequacy of {workload}: for each study (batch size as colour), the "
            "median best of k of its trials drawn at random, over the best of all of them, "
            "with the 10–90% band; dotted with hollow markers where stopped trials make the "
            "median a lower bound. The dashed line is 5% above the best: a study is converged "
            "when at least 3 of 4 random halves of its trials come within it; a * after a "
            "batch size in the legend marks a study that is not.",
            plot_adequacy(analysis.adequacy, workload),
        )
    return figures
