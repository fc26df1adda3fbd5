"""Simple-CNN as released by the authors (Shallue et al.'s model without dropout)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

_POOL_ARGS = ([2, 2], [2, 2], [0, 0], [1, 1], False)  # kernel, stride, padding, dilation, ceil


class _Pool2x2(torch.autograd.Function):
    """Forward with the channels-last kernel, backward with the channels-first one.

    Both kernels pick the same window element (the first maximum, NaN winning) and number it
    the same way (``h * W + w`` within its channel plane), so the indices, and the gradient
    scattered through them, are those of plain ``max_pool2d``.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        out, indices = torch.ops.aten.max_pool2d_with_indices(
            x.contiguous(memory_format=torch.channels_last), *_POOL_ARGS
        )
        indices = indices.contiguous()
        ctx.save_for_backward(x, indices)
        return out.contiguous()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        x, indices = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(
            grad.contiguous(), x, *_POOL_ARGS, indices
        )


def pool2x2(x: Tensor, channels_last: bool = True) -> Tensor:
    """2×2 max pooling, stride 2, of a channels-first or channels-last ``x``, in its layout.

    PyTorch's CPU forward kernel for channels-first tensors is several times slower than its
    channels-last one (about a seventh of a batch-16 step), so with ``channels_last`` a
    channels-first ``x`` is pooled by the channels-last kernel and the result converted back;
    the backward pass stays the channels-first one. Values and gradients are bit-identical
    to ``F.max_pool2d`` (tested, ties and NaN included). Other devices use ``F.max_pool2d``.

    Without gradients (evaluation) the window maximum is taken elementwise over the four
    strided corners, about 5× faster than either kernel at evaluation's batch of 1,000.
    The values are ``F.max_pool2d``'s, NaN included; only the sign of a zero may differ where
    a window holds both ``-0.0`` and ``+0.0``, which no comparison, sum or prediction can see.
    """
    if not (channels_last and x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous()):
        return F.max_pool2d(x, 2, 2)
    if torch.is_grad_enabled() and x.requires_grad:
        return _Pool2x2.apply(x)
    height, width = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # an odd edge is dropped
    x = x[..., :height, :width]
    return torch.maximum(torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
                         torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


class SimpleCNN(nn.Module):
    """conv5x5(32)-pool-conv5x5(64)-pool-[fc hidden]-fc(classes); VALID padding, ReLU.

    With ``hidden_units=0`` (the authors' release) the flattened features go straight to the
    output layer: 62,240 weights + 106 biases on MNIST. ``hidden_units=1024`` gives the wider
    variant of Shallue et al. (a 1024-unit ReLU layer), without dropout.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        hidden_units: int = 0,
    ) -> None:
        super().__init__()
        self.channels_last_pool = True  # False: PyTorch's channels-first pooling (slower)
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=5)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"SimpleCNN needs images of at least 12 pixels, got {image_size}")
        features = 64 * side * side
        self.hidden = nn.Linear(features, hidden_units) if hidden_units else None
        self.fc = nn.Linear(hidden_units or features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = pool2x2(F.relu(self.conv1(x)), self.channels_last_pool)
        x = pool2x2(F.relu(self.conv2(x)), self.channels_last_pool)
        x = x.flatten(1)
        if self.hidden is not None:
            x = F.relu(self.hidden(x))
        return self.fc(x)
