"""The steps-to-result trainer: prune, train with one batch size, check the goal every k steps."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from sparsedp.data.batches import BatchStream
from sparsedp.data.splits import SplitData
from sparsedp.models import build_model
from sparsedp.pruning.prune import prune
from sparsedp.training.evaluation import EvalResult, Evaluator
from sparsedp.training.optimizers import TFOptimizer
from sparsedp.training.trial_config import TrialConfig

COMPLETE, INCOMPLETE, INFEASIBLE, STOPPED = "complete", "incomplete", "infeasible", "stopped"
STATUSES = (COMPLETE, INCOMPLETE, INFEASIBLE, STOPPED)


@dataclass(frozen=True)
class EngineSettings:
    """How a trial is computed. None of these change a trial's outcome.

    ``early_exit`` evaluates with the exact early-exit pass; ``micro_batch`` splits large
    batches into pieces whose gradients are accumulated (same mean gradient); ``channels_last``
    and ``eval_batch_size`` only change speed.
    """

    early_exit: bool = False
    eval_batch_size: int = 1000
    channels_last: bool = False  # evaluation only (training keeps the default layout)
    micro_batch: int | None = None
    device: str = "cpu"


@dataclass
class TrialResult:
    """What one trial measured."""

    status: str
    steps_to_result: int | None
    steps_taken: int
    final_val_error: float | None
    final_error_exact: bool
    curve: list[tuple[int, float, bool]] = field(default_factory=list)
    wall_time: float = 0.0
    train_time: float = 0.0
    eval_time: float = 0.0
    prune_time: float = 0.0
    samples_per_second: float = 0.0
    eval_examples: int = 0
    mask_report: dict = field(default_factory=dict)
    empty_layers: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def eval_share(self) -> float:
        """Fraction of the trial's time spent evaluating."""
        return self.eval_time / self.wall_time if self.wall_time > 0 else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["eval_share"] = self.eval_share
        return out


ProgressFn = Callable[[int, EvalResult], None]


def build_trial_model(config: TrialConfig, data: SplitData, seed: int | None = None) -> nn.Module:
    """The trial's model for ``data``, initialised from ``seed`` (default: the trial's)."""
    options = {"hidden_units": config.hidden_units} if config.hidden_units else {}
    channels, size, _ = data.image_shape
    return build_model(config.spec.model, channels=channels, image_size=size,
                       num_classes=data.num_classes,
                       seed=config.seed if seed is None else seed, **options)


def _params_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def run_trial(
    config: TrialConfig,
    data: SplitData,
    *,
    engine: EngineSettings | None = None,
    saliency: dict[str, torch.Tensor] | None = None,
    step_limit: Callable[[], int | None] | None = None,
    progress: ProgressFn | None = None,
) -> TrialResult:
    """Prune at initialization, train, and measure steps-to-result.

    Every ``eval_every`` steps (and at the last step of the budget) the error on the whole
    validation split is checked: ``<= goal`` ends the trial ``complete``; a non-finite
    training loss (checked every step) or non-finite parameters (checked at each evaluation)
    end it ``infeasible`` at once; the budget used up ends it ``incomplete``. With
    ``step_limit`` (the best steps-to-result of the study so far), a trial that has reached
    that many steps without meeting the goal can no longer be the study's best and ends
    ``stopped``; it still gets its check at the limit, so ties are resolved as without it.
    """
    engine = engine or EngineSettings()
    started = time.perf_counter()
    spec = config.spec
    device = torch.device(engine.device)
    model = build_trial_model(config, data).to(device)
    mask = prune(model, config.sparsity, config.pruning, data, seed=config.seed, saliency=saliency)
    prune_time = time.perf_counter() - started

    optimizer = TFOptimizer(model.parameters(), spec.optimizer, config.momentum or 0.0)
    schedule = config.schedule()
    stream = BatchStream(data.num_train, config.batch_size, config.data_seed)
    val_x, val_y = data.validation()
    evaluator = Evaluator(
        val_x.to(device),
        val_y.to(device),
        config.resolved_goal_error,
        batch_size=engine.eval_batch_size,
        early_exit=engine.early_exit,
        channels_last=engine.channels_last,
    )
    max_steps, eval_every = config.resolved_max_steps, config.resolved_eval_every
    micro = engine.micro_batch if engine.micro_batch and engine.micro_batch < config.batch_size \
        else config.batch_size

    result = TrialResult(INCOMPLETE, None, 0, None, True, mask_report=mask.report_dict(),
                         empty_layers=mask.empty_layers(), prune_time=prune_time)
    eval_time = 0.0
    train_started = time.perf_counter()
    for step in range(1, max_steps + 1):
        x, y = data.train_batch(stream.next())
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad()
        loss_value = 0.0
        for start in range(0, config.batch_size, micro):
            piece = slice(start, start + micro)
            loss = F.cross_entropy(model(x[piece]), y[piece], reduction="sum") / config.batch_size
            loss.backward()
            loss_value += float(loss.detach())
        result.steps_taken = step
        if not math.isfinite(loss_value):
            result.status, result.message = INFEASIBLE, f"non-finite training loss at step {step}"
            break
        mask.mask_gradients_(model)
        optimizer.step(schedule(step - 1))

        if step % eval_every and step != max_steps:
            continue
        eval_started = time.perf_counter()
        if not _params_finite(model):
            eval_time += time.perf_counter() - eval_started
            result.status, result.message = INFEASIBLE, f"non-finite parameters at step {step}"
            break
        check = evaluator(model)
        eval_time += time.perf_counter() - eval_started
        result.eval_examples += check.examined
        result.curve.append((step, check.error, check.exact))
        result.final_val_error, result.final_error_exact = check.error, check.exact
        if progress is not None:
            progress(step, check)
        if check.errors <= evaluator.allowance:
            result.status, result.steps_to_result = COMPLETE, step
            break
        limit = step_limit() if step_limit is not None else None
        if limit is not None and step >= limit:
            result.status = STOPPED
            result.message = f"stopped at step {step}: cannot beat the study's best ({limit})"
            break

    finished = time.perf_counter()
    result.wall_time = finished - started
    result.eval_time = eval_time
    result.train_time = finished - train_started - eval_time
    if result.train_time > 0:
        result.samples_per_second = result.steps_taken * config.batch_size / result.train_time
    return result
