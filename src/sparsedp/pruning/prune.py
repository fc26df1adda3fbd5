"""Pruning at initialization: settings, saliency by the registered pruner, global top-k."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import sparsedp.pruning.builtin  # noqa: F401  (registers the built-in pruners)
from sparsedp.data.splits import SplitData
from sparsedp.pruning.mask import Mask
from sparsedp.pruning.registry import PruneData, check_scores, get_pruner
from sparsedp.pruning.saliency import prunable_parameters
from sparsedp.pruning.topk import check_sparsity, global_topk_mask, keep_count

__all__ = [
    "PruneSettings",
    "check_sparsity",
    "compute_saliency",
    "global_topk_mask",
    "keep_count",
    "prune",
]


@dataclass(frozen=True)
class PruneSettings:
    """How to prune: the method (a registered pruner), which parameters, and the methods'
    options. The method is checked against the registry when the settings are made, so a
    plugin's pruner must be registered first. A GraSP or SynFlow option set away from its
    default with another method is an error (it would change the study key for nothing)."""

    method: str = "snip"
    prune_biases: bool = False
    snip_batch_size: int = 100
    snip_batches: int | None = None  # None: the whole training split (authors' code)
    grasp_temperature: float = 200.0
    grasp_examples_per_class: int = 25
    synflow_iterations: int = 100

    def __post_init__(self) -> None:
        get_pruner(self.method)
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
        before those options existed stay valid."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if k in _ORIGINAL_FIELDS or v != _DEFAULTS[k]}


_METHOD_OPTIONS = {
    "grasp_temperature": "grasp",
    "grasp_examples_per_class": "grasp",
    "synflow_iterations": "synflow",
}
_ORIGINAL_FIELDS = ("method", "prune_biases", "snip_batch_size", "snip_batches")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PruneSettings)}


def compute_saliency(
    model: nn.Module,
    settings: PruneSettings,
    data: SplitData | None,
    seed: int,
    *,
    sparsity: float | None = None,
    parameters: dict[str, nn.Parameter] | None = None,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
) -> dict[str, torch.Tensor]:
    """Scores of the prunable parameters of ``model`` by the pruner ``settings.method``.

    ``parameters`` defaults to :func:`prunable_parameters` (conv and FC weights, biases with
    ``prune_biases``); ``input_shape`` and ``num_classes`` default to the data's. ``sparsity``
    may be left out for pruners whose scores do not depend on it (then they can be shared
    between sparsities). The scores are checked against the contract (one-line ValueError
    naming the pruner) and returned in parameter order.
    """
    pruner = get_pruner(settings.method)
    if parameters is None:
        parameters = prunable_parameters(model, settings.prune_biases)
    if pruner.needs_data and data is None:
        raise ValueError(f"pruner {pruner.name!r} needs training data, and none was given")
    if pruner.uses_sparsity and sparsity is None:
        raise ValueError(f"pruner {pruner.name!r} needs the target sparsity")
    if data is not None:
        input_shape = input_shape or tuple(data.image_shape)
        num_classes = num_classes or data.num_classes
    prune_data = PruneData(parameters, seed, sparsity, input_shape, num_classes, data)
    scores = pruner.saliency(model, prune_data, settings)
    return check_scores(pruner.name, scores, parameters)


def prune(
    model: nn.Module,
    sparsity: float,
    settings: PruneSettings | None = None,
    data: SplitData | None = None,
    *,
    seed: int = 0,
    saliency: dict[str, torch.Tensor] | None = None,
    parameters: dict[str, nn.Parameter] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> Mask:
    """Prune ``model`` at initialization: compute the mask and zero the pruned weights.

    ``saliency`` may be passed when already computed (SNIP's does not depend on the sparsity
    or the batch size, so one computation serves a whole column of studies). ``parameters``
    (default: :func:`prunable_parameters`) and ``input_shape`` (default: the data's) are
    passed on to :func:`compute_saliency`.
    """
    check_sparsity(sparsity)
    settings = settings or PruneSettings()
    if parameters is None:
        parameters = prunable_parameters(model, settings.prune_biases)
    if sparsity == 0.0:
        return Mask({n: torch.ones_like(p) for n, p in parameters.items()}, model)
    scores = saliency if saliency is not None else compute_saliency(
        model, settings, data, seed, sparsity=sparsity, parameters=parameters,
        input_shape=input_shape,
    )
    mask = Mask(global_topk_mask(scores, sparsity), model)
    mask.apply_(model)
    mask.warn_if_layers_empty()
    return mask
