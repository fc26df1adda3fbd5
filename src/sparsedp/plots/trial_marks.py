"""How the search figures (paper Figures 4 and 5) mark trials, shared by both.

Each status has a marker shape: complete ``o``, stopped an upward caret, incomplete a hollow
square, infeasible ``x``, failed ``+``, any other status a diamond; the study's best trial is
a star. On a steps axis a complete trial sits at its steps to result and a stopped trial at
the step where it was stopped, with the caret's base on it: it would have needed more steps
than that (a lower bound), so the caret points up. Trials without any step to show
(incomplete, infeasible, failed, or stopped without a recorded step) sit in a band above a
dotted line at the top of the panel, whose tick reads "no result".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import markers
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.markers import MarkerStyle
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from sparsedp.analysis.curves import normalize_status
from sparsedp.plots.scaling import sparsity_label

STOPPED_MARKER = markers.CARETUPBASE
"""An upward caret with its base on the value: steps to result at least this."""

STATUS_STYLE: dict[str, dict[str, object]] = {
    "complete": {"marker": "o", "color": "tab:blue"},
    "stopped": {"marker": STOPPED_MARKER, "color": "darkorange"},
    "incomplete": {"marker": "s", "color": "grey"},
    "infeasible": {"marker": "x", "color": "red"},
    "failed": {"marker": "+", "color": "black"},
}
OTHER_STYLE: dict[str, object] = {"marker": "D", "color": "purple"}
HOLLOW = ("incomplete",)
"""Statuses drawn as hollow markers (the edge in the colour, no fill)."""
DRAW_ORDER = ("stopped", "incomplete", "infeasible", "failed", "complete")
"""Statuses drawn later sit on top: the many stopped trials never hide a complete one."""

LEGEND_ORDER = ("complete", "stopped", "incomplete", "infeasible", "failed")
"""Legend entries in this order, then unknown statuses by name, then the best trial."""

AXIS_LABELS = {
    "lr": "learning rate",
    "momentum": "1 − momentum",
    "decay_steps": "decay steps",
    "end_lr_factor": "decay factor",
}

DATA_FRACTION = (0.05, 0.78)
"""Where (axes fraction) the steps of a steps axis lie; the no-result band is above."""
SEPARATOR_Y = 0.84
BAND = (0.88, 0.97)
"""Lowest and highest axes fraction of the markers in the no-result band."""


def status_style(status: str) -> dict[str, object]:
    """Marker and colour for a (normalised) status; unknown statuses share a fallback."""
    return STATUS_STYLE.get(status, OTHER_STYLE)


def status_order(statuses: Sequence[str] | set[str]) -> list[str]:
    """Statuses in drawing order (unknown ones first, by name)."""
    rank = {s: i for i, s in enumerate(DRAW_ORDER)}
    return sorted(set(statuses), key=lambda s: (rank.get(s, -1), s))


def study_title(sparsity: float, batch_size: int) -> str:
    """Panel title such as ``"S=90% B=128"``."""
    return f"S={sparsity_label(sparsity)} B={int(batch_size)}"


def select_studies(
    trials: pd.DataFrame, workload: str, studies: Sequence[tuple[float, int]] | None
) -> tuple[pd.DataFrame, list[tuple[float, int]]]:
    """The workload's trials and the chosen ``(sparsity, batch_size)`` pairs that have some."""
    rows = trials[trials["workload"] == workload].copy()
    rows["sparsity"] = rows["sparsity"].astype(float)
    rows["batch_size"] = rows["batch_size"].astype(int)
    present = sorted(set(zip(rows["sparsity"], rows["batch_size"], strict=True)))
    if studies is not None:
        wanted = {(float(s), int(b)) for s, b in studies}
        present = [p for p in present if any(np.isclose(p[0], s) and p[1] == b
                                             for s, b in wanted)]
    return rows, present


def param_values(group: pd.DataFrame, name: str) -> np.ndarray:
    """A metaparameter column as floats, momentum as 1 − momentum (NaN where missing)."""
    values = pd.to_numeric(group[name], errors="coerce").to_numpy(float)
    return 1.0 - values if name == "momentum" else values


