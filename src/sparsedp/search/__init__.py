"""Quasi-random metaparameter search: Sobol points mapped through per-dimension scales."""

from sparsedp.search.sobol import sobol_unit_points
from sparsedp.search.space import DEFAULT_DIMENSIONS, SCALES, Dimension, SearchSpace

__all__ = ["DEFAULT_DIMENSIONS", "SCALES", "Dimension", "SearchSpace", "sobol_unit_points"]
