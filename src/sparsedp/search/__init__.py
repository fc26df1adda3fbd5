"""Quasi-random metaparameter search: Sobol points mapped through per-dimension scales."""

from sparsedp.search.sobol import SEQUENCES, sobol_unit_points
from sparsedp.search.space import (
    DEFAULT_DIMENSIONS,
    INTEGER_MAPPINGS,
    SCALES,
    Dimension,
    SearchSpace,
)

__all__ = [
    "DEFAULT_DIMENSIONS",
    "INTEGER_MAPPINGS",
    "SCALES",
    "SEQUENCES",
    "Dimension",
    "SearchSpace",
    "sobol_unit_points",
]
