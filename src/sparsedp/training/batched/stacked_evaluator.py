"""Validation checks of many stacked models at once, each as its own sequential Evaluator."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sparsedp.training.batched.stacked_model import Params, StackedModel
from sparsedp.training.evaluation import EvalResult, error_allowance


class _StackedEvaluator:
    """:class:`~sparsedp.training.evaluation.Evaluator` for many models at once.

    Each trial keeps its own "wrong at the previous check" set, so with early exit every model
    visits the validation examples in the order its own Evaluator would, chunk by chunk
    (``batch_size`` examples a chunk); a model stops counting after the chunk where its errors
    exceed the allowance. Errors, examples examined and exactness per model are those of a
    sequential Evaluator. To bound memory, each chunk is computed in pieces so that about
    ``in_flight`` (default ``batch_size``) examples are in flight over all models together.
    """

    def __init__(self, model: StackedModel, x: Tensor, y: Tensor, goal_error: float,
                 trials: int, *, batch_size: int, early_exit: bool,
                 in_flight: int | None = None) -> None:
        self.model = model
        self.in_flight = in_flight or batch_size
        self.x, self.y = x, y
        self.total = int(y.shape[0])
        self.allowance = error_allowance(goal_error, self.total)
        self.batch_size = batch_size
        self.early_exit = early_exit
        self.previously_wrong = torch.zeros(trials, self.total, dtype=torch.bool, device=y.device)

    def _predict(self, params: Params, x: Tensor, shared: bool) -> Tensor:
        """Predicted classes (models, examples) for x (examples, …) or (models, examples, …)."""
        models = next(iter(params.values())).shape[0]
        examples = x.shape[0] if shared else x.shape[1]
        piece = max(1, math.ceil(self.in_flight / models))
        out = []
        for start in range(0, examples, piece):
            if shared:
                part = x[start : start + piece]
                size = part.shape[0]
            else:
                size = min(piece, examples - start)
                part = x[:, start : start + size].reshape(models * size, *x.shape[2:])
            out.append(self.model(params, part, size).argmax(dim=1).view(models, size))
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def __call__(self, params: Params, trials: list[int]) -> list[EvalResult]:
        """Check the stacked models; row r of ``params`` belongs to trial ``trials[r]``."""
        n, total, device = len(trials), self.total, self.y.device
        ids = torch.tensor(trials, device=device)
        before = self.previously_wrong.index_select(0, ids)
        order = (torch.argsort((~before).to(torch.int8), dim=1, stable=True)
                 if self.early_exit else None)
        wrong_now = torch.zeros_like(before)
        looked_at = torch.zeros_like(before)
        errors, examined = [0] * n, [0] * n
        counting = list(range(n))
        for start in range(0, total, self.batch_size):
            if self.early_exit:
                counting = [i for i in counting if errors[i] <= self.allowance]
                if not counting:
                    break
            stop = min(start + self.batch_size, total)
            selected = torch.tensor(counting, device=device)
            subset = params if len(counting) == n else {
                name: p.index_select(0, selected) for name, p in params.items()
            }
            if order is None:
                rows = torch.arange(start, stop, device=device).expand(len(counting), -1)
                predicted = self._predict(subset, self.x[start:stop], shared=True)
            else:
                rows = order.index_select(0, selected)[:, start:stop]
                predicted = self._predict(subset, self.x[rows], shared=False)
            wrong = predicted != self.y[rows]
            flat = (selected[:, None] * total + rows).reshape(-1)
            wrong_now.view(-1)[flat] = wrong.reshape(-1)
            looked_at.view(-1)[flat] = True
            for i, count in zip(counting, wrong.sum(dim=1).tolist(), strict=True):
                errors[i] += int(count)
                examined[i] += stop - start
        self.previously_wrong[ids] = (before & ~looked_at) | wrong_now
        return [EvalResult(errors[i], examined[i], total) for i in range(n)]
