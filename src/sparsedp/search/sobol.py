"""Unscrambled Sobol points in the unit hypercube, the quasi-random part of the search."""

from __future__ import annotations

import warnings

import numpy as np

SEQUENCES = ("joe-kuo", "bratley-fox")
"""Direction numbers: scipy's Joe and Kuo (2008; the default) or Bratley and Fox (1988; the
authors' ``i4_sobol``). Dimensions 1 and 2 agree; from dimension 3 on the points differ."""


def sobol_unit_points(dim: int, n: int, sequence: str = "joe-kuo") -> np.ndarray:
    """Elements ``1..n`` of the unscrambled ``dim``-dimensional Sobol sequence, as ``n × dim``.

    Element 0 (the all-zero corner) is dropped, so the first point is ``(0.5, …, 0.5)``. The
    sequence is deterministic: every study asking for ``n`` points gets the same ones, and
    the first ``k`` of them are the points a budget of ``k`` trials would get. ``sequence``
    picks the direction numbers (:data:`SEQUENCES`).
    """
    if dim < 1:
        raise ValueError(f"a Sobol sequence needs at least one dimension, got {dim}")
    if n < 0:
        raise ValueError(f"number of points must be >= 0, got {n}")
    if sequence not in SEQUENCES:
        raise ValueError(f"unknown Sobol sequence {sequence!r}; use one of {', '.join(SEQUENCES)}")
    if n == 0:
        return np.zeros((0, dim), dtype=np.float64)
    if sequence == "bratley-fox":
        from sparsedp.search.bratley_fox import bratley_fox_points

        return bratley_fox_points(dim, n)
    from scipy.stats import qmc  # imported lazily: scipy.stats is slow to import

    engine = qmc.Sobol(d=dim, scramble=False)
    with warnings.catch_warnings():
        # Budgets such as 100 trials are not powers of two; the points are still the
        # sequence's first elements, which is what a quasi-random search wants.
        warnings.filterwarnings("ignore", message=r".*balance properties.*", category=UserWarning)
        points = engine.random(n + 1)
    return np.asarray(points[1:], dtype=np.float64)
