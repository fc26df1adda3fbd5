"""The rolling group: live trials trained in lockstep, checked, dropped and replaced.

:class:`BatchedTrials` builds and prunes each trial's model exactly as
:func:`~sparsedp.training.trainer.run_trial` does, stacks the parameters
(``torch.func.stack_module_state``), trains them together on a
:class:`~sparsedp.training.batched.stacked_model.StackedModel` and makes each trial's checks.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import stack_module_state
from torch.nn import functional as F

from sparsedp.data.device import DeviceBatchOrder
from sparsedp.data.splits import SplitData
from sparsedp.pruning.mask import Mask
from sparsedp.training.batched.stacked_evaluator import _StackedEvaluator
from sparsedp.training.batched.stacked_model import Params, StackedModel
from sparsedp.training.batched.stacked_optimizer import StackedTFOptimizer
from sparsedp.training.batched.study import check_same_study
from sparsedp.training.evaluation import EvalResult
from sparsedp.training.precision import check_precision, numerics
from sparsedp.training.pruned import pruned_trial_model
from sparsedp.training.schedules import Schedule
from sparsedp.training.stopping import CompletedSteps, combined_limit, stop_message
from sparsedp.training.trainer import (
    COMPLETE,
    INCOMPLETE,
    INFEASIBLE,
    STOPPED,
    EngineSettings,
    TrialResult,
)
from sparsedp.training.trial_config import TrialConfig

__all__ = ["EXAMPLES_IN_FLIGHT", "BatchedProgressFn", "BatchedTrials", "SaliencySource"]

BatchedProgressFn = Callable[[int, int, EvalResult], None]
"""``progress(trial_index, step, check)``: called after each trial's validation check."""


@dataclass
class _Member:
    """Book-keeping for one live trial of the group."""

    index: int
    schedule: Schedule
    mask: Mask
    result: TrialResult
    step: int = 0
    train_time: float = 0.0
    eval_time: float = 0.0


SaliencySource = Sequence["dict[str, Tensor] | None"] | Callable[[int], "dict[str, Tensor] | None"]
"""Saliency of trial ``k``: a list (one per config) or a function called when ``k`` joins."""

EXAMPLES_IN_FLIGHT = 32_768
"""On accelerators, micro-batches are cut so that about this many examples (over all live
trials) are in one forward/backward pass, which bounds activation memory."""


