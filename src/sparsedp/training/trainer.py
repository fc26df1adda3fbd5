"""The steps-to-result trainer: prune, train with one batch size, check the goal every k steps."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch.nn import functional as F

from sparsedp.data.batches import BatchStream
from sparsedp.data.splits import SplitData
from sparsedp.training.evaluation import EvalResult, Evaluator
from sparsedp.training.optimizers import make_optimizer
from sparsedp.training.precision import check_precision, numerics
from sparsedp.training.pruned import build_trial_model as build_trial_model  # its old home
from sparsedp.training.pruned import pruned_trial_model
from sparsedp.training.stopping import stop_message
from sparsedp.training.trial_config import TrialConfig

COMPLETE, INCOMPLETE, INFEASIBLE, STOPPED = "complete", "incomplete", "infeasible", "stopped"
STATUSES = (COMPLETE, INCOMPLETE, INFEASIBLE, STOPPED)


@dataclass(frozen=True)
class EngineSettings:
    """How a trial is computed. None of these change a trial's outcome.

    ``early_exit`` evaluates with the exact early-exit pass; ``micro_batch`` splits large
    batches into pieces whose gradients are accumulated (same mean gradient); ``channels_last``
    and ``eval_batch_size`` only change speed. ``train_channels_last`` trains (and evaluates)
    in the channels-last layout: faster convolutions on CPU, rounded differently from the
    default layout (another valid FP32 computation, like another thread count).
    """

    early_exit: bool = False
    eval_batch_size: int = 1000
    channels_last: bool = False  # evaluation only (training keeps the default layout)
    micro_batch: int | None = None
    device: str = "cpu"
    precision: str = "fp32"  # "tf32" / "bf16" change numerics (see training.precision)
    keep_complete: int = 1  # the stopping limit is the study's K-th best (training.stopping)
    train_channels_last: bool = False


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


def _params_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


class TrialRun:
    """A trial that can be advanced a few validation checks at a time.

    Construction prunes the model and sets everything up; :meth:`advance` trains until the
    trial ends or a number of checks have been made; :meth:`result` reports it. A trial
    advanced in pieces (interleaved with other trials) computes exactly what it computes in
    one go: its state (weights, momentum, batch stream, evaluator) is its own.

    Every ``eval_every`` steps (and at the last step of the budget) the error on the whole
    validation split is checked: ``<= goal`` ends the trial ``complete``; a non-finite
    training loss (checked every step) or non-finite parameters (checked at each evaluation)
    end it ``infeasible`` at once; the budget used up ends it ``incomplete``. With
    ``step_limit`` (the study's stopping limit: its best steps-to-result so far, or with
    ``keep_complete = K`` its K-th best; :mod:`sparsedp.training.stopping`), a trial that has
    reached that many steps without meeting the goal can no longer be among the study's K best
    and ends ``stopped``; it still gets its check at the limit, so ties are resolved as
    without it.
    """

    def __init__(
        self,
        config: TrialConfig,
        data: SplitData,
        *,
        engine: EngineSettings | None = None,
        saliency: dict[str, torch.Tensor] | None = None,
        step_limit: Callable[[], int | None] | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        started = time.perf_counter()
        engine = engine or EngineSettings()
        self.config, self.data = config, data
        self.step_limit, self.progress = step_limit, progress
        self.device = torch.device(engine.device)
        check_precision(engine.precision, engine.device)
        self.precision = engine.precision
        self.keep_complete = engine.keep_complete
        self.model, self.mask, mask_report = pruned_trial_model(config, data, self.device,
                                                                saliency)
        self.channels_last = engine.train_channels_last and any(
            p.dim() == 4 for p in self.model.parameters())
        if self.channels_last:  # parameters keep their identity (the mask holds them)
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, config.spec.optimizer, config.momentum)
        self.schedule = config.schedule()
        self.stream = BatchStream(data.num_train, config.batch_size, config.data_seed)
        eval_channels_last = engine.channels_last or self.channels_last
        val_x, val_y = data.validation_on(self.device, eval_channels_last)
        self.evaluator = Evaluator(val_x, val_y, config.resolved_goal_error,
                                   batch_size=engine.eval_batch_size,
                                   early_exit=engine.early_exit,
                                   channels_last=eval_channels_last)
        self.max_steps = config.resolved_max_steps
        self.eval_every = config.resolved_eval_every
        micro = engine.micro_batch
        self.micro = micro if micro and micro < config.batch_size else config.batch_size
        self.step = 0
        self.done = False
        setup_time = time.perf_counter() - started
        self._result = TrialResult(INCOMPLETE, None, 0, None, True,
                                   mask_report=mask_report,
                                   empty_layers=self.mask.empty_layers(), prune_time=setup_time)
        self._active_time = setup_time
        self._eval_time = 0.0

    def _train_step(self, step: int) -> float:
        config, model = self.config, self.model
        x, y = self.data.train_batch(self.stream.next())
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.optimizer.zero_grad()
        loss_value = 0.0
        for start in range(0, config.batch_size, self.micro):
            piece = slice(start, start + self.micro)
            loss = F.cross_entropy(model(x[piece]), y[piece], reduction="sum") / config.batch_size
            loss.backward()
            loss_value += float(loss.detach())
        if math.isfinite(loss_value):
            self.mask.mask_gradients_()  # the mask was built for self.model
            self.optimizer.step(self.schedule(step - 1))
        return loss_value

    def _check(self, step: int) -> None:
        """The validation check after ``step``; sets ``done`` when the trial ends here."""
        result = self._result
        if not _params_finite(self.model):
            result.status, result.message = INFEASIBLE, f"non-finite parameters at step {step}"
            self.done = True
            return
        check = self.evaluator(self.model)
        result.eval_examples += check.examined
        result.curve.append((step, check.error, check.exact))
        result.final_val_error, result.final_error_exact = check.error, check.exact
        if self.progress is not None:
            self.progress(step, check)
        if check.errors <= self.evaluator.allowance:
            result.status, result.steps_to_result = COMPLETE, step
            self.done = True
            return
        if not self._stop_if_beaten(step) and step >= self.max_steps:
            self.done = True  # budget used up: incomplete

    def _stop_if_beaten(self, step: int) -> bool:
        """End the trial ``stopped`` at check ``step`` if the study's best is at most that."""
        limit = self.step_limit() if self.step_limit is not None else None
        if limit is None or step < limit:
            return False
        self._result.status = STOPPED
        self._result.message = stop_message(step, limit, self.keep_complete)
        self.done = True
        return True

    def advance(self, checks: int | None = None) -> bool:
        """Train until the trial ends or ``checks`` more checks were made; True when it ended."""
        started = time.perf_counter()
        if not self.done and self.step > 0:
            # Paused after a check: a best found meanwhile (by a trial interleaved with this
            # one) ends it at that check, as if the best had been known then.
            self._stop_if_beaten(self.step)
        try:
            with numerics(self.precision, self.device):
                self._advance(checks)
        finally:
            self._active_time += time.perf_counter() - started
        return self.done

    def _advance(self, checks: int | None) -> int:
        """Train and check until the trial ends or ``checks`` checks were made."""
        made = 0
        while not self.done and (checks is None or made < checks):
            self.step += 1
            step = self.step
            self._result.steps_taken = step
            loss_value = self._train_step(step)
            if not math.isfinite(loss_value):
                self._result.status = INFEASIBLE
                self._result.message = f"non-finite training loss at step {step}"
                self.done = True
                break
            if step % self.eval_every and step != self.max_steps:
                continue
            eval_started = time.perf_counter()
            self._check(step)
            self._eval_time += time.perf_counter() - eval_started
            made += 1
        return made

    def state_dict(self) -> dict:
        """Everything that decides how this unfinished trial goes on (copies): weights and
        buffers, optimizer, batch stream, evaluator, step and what was measured so far.

        A fresh :class:`TrialRun` of the same trial given it by :meth:`load_state_dict`
        computes exactly what this one computes from here.
        """
        if self.done:
            raise ValueError("a finished trial has no state to continue from")
        result = self._result
        return {
            "step": self.step,
            "mask_kept": {name: int(m.sum()) for name, m in self.mask.items()},
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "stream": self.stream.state_dict(),
            "evaluator": self.evaluator.state_dict(),
            "curve": [list(point) for point in result.curve],
            "eval_examples": result.eval_examples,
            "final_val_error": result.final_val_error,
            "final_error_exact": result.final_error_exact,
            "times": [self._active_time, self._eval_time, result.prune_time],
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` of the same trial (raises ValueError when the
        state cannot be this trial's: another mask or shapes)."""
        if self.step:
            raise ValueError("only a trial that has not trained yet can be continued")
        kept = {name: int(m.sum()) for name, m in self.mask.items()}
        if state["mask_kept"] != kept:
            raise ValueError("the saved trial was pruned with another mask")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.stream.load_state_dict(state["stream"])
        self.evaluator.load_state_dict(state["evaluator"])
        result = self._result
        result.curve = [(int(s), float(e), bool(x)) for s, e, x in state["curve"]]
        result.eval_examples = int(state["eval_examples"])
        result.final_val_error = state["final_val_error"]
        result.final_error_exact = bool(state["final_error_exact"])
        self.step = result.steps_taken = int(state["step"])
        self._active_time, self._eval_time, result.prune_time = state["times"]

    def train_only(self, steps: int) -> None:
        """Train ``steps`` more steps without any check (to measure the speed of a step)."""
        for _ in range(steps):
            self.step += 1
            self._train_step(self.step)

    def result(self) -> TrialResult:
        """What the trial measured so far (its outcome once :meth:`advance` returned True).

        ``wall_time`` is the time spent on this trial itself (set-up, training, evaluation),
        not counting other trials interleaved with it.
        """
        result = self._result
        result.wall_time = self._active_time
        result.eval_time = self._eval_time
        result.train_time = self._active_time - result.prune_time - self._eval_time
        if result.train_time > 0:
            result.samples_per_second = (
                result.steps_taken * self.config.batch_size / result.train_time
            )
        return result


def run_trial(
    config: TrialConfig,
    data: SplitData,
    *,
    engine: EngineSettings | None = None,
    saliency: dict[str, torch.Tensor] | None = None,
    step_limit: Callable[[], int | None] | None = None,
    progress: ProgressFn | None = None,
) -> TrialResult:
    """Prune at initialization, train, and measure steps-to-result (see :class:`TrialRun`)."""
    run = TrialRun(config, data, engine=engine, saliency=saliency, step_limit=step_limit,
                   progress=progress)
    run.advance()
    return run.result()
