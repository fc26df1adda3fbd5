"""The gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al., 2018, appendix A).

Micro-batch gradients g_1 … g_K, each the mean over ``b`` examples and all taken at the same
weights, give McCandlish's two-batch-size estimator with B_small = b and B_big = K·b:

    |G|²  ≈ (B_big |G_big|² − B_small |G_small|²) / (B_big − B_small)
    tr(Σ) ≈ (|G_small|² − |G_big|²) / (1/B_small − 1/B_big)

with |G_small|² the mean of |g_i|² and G_big the mean of the g_i. The |G|² estimate equals the
mean of g_i·g_j over the K(K−1) ordered pairs i ≠ j, so only the dot products of the g_i are
needed. To bound memory the K gradients are summed in M groups; the estimator needs just the
M×M dot products of the group sums and each group's Σ|g_i|² (:class:`GradientGroups`). The
interval is a percentile bootstrap over the groups in which the pairs formed by two copies of
the same group are left out, so every resample is itself an unbiased estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def two_batch_estimates(
    small_sq_norm: float, big_sq_norm: float, b_small: float, b_big: float
) -> tuple[float, float]:
    """(|G|², tr Σ) from |G_small|² and |G_big|² measured at batch sizes b_small < b_big."""
    if not 0 < b_small < b_big:
        raise ValueError(f"need 0 < b_small < b_big, got {b_small} and {b_big}")
    g2 = (b_big * big_sq_norm - b_small * small_sq_norm) / (b_big - b_small)
    trace = (small_sq_norm - big_sq_norm) / (1.0 / b_small - 1.0 / b_big)
    return g2, trace


def b_simple(g2: float, trace: float) -> float:
    """tr Σ / |G|²; ``inf`` when the |G|² estimate is not positive (noise dominates)."""
    return trace / g2 if g2 > 0 else math.inf


@dataclass(frozen=True)
class GroupSummary:
    """What the estimator needs of K micro-batch gradients summed in M groups."""

    micro_batch: int
    sizes: np.ndarray  # micro-batches per group (M)
    gram: np.ndarray  # dot products of the group sums (M×M)
    sq_norms: np.ndarray  # Σ |g_i|² within each group (M)

    @property
    def micro_batches(self) -> int:
        return int(self.sizes.sum())

    def estimate(self, counts: np.ndarray | None = None) -> tuple[float, float]:
        """(|G|², tr Σ); ``counts`` weights the groups (a bootstrap resample).

        Pairs of micro-batches from two copies of the same group are left out, so a
        resample estimates |G|² from distinct micro-batches only.
        """
        c = np.ones(len(self.sizes)) if counts is None else np.asarray(counts, dtype=float)
        n, gram, diag = self.sizes.astype(float), self.gram, np.diag(self.gram)
        pair_sum = c @ gram @ c - np.sum(c * c * diag) + np.sum(c * (diag - self.sq_norms))
        cn = c * n
        pairs = cn.sum() ** 2 - np.sum(cn * cn) + np.sum(cn * (n - 1))
        if pairs <= 0:
            raise ValueError("need at least two micro-batches to estimate the noise scale")
        g2 = float(pair_sum / pairs)
        small = float(np.sum(c * self.sq_norms) / cn.sum())
        return g2, self.micro_batch * (small - g2)

    def bootstrap(
        self, n_resamples: int, seed: int, confidence: float = 0.95
    ) -> tuple[float, float] | None:
        """Percentile interval of B_simple over resamples of the groups (None: < 2 groups)."""
        m = len(self.sizes)
        if m < 2 or n_resamples < 1:
            return None
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(m, np.full(m, 1.0 / m), size=n_resamples)
        values = np.array([b_simple(*self.estimate(c)) for c in counts])
        tail = 0.5 * (1.0 - confidence)
        low, high = np.quantile(values, [tail, 1.0 - tail], method="inverted_cdf")
        return float(low), float(high)


class GradientGroups:
    """Accumulates micro-batch gradients (flat vectors) into ``groups`` running sums."""

    def __init__(self, groups: int, micro_batch: int) -> None:
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.micro_batch = micro_batch
        self._sums: list[torch.Tensor | None] = [None] * groups
        self._sizes = np.zeros(groups, dtype=np.int64)
        self._sq = np.zeros(groups)
        self._added = 0

    def add(self, gradient: torch.Tensor) -> None:
        """Add the next micro-batch gradient (groups are filled round-robin)."""
        g = gradient.detach().to(torch.float64)
        j = self._added % len(self._sums)
        current = self._sums[j]
        self._sums[j] = g.clone() if current is None else current.add_(g)
        self._sizes[j] += 1
        self._sq[j] += float(torch.dot(g, g))
        self._added += 1

    def summary(self) -> GroupSummary:
        used = [j for j, s in enumerate(self._sums) if s is not None]
        sums = torch.stack([self._sums[j] for j in used])  # type: ignore[misc]
        gram = (sums @ sums.T).cpu().numpy()
        return GroupSummary(self.micro_batch, self._sizes[used].copy(), gram, self._sq[used].copy())
