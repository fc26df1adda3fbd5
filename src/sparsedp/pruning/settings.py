"""How to prune: :class:`PruneSettings`, the method (a registered pruner) and its options.

The method is checked against :mod:`sparsedp.pruning.registry` when the settings are made;
the registry does not import this module back.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from sparsedp.pruning.ablation import check_ablation
from sparsedp.pruning.registry import get_pruner

__all__ = ["PruneSettings"]


@dataclass(frozen=True)
class PruneSettings:
    """How to prune: the method (a registered pruner), which parameters, and the methods'
    options. The method is checked against the registry when the settings are made, so a
    plugin's pruner must be registered first. A GraSP or SynFlow option set away from its
    default with another method is an error (it would change the study key for nothing).
    ``ablation`` (:data:`~sparsedp.pruning.ablation.ABLATIONS`) composes with any method."""

    method: str = "snip"
    prune_biases: bool = False
    snip_batch_size: int = 100
    snip_batches: int | None = None  # None: the whole training split (authors' code)
    grasp_temperature: float = 200.0
    grasp_examples_per_class: int = 25
    synflow_iterations: int = 100
    ablation: str = "none"  # "shuffle", "reinit" or "invert": see sparsedp.pruning.ablation

    def __post_init__(self) -> None:
        get_pruner(self.method)
        check_ablation(self.ablation)
        if self.snip_batch_size < 1:
            raise ValueError(f"snip_batch_size must be >= 1, got {self.snip_batch_size}")
        if self.snip_batches is not None and self.snip_batches < 1:
            raise ValueError(f"snip_batches must be >= 1 or unset, got {self.snip_batches}")
        temperature = self.grasp_temperature
        if isinstance(temperature, bool) or not (
            isinstance(temperature, (int, float)) and 0 < temperature < math.inf
        ):
            raise ValueError(f"grasp_temperature must be a number > 0, got {temperature}")
        object.__setattr__(self, "grasp_temperature", float(temperature))  # 200 == 200.0
        for key in ("grasp_examples_per_class", "synflow_iterations"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be an integer >= 1, got {value}")
        for key, method in _METHOD_OPTIONS.items():
            if self.method != method and getattr(self, key) != _DEFAULTS[key]:
                raise ValueError(f"{key} applies to method {method!r} only, not "
                                 f"{self.method!r}; remove it or set method = {method!r}")

    def cache_identity(self) -> dict[str, Any]:
        """The settings as a dict for cache keys: the four original fields always, options
        added later only when they differ from their defaults, so saliency caches written
        before those options existed stay valid. ``ablation`` is left out: it acts on the
        scores after they are computed, so every ablation shares the method's saliency."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if k != "ablation"
                and (k in _ORIGINAL_FIELDS or v != _DEFAULTS[k])}


_METHOD_OPTIONS = {
    "grasp_temperature": "grasp",
    "grasp_examples_per_class": "grasp",
    "synflow_iterations": "synflow",
}
_ORIGINAL_FIELDS = ("method", "prune_biases", "snip_batch_size", "snip_batches")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PruneSettings)}
