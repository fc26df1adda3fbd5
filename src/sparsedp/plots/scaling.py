"""Steps-to-result versus batch size (paper Figures 1, 2 and 3).

Figures are built on matplotlib's object API with an Agg canvas (no pyplot state, nothing
is ever shown). Only measured points are drawn: studies without a result leave a gap in the
line (the series holds NaN there) and are listed in the panel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sparsedp.analysis.curves import Curve, best_trials, steps_curves
from sparsedp.analysis.fit import ScalingFit, fit_scaling
from sparsedp.analysis.overhead import OVERHEAD, overhead_batch_size

PANEL_SIZE = (3.4, 2.9)


def new_figure(
    nrows: int,
    ncols: int,
    *,
    panel_size: tuple[float, float] = PANEL_SIZE,
    constrained: bool = True,
    **subplot_kw,
) -> tuple[Figure, np.ndarray]:
    """A Figure on an Agg canvas and its ``(nrows, ncols)`` axes array.

    ``constrained=False`` uses fixed margins in inches instead of constrained layout, which
    is much faster for large grids of panels (room is left for a suptitle and a bottom
    legend).
    """
    width, height = panel_size[0] * ncols, panel_size[1] * nrows
    if constrained:
        fig = Figure(figsize=(width, height), layout="constrained")
    else:
        top, bottom, left, right = 0.55, 0.85, 0.75, 0.15
        width, height = width + left + right, height + top + bottom
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(
            left=left / width,
            right=1 - right / width,
            bottom=bottom / height,
            top=1 - top / height,
            wspace=0.42,
            hspace=0.55,
        )
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def save_figure(
    fig: Figure, path_stem: str | Path, formats: Sequence[str] = ("png", "svg"), dpi: int = 120
) -> list[Path]:
    """Save ``fig`` as ``path_stem.<fmt>`` for each format (parents created); return paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.parent / f"{stem.name}.{fmt}"
        fig.savefig(path, format=fmt, dpi=dpi)
        paths.append(path)
    return paths


def literal(text: object) -> str:
    """``text`` as matplotlib shows it verbatim: each ``$`` escaped, so a name (an imported
    workload, data set or model) never opens mathtext, which could fail to parse."""
    return str(text).replace("$", r"\$")


def sparsity_label(sparsity: float) -> str:
    """``0.9 -> "90%"``."""
    return f"{round(float(sparsity) * 100, 6):g}%"


def axes_with_data(fig: Figure) -> list[Axes]:
    """Axes of ``fig`` that hold plotted lines or markers."""
    return [ax for ax in fig.axes if ax.lines or ax.collections]


def sparsity_colors(sparsities: Sequence[float]) -> dict[float, tuple]:
    """A fixed colour per sparsity (dense dark, sparser lighter)."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    values = sorted(set(float(s) for s in sparsities))
    n = max(len(values) - 1, 1)
    return {s: cmap(0.8 * i / n) for i, s in enumerate(values)}


def _log2_axes(ax: Axes, xlabel: str = "batch size", ylabel: str = "steps to result") -> None:
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def _on_grid(curve: Curve, grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (aligned with the curve's measured batch sizes) on ``grid``, NaN elsewhere."""
    out = np.full(len(grid), np.nan)
    index = {int(b): i for i, b in enumerate(grid)}
    for b, v in zip(curve.batch_sizes, values, strict=True):
        out[index[int(b)]] = v
    return out


def _no_data(ax: Axes, text: str = "no results yet") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _workload_title(best: pd.DataFrame, workload: str) -> str:
    rows = best[best["workload"] == workload]
    label = None
    if "dataset_label" in rows and rows["dataset_label"].notna().any():
        label = str(rows["dataset_label"].dropna().iloc[0])
    return literal(f"{workload} ({label})" if label else workload)


def _draw_fit(ax: Axes, fit: ScalingFit, grid: np.ndarray, color: str = "tab:red") -> None:
    xs = np.geomspace(grid.min(), grid.max(), 200)
    ax.plot(
        xs,
        fit.predict(xs),
        "-",
        color=color,
        lw=1.0,
        alpha=0.8,
        label=f"fit $S_{{min}}$={fit.s_min:.0f}",
    )
    text = f"$B_{{crit}}$≈{fit.b_crit:.0f}" + (" (at bound)" if fit.at_bound else "")
    if grid.min() / 2 <= fit.b_crit <= grid.max() * 2:
        ax.axvline(fit.b_crit, ls=":", color=color, lw=1.2, label=text)
        ax.text(
            fit.b_crit,
            0.97,
            f" {text}",
            transform=ax.get_xaxis_transform(),
            color=color,
            fontsize=7,
            va="top",
            ha="left",
        )
    else:
        ax.text(
            0.02, 0.02, text + " (outside range)", transform=ax.transAxes, fontsize=7, color=color
        )


