"""Ablations that compose with any pruner (``[pruning] ablation``, docs/pruners.md).

- ``shuffle``: keep each layer's kept count, choose the positions uniformly at random;
- ``reinit``: keep the mask, train fresh initial weights drawn from :func:`reinit_seed`
  (applied where the trial's model is built: :mod:`sparsedp.training.pruned`);
- ``invert``: keep the lowest scores instead of the highest.

``shuffle`` with ``snip`` is exactly the ``random-snip-layers`` control (same generator).
"""

from __future__ import annotations

import torch

from sparsedp.pruning.erk import random_at_counts

ABLATIONS = ("none", "shuffle", "reinit", "invert")
SHUFFLE_SALT = 104_729  # the generator is seeded seed + 104,729 (random-snip-layers' salt)
REINIT_SEED_OFFSET = 2**31  # reinit draws the weights of seed + 2^31


def check_ablation(ablation: object) -> str:
    """``ablation`` if it is one of :data:`ABLATIONS`, else a one-line ValueError."""
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation must be one of {', '.join(ABLATIONS)}, got {ablation!r}")
    return str(ablation)


def inverted(scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Negated scores (float64): the global top-k of these keeps the lowest scores."""
    return {name: -s.detach().to(torch.float64) for name, s in scores.items()}


def shuffled(masks: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """0/1 masks with each tensor's kept count, at positions chosen uniformly at random
    (generator seeded ``seed + SHUFFLE_SALT``, one permutation per tensor in order)."""
    counts = {name: int(m.sum().item()) for name, m in masks.items()}
    shapes = {name: tuple(m.shape) for name, m in masks.items()}
    generator = torch.Generator().manual_seed(seed + SHUFFLE_SALT)
    return random_at_counts(counts, shapes, generator)


def reinit_seed(seed: int) -> int:
    """The seed of the fresh initial weights of a ``reinit`` trial: ``seed + 2^31``. Trial
    seeds are ``study seed · 1,000,003 + index``, so no trial of a study with seed below
    2,147 has it as its own."""
    return seed + REINIT_SEED_OFFSET
