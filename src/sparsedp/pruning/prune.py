"""Global top-k pruning from a saliency, with a registry of pruners."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sparsedp.data.splits import SplitData
from sparsedp.pruning.mask import Mask
from sparsedp.pruning.saliency import (
    magnitude_saliency,
    prunable_parameters,
    random_saliency,
    snip_batches,
    snip_saliency,
)

PRUNERS = ("snip", "magnitude", "random")


@dataclass(frozen=True)
class PruneSettings:
    """How to prune: method, which parameters, SNIP's data budget."""

    method: str = "snip"
    prune_biases: bool = False
    snip_batch_size: int = 100
    snip_batches: int | None = None  # None: the whole training split (authors' code)

    def __post_init__(self) -> None:
        if self.method not in PRUNERS:
            raise ValueError(f"unknown pruner {self.method!r}; known: {', '.join(PRUNERS)}")
        if self.snip_batch_size < 1:
            raise ValueError(f"snip_batch_size must be >= 1, got {self.snip_batch_size}")
        if self.snip_batches is not None and self.snip_batches < 1:
            raise ValueError(f"snip_batches must be >= 1 or unset, got {self.snip_batches}")


def check_sparsity(sparsity: float) -> None:
    """Sparsity must lie in [0, 1): 1 would remove every weight."""
    if not (isinstance(sparsity, (int, float)) and 0.0 <= float(sparsity) < 1.0):
        raise ValueError(
            f"sparsity must be in [0, 1) (fraction of prunable weights removed), got {sparsity}"
        )


def keep_count(total: int, sparsity: float) -> int:
    """round(N · (1 − sparsity)), halves rounded up, never below 1."""
    return max(1, math.floor(total * (1.0 - sparsity) + 0.5))


def global_topk_mask(scores: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Keep the ``keep_count`` highest scores over all tensors together.

    Scores are normalised to sum to 1 first (as SNIP does; it does not change the ranking).
    Ties are broken by position (earlier parameters, then earlier entries, win), so the mask
    is deterministic.
    """
    check_sparsity(sparsity)
    flat = torch.cat([s.detach().reshape(-1).to(torch.float64).cpu() for s in scores.values()])
    total_score = flat.sum()
    if total_score > 0:
        flat = flat / total_score
    k = keep_count(flat.numel(), sparsity)
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    order = torch.argsort(flat, descending=True, stable=True)
    keep[order[:k]] = True
    masks, offset = {}, 0
    for name, s in scores.items():
        masks[name] = keep[offset : offset + s.numel()].view(s.shape).to(torch.float32)
        offset += s.numel()
    return masks


def compute_saliency(
    model: nn.Module,
    settings: PruneSettings,
    data: SplitData | None,
    seed: int,
) -> dict[str, torch.Tensor]:
    """Saliency scores of the prunable parameters of ``model`` under ``settings``."""
    parameters = prunable_parameters(model, settings.prune_biases)
    if settings.method == "snip":
        if data is None:
            raise ValueError("SNIP needs training data")
        batches = snip_batches(data, settings.snip_batch_size, settings.snip_batches)
        return snip_saliency(model, parameters, batches)
    if settings.method == "magnitude":
        return magnitude_saliency(parameters)
    return random_saliency(parameters, torch.Generator().manual_seed(seed + 7919))


def prune(
    model: nn.Module,
    sparsity: float,
    settings: PruneSettings | None = None,
    data: SplitData | None = None,
    *,
    seed: int = 0,
    saliency: dict[str, torch.Tensor] | None = None,
) -> Mask:
    """Prune ``model`` at initialization: compute the mask and zero the pruned weights.

    ``saliency`` may be passed when already computed (it does not depend on the sparsity or
    the batch size, so one computation serves a whole column of studies).
    """
    check_sparsity(sparsity)
    settings = settings or PruneSettings()
    if sparsity == 0.0:
        parameters = prunable_parameters(model, settings.prune_biases)
        mask = Mask({n: torch.ones_like(p) for n, p in parameters.items()}, model)
        return mask
    scores = saliency if saliency is not None else compute_saliency(model, settings, data, seed)
    mask = Mask(global_topk_mask(scores, sparsity), model)
    mask.apply_(model)
    mask.warn_if_layers_empty()
    return mask


