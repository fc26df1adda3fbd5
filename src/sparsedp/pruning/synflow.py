"""SynFlow: iterative synaptic flow pruning, data-free (Tanaka et al., NeurIPS 2020).

The network is *linearised*: a copy with every parameter and floating buffer replaced by its
absolute value, in evaluation mode (batch norm uses its running statistics, as in the
authors' code), in float64. For an all-ones input of one example, ``R`` is the sum of the
output; with non-negative weights, biases and input every pre-activation is non-negative,
so ReLUs pass everything and ``R = 1ᵀ(∏|W|)1`` for a network of linear layers. A weight's
score is ``|θ| ⊙ ∂R/∂|θ|``. Biases stay in the forward pass (absolute values) and are scored
like weights when they are prunable.

Iterative: for ``k = 1..n`` the scores are computed with the mask of iteration ``k − 1``
applied, then the mask keeps the top ``round(N · d^(k/n))`` (``d`` = target density,
1 − sparsity): an exponential schedule. The scores returned are those of iteration ``n``,
with weights pruned at earlier iterations set to −1 (below every live score, which is
≥ 0), so the shared global top-k at the target sparsity gives exactly the last mask. The
model passed in is not changed (its weights keep their signs).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from sparsedp.pruning.topk import global_topk_mask

PRUNED = -1.0  # score of weights pruned by an earlier iteration


def synflow_saliency(
    model: nn.Module,
    parameters: dict[str, nn.Parameter],
    input_shape: tuple[int, ...],
    sparsity: float,
    iterations: int = 100,
) -> dict[str, torch.Tensor]:
    """SynFlow scores (float64) after ``iterations`` rounds towards ``sparsity`` (higher =
    keep); ``parameters`` are keyed by the model's parameter names."""
    work = copy.deepcopy(model).to(torch.float64).eval()
    with torch.no_grad():
        for tensor in work.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    work_parameters = dict(work.named_parameters())
    keys = list(parameters)
    targets = [work_parameters[key] for key in keys]
    originals = [t.detach().clone() for t in targets]
    masks = [torch.ones_like(t) for t in targets]
    x = torch.ones((1, *input_shape), dtype=torch.float64, device=originals[0].device)
    density = 1.0 - sparsity
    scores: dict[str, torch.Tensor] = {}
    for k in range(1, iterations + 1):
        with torch.no_grad():
            for t, original, mask in zip(targets, originals, masks, strict=True):
                t.copy_(original * mask)
        flow = work(x).sum()
        grads = torch.autograd.grad(flow, targets)
        with torch.no_grad():
            scores = {
                key: torch.where(mask > 0, (g * t).abs(), torch.full_like(t, PRUNED))
                for key, g, t, mask in zip(keys, grads, targets, masks, strict=True)
            }
        if k < iterations:
            kept = global_topk_mask(scores, 1.0 - density ** (k / iterations))
            masks = [kept[key].to(dtype=t.dtype, device=t.device) for key, t in
                     zip(keys, targets, strict=True)]
    return scores  # float64: R can exceed float32's range in deep networks
