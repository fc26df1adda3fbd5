"""Pruning at initialization: masks, saliencies (SNIP, magnitude, random), global top-k."""

from sparsedp.pruning.mask import LayerSparsity, Mask, MaskError
from sparsedp.pruning.prune import (
    PRUNERS,
    PruneSettings,
    check_sparsity,
    compute_saliency,
    global_topk_mask,
    keep_count,
    prune,
)
from sparsedp.pruning.saliency import prunable_parameters, snip_batches, snip_saliency

__all__ = [
    "PRUNERS",
    "LayerSparsity",
    "Mask",
    "MaskError",
    "PruneSettings",
    "check_sparsity",
    "compute_saliency",
    "global_topk_mask",
    "keep_count",
    "prunable_parameters",
    "prune",
    "snip_batches",
    "snip_saliency",
]
