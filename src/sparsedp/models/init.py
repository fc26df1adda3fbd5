"""Initialisation as in the authors' TF code: variance scaling, fan-in, truncated normal."""

from __future__ import annotations

import math

import torch
from torch import nn

# std of a standard normal truncated to [-2, 2]; TF divides by it so the truncated
# distribution has the requested variance.
TRUNCATED_NORMAL_STD_CORRECTION = 0.87962566103423978


def fan_in(weight: torch.Tensor) -> int:
    """Number of inputs feeding one output unit of a conv or linear weight."""
    if weight.dim() < 2:
        raise ValueError(f"fan-in needs a weight of rank >= 2, got shape {tuple(weight.shape)}")
    return int(weight.shape[1] * math.prod(weight.shape[2:]))


def variance_scaling_std(weight: torch.Tensor, scale: float = 1.0) -> float:
    """Pre-truncation std: sqrt(scale / fan_in) / 0.87962566."""
    return math.sqrt(scale / fan_in(weight)) / TRUNCATED_NORMAL_STD_CORRECTION


@torch.no_grad()
def init_variance_scaling_(model: nn.Module, generator: torch.Generator) -> None:
    """Weights ~ truncated normal (±2 std) with fan-in variance scaling; biases zero."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            std = variance_scaling_std(module.weight)
            sample = torch.empty_like(module.weight)
            _truncated_normal_(sample, std, generator)
            module.weight.copy_(sample)
            if module.bias is not None:
                module.bias.zero_()


def _truncated_normal_(tensor: torch.Tensor, std: float, generator: torch.Generator) -> None:
    """Fill with N(0, std²) truncated at ±2 std by redrawing values outside (as TF does)."""
    flat = tensor.view(-1)
    flat.normal_(0.0, std, generator=generator)
    outside = flat.abs() > 2 * std
    while bool(outside.any()):
        redraw = torch.empty(int(outside.sum()), dtype=flat.dtype)
        redraw.normal_(0.0, std, generator=generator)
        flat[outside] = redraw
        outside = flat.abs() > 2 * std
