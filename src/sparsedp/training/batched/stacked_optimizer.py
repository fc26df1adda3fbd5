"""The TF optimizer rules applied to stacked (K, ...) tensors, one lr and momentum per trial."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sparsedp.training.batched.stacked_model import Params
from sparsedp.training.optimizers import TF_OPTIMIZERS

__all__ = ["StackedTFOptimizer"]


def _per_trial(values: Tensor, like: Tensor) -> Tensor:
    """A (K,) vector viewed as (K, 1, 1, ...) to broadcast over a stacked (K, ...) tensor."""
    return values.view(-1, *([1] * (like.dim() - 1)))


class StackedTFOptimizer:
    """:class:`TFOptimizer`'s rules on stacked (K, ...) tensors, one lr and momentum per row.

    - sgd:      w ← w − lr·g
    - momentum: a ← m·a + g;  w ← w − lr·a
    - nesterov: a ← m·a + g;  w ← w − lr·(g + m·a)

    Rows can leave (:meth:`keep_rows`) and join (:meth:`add_rows`, with zero accumulators).
    """

    def __init__(self, kind: str, params: Params, momenta: Sequence[float]) -> None:
        if kind not in TF_OPTIMIZERS:
            raise ValueError(f"batched trials support the optimizers {', '.join(TF_OPTIMIZERS)}"
                             f", not {kind!r}; set [engine] batched_trials = 1")
        self.kind = kind
        self.momenta = [float(m) for m in momenta] if kind != "sgd" else [0.0] * len(momenta)
        first = next(iter(params.values()))
        self._momentum = torch.tensor(self.momenta, dtype=torch.float32, device=first.device)
        self.accumulators: Params = (
            {name: torch.zeros_like(p) for name, p in params.items()} if kind != "sgd" else {}
        )

    def keep_rows(self, rows: Tensor) -> None:
        """Keep only the trials at ``rows`` (positions in the current stack)."""
        positions = rows.tolist()
        self.momenta = [self.momenta[i] for i in positions]
        self._momentum = self._momentum.index_select(0, rows)
        self.accumulators = {n: a.index_select(0, rows) for n, a in self.accumulators.items()}

    def add_rows(self, params: Params, momenta: Sequence[float]) -> None:
        """Append trials whose stacked parameters are ``params`` (accumulators start at 0)."""
        added = [float(m) for m in momenta] if self.kind != "sgd" else [0.0] * len(momenta)
        self.momenta += added
        self._momentum = torch.cat([self._momentum, torch.tensor(
            added, dtype=torch.float32, device=self._momentum.device)])
        self.accumulators = {n: torch.cat([a, torch.zeros_like(params[n])])
                             for n, a in self.accumulators.items()}

    def rates(self, lrs: Sequence[float], device: torch.device | str
              ) -> tuple[Tensor, Tensor | None]:
        """``(−lr, −lr·m)`` per row as float32 (−lr·m rounded from double once, as
        TFOptimizer's alpha is; None unless nesterov)."""
        neg_lr = torch.tensor([-lr for lr in lrs], dtype=torch.float32, device=device)
        if self.kind != "nesterov":
            return neg_lr, None
        return neg_lr, torch.tensor([-lr * m for lr, m in zip(lrs, self.momenta, strict=True)],
                                    dtype=torch.float32, device=device)

    @torch.no_grad()
    def step(self, params: Params, grads: Params, lrs: Sequence[float] | Tensor,
             neg_lr_m: Tensor | None = None) -> None:
        """Update ``params`` in place from ``grads`` with learning rate ``lrs[k]`` for row k.

        ``lrs`` is a list of rates, or the float32 tensor ``−lr`` (with ``neg_lr_m`` for
        nesterov) from :meth:`rates`, which a caller can build ahead on the device.
        """
        if isinstance(lrs, Tensor):
            neg_lr = lrs
        else:
            neg_lr, neg_lr_m = self.rates(lrs, next(iter(params.values())).device)
        for name, p in params.items():
            g = grads[name]
            if self.kind == "sgd":
                p.addcmul_(g, _per_trial(neg_lr, p))
                continue
            a = self.accumulators[name]
            a.mul_(_per_trial(self._momentum, a)).add_(g)
            if self.kind == "momentum":
                p.addcmul_(a, _per_trial(neg_lr, p))
            else:
                assert neg_lr_m is not None
                p.addcmul_(g, _per_trial(neg_lr, p))
                p.addcmul_(a, _per_trial(neg_lr_m, p))
