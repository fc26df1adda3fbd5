"""Several trials of one study trained in lockstep, as one model over stacked parameters.

The trials of a study share the workload, the batch size and the batch order; they differ in
their metaparameters, their initialisation (seed) and so their mask. :func:`run_trials_batched`
builds and prunes each trial's model exactly as :func:`~sparsedp.training.trainer.run_trial`
does, stacks the parameters along a leading trial dimension
(``torch.func.stack_module_state``) and trains them together with
``torch.func.functional_call`` on a :class:`StackedModel`: every step reads each trial's batch
(trials that joined later are at earlier steps), and one forward/backward gives each trial the
gradient of its own mean loss. The update is the TF rule of
:class:`~sparsedp.training.optimizers.TFOptimizer` applied to the stacked tensors with
per-trial learning rates and momenta. A trial that finishes leaves the group (its rows are
dropped from every stacked tensor) and a waiting trial of the study takes its slot
(:class:`BatchedTrials`), so the group stays full until the study runs out of trials.

Why not ``torch.vmap``: its convolution rule adds the bias outside the convolution kernel and
its batched reductions sum in another order, so after a few dozen steps a ReLU or max-pool
decision flips and the trajectory leaves the sequential one (measured on MNIST: 3e-3 apart at
step 50, 0.4 at step 200). :class:`StackedModel` runs each layer for all K models at once as
a grouped convolution or a batched matmul, formed so that on CPU every trial gets the
sequential trial's numbers bit for bit, and so run_trial's outcome.
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, overload

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state
from torch.nn import functional as F

from sparsedp.data.device import DeviceBatchOrder
from sparsedp.data.splits import SplitData
from sparsedp.pruning.mask import Mask
from sparsedp.pruning.prune import prune
from sparsedp.training.evaluation import EvalResult, error_allowance
from sparsedp.training.optimizers import OPTIMIZERS
from sparsedp.training.precision import check_precision, numerics
from sparsedp.training.schedules import Schedule
from sparsedp.training.trainer import (
    COMPLETE,
    INCOMPLETE,
    INFEASIBLE,
    STOPPED,
    EngineSettings,
    TrialResult,
    build_trial_model,
)
from sparsedp.training.trial_config import TrialConfig

__all__ = [
    "BatchedProgressFn",
    "BatchedTrials",
    "StackedModel",
    "StackedTFOptimizer",
    "check_same_study",
    "run_trials_batched",
]

BatchedProgressFn = Callable[[int, int, EvalResult], None]
"""``progress(trial_index, step, check)``: called after each trial's validation check."""

Params = dict[str, Tensor]


def check_same_study(configs: Sequence[TrialConfig]) -> None:
    """Raise ValueError unless every config belongs to the same study (may share a batch).

    Trials may differ only in their metaparameters and seed; everything that fixes the data,
    the model, the mask's sparsity or the checking schedule must agree.
    """
    if not configs:
        return
    first = configs[0]

    def key(c: TrialConfig) -> dict[str, object]:
        return {
            "workload": c.workload,
            "sparsity": c.sparsity,
            "batch_size": c.batch_size,
            "data_seed": c.data_seed,
            "goal_error": c.resolved_goal_error,
            "max_steps": c.resolved_max_steps,
            "eval_every": c.resolved_eval_every,
            "hidden_units": c.hidden_units,
            "pruning": c.pruning,
        }

    reference = key(first)
    for index, config in enumerate(configs[1:], start=1):
        differing = [name for name, value in key(config).items() if reference[name] != value]
        if differing:
            raise ValueError(
                f"trial {index} differs from trial 0 in {', '.join(differing)}: only trials of "
                "one study (same workload, sparsity, batch size, data seed, goal, budget, "
                "check interval, model and pruning) can be batched"
            )


def _per_trial(values: Tensor, like: Tensor) -> Tensor:
    """A (K,) vector viewed as (K, 1, 1, ...) to broadcast over a stacked (K, ...) tensor."""
    return values.view(-1, *([1] * (like.dim() - 1)))


