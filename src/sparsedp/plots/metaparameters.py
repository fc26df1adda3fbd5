"""Each searched metaparameter against steps to result (paper Figure 5), sized for real grids.

One panel per (sparsity, metaparameter): a row per sparsity, a column per searched
metaparameter (momentum as 1 − momentum), and every batch size of the sparsity in the same
panel, in its own colour (the colour bar). Complete trials sit at their steps to result;
stopped trials at the step where they were stopped, as upward carets (a lower bound: they
could no longer beat their study's best); trials without a result in the band above the
dotted line, each batch size at its own height there (the smallest lowest); each study's best
trial is a star in its batch size's colour. All panels share the steps axis, and each column
its metaparameter axis, so 2 or 20 batch sizes make the same few panels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from sparsedp.analysis.curves import best_trials, searched_metaparameters
from sparsedp.plots.scaling import literal, sparsity_label
from sparsedp.plots.trial_marks import (
    AXIS_LABELS,
    LogAxis,
    draw_best,
    draw_in_band,
    draw_separator,
    legend_columns,
    legend_handles,
    param_values,
    scatter_status,
    select_studies,
    status_order,
    trial_steps,
)

PANEL = (3.2, 2.5)
"""Size of one panel in inches (narrower when more than 3 metaparameters share a row)."""
ROW_WIDTH = 10.5
"""Inches the panels of a row may take in all."""
LABEL_HEIGHT = 0.17
"""Inches one colour-bar label needs (fewer labels are shown where they would crowd)."""


def batch_colours(sizes: Sequence[int]) -> list[tuple[float, float, float, float]]:
    """One colour per batch size, smallest dark, largest light (viridis)."""
    cmap = colormaps["viridis"]
    n = len(sizes)
    return [cmap(0.9 * i / max(1, n - 1)) for i in range(n)]


def _panel(ax: Axes, rows: pd.DataFrame, name: str, sizes: list[int],
           colours: list[tuple], best: pd.Series) -> None:
    """One sparsity's trials of every batch size against ``name``; ``best`` maps a batch size
    to its study's best trial index."""
    rank = {b: i for i, b in enumerate(sizes)}
    statuses, steps = trial_steps(rows)
    x = param_values(rows, name)
    ranks = rows["batch_size"].map(rank).to_numpy(int)
    colour = np.array(colours)[ranks] if len(rows) else np.zeros((0, 4))
    level = ranks / max(1, len(sizes) - 1)
    valid = np.isfinite(x) & (x > 0)
    shown = valid & np.isfinite(steps)
    for status in status_order(statuses[valid]):
        mask = shown & (statuses == status)
        scatter_status(ax, x[mask], steps[mask], status, colour[mask],
                       alpha=0.55 if status == "stopped" else 0.85)
        banded = valid & ~shown & (statuses == status)
        draw_in_band(ax, x[banded], level[banded], status, colour[banded])
    is_best = rows["trial_index"].to_numpy() == rows["batch_size"].map(best).to_numpy(float)
    star = is_best & shown
    if star.any():
        draw_best(ax, x[star], steps[star], colour[star])
    draw_separator(ax)


def _colour_bar(fig: Figure, axes: np.ndarray, sizes: list[int], colours: list[tuple]) -> None:
    """A discrete colour bar of the batch sizes, labels thinned where they would crowd."""
    n = len(sizes)
    mappable = ScalarMappable(norm=BoundaryNorm(np.arange(n + 1) - 0.5, n),
                              cmap=ListedColormap(colours))
    bar = fig.colorbar(mappable, ax=axes.ravel().tolist(), ticks=range(n), aspect=35,
                       fraction=0.04, pad=0.02)
    room = max(1, int(0.85 * axes.shape[0] * PANEL[1] / LABEL_HEIGHT))
    every = math.ceil(n / room)
    bar.ax.set_yticklabels([str(b) if i % every == 0 else "" for i, b in enumerate(sizes)],
                           fontsize=7.5)
    bar.ax.tick_params(length=2)
    bar.set_label("batch size", fontsize=9)


def plot_metaparameters(
    trials: pd.DataFrame,
    workload: str,
    *,
    studies: Sequence[tuple[float, int]] | None = None,
    best: pd.DataFrame | None = None,
) -> Figure:
    """Figure-5 style (module docstring); ``studies`` selects ``(sparsity, batch_size)``
    pairs (default: all)."""
    best = best_trials(trials) if best is None else best
    rows, chosen = select_studies(trials, workload, studies)
    keep = np.zeros(len(rows), dtype=bool)
    for sparsity, batch_size in chosen:
        keep |= np.isclose(rows["sparsity"], sparsity) & (rows["batch_size"] == batch_size)
    rows = rows[keep]
    params = searched_metaparameters(rows) or ["lr"]
    sparsities = sorted({s for s, _ in chosen}) or [0.0]
    sizes = sorted({b for _, b in chosen})
    statuses = {str(s) for s in trial_steps(rows)[0]}
    handles = legend_handles(statuses, color="dimgray", best_color="lightgrey",
                             labels={"stopped": "stopped (at least)"})
    width = len(params) * min(PANEL[0], ROW_WIDTH / len(params)) + 1.5
    legend_rows = math.ceil(len(handles) / legend_columns(len(handles), width))
    fig = Figure(figsize=(width, len(sparsities) * PANEL[1] + 0.8 + 0.25 * legend_rows),
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(sparsities), len(params), squeeze=False)
    fig.suptitle(f"Metaparameters vs steps to result: {literal(workload)}", fontsize=11)
    if not chosen:
        axes[0, 0].text(0.5, 0.5, "no trials", ha="center", va="center",
                        transform=axes[0, 0].transAxes)
        return fig
    colours = batch_colours(sizes)
    mine = best[(best["workload"] == workload) & best["best_trial_index"].notna()]
    x_axes = {name: LogAxis.around(param_values(rows, name)) for name in params}
    y_axis = LogAxis.steps(trial_steps(rows)[1])
    last = len(sparsities) - 1
    for i, sparsity in enumerate(sparsities):
        group = rows[np.isclose(rows["sparsity"], sparsity)]
        here = mine[np.isclose(mine["sparsity"].astype(float), sparsity)]
        best_of = pd.Series(here["best_trial_index"].to_numpy(float),
                            index=here["batch_size"].astype(int).to_numpy())
        for j, name in enumerate(params):
            ax = axes[i, j]
            x_axes[name].apply(ax, "x")
            y_axis.apply(ax, "y")
            ax.set_autoscale_on(False)
            _panel(ax, group, name, sizes, colours, best_of)
            ax.set_title(f"S={sparsity_label(sparsity)}", fontsize=9)
            ax.tick_params(labelsize=8, labelbottom=i == last, labelleft=j == 0)
            if i == last:
                ax.set_xlabel(AXIS_LABELS.get(name, name))
        axes[i, 0].set_ylabel("steps to result")
    _colour_bar(fig, axes, sizes, colours)
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, frameon=False,
               ncols=legend_columns(len(handles), width))
    return fig
