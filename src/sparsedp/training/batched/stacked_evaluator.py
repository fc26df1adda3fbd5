"""Validation checks of many stacked models at once, each as its own sequential Evaluator."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sparsedp.training.batched.stacked_model import Params, StackedModel
from sparsedp.training.evaluation import EvalResult, error_allowance, margins


class _StackedEvaluator:
    """:class:`~sparsedp.training.evaluation.Evaluator` for many models at once.

    Each trial keeps its own margins (as last looked at), so with early exit every model
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
        self.margin = torch.zeros(trials, self.total, device=y.device)  # 0: never looked at

    def _predict(self, params: Params, x: Tensor, labels: Tensor, shared: bool
                 ) -> tuple[Tensor, Tensor]:
        """Predicted classes and margins (models, examples) for x (examples, …) or (models,
        examples, …) whose labels are ``labels`` (models, examples)."""
        models = next(iter(params.values())).shape[0]
        examples = x.shape[0] if shared else x.shape[1]
        piece = max(1, math.ceil(self.in_flight / models))
        predicted, margin = [], []
        for start in range(0, examples, piece):
            if shared:
                part = x[start : start + piece]
                size = part.shape[0]
            else:
                size = min(piece, examples - start)
                part = x[:, start : start + size].reshape(models * size, *x.shape[2:])
            logits = self.model(params, part, size).view(models, size, -1)
            predicted.append(logits.argmax(dim=2))
            margin.append(margins(logits, labels[:, start : start + size]))
        return torch.cat(predicted, dim=1), torch.cat(margin, dim=1)

    @torch.no_grad()
    def __call__(self, params: Params, trials: list[int]) -> list[EvalResult]:
        """Check the stacked models; row r of ``params`` belongs to trial ``trials[r]``."""
        n, total, device = len(trials), self.total, self.y.device
        ids = torch.tensor(trials, device=device)
        margin = self.margin.index_select(0, ids)
        order = torch.argsort(margin, dim=1, stable=True) if self.early_exit else None
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
                predicted, seen = self._predict(subset, self.x[start:stop], self.y[rows],
                                                shared=True)
            else:
                rows = order.index_select(0, selected)[:, start:stop]
                predicted, seen = self._predict(subset, self.x[rows], self.y[rows],
                                                shared=False)
            wrong = predicted != self.y[rows]
            flat = (selected[:, None] * total + rows).reshape(-1)
            margin.view(-1)[flat] = seen.reshape(-1).to(margin.dtype)
            for i, count in zip(counting, wrong.sum(dim=1).tolist(), strict=True):
                errors[i] += int(count)
                examined[i] += stop - start
        self.margin[ids] = margin
        return [EvalResult(errors[i], examined[i], total) for i in range(n)]