class _StackedLinear(torch.autograd.Function):
    """``x[k] @ w[k].T + b[k]`` for every k, with F.linear's own gradient products.

    Autograd's rule for ``baddbmm`` forms the weight gradient as ``xᵀ·g`` (then transposed),
    whose rounding differs from F.linear's ``gᵀ·x``; this backward uses the latter.
    """

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # type: ignore[override]
        if bias is None:
            return torch.bmm(x, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, weight, bias = inputs
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(dim=1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


class StackedModel:
    """Runs K models of one architecture at once, from parameters stacked along a first dim.

    A structural copy of the model (on the meta device) is called through
    ``torch.func.functional_call`` with the stacked parameters. Activations between layers
    hold the K models' examples one model after another (batch ``K·n``), so parameter-free
    operations (activations, pooling, padding, per-example reshapes, residual sums) run once
    for all models unchanged. The input is either shared by all models (batch ``n``) or
    stacked (batch ``K·n``, model-major). ``nn.Linear`` layers run as one batched matmul.
    ``nn.Conv2d`` layers run as one grouped convolution when ``grouped`` (default: on
    accelerators), else as K convolutions (default on CPU, where oneDNN's grouped kernels are
    slower than K plain ones). Either way each model's numbers are its own model's, bit for
    bit on CPU. Other layers with parameters or buffers are refused.
    """

    def __init__(self, model: nn.Module, *, grouped: bool | None = None) -> None:
        self.module = copy.deepcopy(model).to("meta")
        self.examples = 0
        self.grouped = grouped
        for name, layer in self.module.named_modules():
            if isinstance(layer, nn.Conv2d):
                layer._conv_forward = partial(self._conv, layer)  # type: ignore[method-assign]
            elif isinstance(layer, nn.Linear):
                layer.forward = partial(self._linear, layer)  # type: ignore[method-assign]
            elif any(True for _ in layer.parameters(recurse=False)) or any(
                True for _ in layer.buffers(recurse=False)
            ):
                raise ValueError(
                    f"cannot stack layer {name or 'model'} ({type(layer).__name__}): only "
                    "Conv2d and Linear layers may hold parameters"
                )

    def __call__(self, params: Params, x: Tensor, examples: int) -> Tensor:
        """The K models' outputs for ``x``, stacked model-major: (K·examples, ...)."""
        self.examples = examples
        return functional_call(self.module, params, (x,))

    def _stacked(self, x: Tensor, models: int) -> bool:
        """Whether ``x`` holds one batch per model (else one batch shared by all)."""
        if x.shape[0] == models * self.examples:
            return True
        if x.shape[0] == self.examples:
            return False
        raise ValueError(
            f"a layer got a batch of {x.shape[0]}, expected {self.examples} (shared) or "
            f"{models}×{self.examples} (stacked)"
        )

    def _conv(self, layer: nn.Conv2d, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        models, out_channels = weight.shape[:2]
        n = self.examples
        if layer.padding_mode != "zeros":
            x = F.pad(x, layer._reversed_padding_repeated_twice, mode=layer.padding_mode)
            padding: Any = 0
        else:
            padding = layer.padding
        args = (layer.stride, padding, layer.dilation)
        stacked = self._stacked(x, models)
        if not self._grouped(x):
            parts = x.view(models, n, *x.shape[1:]).unbind(0) if stacked else [x] * models
            return torch.cat([
                F.conv2d(part, weight[k], bias[k] if bias is not None else None, *args,
                         layer.groups)
                for k, part in enumerate(parts)
            ])
        flat_weight = weight.reshape(-1, *weight.shape[2:])
        flat_bias = bias.reshape(-1) if bias is not None else None
        if stacked:
            # (K·n, C, H, W) → (n, K·C, H, W): model k's channels form group k.
            x = x.view(models, n, *x.shape[1:]).transpose(0, 1).reshape(n, -1, *x.shape[2:])
            out = F.conv2d(x, flat_weight, flat_bias, *args, layer.groups * models)
        else:
            # One input for all: the K weight sets are one convolution with K·O outputs.
            out = F.conv2d(x, flat_weight, flat_bias, *args, layer.groups)
        out = out.view(n, models, out_channels, *out.shape[2:]).transpose(0, 1)
        return out.reshape(models * n, out_channels, *out.shape[3:])

    def _grouped(self, x: Tensor) -> bool:
        return self.grouped if self.grouped is not None else x.device.type != "cpu"

    def _linear(self, layer: nn.Linear, x: Tensor) -> Tensor:
        weight, bias = layer.weight, layer.bias
        models, n = weight.shape[0], self.examples
        if x.dim() != 2:
            raise ValueError(f"stacked Linear layers take (batch, features), got {tuple(x.shape)}")
        if self._stacked(x, models):
            x = x.reshape(models, n, x.shape[-1])
        else:
            x = x.unsqueeze(0).expand(models, n, x.shape[-1])
        out = _StackedLinear.apply(x, weight, bias)
        return out.reshape(models * n, -1)


class StackedTFOptimizer:
    """:class:`TFOptimizer`'s rules on stacked (K, ...) tensors, one lr and momentum per row.

    - sgd:      w ← w − lr·g
    - momentum: a ← m·a + g;  w ← w − lr·a
    - nesterov: a ← m·a + g;  w ← w − lr·(g + m·a)

    Rows can leave (:meth:`keep_rows`) and join (:meth:`add_rows`, with zero accumulators).
    """

    def __init__(self, kind: str, params: Params, momenta: Sequence[float]) -> None:
        if kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {kind!r}; known: {', '.join(OPTIMIZERS)}")
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
        self.best: int | None = None  # the group's own best steps-to-result
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
            model = build_trial_model(config, self.data).to(self.device)
            mask = prune(model, config.sparsity, config.pruning, self.data, seed=config.seed,
                         saliency=self._saliency(index))
            result = TrialResult(INCOMPLETE, None, 0, None, True,
                                 mask_report=mask.report_dict(), empty_layers=mask.empty_layers(),
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
                if self.share_best and (self.best is None or member.step < self.best):
                    self.best = member.step
        limit = self.step_limit() if self.step_limit is not None else None
        if self.best is not None:
            limit = self.best if limit is None else min(limit, self.best)
        for row in checked:
            member = members[row]
            if row in finished:
                continue
            if limit is not None and member.step >= limit:
                member.result.status = STOPPED
                member.result.message = (f"stopped at step {member.step}: cannot beat the "
                                         f"study's best ({limit})")
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


@overload
def run_trials_batched(
    configs: Sequence[TrialConfig], data: SplitData, *, engine: EngineSettings | None = ...,
    saliencies: Sequence[dict[str, Tensor] | None] | None = ...,
    step_limit: Callable[[], int | None] | None = ..., progress: BatchedProgressFn | None = ...,
    share_best: bool = ..., grouped_convs: bool | None = ..., slots: int | None = ...,
    return_params: Literal[False] = ...,
) -> list[TrialResult]: ...


@overload
def run_trials_batched(
    configs: Sequence[TrialConfig], data: SplitData, *, engine: EngineSettings | None = ...,
    saliencies: Sequence[dict[str, Tensor] | None] | None = ...,
    step_limit: Callable[[], int | None] | None = ..., progress: BatchedProgressFn | None = ...,
    share_best: bool = ..., grouped_convs: bool | None = ..., slots: int | None = ...,
    return_params: Literal[True],
) -> tuple[list[TrialResult], list[Params]]: ...


def run_trials_batched(
    configs: Sequence[TrialConfig],
    data: SplitData,
    *,
    engine: EngineSettings | None = None,
    saliencies: Sequence[dict[str, Tensor] | None] | None = None,
    step_limit: Callable[[], int | None] | None = None,
    progress: BatchedProgressFn | None = None,
    share_best: bool = False,
    grouped_convs: bool | None = None,
    slots: int | None = None,
    return_params: bool = False,
) -> list[TrialResult] | tuple[list[TrialResult], list[Params]]:
    """Run the trials ``configs`` of one study together; one result per config, in order.

    At most ``slots`` trials (default: all) are live at once (:class:`BatchedTrials`); the
    rest join as others end. Every trial gets run_trial's outcome: the same init and mask
    (``saliencies[k]`` plays run_trial's ``saliency``), the same batches, a check every
    ``eval_every`` steps and at the last step, ``infeasible`` on a non-finite loss (at the
    step it happened, seen at the next check) or non-finite parameters (at a check),
    ``complete`` at the first check meeting the goal, ``incomplete`` when the budget is used
    up, and ``stopped`` at a check at or past ``step_limit()`` without meeting the goal. With
    ``share_best`` the group's own best steps-to-result so far also acts as a step limit (as it
    would for trials run after it one by one). ``progress(trial_index, step, check)`` follows
    each check. ``engine.micro_batch`` accumulates gradients over pieces as run_trial does.
    ``grouped_convs`` picks :class:`StackedModel`'s convolution form (default: by device).

    Times: ``prune_time`` is the trial's own; the group's time for each check interval and
    each check is shared equally among the trials that took part in it, so ``wall_time``
    summed over the trials is about the group's wall time, and ``samples_per_second`` is the
    trial's share of the group's throughput.

    With ``return_params`` also returns each trial's final parameters (CPU copies, as they were
    when the trial ended), in config order.
    """
    run = BatchedTrials(configs, data, engine=engine, slots=slots, saliencies=saliencies,
                        step_limit=step_limit, progress=progress, share_best=share_best,
                        grouped_convs=grouped_convs, keep_final=return_params)
    results = run.run()
    if return_params:
        return results, [run.final[k] for k in range(len(run.configs))]
    return results
