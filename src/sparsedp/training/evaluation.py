"""Validation error: a full pass, or an exact early-exit pass that stops once the goal is lost.

The early-exit pass counts misclassifications chunk by chunk and stops as soon as the count
exceeds the goal's allowance ``floor(goal × N)``: from then on the goal cannot be met at this
check, whatever the remaining examples hold. Examples that were wrong at the previous check are
evaluated first (they are usually still wrong), so the exit comes sooner. The pass/fail answer
is the same as a full pass; only the number of examples looked at differs. When it exits early,
the error it reports is a lower bound, flagged ``exact=False``.
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
        self._previously_wrong = torch.zeros(self.total, dtype=torch.bool, device=y.device)
        self.channels_last = channels_last
        self._eval_model: nn.Module | None = None

    def _model_for_eval(self, model: nn.Module) -> nn.Module:
        """``model`` itself, or a channels-last copy refreshed with its current weights.

        The copy keeps the training model's own memory layout (and so its float rounding)
        untouched: only evaluation runs in the faster layout.
        """
        if not self.channels_last:
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
        """Which examples the last check got wrong (early exit looks at them first)."""
        return {"previously_wrong": self._previously_wrong.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        wrong = state["previously_wrong"]
        if wrong.shape != self._previously_wrong.shape:
            raise ValueError(f"an evaluator of {wrong.shape[0]} examples cannot continue one "
                             f"of {self.total}")
        self._previously_wrong = wrong.to(self._previously_wrong.device).clone()

    def _order(self) -> torch.Tensor:
        if not self.early_exit:
            return torch.arange(self.total, device=self.y.device)
        # False sorts before True; stable keeps natural order within each group.
        return torch.argsort((~self._previously_wrong).to(torch.int8), stable=True)

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
        wrong_now = torch.zeros_like(self._previously_wrong)
        looked_at = torch.zeros_like(self._previously_wrong)
        errors = examined = 0
        for start in range(0, self.total, self.batch_size):
            rows = order[start : start + self.batch_size]
            full_chunk = not self.early_exit and rows.shape[0] == self.total
            x = self.x if full_chunk else self.x.index_select(0, rows)
            y = self.y if full_chunk else self.y.index_select(0, rows)
            wrong = model(x).argmax(dim=1) != y
            wrong_now[rows] = wrong
            looked_at[rows] = True
            errors += int(wrong.sum())
            examined += int(rows.shape[0])
            if self.early_exit and errors > self.allowance:
                break
        self._previously_wrong = (self._previously_wrong & ~looked_at) | wrong_now
        return EvalResult(errors, examined, self.total)
