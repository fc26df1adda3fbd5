"""sparsedp's own pruners, registered at import: SNIP, GraSP, SynFlow and four controls.

Imported by ``sparsedp/pruning/__init__.py``, so they are registered whenever any part of
:mod:`sparsedp.pruning` is imported; the registry itself does not import this module.
"""

from __future__ import annotations

import torch
from torch import nn

from sparsedp.pruning.ablation import SHUFFLE_SALT, shuffled
from sparsedp.pruning.erk import erk_counts, random_at_counts
from sparsedp.pruning.grasp import grasp_saliency
from sparsedp.pruning.registry import PruneData, Pruner, register_builtin
from sparsedp.pruning.saliency import magnitude_saliency, random_saliency, snip_saliency
from sparsedp.pruning.settings import PruneSettings
from sparsedp.pruning.synflow import synflow_saliency
from sparsedp.pruning.topk import global_topk_mask

RANDOM_SALT = 7919  # the random control's generator is seeded seed + 7919 (as before the registry)
GRASP_SALT = 0  # GraSP's sample: a permutation of the training split seeded by the seed
RANDOM_LAYERS_SALT = SHUFFLE_SALT  # 104,729: random-snip-layers is SNIP's mask shuffled
RANDOM_ERK_SALT = 15_485_863
SNIP_BASED = ("snip", "random-snip-layers")  # pruners built on SNIP's (cacheable) saliency


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


def _grasp(model: nn.Module, data: PruneData, settings: PruneSettings) -> dict[str, torch.Tensor]:
    x, y = data.class_balanced(settings.grasp_examples_per_class, GRASP_SALT, who="grasp")
    return grasp_saliency(model, data.parameters, x, y, settings.grasp_temperature)


def _synflow(model: nn.Module, data: PruneData,
             settings: PruneSettings) -> dict[str, torch.Tensor]:
    assert data.sparsity is not None  # uses_sparsity: compute_saliency checks it
    return synflow_saliency(model, data.parameters, data.require_input_shape("synflow"),
                            data.sparsity, settings.synflow_iterations)


def _random_snip_layers(model: nn.Module, data: PruneData,
                        settings: PruneSettings) -> dict[str, torch.Tensor]:
    assert data.sparsity is not None  # uses_sparsity: compute_saliency checks it
    return random_at_snip_layer_counts(_snip(model, data, settings), data.sparsity, data.seed)


def random_at_snip_layer_counts(
    snip_scores: dict[str, torch.Tensor], sparsity: float, seed: int
) -> dict[str, torch.Tensor]:
    """The ``random-snip-layers`` scores from SNIP's: SNIP's mask at ``sparsity`` shuffled
    within each tensor (:func:`~sparsedp.pruning.ablation.shuffled`: as many entries as SNIP
    keeps, chosen uniformly at random with a generator seeded ``seed + RANDOM_LAYERS_SALT``),
    score 1, the others 0; the global top-k at ``sparsity`` keeps exactly those. (The worker
    calls it on cached SNIP scores.)"""
    scores = shuffled(global_topk_mask(snip_scores, sparsity), seed)
    return {name: s.to(snip_scores[name].device) for name, s in scores.items()}


def _random_erk(model: nn.Module, data: PruneData,
                settings: PruneSettings) -> dict[str, torch.Tensor]:
    assert data.sparsity is not None  # uses_sparsity: compute_saliency checks it
    shapes = {name: tuple(p.shape) for name, p in data.parameters.items()}
    scores = random_at_counts(erk_counts(shapes, data.sparsity), shapes,
                              data.generator(RANDOM_ERK_SALT))
    return {name: s.to(data.parameters[name].device) for name, s in scores.items()}


register_builtin(Pruner(
    "grasp", _grasp,
    "gradient signal preservation: remove the highest −θ ⊙ Hg (Wang et al., 2020)",
))
register_builtin(Pruner(
    "synflow", _synflow,
    "iterative synaptic flow |θ ⊙ ∂R/∂θ|, data-free (Tanaka et al., 2020)",
    needs_data=False, uses_sparsity=True,
))
register_builtin(Pruner(
    "random-snip-layers", _random_snip_layers,
    "random weights, as many per layer as SNIP keeps (a control)", uses_sparsity=True,
))
register_builtin(Pruner(
    "random-erk", _random_erk,
    "random weights, as many per layer as Erdős–Rényi-Kernel densities give (a control)",
    needs_data=False, uses_sparsity=True,
))
