"""SGD, Momentum and Nesterov with TensorFlow's (the authors') update rules.

- sgd:      w ← w − lr·g
- momentum: a ← m·a + g;  w ← w − lr·a
- nesterov: a ← m·a + g;  w ← w − lr·(g + m·a)

The accumulator ``a`` starts at zero. No weight decay. The learning rate is given per step,
so schedules stay outside the optimizer.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

OPTIMIZERS = ("sgd", "momentum", "nesterov")


class TFOptimizer:
    """One of :data:`OPTIMIZERS` over a list of parameters."""

    def __init__(
        self, parameters: Iterable[torch.nn.Parameter], kind: str, momentum: float = 0.0
    ) -> None:
        if kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {kind!r}; known: {', '.join(OPTIMIZERS)}")
        if kind != "sgd" and not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.kind = kind
        self.momentum = float(momentum)
        self.parameters = [p for p in parameters if p.requires_grad]
        self.accumulators = (
            [torch.zeros_like(p) for p in self.parameters] if kind != "sgd" else []
        )

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """Apply one update with learning rate ``lr`` using the parameters' ``.grad``."""
        params = [p for p in self.parameters if p.grad is not None]
        grads = [p.grad for p in params]
        if self.kind == "sgd":
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        accumulators = [a for p, a in zip(self.parameters, self.accumulators, strict=True)
                        if p.grad is not None]
        torch._foreach_mul_(accumulators, self.momentum)
        torch._foreach_add_(accumulators, grads)
        if self.kind == "momentum":
            torch._foreach_add_(params, accumulators, alpha=-lr)
        else:
            torch._foreach_add_(params, grads, alpha=-lr)
            torch._foreach_add_(params, accumulators, alpha=-lr * self.momentum)

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None
