"""Validation error: a full pass, or an exact early-exit pass that stops once the goal is lost.

The early-exit pass counts misclassifications chunk by chunk and stops as soon as the count
exceeds the goal's allowance ``floor(goal × N)``: from then on the goal cannot be met at this
check, whatever the remaining examples hold. Examples are visited in the order of their margin
when last looked at (the true class's logit minus the largest other logit): the wrong ones
first, most confidently wrong first, then the right ones closest to the decision boundary, so
the exit comes sooner (an example never looked at counts as margin 0, so the first check goes
in natural order). The pass/fail answer is the same as a full pass in any order; only the
number of examples looked at differs. When it exits early, the error it reports is a lower
bound, flagged ``exact=False``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn


def error_allowance(goal_error: float, total: int) -> int:
    """Largest misclassification count that still meets ``goal_error`` on ``total`` examples."""
    return math.floor(goal_error * total + 1e-9)


@dataclass(frozen=True)
class EvalResult:
    """Outcome of one validation check."""

    errors: int
    examined: int
    total: int

    @property
    def exact(self) -> bool:
        return self.examined == self.total

    @property
    def error(self) -> float:
        """Error rate (a lower bound when not ``exact``)."""
        return self.errors / self.total


class Evaluator:
    """Evaluates a model on a fixed validation set, fully or with exact early exit."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        goal_error: float,
        *,
        batch_size: int = 1000,
        early_exit: bool = False,
        channels_last: bool = False,
    ) -> None:
        self.x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        self.y = y
        self.total = int(y.shape[0])
        self.allowance = error_allowance(goal_error, self.total)
        self.batch_size = batch_size
        self.early_exit = early_exit
        self._margin = torch.zeros(self.total, device=y.device)  # last seen; 0: never looked at
        self.channels_last = channels_last
        self._eval_model: nn.Module | None = None

    def _model_for_eval(self, model: nn.Module) -> nn.Module:
        """``model`` itself, or a channels-last copy refreshed with its current weights.

        The copy keeps the training model's own memory layout (and so its float rounding)
        untouched: only evaluation runs in the faster layout.
        """
        if not self.channels_last or _channels_last(model):
            return model
        if self._eval_model is None:
            self._eval_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        with torch.no_grad():
            for target, source in zip(
                self._eval_model.parameters(), model.parameters(), strict=True
            ):
                target.copy_(source)
            for target, source in zip(  # e.g. batch norm's running statistics
                self._eval_model.buffers(), model.buffers(), strict=True
            ):
                target.copy_(source)
        return self._eval_model

    def state_dict(self) -> dict:
        """Each example's margin when last looked at (early exit's order)."""
        return {"margin": self._margin.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (or a save of the earlier wrong-first order: its
        wrong examples go first, as they would have)."""
        if "margin" in state:
            margin = state["margin"]
        else:
            margin = torch.where(state["previously_wrong"], -1.0, 0.0)
        if margin.shape != self._margin.shape:
            raise ValueError(f"an evaluator of {margin.shape[0]} examples cannot continue one "
                             f"of {self.total}")
        self._margin = margin.to(self._margin.device, self._margin.dtype).clone()

    def _order(self) -> torch.Tensor:
        if not self.early_exit:
            return torch.arange(self.total, device=self.y.device)
        return torch.argsort(self._margin, stable=True)  # ties keep the natural order

    def __call__(self, model: nn.Module) -> EvalResult:
        """The check, in evaluation mode (dropout off, batch norm's running statistics;
        the paper's models have neither), then back to the model's own mode."""
        model = self._model_for_eval(model)
        training = model.training
        model.eval()
        try:
            return self._check(model)
        finally:
            model.train(training)

    @torch.inference_mode()
    def _check(self, model: nn.Module) -> EvalResult:
        order = self._order()
        errors = examined = 0
        for start in range(0, self.total, self.batch_size):
            rows = order[start : start + self.batch_size]
            full_chunk = not self.early_exit and rows.shape[0] == self.total
            x = self.x if full_chunk else self.x.index_select(0, rows)
            y = self.y if full_chunk else self.y.index_select(0, rows)
            logits = model(x)
            wrong = logits.argmax(dim=1) != y
            self._margin[rows] = margins(logits, y).to(self._margin.dtype)
            errors += int(wrong.sum())
            examined += int(rows.shape[0])
            if self.early_exit and errors > self.allowance:
                break
        return EvalResult(errors, examined, self.total)


def _channels_last(model: nn.Module) -> bool:
    """Whether the model's 4-d weights are all in the channels-last layout already."""
    weights = [p for p in model.parameters() if p.dim() == 4]
    return bool(weights) and all(
        p.is_contiguous(memory_format=torch.channels_last) for p in weights)


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per example (last dimension: classes): the true class's logit minus the largest other
    logit (negative: wrong; 0 may be either, as ``argmax`` breaks ties)."""
    index = labels.unsqueeze(-1)
    true = logits.gather(-1, index).squeeze(-1)
    others = logits.scatter(-1, index, float("-inf")).amax(dim=-1)
    return true - others
