"""Search adequacy: the best of k of a study's trials, against k (docs/analysis.md).

One panel per sparsity, one line per study (batch size as colour): the median best of k
trials drawn at random from the study's N, divided by the study's best (the best of all N),
with the 10–90% band shaded. A flat line near 1 well before k = N says the search found its
best with room to spare; a line that only comes down at the last trials says more trials could
move it. Where the median is only a lower bound (stopped trials hide the values it needs) the
line is dotted and its markers hollow; medians without any value (no trial reached the goal
in over half of the draws) are not drawn; a legend entry explains the dotted line, and a panel
with nothing but lower bounds says so. Panels wrap at two per row; each has its legend on
its right, one entry per batch size ("*": the study is not converged), in as many columns as
keep it within the panel's height, so 20 batch sizes fit.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from sparsedp.analysis.adequacy import Adequacy
from sparsedp.plots.scaling import literal, new_figure, sparsity_label

LEGEND_ROWS = 12
"""Legend entries per column (more batch sizes make more columns)."""


class _PlainLogFormatter(LogFormatter):
    """Log-axis labels as plain numbers ("1.02", "3"), not "1.02×10⁰"."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return f"{x:.3g}"


def plot_adequacy(adequacy: dict[tuple[str, float, int], Adequacy], workload: str) -> Figure:
    """The figure of the module docstring for one workload's studies."""
    mine = {key: a for key, a in adequacy.items() if key[0] == workload}
    sparsities = sorted({key[1] for key in mine})
    ncols = min(2, max(1, len(sparsities)))
    nrows = max(1, math.ceil(len(sparsities) / ncols))
    n_legend_cols = math.ceil(len({key[2] for key in mine}) / LEGEND_ROWS)
    fig, axes = new_figure(nrows, ncols, panel_size=(4.2 + 0.75 * n_legend_cols, 3.2))
    for ax in axes.flat[len(sparsities):]:
        ax.set_axis_off()
    sizes = sorted({key[2] for key in mine})
    cmap = colormaps["viridis"]
    colour = {b: cmap(i / max(1, len(sizes) - 1)) for i, b in enumerate(sizes)}
    for ax, sparsity in zip(axes.flat, sparsities, strict=False):
        exact_points = bound_points = 0
        for (_, s, b), found in sorted(mine.items()):
            if s != sparsity or not found.k or not math.isfinite(found.best):
                continue
            k = np.asarray(found.k, dtype=float)
            med = np.asarray(found.median, dtype=float) / found.best
            low = np.asarray(found.low, dtype=float) / found.best
            high = np.asarray(found.high, dtype=float) / found.best
            exact = np.asarray(found.exact, dtype=bool)
            shown = np.isfinite(med)
            exact_points += int((shown & exact).sum())
            bound_points += int((shown & ~exact).sum())
            label = f"{b}" + ("" if found.converged else " *")
            ax.plot(k[shown & exact], med[shown & exact], "-o", ms=3, color=colour[b],
                    label=label)
            if (shown & ~exact).any():
                ax.plot(k[shown & ~exact], med[shown & ~exact], ":o", ms=3, color=colour[b],
                        markerfacecolor="none")
            band = np.isfinite(low) & np.isfinite(high)
            ax.fill_between(k[band], low[band], high[band], color=colour[b], alpha=0.12,
                            linewidth=0)
        ax.axhline(1.05, color="grey", linestyle="--", linewidth=0.8)
        ax.set(xscale="log", yscale="log", xlabel="k trials (of the study's N)",
               ylabel="best of k / best of N",
               title=f"{literal(workload)} S={sparsity_label(sparsity)}")
        ax.yaxis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False,
                                                        minor_thresholds=(1, 0.4)))
        ax.grid(alpha=0.3, which="both")
        if bound_points:
            ax.plot([], [], ":o", ms=3, color="grey", markerfacecolor="none",
                    label="lower bound")
        if bound_points and not exact_points:
            ax.text(0.5, 0.9, "lower bounds only: stopped trials hide the values\n"
                    "(raise keep_complete and rerun)", transform=ax.transAxes,
                    ha="center", va="top", fontsize=7, color="dimgrey")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                      ncols=n_legend_cols, title="B (* not\nconverged)", title_fontsize=7,
                      borderaxespad=0.0)
    return fig
