"""Every trial of every study in metaparameter space (paper Figure 4).

One small panel per study: trial i of every study sits at the same quasi-random point, so
studies cannot share a panel, but they share their axes (the workload's search space), which
makes the panels comparable and leaves tick labels to the outer ones. Each sparsity starts a
new row; its batch sizes fill at most 8 columns (more wrap, balanced), so a grid of 20 batch
sizes stays a page wide. Markers by status (:mod:`sparsedp.plots.trial_marks`): a stopped
trial only says it could not beat its study's best, so the many stopped trials of a search
with stopping are drawn small and faint below the complete ones; the best is a gold star.
Workloads without momentum show learning rate against steps to result instead, stopped
trials at their stop step as lower bounds and trials without a result in the top band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sparsedp.analysis.curves import best_trials, searched_metaparameters
from sparsedp.plots.scaling import literal
from sparsedp.plots.trial_marks import (
    AXIS_LABELS,
    STATUS_STYLE,
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
    status_style,
    study_title,
    trial_steps,
)

__all__ = ["STATUS_STYLE", "plot_search_space", "status_style", "study_title"]

MAX_COLUMNS = 8
PANEL = (1.55, 1.3)
"""Axes width and height in inches."""
GAP = (0.3, 0.34)
"""Space between panels in inches: across, room for the tick labels at the panels' edges;
down, for a panel's title."""
TOP, RIGHT, LEGEND_ROW = 0.62, 0.25, 0.24
"""Margins in inches: above (title), right, and per legend row below."""


def columns_for(n_sizes: int) -> int:
    """Columns per sparsity: all batch sizes up to 8, else as few balanced rows as fit."""
    if n_sizes <= MAX_COLUMNS:
        return max(1, n_sizes)
    return math.ceil(n_sizes / math.ceil(n_sizes / MAX_COLUMNS))


def panel_grid(nrows: int, ncols: int, n_legend: int,
               left: float = 0.8) -> tuple[Figure, np.ndarray, int]:
    """A grid of panels with fixed margins in inches (fast for large grids): room above for
    the title, ``left`` for tick and axis labels, below for tick labels, the axis label and
    the legend's rows (returned with the figure and axes) of ``n_legend`` entries."""
    width = left + RIGHT + ncols * PANEL[0] + (ncols - 1) * GAP[0]
    legend_rows = math.ceil(n_legend / legend_columns(n_legend, width))
    bottom = 0.6 + LEGEND_ROW * legend_rows
    height = TOP + bottom + nrows * PANEL[1] + (nrows - 1) * GAP[1]
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left / width, right=1 - RIGHT / width, bottom=bottom / height,
                        top=1 - TOP / height, wspace=GAP[0] / PANEL[0], hspace=GAP[1] / PANEL[1])
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes, legend_rows


def _outer_tick_labels(axes: np.ndarray, used: np.ndarray) -> None:
    """Bottom tick labels on each used panel with no used panel below it, left ones on the
    first used panel of each row; unused cells are blank."""
    nrows, ncols = used.shape
    for i in range(nrows):
        for j in range(ncols):
            if not used[i, j]:
                axes[i, j].set_axis_off()
                continue
            below = i + 1 < nrows and used[i + 1, j]
            first = not used[i, :j].any()
            axes[i, j].tick_params(labelbottom=not below, labelleft=first, labelsize=7.5)


def _best_index(best: pd.DataFrame, workload: str, sparsity: float, batch_size: int) -> int | None:
    row = best[
        (best["workload"] == workload)
        & np.isclose(best["sparsity"].astype(float), sparsity)
        & (best["batch_size"].astype(int) == batch_size)
    ]
    if len(row) == 0 or pd.isna(row["best_trial_index"].iloc[0]):
        return None
    return int(row["best_trial_index"].iloc[0])


def _plane_panel(ax: Axes, group: pd.DataFrame, best_index: int | None) -> None:
    """Learning rate against 1 − momentum, markers by status."""
    statuses, _ = trial_steps(group)
    lr, one_minus = param_values(group, "lr"), param_values(group, "momentum")
    valid = np.isfinite(lr) & np.isfinite(one_minus) & (lr > 0) & (one_minus > 0)
    for status in status_order(statuses[valid]):
        mask = valid & (statuses == status)
        faint = status == "stopped"
        scatter_status(ax, lr[mask], one_minus[mask], status, status_style(status)["color"],
                       size=10 if faint else 18, alpha=0.45 if faint else 0.9)
    if best_index is not None:
        mask = valid & (group["trial_index"].to_numpy() == best_index)
        if mask.any():
            draw_best(ax, lr[mask][0], one_minus[mask][0], "gold")


