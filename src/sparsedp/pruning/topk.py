"""The shared global top-k: from per-parameter scores to a 0/1 mask at a sparsity."""

from __future__ import annotations

import math

import torch


def check_sparsity(sparsity: float) -> None:
    """Sparsity must lie in [0, 1): 1 would remove every weight."""
    if not (isinstance(sparsity, (int, float)) and 0.0 <= float(sparsity) < 1.0):
        raise ValueError(
            f"sparsity must be in [0, 1) (fraction of prunable weights removed), got {sparsity}"
        )


def keep_count(total: int, sparsity: float) -> int:
    """round(N · (1 − sparsity)), halves rounded up, never below 1."""
    return max(1, math.floor(total * (1.0 - sparsity) + 0.5))


def global_topk_mask(scores: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Keep the ``keep_count`` highest scores over all tensors together.

    Scores are normalised to sum to 1 first when their sum is positive (as SNIP does; it does
    not change the ranking). Ties are broken by position (earlier parameters, then earlier
    entries, win), so the mask is deterministic.
    """
    check_sparsity(sparsity)
    flat = torch.cat([s.detach().reshape(-1).to(torch.float64).cpu() for s in scores.values()])
    total_score = flat.sum()
    if total_score > 0:
        flat = flat / total_score
    k = keep_count(flat.numel(), sparsity)
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    order = torch.argsort(flat, descending=True, stable=True)
    keep[order[:k]] = True
    masks, offset = {}, 0
    for name, s in scores.items():
        masks[name] = keep[offset : offset + s.numel()].view(s.shape).to(torch.float32)
        offset += s.numel()
    return masks
