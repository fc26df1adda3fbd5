"""Lipschitz smoothness of the gradient along a training step, as the authors measured it.

Lee et al. (ICLR 2021, extended version of the paper) estimate, every few steps, the
Lipschitz constant of the gradient along the step just taken: with w_{t−1} the weights
before the step, d = w_t − w_{t−1} and γ ∈ {0.1, …, 0.9},

    L = max_γ ‖∇f(w_{t−1} + γ d) − ∇f(w_{t−1})‖ / ‖γ d‖

with f the loss over the training set. For a quadratic ½ wᵀAw every γ gives ‖A d‖/‖d‖.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

GAMMAS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 10))


def lipschitz_along_step(
    gradient_at: Callable[[torch.Tensor], torch.Tensor],
    before: torch.Tensor,
    after: torch.Tensor,
    gammas: Sequence[float] = GAMMAS,
) -> tuple[float, list[float]]:
    """(L, the ratio at each γ) for the step ``before`` → ``after`` (flat weight vectors).

    ``gradient_at(w)`` is the gradient of the loss at weights ``w``. A zero step gives NaN.
    """
    step = (after - before).to(torch.float64)
    step_norm = float(torch.linalg.vector_norm(step))
    if step_norm == 0.0 or not math.isfinite(step_norm):
        return math.nan, [math.nan] * len(gammas)
    base = gradient_at(before).to(torch.float64)
    ratios = []
    for gamma in gammas:
        point = before + (gamma * step).to(before.dtype)
        moved = gradient_at(point).to(torch.float64) - base
        ratios.append(float(torch.linalg.vector_norm(moved)) / (gamma * step_norm))
    return max(ratios), ratios
