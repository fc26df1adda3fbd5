"""sparsedp's own pruners, registered at import: SNIP and two controls."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from sparsedp.pruning.registry import PruneData, Pruner, register_builtin
from sparsedp.pruning.saliency import magnitude_saliency, random_saliency, snip_saliency

if TYPE_CHECKING:
    from sparsedp.pruning.prune import PruneSettings

RANDOM_SALT = 7919  # the random control's generator is seeded seed + 7919 (as before the registry)


def _snip(model: nn.Module, data: PruneData, settings: PruneSettings) -> dict[str, torch.Tensor]:
    batches = data.batches(settings.snip_batch_size, settings.snip_batches, who="snip")
    return snip_saliency(model, data.parameters, batches)


def _magnitude(model: nn.Module, data: PruneData,
               settings: PruneSettings) -> dict[str, torch.Tensor]:
    return magnitude_saliency(data.parameters)


def _random(model: nn.Module, data: PruneData, settings: PruneSettings) -> dict[str, torch.Tensor]:
    return random_saliency(data.parameters, data.generator(RANDOM_SALT))


register_builtin(Pruner(
    "snip", _snip, "connection sensitivity |w ⊙ ∂L/∂w| on training batches (Lee et al., 2019)",
))
register_builtin(Pruner(
    "magnitude", _magnitude, "largest initial |w| (a control)", needs_data=False,
))
register_builtin(Pruner(
    "random", _random, "uniform random scores: a random mask (a control)", needs_data=False,
))
