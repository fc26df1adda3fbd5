"""Metaparameter search results per study (paper Figures 4 and 5).

Trials are drawn with a marker per status (complete blue circle, incomplete grey triangle,
infeasible red x, stopped orange square, failed black +, anything else a purple diamond);
the study's best trial is a gold star.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator
from matplotlib.transforms import blended_transform_factory

from sparsedp.analysis.curves import (
    best_trials,
    normalize_status,
    result_steps,
    searched_metaparameters,
)
from sparsedp.plots.scaling import literal, new_figure, sparsity_label

STATUS_STYLE: dict[str, dict[str, object]] = {
    "complete": {"marker": "o", "color": "tab:blue"},
    "incomplete": {"marker": "^", "color": "grey"},
    "infeasible": {"marker": "x", "color": "red"},
    "stopped": {"marker": "s", "color": "orange"},
    "failed": {"marker": "+", "color": "black"},
}
OTHER_STYLE: dict[str, object] = {"marker": "D", "color": "purple"}
BEST_STYLE: dict[str, object] = {
    "marker": "*",
    "color": "gold",
    "s": 220,
    "edgecolors": "black",
    "linewidths": 0.6,
    "zorder": 5,
}

AXIS_LABELS = {
    "lr": "learning rate",
    "momentum": "1 − momentum",
    "decay_steps": "decay steps",
    "end_lr_factor": "decay factor",
}


def status_style(status: str) -> dict[str, object]:
    """Marker and colour for a (normalised) status; unknown statuses share a fallback."""
    return STATUS_STYLE.get(status, OTHER_STYLE)


def study_title(sparsity: float, batch_size: int) -> str:
    """Panel title such as ``"S=90% B=128"``."""
    return f"S={sparsity_label(sparsity)} B={int(batch_size)}"


def _scatter(ax: Axes, x, y, status: str, transform=None, clip_on: bool = True) -> None:
    style = status_style(status)
    kwargs: dict[str, object] = {"marker": style["marker"], "s": 18}
    if style["marker"] in ("x", "+"):
        kwargs["c"] = style["color"]
    else:
        kwargs.update(
            facecolors="none" if status == "incomplete" else style["color"],
            edgecolors=style["color"],
        )
    if transform is not None:
        kwargs["transform"] = transform
    ax.scatter(x, y, clip_on=clip_on, alpha=0.85, **kwargs)


def _legend(fig: Figure, statuses: Sequence[str]) -> None:
    handles = []
    for status in statuses:
        style = status_style(status)
        handles.append(
            Line2D([], [], ls="none", marker=style["marker"], color=style["color"], label=status)
        )
    handles.append(
        Line2D(
            [],
            [],
            ls="none",
            marker="*",
            color="gold",
            markeredgecolor="black",
            markersize=12,
            label="best",
        )
    )
    fig.legend(
        handles=handles,
        loc="lower center",
        ncols=len(handles),
        fontsize=8,
        bbox_to_anchor=(0.5, 0.0),
    )


def _select_studies(
    trials: pd.DataFrame, workload: str, studies: Sequence[tuple[float, int]] | None
) -> tuple[pd.DataFrame, list[tuple[float, int]]]:
    rows = trials[trials["workload"] == workload].copy()
    rows["sparsity"] = rows["sparsity"].astype(float)
    rows["batch_size"] = rows["batch_size"].astype(int)
    present = sorted(set(zip(rows["sparsity"], rows["batch_size"], strict=True)))
    chosen = present if studies is None else [(float(s), int(b)) for s, b in studies]
    return rows, chosen


def _transform_param(name: str, values: np.ndarray) -> np.ndarray:
    return 1.0 - values if name == "momentum" else values


UNREACHED_Y = 0.94
"""Height (axes fraction) of the band of trials without a result."""
_SEPARATOR_Y = 0.88


def _log_limits(values: np.ndarray, low: float, high: float) -> tuple[float, float] | None:
    """Log-axis limits around positive ``values``, at least a decade wide; pad as fractions."""
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) == 0:
        return None
    lo, hi = np.log10(v.min()), np.log10(v.max())
    if hi - lo < 1.0:
        mid = 0.5 * (lo + hi)
        lo, hi = mid - 0.5, mid + 0.5
    span = hi - lo
    return 10 ** (lo - low * span), 10 ** (hi + high * span)


def _log_axis(
    ax: Axes, axis: str, values: np.ndarray, low: float = 0.06, high: float = 0.06
) -> None:
    """Log scale, limits covering ``values`` (a decade at least), no minor ticks.

    Minor ticks are left out on purpose: with dozens of panels they dominate drawing time.
    """
    limits = _log_limits(values, low, high)
    if axis == "x":
        ax.set_xscale("log")
        if limits:
            ax.set_xlim(*limits)
        ax.xaxis.set_minor_locator(NullLocator())
    else:
        ax.set_yscale("log")
        if limits:
            ax.set_ylim(*limits)
        ax.yaxis.set_minor_locator(NullLocator())


def _draw_unreached(ax: Axes, x: np.ndarray, statuses: np.ndarray) -> None:
    """Trials without a result in a band at the top of the panel, above a dotted line."""
    band = blended_transform_factory(ax.transData, ax.transAxes)
    ax.axhline(_SEPARATOR_Y, color="grey", ls=":", lw=0.8)
    ax.text(
        0.01,
        _SEPARATOR_Y - 0.01,
        "above: not reached",
        transform=ax.transAxes,
        fontsize=6,
        color="grey",
        va="top",
    )
    for status in sorted(set(statuses)):
        mask = statuses == status
        _scatter(ax, x[mask], np.full(mask.sum(), UNREACHED_Y), status, transform=band)


def _steps_panel(ax: Axes, group: pd.DataFrame, x_name: str, best_index: int | None) -> None:
    """Metaparameter ``x_name`` against steps to result; trials without one at the top."""
    x = _transform_param(x_name, pd.to_numeric(group[x_name], errors="coerce").to_numpy(float))
    steps = result_steps(group)
    statuses = group["status"].map(normalize_status).to_numpy()
    valid = np.isfinite(x) & (x > 0)
    done = valid & np.isfinite(steps)
    for status in sorted(set(statuses[done])):
        mask = done & (statuses == status)
        _scatter(ax, x[mask], steps[mask], status)
    _draw_unreached(ax, x[valid & ~done], statuses[valid & ~done])
    # Leave the top band (above the dotted line) to the trials without a result.
    _log_axis(ax, "y", steps[done], low=0.08, high=0.3)
    if done.any():
        lo, hi = ax.get_ylim()
        separator = lo * (hi / lo) ** _SEPARATOR_Y
        ax.set_yticks([t for t in ax.get_yticks() if lo <= t <= separator])
        ax.set_ylim(lo, hi)
    _log_axis(ax, "x", x[valid])
    ax.set_xlabel(AXIS_LABELS.get(x_name, x_name))
    ax.set_ylabel("steps to result")
    if best_index is not None:
        row = group[group["trial_index"] == best_index].iloc[0]
        bx = _transform_param(x_name, np.array([float(row[x_name])]))
        by = result_steps(group[group["trial_index"] == best_index].iloc[:1])
        if np.isfinite(bx).all() and (bx > 0).all():
            ax.scatter(bx, by, **BEST_STYLE)


def _best_index(best: pd.DataFrame, workload: str, sparsity: float, batch_size: int) -> int | None:
    row = best[
        (best["workload"] == workload)
        & np.isclose(best["sparsity"].astype(float), sparsity)
        & (best["batch_size"].astype(int) == batch_size)
    ]
    if len(row) == 0 or pd.isna(row["best_trial_index"].iloc[0]):
        return None
    return int(row["best_trial_index"].iloc[0])


def plot_search_space(
    trials: pd.DataFrame,
    workload: str,
    *,
    studies: Sequence[tuple[float, int]] | None = None,
    best: pd.DataFrame | None = None,
) -> Figure:
    """Figure-4 style: every trial of each study in metaparameter space.

    One panel per study (rows: sparsity, columns: batch size; cells without trials are left
    blank): learning rate (log x) against 1 − momentum (log y); for workloads without
    momentum, learning rate against steps to result (trials without a result on the top
    edge). ``studies`` selects ``(sparsity, batch_size)`` pairs (default: all).
    """
    best = best_trials(trials) if best is None else best
    rows, chosen = _select_studies(trials, workload, studies)
    sparsities = sorted(set(s for s, _ in chosen)) or [0.0]
    sizes = sorted(set(b for _, b in chosen)) or [0]
    has_momentum = "momentum" in searched_metaparameters(rows)
    fig, axes = new_figure(len(sparsities), len(sizes), panel_size=(2.9, 2.6), constrained=False)
    fig.suptitle(f"All trials in metaparameter space: {literal(workload)}")
    seen: set[str] = set()
    for i, sparsity in enumerate(sparsities):
        for j, batch_size in enumerate(sizes):
            ax = axes[i, j]
            in_study = np.isclose(rows["sparsity"], sparsity) & (rows["batch_size"] == batch_size)
            group = rows[in_study]
            if (sparsity, batch_size) not in chosen or len(group) == 0:
                ax.set_axis_off()
                continue
            ax.set_title(study_title(sparsity, batch_size), fontsize=9)
            statuses = group["status"].map(normalize_status).to_numpy()
            seen.update(statuses)
            best_index = _best_index(best, workload, sparsity, batch_size)
            if not has_momentum:
                _steps_panel(ax, group, "lr", best_index)
                continue
            lr = pd.to_numeric(group["lr"], errors="coerce").to_numpy(float)
            one_minus = 1.0 - pd.to_numeric(group["momentum"], errors="coerce").to_numpy(float)
            valid = np.isfinite(lr) & np.isfinite(one_minus) & (lr > 0) & (one_minus > 0)
            for status in sorted(set(statuses[valid])):
                mask = valid & (statuses == status)
                _scatter(ax, lr[mask], one_minus[mask], status)
            if best_index is not None:
                mask = valid & (group["trial_index"].to_numpy() == best_index)
                ax.scatter(lr[mask], one_minus[mask], **BEST_STYLE)
            _log_axis(ax, "x", lr[valid])
            _log_axis(ax, "y", one_minus[valid])
            ax.set_xlabel("learning rate")
            ax.set_ylabel("1 − momentum")
    _legend(fig, sorted(seen, key=lambda s: (s not in STATUS_STYLE, s)))
    return fig


def plot_metaparameters(
    trials: pd.DataFrame,
    workload: str,
    *,
    studies: Sequence[tuple[float, int]] | None = None,
    best: pd.DataFrame | None = None,
) -> Figure:
    """Figure-5 style: each searched metaparameter against steps to result, per study.

    Rows are studies, columns the searched metaparameters (momentum shown as 1 − momentum).
    Complete trials sit at their steps to result; the others are drawn on the top edge as
    "not reached"; the best trial is a gold star.
    """
    best = best_trials(trials) if best is None else best
    rows, chosen = _select_studies(trials, workload, studies)
    chosen = [
        (s, b)
        for s, b in chosen
        if (np.isclose(rows["sparsity"], s) & (rows["batch_size"] == b)).any()
    ]
    params = searched_metaparameters(rows) or ["lr"]
    fig, axes = new_figure(
        max(len(chosen), 1), len(params), panel_size=(2.9, 2.4), constrained=False
    )
    fig.suptitle(f"Metaparameters vs steps to result: {literal(workload)}")
    seen: set[str] = set()
    if not chosen:
        axes[0, 0].text(
            0.5, 0.5, "no trials", ha="center", va="center", transform=axes[0, 0].transAxes
        )
    for i, (sparsity, batch_size) in enumerate(chosen):
        group = rows[np.isclose(rows["sparsity"], sparsity) & (rows["batch_size"] == batch_size)]
        seen.update(group["status"].map(normalize_status))
        best_index = _best_index(best, workload, sparsity, batch_size)
        for j, name in enumerate(params):
            ax = axes[i, j]
            ax.set_title(study_title(sparsity, batch_size), fontsize=9)
            _steps_panel(ax, group, name, best_index)
    _legend(fig, sorted(seen, key=lambda s: (s not in STATUS_STYLE, s)))
    return fig
