"""Pruning at initialization: saliency by the registered pruner, global top-k, the mask.

:class:`PruneSettings` lives in :mod:`sparsedp.pruning.settings` and is re-exported here; the
built-in pruners are registered by importing :mod:`sparsedp.pruning` (its ``__init__`` imports
:mod:`sparsedp.pruning.builtin`), which Python does before any of its modules, this one
included.
"""

from __future__ import annotations

import torch
from torch import nn

from sparsedp.data.splits import SplitData
from sparsedp.pruning.ablation import inverted, shuffled
from sparsedp.pruning.mask import Mask
from sparsedp.pruning.registry import PruneData, check_scores, get_pruner
from sparsedp.pruning.saliency import prunable_parameters
from sparsedp.pruning.settings import PruneSettings
from sparsedp.pruning.topk import check_sparsity, global_topk_mask, keep_count

__all__ = [
    "PruneSettings",
    "check_sparsity",
    "compute_saliency",
    "global_topk_mask",
    "keep_count",
    "prune",
]


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
    passed on to :func:`compute_saliency`. ``settings.ablation`` "invert" keeps the lowest
    scores, "shuffle" moves each tensor's kept entries to random positions (generator from
    ``seed``); "reinit" is applied by the caller that builds the model
    (:mod:`sparsedp.training.pruned`).
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
    if settings.ablation == "invert":
        scores = inverted(scores)
    masks = global_topk_mask(scores, sparsity)
    if settings.ablation == "shuffle":
        masks = shuffled(masks, seed)
    mask = Mask(masks, model)
    mask.apply_(model)
    mask.warn_if_layers_empty()
    return mask
