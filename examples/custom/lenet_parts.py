"""An example sparsedp plugin: LeNet-5 and a gradient-magnitude pruner.

sparsedp imports this module when an experiment file lists it (``plugins = ["lenet_parts"]``;
a module beside the experiment file is found) or with ``--plugin lenet_parts``. Importing it
registers its parts; see docs/plugins.md.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sparsedp.plugins import PruneData, Pruner, register_model, register_pruner


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling: 2 conv (5x5, 6 and 16 channels), 3 fc layers.

    ``width`` multiplies every layer's width (a model option set in the experiment file).
    """

    def __init__(self, channels: int, size: int, classes: int, width: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 6 * width, 5, padding=2)
        self.conv2 = nn.Conv2d(6 * width, 16 * width, 5)
        side = (size // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * width * side * side, 120 * width)
        self.fc2 = nn.Linear(120 * width, 84 * width)
        self.fc3 = nn.Linear(84 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


# factory(channels, size, classes, **model_options) -> nn.Module; the default rule prunes the
# weights of every conv and linear layer, and sparsedp re-initialises them as the paper did
# (init="factory" would keep PyTorch's own initialisation instead).
register_model("lenet-5", LeNet5, version="1",
               description="LeNet-5 (ReLU, max pooling); option width")


def gradient_magnitude(model: nn.Module, data: PruneData, settings) -> dict[str, torch.Tensor]:
    """|∂L/∂w| summed over two training batches of 100: keep the weights the loss is most
    sensitive to, whatever their size (SNIP without the |w| factor)."""
    params = data.parameters  # the prunable parameters, by name: score exactly these
    grads = {name: torch.zeros_like(p) for name, p in params.items()}
    for x, y, weight in data.batches(100, 2, who="grad-magnitude"):
        x, y, weight = x.to(data.device), y.to(data.device), weight.to(data.device)
        loss = (F.cross_entropy(model(x), y, reduction="none") * weight).sum()
        for name, g in zip(params, torch.autograd.grad(loss, list(params.values())),
                           strict=True):
            grads[name] += g
    return {name: g.abs() for name, g in grads.items()}  # higher = keep


register_pruner(Pruner("grad-magnitude", gradient_magnitude, version="1",
                       description="|dL/dw| on two batches of 100 (an example plugin pruner)"))
