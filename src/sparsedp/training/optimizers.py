"""SGD, Momentum and Nesterov with TensorFlow's (the authors') update rules, and AdamW.

- sgd:      w ← w − lr·g
- momentum: a ← m·a + g;  w ← w − lr·a
- nesterov: a ← m·a + g;  w ← w − lr·(g + m·a)

The accumulator ``a`` starts at zero. No weight decay for these three.

- adamw: ``torch.optim.AdamW`` (PyTorch's decoupled weight decay, Loshchilov & Hutter):
  w ← w·(1 − lr·λ), then Adam's bias-corrected step with β1 (the trial's ``momentum`` when
  given, else 0.9), β2 = 0.999, ε = 1e-8. λ = 0.05 decays the weights of convolution and
  linear layers only; biases, normalisation parameters, class tokens and position embeddings
  are not decayed (the convention of timm and big_vision).

The learning rate is given per step, so schedules stay outside the optimizer.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

TF_OPTIMIZERS = ("sgd", "momentum", "nesterov")
OPTIMIZERS = (*TF_OPTIMIZERS, "adamw")
ADAMW_BETA1 = 0.9  # when the trial gives no momentum
ADAMW_BETA2 = 0.999
ADAMW_EPS = 1e-8
ADAMW_WEIGHT_DECAY = 0.05  # DeiT's and timm's for ViTs; on conv and linear weights only


class TFOptimizer:
    """One of :data:`OPTIMIZERS` over a list of parameters."""

    def __init__(
        self, parameters: Iterable[torch.nn.Parameter], kind: str, momentum: float = 0.0
    ) -> None:
        if kind not in TF_OPTIMIZERS:
            raise ValueError(f"unknown optimizer {kind!r} for TFOptimizer; known: "
                             f"{', '.join(TF_OPTIMIZERS)} (make_optimizer builds adamw)")
        check_optimizer(kind, momentum)
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

    def state_dict(self) -> dict:
        """The accumulators (copies), to continue exactly after :meth:`load_state_dict`."""
        return {"kind": self.kind, "accumulators": [a.detach().clone() for a in self.accumulators]}

    def load_state_dict(self, state: dict) -> None:
        saved = state["accumulators"]
        if state["kind"] != self.kind or len(saved) != len(self.accumulators):
            raise ValueError(f"a {state['kind']} state with {len(saved)} accumulators cannot "
                             f"continue {self.kind} over {len(self.accumulators)} parameters")
        with torch.no_grad():
            for target, source in zip(self.accumulators, saved, strict=True):
                target.copy_(source)


def check_optimizer(kind: str, momentum: float | None) -> None:
    """Raise ValueError unless ``kind`` is known and ``momentum`` (β1 for adamw) suits it."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}; known: {', '.join(OPTIMIZERS)}")
    if kind != "sgd" and momentum is not None and not 0.0 <= momentum < 1.0:
        name = "momentum (AdamW's beta1)" if kind == "adamw" else "momentum"
        raise ValueError(f"{name} must be in [0, 1), got {momentum}")


def decayed_weights(model: nn.Module) -> list[nn.Parameter]:
    """The parameters AdamW's weight decay applies to: conv and linear layers' weights."""
    return [m.weight for m in model.modules()
            if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)) and m.weight.requires_grad]


class AdamW:
    """``torch.optim.AdamW`` behind :class:`TFOptimizer`'s interface (``step(lr)``).

    Two parameter groups: :func:`decayed_weights` with weight decay
    :data:`ADAMW_WEIGHT_DECAY`, everything else without. A pruned weight stays exactly zero:
    its gradient is zeroed before every step, so both moments stay zero, the Adam step
    ``m̂/(√v̂ + ε)`` is zero, and the decay multiplies zero.
    """

    def __init__(self, model: nn.Module, beta1: float = ADAMW_BETA1) -> None:
        check_optimizer("adamw", beta1)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        decayed = {id(p) for p in decayed_weights(model)}
        groups = [
            {"params": [p for p in self.parameters if id(p) in decayed],
             "weight_decay": ADAMW_WEIGHT_DECAY},
            {"params": [p for p in self.parameters if id(p) not in decayed],
             "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW(
            [g for g in groups if g["params"]], lr=1e-3, betas=(beta1, ADAMW_BETA2),
            eps=ADAMW_EPS,
        )

    def step(self, lr: float) -> None:
        """One AdamW update with learning rate ``lr`` using the parameters' ``.grad``."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None

    def state_dict(self) -> dict:
        """``torch.optim.AdamW``'s state (moments, step counts), copied."""
        return {"kind": "adamw", "torch": copy.deepcopy(self.optimizer.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        if state["kind"] != "adamw":
            raise ValueError(f"a {state['kind']} state cannot continue adamw")
        self.optimizer.load_state_dict(state["torch"])


def make_optimizer(model: nn.Module, kind: str, momentum: float | None = None
                   ) -> TFOptimizer | AdamW:
    """The optimizer ``kind`` over ``model``'s parameters (``momentum``: β1 for adamw)."""
    check_optimizer(kind, momentum)
    if kind == "adamw":
        return AdamW(model, ADAMW_BETA1 if momentum is None else momentum)
    return TFOptimizer(model.parameters(), kind, momentum or 0.0)