def _draw_overhead(ax: Axes, curve: Curve, ref_x: np.ndarray) -> None:
    """The line 20% above perfect scaling and, where the curve crosses it, the overhead
    critical batch size (docs/analysis.md, "Overhead critical batch size") as a diamond."""
    if len(curve) < 2:
        return
    linear = curve.steps[0] * curve.batch_sizes[0] / ref_x
    pct = f"{100 * OVERHEAD:.0f}%"
    ax.plot(ref_x, (1 + OVERHEAD) * linear, "-.", color="darkorange", lw=0.9,
            label=f"+{pct} over perfect scaling")
    value, _ = overhead_batch_size(curve.batch_sizes, curve.steps)
    if np.isfinite(value):
        at = (1 + OVERHEAD) * curve.steps[0] * curve.batch_sizes[0] / value
        ax.plot([value], [at], "D", color="darkorange", ms=6, mec="black", mew=0.6,
                label=f"{pct}-overhead B≈{value:.0f}", zorder=6)  # above the legend box
    else:
        ax.text(0.02, 0.12, f"{pct} overhead: beyond B={int(curve.batch_sizes[-1])}",
                transform=ax.transAxes, fontsize=7, color="darkorange")


def _draw_spread(ax: Axes, spread: pd.DataFrame | None, workload: str, sparsity: float,
                 color, label: bool = True) -> None:
    """Error bars min…max over a study's seed runs, where it has repeats."""
    if spread is None or len(spread) == 0:
        return
    rows = spread[(spread["workload"] == workload)
                  & np.isclose(spread["sparsity"].astype(float), sparsity, rtol=0.0, atol=1e-9)
                  & (spread["n_runs"] > 1)]
    if len(rows) == 0:
        return
    best = rows["best_steps"].to_numpy(float)
    yerr = np.vstack([best - rows["min"].to_numpy(float), rows["max"].to_numpy(float) - best])
    n = int(rows["n_runs"].max())
    ax.errorbar(rows["batch_size"].to_numpy(float), best, yerr=yerr, fmt="none", ecolor=color,
                capsize=3, lw=1.0, label=f"range over {n} seeds" if label else None)


