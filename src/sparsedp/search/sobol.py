"""Unscrambled Sobol points in the unit hypercube, the quasi-random part of the search."""

from __future__ import annotations

import warnings

import numpy as np


def sobol_unit_points(dim: int, n: int) -> np.ndarray:
    """Elements ``1..n`` of the unscrambled ``dim``-dimensional Sobol sequence, as ``n × dim``.

    Element 0 (the all-zero corner) is dropped, so the first point is ``(0.5, …, 0.5)``. The
    sequence is deterministic: every study asking for ``n`` points gets the same ones, and
    the first ``k`` of them are the points a budget of ``k`` trials would get.
    """
    if dim < 1:
        raise ValueError(f"a Sobol sequence needs at least one dimension, got {dim}")
    if n < 0:
        raise ValueError(f"number of points must be >= 0, got {n}")
    if n == 0:
        return np.zeros((0, dim), dtype=np.float64)
    from scipy.stats import qmc  # imported lazily: scipy.stats is slow to import

    engine = qmc.Sobol(d=dim, scramble=False)
    with warnings.catch_warnings():
        # Budgets such as 100 trials are not powers of two; the points are still the
        # sequence's first elements, which is what a quasi-random search wants.
        warnings.filterwarnings("ignore", message=r".*balance properties.*", category=UserWarning)
        points = engine.random(n + 1)
    return np.asarray(points[1:], dtype=np.float64)
