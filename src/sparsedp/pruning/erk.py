"""Erdős–Rényi-Kernel layer densities and the ``random-erk`` control (Evci et al., RigL, 2020).

A tensor of shape ``(n_out, n_in, k_h, k_w)`` gets a raw density ``Σ shape / Π shape``:
``(n_in + n_out + k_h + k_w) / (n_in·n_out·k_h·k_w)`` for a convolution,
``(n_in + n_out) / (n_in·n_out)`` for a linear layer (RigL's ``sparse_utils``, power 1; a
prunable bias of ``n`` entries gets ``n / n = 1``). Every density is the raw one times one
scale ``ε``, chosen so that the kept counts sum to the global target ``K``. A layer whose
density would exceed 1 is made dense and ``ε`` is recomputed for the others from what is left;
this repeats until no density exceeds 1. (RigL makes only the layers of the largest raw
density dense at each round; since ``ε`` only grows when a layer turns dense, both end with
the same dense layers.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from sparsedp.pruning.topk import check_sparsity, keep_count


def raw_density(shape: Sequence[int]) -> float:
    """``Σ shape / Π shape``: ERK's unscaled density of a tensor."""
    return sum(shape) / math.prod(shape)


def erk_densities(shapes: Mapping[str, Sequence[int]], sparsity: float) -> dict[str, float]:
    """Each tensor's ERK density (kept fraction) for ``keep_count(N, sparsity)`` kept entries
    over all tensors together; dense layers get exactly 1.0."""
    check_sparsity(sparsity)
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    target = keep_count(sum(sizes.values()), sparsity)
    raw = {name: raw_density(shape) for name, shape in shapes.items()}
    dense: set[str] = set()
    while True:
        sparse = [name for name in shapes if name not in dense]
        if not sparse:
            break
        left = target - sum(sizes[name] for name in dense)
        scale = left / sum(raw[name] * sizes[name] for name in sparse)
        over = {name for name in sparse if raw[name] * scale > 1.0}
        if not over:
            break
        dense |= over
    return {name: 1.0 if name in dense else raw[name] * scale for name in shapes}


def erk_counts(shapes: Mapping[str, Sequence[int]], sparsity: float) -> dict[str, int]:
    """Kept entries per tensor: ``floor(density · size)``, then one more to the tensors with
    the largest remainders (ties: earlier tensors) until the counts sum to
    ``keep_count(N, sparsity)`` exactly."""
    densities = erk_densities(shapes, sparsity)
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    exact = {name: densities[name] * sizes[name] for name in shapes}
    counts = {name: min(sizes[name], math.floor(exact[name])) for name in shapes}
    short = keep_count(sum(sizes.values()), sparsity) - sum(counts.values())
    order = sorted((name for name in shapes if counts[name] < sizes[name]),
                   key=lambda name: -(exact[name] - counts[name]))  # stable: earlier first
    for name in order[:max(short, 0)]:
        counts[name] += 1
    return counts


def random_at_counts(
    counts: Mapping[str, int], shapes: Mapping[str, Sequence[int]], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """In every tensor, ``counts[name]`` entries chosen uniformly at random (``generator``
    drawn once per tensor, in order) score 1, the others 0: the global top-k at the matching
    sparsity keeps exactly those."""
    scores = {}
    for name, shape in shapes.items():
        size = math.prod(shape)
        chosen = torch.zeros(size)
        chosen[torch.randperm(size, generator=generator)[: counts[name]]] = 1.0
        scores[name] = chosen.view(tuple(shape))
    return scores