def plot_scaling(
    trials: pd.DataFrame,
    workload: str,
    *,
    best: pd.DataFrame | None = None,
    fit: bool = True,
    min_points: int = 3,
    spread: pd.DataFrame | None = None,
) -> Figure:
    """Figure-1 style: a panel per sparsity, then all sparsities, then all normalised.

    ``spread`` (:func:`sparsedp.analysis.repeats.repeat_spread`) adds error bars from seed
    repeats: from the smallest to the largest steps of a study's runs that reached the goal.

    Each sparsity panel shows the measured steps-to-result (log2 axes), the dashed
    perfect-scaling line through the first measured point and, when the curve has at least
    ``min_points`` points, the fitted ``S_min(1 + B_crit/B)`` with ``B_crit`` as a dotted
    vertical line. Works for any workload (Figure 3 is the CIFAR-10 one).
    """
    best = best_trials(trials) if best is None else best
    rows = best[best["workload"] == workload]
    curves = {k: c for k, c in steps_curves(rows).items() if k[0] == workload}
    sparsities = sorted(k[1] for k in curves)
    grid = np.array(sorted(set(int(b) for b in rows["batch_size"])), dtype=float)
    colors = sparsity_colors(sparsities)
    n = len(sparsities) + 2
    fig, axes = new_figure(1, n)
    axes = axes[0]
    fig.suptitle(f"Steps to result vs batch size: {_workload_title(best, workload)}")

    for ax, sparsity in zip(axes, sparsities, strict=False):
        curve = curves[(workload, sparsity)]
        _log2_axes(ax)
        ax.set_title(f"S={sparsity_label(sparsity)}")
        if len(curve) == 0:
            _no_data(ax)
            continue
        ax.plot(
            grid, _on_grid(curve, grid, curve.steps), "o-", color=colors[sparsity], label="measured"
        )
        ref_x = grid[grid >= curve.batch_sizes[0]]
        ax.plot(
            ref_x,
            curve.steps[0] * curve.batch_sizes[0] / ref_x,
            "--",
            color="grey",
            lw=1.0,
            label="perfect scaling",
        )
        _draw_spread(ax, spread, workload, sparsity, colors[sparsity])
        _draw_overhead(ax, curve, ref_x)
        if fit:
            result = fit_scaling(curve.batch_sizes, curve.steps, min_points=min_points)
            if result is not None:
                _draw_fit(ax, result, grid)
        if curve.missing:
            ax.text(
                0.98,
                0.02,
                "no result: " + ", ".join(str(b) for b in curve.missing),
                transform=ax.transAxes,
                ha="right",
                fontsize=7,
                color="grey",
            )
        ax.legend(fontsize=7, loc="lower left")

    overlay, normalised = axes[-2], axes[-1]
    _log2_axes(overlay)
    overlay.set_title("all sparsities")
    _log2_axes(normalised, ylabel="steps / steps at first batch size")
    normalised.set_title("all sparsities, normalised")
    first_b = None
    for sparsity in sparsities:
        curve = curves[(workload, sparsity)]
        if len(curve) == 0:
            continue
        color = colors[sparsity]
        label = f"S={sparsity_label(sparsity)}"
        overlay.plot(grid, _on_grid(curve, grid, curve.steps), "o-", color=color, label=label, ms=4)
        _draw_spread(overlay, spread, workload, sparsity, color, label=False)
        normalised.plot(
            grid,
            _on_grid(curve, grid, curve.steps / curve.steps[0]),
            "o-",
            color=color,
            label=label,
            ms=4,
        )
        b0 = float(curve.batch_sizes[0])
        first_b = b0 if first_b is None else min(first_b, b0)
    if first_b is None:
        _no_data(overlay)
        _no_data(normalised)
    else:
        ref_x = grid[grid >= first_b]
        normalised.plot(ref_x, first_b / ref_x, "--", color="grey", lw=1.0, label="perfect scaling")
        overlay.legend(fontsize=7)
        normalised.legend(fontsize=7)
    return fig


def plot_optimizer_comparison(
    trials: pd.DataFrame,
    *,
    workloads: Sequence[str] | None = None,
    normalize: bool = False,
    best: pd.DataFrame | None = None,
) -> Figure:
    """Figure-2 style: one panel per sparsity comparing optimizers (one line per workload).

    ``workloads`` defaults to every workload in ``trials``; pass those sharing a data set
    and model. Lines are labelled by optimizer (by workload if optimizers repeat).
    """
    best = best_trials(trials) if best is None else best
    names = sorted(set(best["workload"])) if workloads is None else list(workloads)
    rows = best[best["workload"].isin(names)]
    curves = steps_curves(rows)
    sparsities = sorted(set(k[1] for k in curves))
    grid = np.array(sorted(set(int(b) for b in rows["batch_size"])), dtype=float)
    optimizer_of = {
        w: (str(g["optimizer"].dropna().iloc[0]) if g["optimizer"].notna().any() else w)
        for w, g in rows.groupby("workload")
    }
    labels = list(optimizer_of.values())
    unique = len(set(labels)) == len(labels)
    fig, axes = new_figure(1, max(len(sparsities), 1))
    axes = axes[0]
    datasets = sorted(set(str(v) for v in rows.get("dataset_label", pd.Series()).dropna()))
    models = sorted(set(str(v) for v in rows.get("model", pd.Series()).dropna()))
    fig.suptitle(literal("Optimizers compared: " + ", ".join(models + datasets)))
    ylabel = "steps / steps at first batch size" if normalize else "steps to result"
    if not sparsities:
        _log2_axes(axes[0], ylabel=ylabel)
        _no_data(axes[0])
        return fig
    for ax, sparsity in zip(axes, sparsities, strict=True):
        _log2_axes(ax, ylabel=ylabel)
        ax.set_title(f"S={sparsity_label(sparsity)}")
        drawn = False
        for workload in names:
            curve = curves.get((workload, sparsity))
            if curve is None or len(curve) == 0:
                continue
            values = curve.steps / curve.steps[0] if normalize else curve.steps
            label = optimizer_of.get(workload, workload) if unique else workload
            ax.plot(grid, _on_grid(curve, grid, values), "o-", ms=4, label=literal(label))
            drawn = True
        if drawn:
            ax.legend(fontsize=7)
        else:
            _no_data(ax)
    return fig
