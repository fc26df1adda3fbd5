"""K models of one architecture run at once from parameters stacked along a first dimension.

Why not ``torch.vmap``: its convolution rule adds the bias outside the convolution kernel and
its batched reductions sum in another order, so after a few dozen steps a ReLU or max-pool
decision flips and the trajectory leaves the sequential one (measured on MNIST: 3e-3 apart at
step 50, 0.4 at step 200). :class:`StackedModel` runs each layer for all K models at once as
a grouped convolution or a batched matmul, formed so that on CPU every trial gets the
sequential trial's numbers bit for bit, and so run_trial's outcome.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

__all__ = ["Params", "StackedModel"]

Params = dict[str, Tensor]


class _StackedLinear(torch.autograd.Function):
    """``x[k] @ w[k].T + b[k]`` for every k, with F.linear's own gradient products.

    Autograd's rule for ``baddbmm`` forms the weight gradient as ``xᵀ·g`` (then transposed),
    whose rounding differs from F.linear's ``gᵀ·x``; this backward uses the latter.
    """

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # type: ignore[override]
        if bias is None:
            return torch.bmm(x, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, weight, bias = inputs
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(dim=1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


class StackedModel:
    """Runs K models of one architecture at once, from parameters stacked along a first dim.

    A structural copy of the model (on the meta device) is called through
    ``torch.func.functional_call`` with the stacked parameters. Activations between layers
    hold the K models' examples one model after another (batch ``K·n``), so parameter-free
    operations (activations, pooling, padding, per-example reshapes, residual sums) run once
    for all models unchanged. The input is either shared by all models (batch ``n``) or
    stacked (batch ``K·n``, model-major). ``nn.Linear`` layers run as one batched matmul.
    ``nn.Conv2d`` layers run as one grouped convolution when ``grouped`` (default: on
    accelerators), else as K convolutions (default on CPU, where oneDNN's grouped kernels are
    slower than K plain ones). Either way each model's numbers are its own model's, bit for
    bit on CPU. Other layers with parameters or buffers are refused.
    """

    def __init__(self, model: nn.Module, *, grouped: bool | None = None) -> None:
        self.module = copy.deepcopy(model).to("meta")
        self.examples = 0
        self.grouped = grouped
        for name, layer in self.module.named_modules():
            if isinstance(layer, nn.Conv2d):
                layer._conv_forward = partial(self._conv, layer)  # type: ignore[method-assign]
            elif isinstance(layer, nn.Linear):
                layer.forward = partial(self._linear, layer)  # type: ignore[method-assign]
            elif any(True for _ in layer.parameters(recurse=False)) or any(
                True for _ in layer.buffers(recurse=False)
            ):
                raise ValueError(
                    f"cannot stack layer {name or 'model'} ({type(layer).__name__}): only "
                    "Conv2d and Linear layers may hold parameters"
                )

    def __call__(self, params: Params, x: Tensor, examples: int) -> Tensor:
        """The K models' outputs for ``x``, stacked model-major: (K·examples, ...)."""
        self.examples = examples
        return functional_call(self.module, params, (x,))

    def _stacked(self, x: Tensor, models: int) -> bool:
        """Whether ``x`` holds one batch per model (else one batch shared by all)."""
        if x.shape[0] == models * self.examples:
            return True
        if x.shape[0] == self.examples:
            return False
        raise ValueError(
            f"a layer got a batch of {x.shape[0]}, expected {self.examples} (shared) or "
            f"{models}×{self.examples} (stacked)"
        )

    def _conv(self, layer: nn.Conv2d, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        models, out_channels = weight.shape[:2]
        n = self.examples
        if layer.padding_mode != "zeros":
            x = F.pad(x, layer._reversed_padding_repeated_twice, mode=layer.padding_mode)
            padding: Any = 0
        else:
            padding = layer.padding
        args = (layer.stride, padding, layer.dilation)
        stacked = self._stacked(x, models)
        if not self._grouped(x):
            parts = x.view(models, n, *x.shape[1:]).unbind(0) if stacked else [x] * models
            return torch.cat([
                F.conv2d(part, weight[k], bias[k] if bias is not None else None, *args,
                         layer.groups)
                for k, part in enumerate(parts)
            ])
        flat_weight = weight.reshape(-1, *weight.shape[2:])
        flat_bias = bias.reshape(-1) if bias is not None else None
        if stacked:
            # (K·n, C, H, W) → (n, K·C, H, W): model k's channels form group k.
            x = x.view(models, n, *x.shape[1:]).transpose(0, 1).reshape(n, -1, *x.shape[2:])
            out = F.conv2d(x, flat_weight, flat_bias, *args, layer.groups * models)
        else:
            # One input for all: the K weight sets are one convolution with K·O outputs.
            out = F.conv2d(x, flat_weight, flat_bias, *args, layer.groups)
        out = out.view(n, models, out_channels, *out.shape[2:]).transpose(0, 1)
        return out.reshape(models * n, out_channels, *out.shape[3:])

    def _grouped(self, x: Tensor) -> bool:
        return self.grouped if self.grouped is not None else x.device.type != "cpu"

    def _linear(self, layer: nn.Linear, x: Tensor) -> Tensor:
        weight, bias = layer.weight, layer.bias
        models, n = weight.shape[0], self.examples
        if x.dim() != 2:
            raise ValueError(f"stacked Linear layers take (batch, features), got {tuple(x.shape)}")
        if self._stacked(x, models):
            x = x.reshape(models, n, x.shape[-1])
        else:
            x = x.unsqueeze(0).expand(models, n, x.shape[-1])
        out = _StackedLinear.apply(x, weight, bias)
        return out.reshape(models * n, -1)
