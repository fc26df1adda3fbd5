"""Several trials of one study trained in lockstep, as one model over stacked parameters.

The trials of a study share the workload, the batch size and the batch order; they differ in
their metaparameters, their initialisation (seed) and so their mask. :func:`run_trials_batched`
builds and prunes each trial's model exactly as :func:`~sparsedp.training.trainer.run_trial`
does, stacks the parameters along a leading trial dimension
(``torch.func.stack_module_state``) and trains them together with
``torch.func.functional_call`` on a :class:`StackedModel`: every step reads one batch for all
trials, and one forward/backward gives each trial the gradient of its own mean loss. The update
is the TF rule of :class:`~sparsedp.training.optimizers.TFOptimizer` applied to the stacked
tensors with per-trial learning rates and momenta. A trial that finishes leaves the group (its
rows are dropped from every stacked tensor), so the group costs only what its live trials need.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, overload

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state
from torch.nn import functional as F

from sparsedp.data.batches import BatchStream
from sparsedp.data.splits import SplitData
from sparsedp.pruning.mask import Mask
from sparsedp.pruning.prune import prune
from sparsedp.training.evaluation import EvalResult, error_allowance
from sparsedp.training.optimizers import OPTIMIZERS
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

    @torch.no_grad()
    def step(self, params: Params, grads: Params, lrs: Sequence[float]) -> None:
        """Update ``params`` in place from ``grads`` with learning rate ``lrs[k]`` for row k."""
        device = next(iter(params.values())).device
        neg_lr = torch.tensor([-lr for lr in lrs], dtype=torch.float32, device=device)
        if self.kind == "nesterov":
            # -lr·m rounded from double once, as TFOptimizer's alpha is.
            neg_lr_m = torch.tensor([-lr * m for lr, m in zip(lrs, self.momenta, strict=True)],
                                    dtype=torch.float32, device=device)
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
                p.addcmul_(g, _per_trial(neg_lr, p))
                p.addcmul_(a, _per_trial(neg_lr_m, p))


@dataclass
class _Member:
    """Book-keeping for one trial of the group."""

    index: int
    schedule: Schedule
    mask: Mask
    result: TrialResult
    train_time: float = 0.0
    eval_time: float = 0.0


class _StackedEvaluator:
    """:class:`~sparsedp.training.evaluation.Evaluator` for many models at once.

    Each trial keeps its own "wrong at the previous check" set, so with early exit every model
    visits the validation examples in the order its own Evaluator would, chunk by chunk
    (``batch_size`` examples a chunk); a model stops counting after the chunk where its errors
    exceed the allowance. Errors, examples examined and exactness per model are those of a
    sequential Evaluator. To bound memory, each chunk is computed in pieces so that about
    ``batch_size`` examples are in flight over all models together.
    """

    def __init__(self, model: StackedModel, x: Tensor, y: Tensor, goal_error: float,
                 trials: int, *, batch_size: int, early_exit: bool) -> None:
        self.model = model
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
        piece = max(1, math.ceil(self.batch_size / models))
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


class _Group:
    """The live trials' stacked state; row r of every tensor belongs to ``members[r]``."""

    def __init__(self, members: list[_Member], params: Params, model: StackedModel,
                 optimizer: StackedTFOptimizer, keep_final: bool) -> None:
        self.members = members
        self.params = params
        self.masks: Params = {
            name: torch.stack([m.mask[name] for m in members]) for name in members[0].mask.names
        }
        self.model = model
        self.optimizer = optimizer
        self.keep_final = keep_final
        self.final: dict[int, Params] = {}

    def gradients(self, x: Tensor, y: Tensor, batch_size: int, micro: int
                  ) -> tuple[Params, list[float]]:
        """Each live trial's gradient of its mean loss on (x, y), and that loss."""
        models = len(self.members)
        names = list(self.params)
        tensors = [self.params[name] for name in names]
        grads: list[Tensor] = []
        losses = [0.0] * models
        for start in range(0, batch_size, micro):
            xp, yp = x[start : start + micro], y[start : start + micro]
            n = xp.shape[0]
            logits = self.model(self.params, xp, n)
            per_example = F.cross_entropy(logits, yp.repeat(models), reduction="none")
            piece_losses = per_example.view(models, n).sum(dim=1) / batch_size
            piece_grads = torch.autograd.grad(piece_losses.sum(), tensors)
            for row, value in enumerate(piece_losses.tolist()):
                losses[row] += value
            if not grads:
                grads = list(piece_grads)
            else:
                for total, g in zip(grads, piece_grads, strict=True):
                    total.add_(g)
        return dict(zip(names, grads, strict=True)), losses

    @torch.no_grad()
    def update(self, grads: Params, step: int) -> None:
        """Mask the gradients and apply each trial's TF update with its lr for ``step``."""
        for name, mask in self.masks.items():
            grads[name].mul_(mask)
        lrs = [member.schedule(step - 1) for member in self.members]
        self.optimizer.step(self.params, grads, lrs)

    @torch.no_grad()
    def finite_rows(self) -> list[bool]:
        """Whether each live trial's parameters are all finite."""
        per_tensor = [torch.isfinite(p).flatten(1).all(dim=1) for p in self.params.values()]
        return torch.stack(per_tensor).all(dim=0).tolist()

    @torch.no_grad()
    def rows(self, rows: Sequence[int]) -> Params:
        """The stacked parameters of the live trials at ``rows``."""
        if len(rows) == len(self.members):
            return self.params
        index = torch.tensor(list(rows), dtype=torch.long, device=self._device)
        return {name: p.index_select(0, index) for name, p in self.params.items()}

    @property
    def _device(self) -> torch.device:
        return next(iter(self.params.values())).device

    @torch.no_grad()
    def drop(self, rows: set[int]) -> None:
        """Remove the trials at ``rows`` from the group (keeping their final parameters)."""
        if not rows:
            return
        if self.keep_final:
            for row in rows:
                self.final[self.members[row].index] = {
                    name: p[row].detach().cpu().clone() for name, p in self.params.items()
                }
        keep = [row for row in range(len(self.members)) if row not in rows]
        index = torch.tensor(keep, dtype=torch.long, device=self._device)
        self.params = {
            name: p.index_select(0, index).requires_grad_() for name, p in self.params.items()
        }
        self.masks = {name: m.index_select(0, index) for name, m in self.masks.items()}
        self.optimizer.keep_rows(index)
        self.members = [self.members[row] for row in keep]


