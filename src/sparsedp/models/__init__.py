"""Models: plain ``nn.Module``s, a registry by name (plugins add to it), the authors'
initialisation, and which parameters are prunable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from sparsedp.models.init import init_variance_scaling_, variance_scaling_std
from sparsedp.models.resnet import ResNet8
from sparsedp.models.simple_cnn import SimpleCNN
from sparsedp.models.vit import ViT
from sparsedp.origin import BUILT_IN, check_free, check_part, current_origin

__all__ = [
    "BUILTIN_MODELS",
    "MODELS",
    "ModelSpec",
    "ResNet8",
    "SimpleCNN",
    "ViT",
    "build_model",
    "count_parameters",
    "init_variance_scaling_",
    "prunable_parameters",
    "register_model",
    "variance_scaling_std",
]


INITS = ("variance-scaling", "factory")
PRUNABLE_ATTRIBUTE = "sparsedp_prunable"


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: a factory ``(channels, image size, classes, **options)``.

    ``init``: "variance-scaling" re-initialises every conv and linear layer as the authors'
    code does (from the trial's seed); "factory" keeps the factory's own initialisation
    (made under the trial's seed). ``prunable(model)`` returns the parameters pruning may
    remove (default: conv and linear weights). ``version`` enters the study key.
    """

    name: str
    description: str
    factory: Callable[..., nn.Module]
    version: str = ""
    prunable: Callable[[nn.Module], Mapping[str, nn.Parameter]] | None = None
    init: str = "variance-scaling"
    origin: str = BUILT_IN


def _simple_cnn(channels: int, size: int, classes: int, hidden_units: int = 0) -> nn.Module:
    return SimpleCNN(channels, size, classes, hidden_units=hidden_units)


def _resnet8(channels: int, size: int, classes: int) -> nn.Module:
    return ResNet8(channels, classes)


def _vit(channels: int, size: int, classes: int, patch: int = 7, dim: int = 64,
         depth: int = 4, heads: int = 4, mlp_dim: int = 128, pool: str = "cls") -> nn.Module:
    return ViT(channels, size, classes, patch=patch, dim=dim, depth=depth, heads=heads,
               mlp_dim=mlp_dim, pool=pool)


MODELS: dict[str, ModelSpec] = {
    "simple-cnn": ModelSpec(
        "simple-cnn", "2 conv (5x5, 32/64) + max-pool, fc to classes; option hidden_units",
        _simple_cnn,
    ),
    "resnet-8": ModelSpec("resnet-8", "ResNet-8 without batch norm, pre-activation", _resnet8),
    "vit": ModelSpec(
        "vit", "Vision Transformer, pre-norm, GELU; options patch, dim, depth, heads, mlp_dim, "
        "pool (cls or mean)", _vit,
    ),
}
BUILTIN_MODELS = frozenset(MODELS)


def register_model(
    name: str,
    factory: Callable[..., nn.Module],
    *,
    version: str = "",
    description: str = "",
    prunable: Callable[[nn.Module], Mapping[str, nn.Parameter]] | None = None,
    init: str = "variance-scaling",
    replace: bool = False,
) -> ModelSpec:
    """Register model ``name``; ``factory(channels, size, classes, **options)`` builds an
    ``nn.Module`` for square ``size``×``size`` images that returns (batch, classes) logits.
    See :class:`ModelSpec` for ``prunable``, ``init`` and ``version``."""
    check_part("model", name, version, description)
    if not callable(factory):
        raise ValueError(f"model {name!r}: the factory must be callable, got {factory!r}")
    if prunable is not None and not callable(prunable):
        raise ValueError(f"model {name!r}: prunable must be a function of the model")
    if init not in INITS:
        raise ValueError(f"model {name!r}: init must be one of {', '.join(INITS)}, got {init!r}")
    check_free("model", name, MODELS, BUILTIN_MODELS, replace)
    spec = ModelSpec(name, description, factory, version, prunable, init, current_origin())
    MODELS[name] = spec
    return spec


def build_model(
    name: str,
    *,
    channels: int,
    image_size: int,
    num_classes: int,
    seed: int,
    **options: object,
) -> nn.Module:
    """Construct model ``name`` and initialise it deterministically from ``seed``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    with torch.random.fork_rng(devices=[]):  # a factory's own init is seeded too
        torch.manual_seed(seed)
        model = spec.factory(channels, image_size, num_classes, **options)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model {name!r} ({spec.origin}): the factory returned "
                        f"{type(model).__name__}, not a torch.nn.Module")
    if spec.init == "variance-scaling":
        generator = torch.Generator().manual_seed(seed)
        init_variance_scaling_(model, generator)
    if spec.prunable is not None:
        object.__setattr__(model, PRUNABLE_ATTRIBUTE, spec.prunable)
    return model


def prunable_parameters(model: nn.Module, include_biases: bool = False
                        ) -> dict[str, nn.Parameter]:
    """The parameters pruning may remove, in the model's parameter order.

    By default the weights of conv and linear layers; a model registered with ``prunable``
    (kept on the model as ``sparsedp_prunable``) chooses its own. ``include_biases`` adds
    every rank-1 parameter.
    """
    named = dict(model.named_parameters())
    hook = getattr(model, PRUNABLE_ATTRIBUTE, None)
    if hook is not None:
        chosen = {id(p) for p in dict(hook(model)).values()}
    else:
        chosen = {id(m.weight) for m in model.modules()
                  if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))}
    return {n: p for n, p in named.items()
            if id(p) in chosen or (include_biases and p.dim() == 1)}


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Weights (rank >= 2) and biases (rank 1) of a model."""
    weights = sum(p.numel() for p in model.parameters() if p.dim() >= 2)
    biases = sum(p.numel() for p in model.parameters() if p.dim() == 1)
    return {"weights": weights, "biases": biases}
