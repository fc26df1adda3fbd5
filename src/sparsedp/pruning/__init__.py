"""Pruning at initialization: masks, a registry of pruners (SNIP, controls, plugins), global
top-k."""

# Registers the built-in pruners. Python runs this file before any sparsedp.pruning module,
# so they are registered whichever module is imported first (e.g. in a fresh worker process).
from sparsedp.pruning.builtin import SNIP_BASED
from sparsedp.pruning.mask import LayerSparsity, Mask, MaskError
from sparsedp.pruning.prune import (
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
from sparsedp.pruning.settings import PruneSettings

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