class BatchedTrials:
    """The trials of one study trained as a rolling group of at most ``slots`` live trials.

    Live trials advance in lockstep, each on its own batch of the study's batch order (a trial
    that joined later is at an earlier step), from parameters stacked along a first dimension
    and run as one model (:class:`StackedModel`). A trial that ends leaves the group at its
    check and the next waiting trial joins, so the group stays full until the study's trials
    run out. Each :meth:`advance` trains every live trial to its next check and makes the
    checks; it returns the trials that ended.

    Nothing is read back to the host between checks: the training data and the batch order
    live on the device (:class:`~sparsedp.data.device.DeviceSplit`,
    :class:`~sparsedp.data.device.DeviceBatchOrder`), learning rates are sent once per check
    interval, and a non-finite training loss is noted on the device (the first step it
    happened) and read at the trial's next check, which records it ``infeasible`` at that
    step with run_trial's message. Every trial gets run_trial's outcome (on CPU bit for bit;
    see :func:`run_trials_batched`).
    """

    def __init__(
        self,
        configs: Sequence[TrialConfig],
        data: SplitData,
        *,
        engine: EngineSettings | None = None,
        slots: int | None = None,
        saliencies: SaliencySource | None = None,
        step_limit: Callable[[], int | None] | None = None,
        progress: BatchedProgressFn | None = None,
        share_best: bool = False,
        grouped_convs: bool | None = None,
        keep_final: bool = False,
    ) -> None:
        self.configs = list(configs)
        check_same_study(self.configs)
        if isinstance(saliencies, Sequence) and len(saliencies) != len(self.configs):
            raise ValueError(f"got {len(saliencies)} saliencies for {len(self.configs)} trials")
        if slots is not None and slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.data = data
        self.engine = engine or EngineSettings()
        check_precision(self.engine.precision, self.engine.device)
        if self.engine.train_channels_last:
            raise ValueError("channels-last training runs one trial at a time, not in "
                             "batched groups (set batched_trials = 1)")
        self.device = torch.device(self.engine.device)
        self.slots = len(self.configs) if slots is None else min(slots, len(self.configs))
        self.saliencies = saliencies
        self.step_limit, self.progress, self.share_best = step_limit, progress, share_best
        self.grouped_convs = grouped_convs
        self.keep_final = keep_final
        self.final: dict[int, Params] = {}
        self.results: list[TrialResult | None] = [None] * len(self.configs)
        self.pending: deque[int] = deque(range(len(self.configs)))
        self.members: list[_Member] = []
        self.params: Params = {}
        self.masks: Params = {}
        self.optimizer: StackedTFOptimizer | None = None
        self.model: StackedModel | None = None
        self.evaluator: _StackedEvaluator | None = None
        # the group's own completions: with share_best they set a limit of their own
        self.completed = CompletedSteps(self.engine.keep_complete)
        if not self.configs:
            return
        first = self.configs[0]
        self.batch_size = first.batch_size
        self.max_steps, self.eval_every = first.resolved_max_steps, first.resolved_eval_every
        micro = self.engine.micro_batch
        self.micro = micro if micro and micro < self.batch_size else self.batch_size
        if self.device.type != "cpu":
            self.micro = min(self.micro, max(1, EXAMPLES_IN_FLIGHT // max(1, self.slots)))
        self.train = data.train_on(self.device)
        self.order = DeviceBatchOrder(data.num_train, self.batch_size, first.data_seed,
                                      self.device)
        self._steps = torch.zeros(0, dtype=torch.int64, device=self.device)
        self._bad = torch.zeros(0, dtype=torch.int64, device=self.device)

    @property
    def done(self) -> bool:
        """Whether every trial has ended."""
        return not self.pending and not self.members

    # -- membership ---------------------------------------------------------------------------
    def _saliency(self, index: int) -> dict[str, Tensor] | None:
        if self.saliencies is None:
            return None
        if isinstance(self.saliencies, Sequence):
            return self.saliencies[index]
        return self.saliencies(index)

    def _join(self) -> None:
        """Fill the free slots with waiting trials (built and pruned as run_trial does)."""
        free = self.slots - len(self.members)
        joining = [self.pending.popleft() for _ in range(min(free, len(self.pending)))]
        if not joining:
            return
        models, members = [], []
        for index in joining:
            started = time.perf_counter()
            config = self.configs[index]
            model, mask, report = pruned_trial_model(config, self.data, self.device,
                                                     self._saliency(index))
            result = TrialResult(INCOMPLETE, None, 0, None, True,
                                 mask_report=report, empty_layers=mask.empty_layers(),
                                 prune_time=time.perf_counter() - started)
            members.append(_Member(index, config.schedule(), mask, result))
            models.append(model)
        if self.model is None:
            self.model = StackedModel(models[0], grouped=self.grouped_convs)
            val_x, val_y = self.data.validation_on(self.device)
            chunk, in_flight = self.engine.eval_batch_size, None
            if self.device.type != "cpu":  # chunks of 1,000 let early exit skip work; many
                chunk, in_flight = min(chunk, 1000), EXAMPLES_IN_FLIGHT * 2  # in one pass
            self.evaluator = _StackedEvaluator(
                self.model, val_x, val_y, self.configs[0].resolved_goal_error,
                len(self.configs), batch_size=chunk, early_exit=self.engine.early_exit,
                in_flight=in_flight,
            )
        stacked, _ = stack_module_state(models)
        new = {name: p.detach() for name, p in stacked.items()}
        new_masks = {name: torch.stack([m.mask[name] for m in members])
                     for name in members[0].mask.names}
        momenta = [self.configs[m.index].momentum or 0.0 for m in members]
        if not self.members:
            self.params = {n: p.requires_grad_() for n, p in new.items()}
            self.masks = new_masks
            self.optimizer = StackedTFOptimizer(self.configs[0].spec.optimizer, self.params,
                                                momenta)
        else:
            assert self.optimizer is not None
            self.optimizer.add_rows(new, momenta)
            self.params = {n: torch.cat([p.detach(), new[n]]).requires_grad_()
                           for n, p in self.params.items()}
            self.masks = {n: torch.cat([m, new_masks[n]]) for n, m in self.masks.items()}
        zeros = torch.zeros(len(members), dtype=torch.int64, device=self.device)
        self._steps = torch.cat([self._steps, zeros])
        self._bad = torch.cat([self._bad, zeros])
        self.members += members

    @torch.no_grad()
    def _drop(self, rows: set[int]) -> None:
        """Remove the trials at ``rows`` from the group (keeping their final parameters)."""
        if not rows:
            return
        if self.keep_final:
            for row in rows:
                self.final[self.members[row].index] = {
                    name: p[row].detach().cpu().clone() for name, p in self.params.items()
                }
        keep = [row for row in range(len(self.members)) if row not in rows]
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.params = {n: p.index_select(0, index).requires_grad_()
                       for n, p in self.params.items()}
        self.masks = {n: m.index_select(0, index) for n, m in self.masks.items()}
        assert self.optimizer is not None
        self.optimizer.keep_rows(index)
        self._steps = self._steps.index_select(0, index)
        self._bad = self._bad.index_select(0, index)
        self.members = [self.members[row] for row in keep]

    # -- training -----------------------------------------------------------------------------
    def _next_check(self, member: _Member) -> int:
        return min((member.step // self.eval_every + 1) * self.eval_every, self.max_steps)

    def _rates(self, length: int) -> list[tuple[Tensor, Tensor | None]]:
        """Each step's (−lr, −lr·m) rows for the next ``length`` steps: one copy to the device."""
        assert self.optimizer is not None
        table = [[member.schedule(member.step + t) for member in self.members]
                 for t in range(length)]
        rates = [self.optimizer.rates(lrs, "cpu") for lrs in table]
        neg_lr = torch.stack([r[0] for r in rates]).to(self.device, non_blocking=True)
        if rates[0][1] is None:
            return [(row, None) for row in neg_lr]
        neg_lr_m = torch.stack([r[1] for r in rates]).to(self.device,  # type: ignore[misc]
                                                          non_blocking=True)
        return list(zip(neg_lr, neg_lr_m, strict=True))

    def _train_step(self, neg_lr: Tensor, neg_lr_m: Tensor | None, shared: bool) -> None:
        """One step of every live trial; ``shared``: all are at the same step (one batch)."""
        assert self.model is not None and self.optimizer is not None
        models, batch = len(self.members), self.batch_size
        self._steps += 1
        steps = self._steps[:1] if shared else self._steps
        x, y = self.train.batch(self.order.positions(steps))
        x = x.view(-1, batch, *x.shape[1:])
        y = y.view(-1, batch)
        names = list(self.params)
        tensors = [self.params[name] for name in names]
        grads: list[Tensor] = []
        loss: Tensor | None = None
        for start in range(0, batch, self.micro):
            xp, yp = x[:, start : start + self.micro], y[:, start : start + self.micro]
            n = xp.shape[1]
            logits = self.model(self.params, xp.reshape(-1, *x.shape[2:]), n)
            targets = yp.reshape(-1).repeat(models) if shared else yp.reshape(-1)
            per_example = F.cross_entropy(logits.float(), targets, reduction="none")
            piece = per_example.view(models, n).sum(dim=1) / batch
            piece_grads = torch.autograd.grad(piece.sum(), tensors)
            loss = piece.detach() if loss is None else loss + piece.detach()
            if not grads:
                grads = list(piece_grads)
            else:
                torch._foreach_add_(grads, piece_grads)
        assert loss is not None
        with torch.no_grad():
            new_bad = ~torch.isfinite(loss) & (self._bad == 0)
            self._bad = torch.where(new_bad, self._steps, self._bad)
            masked = [i for i, name in enumerate(names) if name in self.masks]
            torch._foreach_mul_([grads[i] for i in masked],
                                [self.masks[names[i]] for i in masked])
            self.optimizer.step(self.params, dict(zip(names, grads, strict=True)), neg_lr,
                                neg_lr_m)

    def advance(self) -> list[int]:
        """Fill free slots, train every live trial to its next check, check; the ended trials."""
        if self.done:
            return []
        self._join()
        with numerics(self.engine.precision, self.device):
            started = time.perf_counter()
            length = min(self._next_check(m) - m.step for m in self.members)
            self.order.ensure(max(m.step for m in self.members) + length)
            shared = len({m.step for m in self.members}) == 1
            for neg_lr, neg_lr_m in self._rates(length):
                self._train_step(neg_lr, neg_lr_m, shared)
            for member in self.members:
                member.step += length
                member.result.steps_taken = member.step
            self._sync()
            share = (time.perf_counter() - started) / len(self.members)
            for member in self.members:
                member.train_time += share
            return self._checks()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.no_grad()
    def _checks(self) -> list[int]:
        """The checks of the trials at a check step; drops and returns those that ended."""
        assert self.evaluator is not None
        started = time.perf_counter()
        members = list(self.members)
        due = [row for row, m in enumerate(members)
               if m.step % self.eval_every == 0 or m.step >= self.max_steps]
        bad = self._bad.tolist()
        finished: set[int] = set()
        for row in due:
            if bad[row]:
                result = members[row].result
                result.status = INFEASIBLE
                result.message = f"non-finite training loss at step {bad[row]}"
                result.steps_taken = bad[row]
                finished.add(row)
        finite = torch.stack([torch.isfinite(p).flatten(1).all(dim=1)
                              for p in self.params.values()]).all(dim=0).tolist()
        for row in due:
            if row not in finished and not finite[row]:
                result = members[row].result
                result.status = INFEASIBLE
                result.message = f"non-finite parameters at step {members[row].step}"
                finished.add(row)
        checked = [row for row in due if row not in finished]
        rows = self.params if len(checked) == len(members) else {
            name: p.index_select(0, torch.tensor(checked, device=self.device))
            for name, p in self.params.items()
        }
        with numerics(self.engine.precision, self.device):
            checks = self.evaluator(rows, [members[r].index for r in checked]) if checked else []
        for row, check in zip(checked, checks, strict=True):
            member = members[row]
            result = member.result
            result.eval_examples += check.examined
            result.curve.append((member.step, check.error, check.exact))
            result.final_val_error, result.final_error_exact = check.error, check.exact
            if self.progress is not None:
                self.progress(member.index, member.step, check)
            if check.errors <= self.evaluator.allowance:
                result.status, result.steps_to_result = COMPLETE, member.step
                finished.add(row)
                if self.share_best:
                    self.completed.add(member.step)
        limit = combined_limit(self.step_limit() if self.step_limit is not None else None,
                               self.completed.limit)
        for row in checked:
            member = members[row]
            if row in finished:
                continue
            if limit is not None and member.step >= limit:
                member.result.status = STOPPED
                member.result.message = stop_message(member.step, limit,
                                                     self.engine.keep_complete)
                finished.add(row)
            elif member.step >= self.max_steps:
                finished.add(row)  # budget used up: incomplete
        share = (time.perf_counter() - started) / max(1, len(checked))
        for row in checked:
            members[row].eval_time += share
        ended = sorted(finished)
        for row in ended:
            self._finish(members[row])
        self._drop(finished)
        return [members[row].index for row in ended]

    def _finish(self, member: _Member) -> None:
        result = member.result
        result.train_time, result.eval_time = member.train_time, member.eval_time
        result.wall_time = result.prune_time + member.train_time + member.eval_time
        if result.train_time > 0:
            result.samples_per_second = result.steps_taken * self.batch_size / result.train_time
        self.results[member.index] = result

    def run(self) -> list[TrialResult]:
        """Advance until every trial has ended; one result per config, in order."""
        while not self.done:
            self.advance()
        return [r for r in self.results if r is not None]

    def time_steps(self, steps: int) -> float:
        """Seconds for ``steps`` training steps of a full group (no checks; for tuning)."""
        self._join()
        with numerics(self.engine.precision, self.device):
            self.order.ensure(max(m.step for m in self.members) + steps + 1)
            rates = self._rates(1)[0]
            shared = len({m.step for m in self.members}) == 1
            self._train_step(*rates, shared)  # warm-up
            self._sync()
            started = time.perf_counter()
            for _ in range(steps):
                self._train_step(*rates, shared)
            self._sync()
            for member in self.members:
                member.step += steps + 1
        return time.perf_counter() - started
