"""A trial's network as it starts training: built from its seed, pruned, ablated, checked.

:func:`pruned_trial_model` is the one place a trial's model is made (the trainer and the
batched groups both call it): build it from the trial's seed, prune it
(:func:`sparsedp.pruning.prune`, which applies the ``invert`` and ``shuffle`` ablations),
under the ``reinit`` ablation swap in fresh initial weights from
:func:`~sparsedp.pruning.ablation.reinit_seed` under the same mask, and measure the mask's
health (:mod:`sparsedp.pruning.health`) on the network that will be trained.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sparsedp.data.splits import SplitData
from sparsedp.models import build_model
from sparsedp.pruning.ablation import reinit_seed
from sparsedp.pruning.health import mask_health
from sparsedp.pruning.mask import Mask
from sparsedp.pruning.prune import prune
from sparsedp.training.trial_config import TrialConfig


def build_trial_model(config: TrialConfig, data: SplitData, seed: int | None = None) -> nn.Module:
    """The trial's model for ``data``, initialised from ``seed`` (default: the trial's)."""
    options = dict(config.spec.model_options)
    if config.hidden_units:
        options["hidden_units"] = config.hidden_units
    channels, size, _ = data.image_shape
    return build_model(config.spec.model, channels=channels, image_size=size,
                       num_classes=data.num_classes,
                       seed=config.seed if seed is None else seed, **options)


def pruned_trial_model(
    config: TrialConfig,
    data: SplitData,
    device: torch.device | str,
    saliency: dict[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, Mask, dict[str, Any]]:
    """The trial's pruned model on ``device``, its mask, and the mask report with its
    ``health`` (the report :attr:`TrialResult.mask_report` stores)."""
    model = build_trial_model(config, data).to(device)
    mask = prune(model, config.sparsity, config.pruning, data, seed=config.seed,
                 saliency=saliency)
    if config.pruning.ablation == "reinit":
        fresh = build_trial_model(config, data, seed=reinit_seed(config.seed)).to(device)
        with torch.no_grad():
            for mine, new in zip(model.parameters(), fresh.parameters(), strict=True):
                mine.copy_(new)
        mask.apply_(model)
    report = mask.report_dict()
    report["health"] = mask_health(model, mask, data)
    return model, mask, report
