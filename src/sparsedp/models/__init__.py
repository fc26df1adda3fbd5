"""Models: plain ``nn.Module``s, a registry by name, and the authors' initialisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from sparsedp.models.init import init_variance_scaling_, variance_scaling_std
from sparsedp.models.resnet import ResNet8
from sparsedp.models.simple_cnn import SimpleCNN

__all__ = [
    "MODELS",
    "ModelSpec",
    "ResNet8",
    "SimpleCNN",
    "build_model",
    "count_parameters",
    "init_variance_scaling_",
    "variance_scaling_std",
]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: a constructor from (channels, image size, classes, options)."""

    name: str
    description: str
    factory: Callable[..., nn.Module]


def _simple_cnn(channels: int, size: int, classes: int, hidden_units: int = 0) -> nn.Module:
    return SimpleCNN(channels, size, classes, hidden_units=hidden_units)


def _resnet8(channels: int, size: int, classes: int) -> nn.Module:
    return ResNet8(channels, classes)


MODELS: dict[str, ModelSpec] = {
    "simple-cnn": ModelSpec(
        "simple-cnn", "2 conv (5x5, 32/64) + max-pool, fc to classes; option hidden_units",
        _simple_cnn,
    ),
    "resnet-8": ModelSpec("resnet-8", "ResNet-8 without batch norm, pre-activation", _resnet8),
}


def build_model(
    name: str,
    *,
    channels: int,
    image_size: int,
    num_classes: int,
    seed: int,
    **options: int,
) -> nn.Module:
    """Construct model ``name`` and initialise it deterministically from ``seed``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    model = MODELS[name].factory(channels, image_size, num_classes, **options)
    generator = torch.Generator().manual_seed(seed)
    init_variance_scaling_(model, generator)
    return model


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Weights (rank >= 2) and biases (rank 1) of a model."""
    weights = sum(p.numel() for p in model.parameters() if p.dim() >= 2)
    biases = sum(p.numel() for p in model.parameters() if p.dim() == 1)
    return {"weights": weights, "biases": biases}