def trial_steps(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per trial: its normalised status and the step to draw it at: steps to result when
    complete, ``steps_taken`` (a lower bound) when stopped, NaN otherwise (in the band)."""
    statuses = group["status"].map(normalize_status).to_numpy()
    result = pd.to_numeric(group["steps_to_result"], errors="coerce").to_numpy(float)
    taken = (pd.to_numeric(group["steps_taken"], errors="coerce").to_numpy(float)
             if "steps_taken" in group else np.full(len(group), np.nan))
    complete = (statuses == "complete") & np.isfinite(result) & (result > 0)
    stopped = (statuses == "stopped") & np.isfinite(taken) & (taken > 0)
    steps = np.where(complete, result, np.where(stopped, taken, np.nan))
    return statuses, steps


def scatter_status(ax: Axes, x, y, status: str, color, *, transform=None, size: float = 16,
                   alpha: float = 0.8) -> None:
    """Trials of one status at ``(x, y)`` in ``color`` (one colour or one per trial)."""
    style = status_style(status)
    kwargs: dict[str, object] = {"marker": style["marker"], "s": size, "alpha": alpha,
                                 "zorder": 2 + (DRAW_ORDER.index(status) / 10
                                                if status in DRAW_ORDER else 0)}
    if not MarkerStyle(style["marker"]).is_filled():
        kwargs.update(c=color, linewidths=1.0)
    elif status in HOLLOW:
        kwargs.update(facecolors="none", edgecolors=color, linewidths=0.9)
    else:
        kwargs.update(c=color, edgecolors="none")
    if transform is not None:
        kwargs["transform"] = transform
    ax.scatter(x, y, **kwargs)


def draw_best(ax: Axes, x, y, color) -> None:
    """Best trials at ``(x, y)``: stars in ``color`` (one colour or one per star) with a
    black edge, above everything."""
    ax.scatter(np.atleast_1d(x), np.atleast_1d(y), marker="*", s=150, c=color,
               edgecolors="black", linewidths=0.7, zorder=6)


def band_y(level: float) -> float:
    """Axes fraction in the no-result band for ``level`` in [0, 1] (e.g. a batch size's rank)."""
    return BAND[0] + (BAND[1] - BAND[0]) * float(level)


def draw_in_band(ax: Axes, x: np.ndarray, level: np.ndarray | float, status: str, color) -> None:
    """Trials without a step to show, in the band at the top of the panel."""
    if len(x) == 0:
        return
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    y = np.broadcast_to(np.vectorize(band_y)(level), np.shape(x))
    scatter_status(ax, x, y, status, color, transform=transform, size=14, alpha=0.6)


def log_limits(values: np.ndarray, pad: float = 0.06) -> tuple[float, float] | None:
    """Log-axis limits around the positive ``values``, at least a decade wide, padded by
    ``pad`` of the span on each side (None without any positive value)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0:
        return None
    lo, hi = math.log10(v.min()), math.log10(v.max())
    if hi - lo < 1.0:
        mid = 0.5 * (lo + hi)
        lo, hi = mid - 0.5, mid + 0.5
    span = hi - lo
    return 10 ** (lo - pad * span), 10 ** (hi + pad * span)


@dataclass(frozen=True)
class LogAxis:
    """A log axis to give many panels alike: limits and, optionally, fixed ticks with labels.

    Panels get copies instead of shared axes: matplotlib's sharing costs time quadratic in
    the number of panels, and every panel here shows the same ranges anyway. Minor ticks are
    left out (they cost drawing time in large grids and crowd small panels).
    """

    limits: tuple[float, float] | None
    labels: tuple[tuple[float, str], ...] = ()
    """Fixed ticks and their labels; empty: powers of ten, labelled as such."""

    @classmethod
    def around(cls, values: np.ndarray) -> LogAxis:
        """Limits around ``values`` (a decade at least), ticks at powers of ten."""
        return cls(log_limits(values))

    @classmethod
    def steps(cls, steps: np.ndarray) -> LogAxis:
        """A steps axis: the ``steps`` in its lower part, the no-result band above the dotted
        separator; round ticks below it and one "no result" tick in the band."""
        limits = log_limits(steps, pad=0.0) or (100.0, 1000.0)
        lo, hi = (math.log10(v) for v in limits)
        total = (hi - lo) / (DATA_FRACTION[1] - DATA_FRACTION[0])
        bottom = lo - DATA_FRACTION[0] * total
        ticks = steps_ticks(10**bottom, 10 ** (bottom + SEPARATOR_Y * total))
        band = 10 ** (bottom + band_y(0.5) * total)
        labels = (*((t, _steps_label(t)) for t in ticks), (band, "no result"))
        return cls((10**bottom, 10 ** (bottom + total)), labels)

    def apply(self, ax: Axes, axis: str) -> None:
        """Give ``ax``'s ``axis`` ("x" or "y") this scale, limits and ticks."""
        target = ax.xaxis if axis == "x" else ax.yaxis
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        if self.limits:
            (ax.set_xlim if axis == "x" else ax.set_ylim)(*self.limits)
        if self.labels:
            names = dict(self.labels)
            target.set_major_locator(FixedLocator([t for t, _ in self.labels]))
            target.set_major_formatter(FuncFormatter(lambda v, _: names.get(v, "")))
        else:
            target.set_major_locator(LogLocator(numticks=6))
        target.set_minor_locator(NullLocator())


def _steps_label(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:.0f}"


def steps_ticks(low: float, high: float, max_ticks: int = 6) -> list[float]:
    """Round tick values in [low, high]: 1-2-5 steps, or powers of ten when those are many."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0**e for e in range(first, last + 1) for m in mantissas]
        ticks = [t for t in ticks if low <= t <= high]
        if len(ticks) <= max_ticks:
            return ticks
    powers = [10.0**e for e in range(first, last + 1) if low <= 10.0**e <= high]
    return powers[:: math.ceil(len(powers) / max_ticks)]


def draw_separator(ax: Axes) -> None:
    """The dotted line between the steps and the no-result band."""
    ax.plot([0, 1], [SEPARATOR_Y, SEPARATOR_Y], color="grey", ls=":", lw=0.8,
            transform=ax.transAxes, scalex=False, scaley=False)


def legend_handles(statuses: Sequence[str] | set[str], color: str | None = None,
                   best_color: str = "gold",
                   labels: dict[str, str] | None = None) -> list[Line2D]:
    """A legend entry per status present (in ``color``, default each status's own; labelled
    by ``labels``, default the status) and one for the best trial."""
    rank = {s: i for i, s in enumerate(LEGEND_ORDER)}
    handles = []
    for status in sorted(set(statuses), key=lambda s: (rank.get(s, len(rank)), s)):
        style = status_style(status)
        shown = color or style["color"]
        hollow = status in HOLLOW
        handles.append(Line2D([], [], ls="none", marker=style["marker"], color=shown,
                              markerfacecolor="none" if hollow else shown, markersize=6,
                              label=(labels or {}).get(status, status)))
    handles.append(Line2D([], [], ls="none", marker="*", color=best_color,
                          markeredgecolor="black", markersize=11, label="best"))
    return handles


def legend_columns(n_entries: int, width_in: float, entry_in: float = 1.45) -> int:
    """Legend columns that fit a figure ``width_in`` wide (at least one)."""
    return max(1, min(n_entries, int(width_in // entry_in)))