@overload
def run_trials_batched(
    configs: Sequence[TrialConfig], data: SplitData, *, engine: EngineSettings | None = ...,
    saliencies: Sequence[dict[str, Tensor] | None] | None = ...,
    step_limit: Callable[[], int | None] | None = ..., progress: BatchedProgressFn | None = ...,
    share_best: bool = ..., grouped_convs: bool | None = ...,
    return_params: Literal[False] = ...,
) -> list[TrialResult]: ...


@overload
def run_trials_batched(
    configs: Sequence[TrialConfig], data: SplitData, *, engine: EngineSettings | None = ...,
    saliencies: Sequence[dict[str, Tensor] | None] | None = ...,
    step_limit: Callable[[], int | None] | None = ..., progress: BatchedProgressFn | None = ...,
    share_best: bool = ..., grouped_convs: bool | None = ...,
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
    return_params: bool = False,
) -> list[TrialResult] | tuple[list[TrialResult], list[Params]]:
    """Run the trials ``configs`` of one study together; one result per config, in order.

    Every trial gets run_trial's outcome: the same init and mask (``saliencies[k]`` plays
    run_trial's ``saliency``), the same batches, a check every ``eval_every`` steps and at the
    last step, ``infeasible`` on a non-finite loss (any step) or non-finite parameters (at a
    check), ``complete`` at the first check meeting the goal, ``incomplete`` when the budget is
    used up, and ``stopped`` at a check at or past ``step_limit()`` without meeting the goal.
    With ``share_best`` the group's own best steps-to-result so far also acts as a step limit
    (as it would for trials run after it one by one). ``progress(trial_index, step, check)``
    follows each check. ``engine.micro_batch`` accumulates gradients over pieces as run_trial
    does; ``engine.channels_last`` is ignored (it never changes an outcome).
    ``grouped_convs`` picks :class:`StackedModel`'s convolution form (default: by device).

    Times: ``prune_time`` is the trial's own; the group's time for each training step and each
    check is shared equally among the trials that took part in it, so ``wall_time`` (prune +
    shares) summed over the trials is about the group's wall time, and ``samples_per_second``
    is the trial's share of the group's throughput.

    With ``return_params`` also returns each trial's final parameters (CPU copies, as they were
    when the trial ended), in config order.
    """
    configs = list(configs)
    check_same_study(configs)
    if saliencies is not None and len(saliencies) != len(configs):
        raise ValueError(f"got {len(saliencies)} saliencies for {len(configs)} trials")
    if not configs:
        return ([], []) if return_params else []
    engine = engine or EngineSettings()
    device = torch.device(engine.device)
    first = configs[0]
    spec = first.spec

    members: list[_Member] = []
    models: list[nn.Module] = []
    for index, config in enumerate(configs):
        started = time.perf_counter()
        model = build_trial_model(config, data).to(device)
        saliency = saliencies[index] if saliencies is not None else None
        mask = prune(model, config.sparsity, config.pruning, data, seed=config.seed,
                     saliency=saliency)
        result = TrialResult(INCOMPLETE, None, 0, None, True, mask_report=mask.report_dict(),
                             empty_layers=mask.empty_layers(),
                             prune_time=time.perf_counter() - started)
        members.append(_Member(index, config.schedule(), mask, result))
        models.append(model)

    stacked_model = StackedModel(models[0], grouped=grouped_convs)
    stacked, _ = stack_module_state(models)
    params = {name: p.detach().requires_grad_() for name, p in stacked.items()}
    del models, stacked
    optimizer = StackedTFOptimizer(spec.optimizer, params, [c.momentum or 0.0 for c in configs])
    group = _Group(members, params, stacked_model, optimizer, keep_final=return_params)

    val_x, val_y = data.validation()
    evaluator = _StackedEvaluator(
        stacked_model, val_x.to(device), val_y.to(device), first.resolved_goal_error,
        len(configs), batch_size=engine.eval_batch_size, early_exit=engine.early_exit,
    )
    batch_size = first.batch_size
    micro = engine.micro_batch if engine.micro_batch and engine.micro_batch < batch_size \
        else batch_size
    stream = BatchStream(data.num_train, batch_size, first.data_seed)
    max_steps, eval_every = first.resolved_max_steps, first.resolved_eval_every
    group_best: int | None = None

    def share_time(started: float, among: list[_Member], attribute: str) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        share = (time.perf_counter() - started) / len(among)
        for member in among:
            setattr(member, attribute, getattr(member, attribute) + share)

    for step in range(1, max_steps + 1):
        if not group.members:
            break
        started, taking_part = time.perf_counter(), list(group.members)
        x, y = data.train_batch(stream.next())
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        grads, losses = group.gradients(x, y, batch_size, micro)
        for member in taking_part:
            member.result.steps_taken = step
        diverged = {row for row, value in enumerate(losses) if not math.isfinite(value)}
        for row in diverged:
            result = taking_part[row].result
            result.status, result.message = INFEASIBLE, f"non-finite training loss at step {step}"
        if diverged:
            kept = torch.tensor([r for r in range(len(taking_part)) if r not in diverged],
                                dtype=torch.long, device=device)
            grads = {name: g.index_select(0, kept) for name, g in grads.items()}
            group.drop(diverged)  # before the update: as run_trial, which stops there
        if group.members:
            group.update(grads, step)
        share_time(started, taking_part, "train_time")

        if (step % eval_every and step != max_steps) or not group.members:
            continue
        started, taking_part = time.perf_counter(), list(group.members)
        finished: set[int] = set()
        for row, finite in enumerate(group.finite_rows()):
            if not finite:
                result = taking_part[row].result
                result.status = INFEASIBLE
                result.message = f"non-finite parameters at step {step}"
                finished.add(row)
        checked = [row for row in range(len(taking_part)) if row not in finished]
        checks = evaluator(group.rows(checked), [taking_part[r].index for r in checked]) \
            if checked else []
        for row, check in zip(checked, checks, strict=True):
            member = taking_part[row]
            result = member.result
            result.eval_examples += check.examined
            result.curve.append((step, check.error, check.exact))
            result.final_val_error, result.final_error_exact = check.error, check.exact
            if progress is not None:
                progress(member.index, step, check)
            if check.errors <= evaluator.allowance:
                result.status, result.steps_to_result = COMPLETE, step
                finished.add(row)
                if share_best and group_best is None:
                    group_best = step
        limit = step_limit() if step_limit is not None else None
        if group_best is not None:
            limit = group_best if limit is None else min(limit, group_best)
        for row in checked:
            if row in finished or limit is None or step < limit:
                continue
            result = taking_part[row].result
            result.status = STOPPED
            result.message = f"stopped at step {step}: cannot beat the study's best ({limit})"
            finished.add(row)
        if step == max_steps:
            finished = set(range(len(taking_part)))  # the rest stay incomplete
        group.drop(finished)
        share_time(started, taking_part, "eval_time")

    results = []
    for member in members:
        result = member.result
        result.train_time, result.eval_time = member.train_time, member.eval_time
        result.wall_time = result.prune_time + member.train_time + member.eval_time
        if result.train_time > 0:
            result.samples_per_second = result.steps_taken * batch_size / result.train_time
        results.append(result)
    if return_params:
        group.drop(set(range(len(group.members))))
        return results, [group.final[member.index] for member in members]
    return results
