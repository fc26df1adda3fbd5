"""Simple-CNN as released by the authors (Shallue et al.'s model without dropout)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def pool2x2(x: Tensor, channels_last: bool = True) -> Tensor:
    """2×2 max pooling, stride 2, returned in ``x``'s layout.

    PyTorch's CPU kernel for channels-first tensors is several times slower than its
    channels-last one (it dominated small-batch steps), so with ``channels_last`` a
    channels-first ``x`` is pooled in channels-last layout and converted back. Values, chosen
    indices (the first maximum of each window, NaN winning) and so gradients are identical;
    tested bit for bit.
    """
    if channels_last and x.dim() == 4 and x.is_contiguous():
        pooled = F.max_pool2d(x.contiguous(memory_format=torch.channels_last), 2, 2)
        return pooled.contiguous()
    return F.max_pool2d(x, 2, 2)


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