def _steps_panel(ax: Axes, group: pd.DataFrame, best_index: int | None) -> None:
    """Learning rate against steps to result (stopped: at the stop step), the rest in the
    band."""
    statuses, steps = trial_steps(group)
    lr = param_values(group, "lr")
    valid = np.isfinite(lr) & (lr > 0)
    shown = valid & np.isfinite(steps)
    for status in status_order(statuses[valid]):
        color = status_style(status)["color"]
        mask = shown & (statuses == status)
        scatter_status(ax, lr[mask], steps[mask], status, color)
        banded = valid & ~shown & (statuses == status)
        draw_in_band(ax, lr[banded], 0.5, status, color)
    draw_separator(ax)
    if best_index is not None:
        mask = shown & (group["trial_index"].to_numpy() == best_index)
        if mask.any():
            draw_best(ax, lr[mask][0], steps[mask][0], "gold")


def plot_search_space(
    trials: pd.DataFrame,
    workload: str,
    *,
    studies: Sequence[tuple[float, int]] | None = None,
    best: pd.DataFrame | None = None,
) -> Figure:
    """Figure-4 style: every trial of each study in metaparameter space (module docstring).

    Learning rate (log x) against 1 − momentum (log y); for workloads without momentum,
    against steps to result. ``studies`` selects ``(sparsity, batch_size)`` pairs (default:
    all); a batch size keeps its place in every sparsity's rows, blank where not chosen.
    """
    best = best_trials(trials) if best is None else best
    rows, chosen = select_studies(trials, workload, studies)
    has_momentum = "momentum" in searched_metaparameters(rows)
    sparsities = sorted({s for s, _ in chosen}) or [0.0]
    sizes = sorted({b for _, b in chosen}) or [0]
    per_row = columns_for(len(sizes))
    rows_per = math.ceil(len(sizes) / per_row)
    groups = {(s, b): rows[np.isclose(rows["sparsity"], s) & (rows["batch_size"] == b)]
              for s, b in chosen}
    chosen_rows = pd.concat(groups.values()) if groups else rows.iloc[:0]
    handles = legend_handles({str(s) for s in trial_steps(chosen_rows)[0]},
                             labels={} if has_momentum else {"stopped": "stopped (at least)"})
    fig, axes, legend_rows = panel_grid(len(sparsities) * rows_per, per_row, len(handles),
                                        left=0.8 if has_momentum else 1.0)
    height, width = fig.get_figheight(), fig.get_figwidth()
    fig.suptitle(f"All trials in metaparameter space: {literal(workload)}", fontsize=11,
                 y=1 - 0.1 / height, va="top")
    if not groups:
        axes[0, 0].text(0.5, 0.5, "no trials", ha="center", va="center",
                        transform=axes[0, 0].transAxes)
        return fig
    x_axis = LogAxis.around(param_values(chosen_rows, "lr"))
    y_axis = (LogAxis.around(param_values(chosen_rows, "momentum")) if has_momentum
              else LogAxis.steps(trial_steps(chosen_rows)[1]))
    used = np.zeros(axes.shape, dtype=bool)
    for i, sparsity in enumerate(sparsities):
        for j, batch_size in enumerate(sizes):
            group = groups.get((sparsity, batch_size))
            if group is None:
                continue
            r, c = i * rows_per + j // per_row, j % per_row
            used[r, c] = True
            ax = axes[r, c]
            x_axis.apply(ax, "x")
            y_axis.apply(ax, "y")
            ax.set_autoscale_on(False)
            ax.set_title(study_title(sparsity, batch_size), fontsize=8, pad=3)
            best_index = _best_index(best, workload, sparsity, batch_size)
            (_plane_panel if has_momentum else _steps_panel)(ax, group, best_index)
    _outer_tick_labels(axes, used)
    fig.supxlabel(AXIS_LABELS["lr"], fontsize=9, y=(LEGEND_ROW * legend_rows + 0.12) / height,
                  va="bottom")
    fig.supylabel("1 − momentum" if has_momentum else "steps to result", fontsize=9,
                  x=0.08 / width, ha="left")
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.04 / height),
               fontsize=8, ncols=legend_columns(len(handles), width), frameon=False)
    return fig
