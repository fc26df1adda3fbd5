"""Saliency criteria for pruning at initialization: SNIP, magnitude and random."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sparsedp import models
from sparsedp.data.splits import SplitData


def prunable_parameters(model: nn.Module, include_biases: bool = False) -> dict[str, nn.Parameter]:
    """Weights of every conv and FC layer (or the model's own rule), plus biases when asked."""
    return models.prunable_parameters(model, include_biases)


def snip_batches(
    data: SplitData,
    batch_size: int = 100,
    num_batches: int | None = None,
    chunk_batches: int = 2,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Chunks ``(x, y, weight)`` of the training split for SNIP's accumulated gradient.

    Consecutive mini-batches of ``batch_size`` examples (all of the training split by default,
    as the authors' code does, or the first ``num_batches``) are served ``chunk_batches`` at a
    time; each example's weight is 1/(size of its mini-batch), so the weighted sum of losses
    over a chunk equals the sum of its mini-batches' mean losses.
    """
    n = data.num_train if num_batches is None else min(data.num_train, num_batches * batch_size)
    last_start = (n // batch_size) * batch_size
    chunk = batch_size * chunk_batches
    for start in range(0, n, chunk):
        positions = np.arange(start, min(start + chunk, n))
        x, y = data.train_batch(positions)
        weight = torch.full((positions.shape[0],), 1.0 / batch_size)
        if n % batch_size:
            weight[torch.from_numpy(positions >= last_start)] = 1.0 / (n - last_start)
        yield x, y, weight


def snip_saliency(
    model: nn.Module,
    parameters: dict[str, nn.Parameter],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """Connection sensitivity |∂L/∂c| at c = 1, i.e. |w ⊙ g| (Lee et al., 2019).

    ``g`` is the gradient of ``L = Σ weight_i · CE(model(x_i), y_i)`` over all ``batches``
    (see :func:`snip_batches`: the sum of mini-batch mean losses).
    """
    # The gradients are computed on a channels-last copy (2x faster on CPU here); the
    # model being pruned keeps its own layout, and the saliency uses its weights.
    work = copy.deepcopy(model).to(memory_format=torch.channels_last)
    work_parameters = dict(work.named_parameters())
    targets = [work_parameters[name] for name in parameters]
    grads = {name: torch.zeros_like(p) for name, p in parameters.items()}
    device = next(model.parameters()).device
    for x, y, weight in batches:
        x, y, weight = x.to(device), y.to(device), weight.to(device)
        loss = (F.cross_entropy(work(x), y, reduction="none") * weight).sum()
        chunk_grads = torch.autograd.grad(loss, targets)
        for name, g in zip(parameters, chunk_grads, strict=True):
            grads[name] += g
    with torch.no_grad():
        return {name: (p * grads[name]).abs() for name, p in parameters.items()}


def magnitude_saliency(parameters: dict[str, nn.Parameter]) -> dict[str, torch.Tensor]:
    """|w|: keeps the largest initial weights (a control)."""
    with torch.no_grad():
        return {name: p.detach().abs() for name, p in parameters.items()}


def random_saliency(
    parameters: dict[str, nn.Parameter], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Uniform random scores: a random mask with (globally) the requested sparsity."""
    return {
        name: torch.rand(p.shape, generator=generator).to(p.device)
        for name, p in parameters.items()
    }
