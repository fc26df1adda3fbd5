"""Pruning at initialization: masks, a registry of pruners (SNIP, controls, plugins), global
top-k."""

from sparsedp.pruning.builtin import SNIP_BASED
from sparsedp.pruning.mask import LayerSparsity, Mask, MaskError
from sparsedp.pruning.prune import (
    PruneSettings,
    check_sparsity,
    compute_saliency,
    global_topk_mask,
    keep_count,
    prune,
)
from sparsedp.pruning.registry import (
    PruneData,
    Pruner,
    get_pruner,
    pruner_names,
    register_pruner,
)
from sparsedp.pruning.saliency import prunable_parameters, snip_batches, snip_saliency

__all__ = [
    "SNIP_BASED",
    "LayerSparsity",
    "Mask",
    "MaskError",
    "PruneData",
    "PruneSettings",
    "Pruner",
    "check_sparsity",
    "compute_saliency",
    "get_pruner",
    "global_topk_mask",
    "keep_count",
    "prunable_parameters",
    "prune",
    "pruner_names",
    "register_pruner",
    "snip_batches",
    "snip_saliency",
]
