"""Figures in the style of the paper (matplotlib, Agg canvas, never shown).

Every plotting function returns a :class:`matplotlib.figure.Figure`; write it with
:func:`save_figure`.
"""

from sparsedp.plots.metaparameters import plot_metaparameters
from sparsedp.plots.scaling import (
    axes_with_data,
    new_figure,
    plot_optimizer_comparison,
    plot_scaling,
    save_figure,
    sparsity_label,
)
from sparsedp.plots.search import plot_search_space
from sparsedp.plots.trial_marks import STATUS_STYLE, study_title

__all__ = [
    "STATUS_STYLE",
    "axes_with_data",
    "new_figure",
    "plot_metaparameters",
    "plot_optimizer_comparison",
    "plot_scaling",
    "plot_search_space",
    "save_figure",
    "sparsity_label",
    "study_title",
]
