"""GraSP: gradient signal preservation (Wang, Zhang & Grosse, ICLR 2020).

With ``L`` the mean cross-entropy of the sample at temperature ``T`` (logits divided by
``T``), ``g = ∇L`` and ``H = ∇²L`` restricted to the prunable parameters, GraSP scores each
weight ``−θ ⊙ Hg`` and *removes the highest*. sparsedp's pruners keep the highest scores, so
this function returns ``θ ⊙ Hg`` (the negated GraSP score): keeping its top-k is removing
GraSP's top N − k. ``Hg`` is a Hessian-gradient product by double back-propagation: the
gradient of ``g_stop · ∇L`` with ``g_stop`` the detached ``g``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def grasp_saliency(
    model: nn.Module,
    parameters: dict[str, nn.Parameter],
    x: torch.Tensor,
    y: torch.Tensor,
    temperature: float = 200.0,
    chunk: int = 128,
) -> dict[str, torch.Tensor]:
    """``θ ⊙ Hg`` for the mean loss of ``(x, y)`` at ``temperature`` (higher = keep).

    The sample is processed ``chunk`` examples at a time (each chunk's loss weighted by its
    share of the sample), which bounds the memory of the double back-propagation and gives
    the same ``g`` and ``Hg`` as one pass over the whole sample.
    """
    device = next(iter(parameters.values())).device
    names = list(parameters)
    targets = [parameters[name] for name in names]
    pieces = _chunks(x.shape[0], chunk)

    def loss_of(start: int, stop: int) -> torch.Tensor:
        xb, yb = x[start:stop].to(device), y[start:stop].to(device)
        share = (stop - start) / x.shape[0]
        return F.cross_entropy(model(xb) / temperature, yb) * share

    gradient = [torch.zeros_like(p) for p in targets]
    for start, stop in pieces:
        for total, g in zip(gradient, torch.autograd.grad(loss_of(start, stop), targets),
                            strict=True):
            total += g
    hg = [torch.zeros_like(p) for p in targets]
    for start, stop in pieces:
        g = torch.autograd.grad(loss_of(start, stop), targets, create_graph=True)
        z = sum((gi * fixed).sum() for gi, fixed in zip(g, gradient, strict=True))
        for total, h in zip(hg, torch.autograd.grad(z, targets), strict=True):
            total += h
    with torch.no_grad():
        return {name: p.detach() * h for name, p, h in zip(names, targets, hg, strict=True)}


def _chunks(n: int, size: int) -> Sequence[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]
