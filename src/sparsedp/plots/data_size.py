"""Critical batch size against training-set size, one line per sparsity (Shallue et al.'s
MNIST-subsets design), from :func:`sparsedp.analysis.data_size_table.data_size_table`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sparsedp.plots.scaling import literal, new_figure, sparsity_colors, sparsity_label


def _errors(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray | None:
    """Error-bar lengths where an interval exists (0 elsewhere); None without any."""
    has = np.isfinite(low) & np.isfinite(high) & np.isfinite(values)
    if not has.any():
        return None
    return np.vstack([np.where(has, values - low, 0.0), np.where(has, high - values, 0.0)])


def plot_data_size(table: pd.DataFrame, workload: str) -> Figure:
    """B_crit against the number of training examples for ``workload`` (its base name): the
    fitted B_crit (filled circles, solid, bootstrap intervals as error bars) and the
    20%-overhead critical batch size (hollow diamonds, dashed) of each sparsity. Curves
    without a value leave a gap."""
    rows = table[table["base_workload"] == workload]
    fig, axes = new_figure(1, 1, panel_size=(5.0, 3.6))
    ax = axes[0, 0]
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("training examples")
    ax.set_ylabel("critical batch size")
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(literal(f"Critical batch size vs training-set size\n{workload}"))
    colors = sparsity_colors(list(rows["sparsity"]))
    drawn = False
    for sparsity, group in rows.groupby("sparsity", sort=True):
        group = group.sort_values("train_examples")
        n = group["train_examples"].to_numpy(float)
        color = colors[float(sparsity)]
        label = f"S={sparsity_label(float(sparsity))}"
        for column, style, marker, face, what in (
                ("b_crit", "-", "o", color, "fitted B_crit"),
                ("b_overhead", "--", "D", "none", "20%-overhead B")):
            values = group[column].to_numpy(float)
            if not np.isfinite(values).any():
                continue
            err = _errors(values, group[f"{column}_low"].to_numpy(float),
                          group[f"{column}_high"].to_numpy(float))
            ax.errorbar(n, values, yerr=err, fmt=style, marker=marker, color=color,
                        mfc=face, capsize=3, lw=1.0, label=f"{label}, {what}")
            drawn = True
    if drawn:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no critical batch size yet", ha="center", va="center",
                transform=ax.transAxes, color="grey")
    return fig
