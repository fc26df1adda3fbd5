"""Trials of one study trained in lockstep match the same trials run one by one."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import stack_module_state
from torch.nn import functional as F

from sparsedp.data.splits import SplitData
from sparsedp.models import build_model
from sparsedp.pruning.mask import Mask
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training import pruned
from sparsedp.training.batched import (
    StackedModel,
    StackedTFOptimizer,
    check_same_study,
    run_trials_batched,
)
from sparsedp.training.optimizers import TFOptimizer
from sparsedp.training.schedules import Schedule
from sparsedp.training.trainer import EngineSettings, TrialResult, run_trial
from sparsedp.training.trial_config import TrialConfig

SNIP = PruneSettings(snip_batches=1)


def sequential(
    configs: list[TrialConfig], data: SplitData, **kwargs
) -> tuple[list[TrialResult], list[nn.Module], list[Mask]]:
    """run_trial for each config, keeping hold of the model it trains and its mask."""
    models: list[nn.Module] = []
    masks: list[Mask] = []
    real_prune = pruned.prune

    def capturing_prune(model: nn.Module, *args, **options) -> Mask:
        mask = real_prune(model, *args, **options)
        models.append(model)
        masks.append(mask)
        return mask

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pruned, "prune", capturing_prune)  # where trials prune
        results = [run_trial(config, data, **kwargs) for config in configs]
    return results, models, masks


def assert_same_outcome(batched: TrialResult, reference: TrialResult) -> None:
    """Bit-exact: the same decisions and the very same error values at every check."""
    assert batched.status == reference.status
    assert batched.steps_to_result == reference.steps_to_result
    assert batched.steps_taken == reference.steps_taken
    assert batched.eval_examples == reference.eval_examples
    assert batched.final_error_exact == reference.final_error_exact
    assert [s for s, _, _ in batched.curve] == [s for s, _, _ in reference.curve]
    assert batched.curve == reference.curve
    assert batched.final_val_error == reference.final_val_error
    assert batched.mask_report == reference.mask_report
    assert batched.empty_layers == reference.empty_layers


@pytest.mark.parametrize(
    ("workload", "points", "steps", "engine", "grouped", "decay"),
    [
        (
            "mnist-simplecnn-momentum",
            [(0.05, 0.9, 0), (0.1, 0.5, 1), (0.02, 0.95, 2)],
            200,
            EngineSettings(),
            None,
            False,
        ),
        (
            "mnist-simplecnn-nesterov",
            [(0.03, 0.9, 3), (0.1, 0.6, 4)],
            60,
            EngineSettings(early_exit=True),
            True,
            True,
        ),
        (
            "mnist-simplecnn-sgd",
            [(0.1, None, 5), (0.3, None, 6)],
            60,
            EngineSettings(early_exit=True, micro_batch=16),
            False,
            False,
        ),
    ],
)
def test_parameters_match_sequential_trials(
    mnist: SplitData,
    monkeypatch: pytest.MonkeyPatch,
    workload: str,
    points: list[tuple[float, float | None, int]],
    steps: int,
    engine: EngineSettings,
    grouped: bool | None,
    decay: bool,
) -> None:
    if decay:
        # The MNIST workloads keep lr constant; give every trial its own linear decay instead
        # (as the CIFAR-10 workload has) so that per-trial schedules are exercised.
        def decaying(config: TrialConfig) -> Schedule:
            return Schedule("linear-decay", config.lr, decay_steps=20 + 10 * config.seed,
                            end_lr_factor=0.1 * config.seed)

        monkeypatch.setattr(TrialConfig, "schedule", decaying)
    configs = [
        TrialConfig(workload, 0.9, 32, lr, momentum=m, seed=seed, goal_error=0.001,
                    max_steps=steps, eval_every=min(50, steps // 2), pruning=SNIP)
        for lr, m, seed in points
    ]
    results, params = run_trials_batched(configs, mnist, engine=engine, grouped_convs=grouped,
                                         return_params=True)
    references, models, masks = sequential(configs, mnist, engine=engine)
    for result, reference, final, model, mask in zip(
        results, references, params, models, masks, strict=True
    ):
        assert_same_outcome(result, reference)
        assert result.status == "incomplete" and result.steps_taken == steps
        for name, p in model.named_parameters():
            assert torch.equal(final[name], p.detach()), name  # bit-exact on CPU
        for name, kept in mask.items():
            assert bool((final[name][kept == 0] == 0).all()), name
        assert result.wall_time > 0 and result.samples_per_second > 0


def test_outcomes_match_when_trials_end_at_different_steps(
    mnist: SplitData, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = [
        TrialConfig("mnist-simplecnn-sgd", 0.9, 32, lr, seed=seed, goal_error=0.5, max_steps=32,
                    eval_every=8, pruning=SNIP)
        for lr, seed in [(0.2, 0), (0.05, 2), (50.0, 2), (0.03, 3)]
    ]
    engine = EngineSettings(early_exit=True, eval_batch_size=250)
    seen: list[tuple[int, int, int]] = []
    results = run_trials_batched(
        configs, mnist, engine=engine,
        progress=lambda index, step, check: seen.append((index, step, check.errors)),
    )
    references, _, _ = sequential(configs, mnist, engine=engine)
    for result, reference in zip(results, references, strict=True):
        assert_same_outcome(result, reference)
    assert [(r.status, r.steps_to_result) for r in results] == [
        ("complete", 32), ("complete", 24), ("infeasible", None), ("incomplete", None)
    ]
    assert results[2].steps_taken < 8 and "non-finite training loss" in results[2].message
    assert len(seen) == sum(len(r.curve) for r in results)

    # A step limit stops the slow trials after their check at the limit, as in run_trial.
    limited = run_trials_batched(configs, mnist, engine=engine, step_limit=lambda: 24)
    limited_refs, _, _ = sequential(configs, mnist, engine=engine,
                                    step_limit=lambda: 24)
    for result, reference in zip(limited, limited_refs, strict=True):
        assert_same_outcome(result, reference)
        assert result.message == reference.message
    assert [r.status for r in limited] == ["stopped", "complete", "infeasible", "stopped"]

    # share_best: the group's first completion (step 24) limits the others in the same way.
    shared = run_trials_batched(configs, mnist, engine=engine, share_best=True)
    assert [(r.status, r.steps_taken) for r in shared] == [
        (r.status, r.steps_taken) for r in limited
    ]


def test_mismatched_configs_are_refused(mnist: SplitData) -> None:
    base = TrialConfig("mnist-simplecnn-sgd", 0.9, 32, 0.1, goal_error=0.5, max_steps=8,
                       pruning=SNIP)
    check_same_study([base, base.with_metaparameters(lr=0.2), TrialConfig(
        "mnist-simplecnn-sgd", 0.9, 32, 0.3, seed=4, goal_error=0.5, max_steps=8, pruning=SNIP)])
    for other in (
        TrialConfig("mnist-simplecnn-sgd", 0.9, 64, 0.1, goal_error=0.5, max_steps=8,
                    pruning=SNIP),
        TrialConfig("mnist-simplecnn-sgd", 0.8, 32, 0.1, goal_error=0.5, max_steps=8,
                    pruning=SNIP),
        TrialConfig("mnist-simplecnn-sgd", 0.9, 32, 0.1, data_seed=1, goal_error=0.5,
                    max_steps=8, pruning=SNIP),
        TrialConfig("mnist-simplecnn-sgd", 0.9, 32, 0.1, goal_error=0.5, max_steps=16,
                    pruning=SNIP),
        TrialConfig("mnist-simplecnn-momentum", 0.9, 32, 0.1, momentum=0.9, goal_error=0.5,
                    max_steps=8, pruning=SNIP),
    ):
        with pytest.raises(ValueError, match="differs from trial 0"):
            run_trials_batched([base, other], mnist)
    with pytest.raises(ValueError, match="saliencies"):
        run_trials_batched([base, base], mnist, saliencies=[None])
    assert run_trials_batched([], mnist) == []


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov"])
def test_stacked_updates_follow_tf_rules(kind: str) -> None:
    generator = torch.Generator().manual_seed(0)
    shapes = {"w": (4, 3), "b": (3,)}
    momenta = [0.9, 0.5, 0.0]
    schedules = [Schedule("linear-decay", lr, decay_steps=4, end_lr_factor=0.25)
                 for lr in (0.1, 0.7, 0.02)]
    start = {n: torch.randn(3, *s, generator=generator) for n, s in shapes.items()}
    stacked = {n: t.clone() for n, t in start.items()}
    optimizer = StackedTFOptimizer(kind, stacked, momenta)
    singles = [{n: t[k].clone().requires_grad_() for n, t in start.items()} for k in range(3)]
    references = [TFOptimizer(list(p.values()), kind, momenta[k]) for k, p in enumerate(singles)]
    for step in range(6):
        grads = {n: torch.randn(3, *s, generator=generator) for n, s in shapes.items()}
        optimizer.step(stacked, grads, [s(step) for s in schedules])
        for k, (params, reference) in enumerate(zip(singles, references, strict=True)):
            for name, p in params.items():
                p.grad = grads[name][k].clone()
            reference.step(schedules[k](step))
    for k, params in enumerate(singles):
        for name, p in params.items():
            assert torch.equal(stacked[name][k], p.detach()), name


@pytest.mark.parametrize("grouped", [False, True])
def test_stacked_model_matches_each_model_resnet(grouped: bool) -> None:
    models = [build_model("resnet-8", channels=3, image_size=16, num_classes=10, seed=s)
              for s in range(2)]
    with torch.no_grad():
        for model in models:
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0.0, 0.1)
    stacked, _ = stack_module_state(models)
    params = {n: p.detach().requires_grad_() for n, p in stacked.items()}
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 3, 7, 9])
    logits = StackedModel(models[0], grouped=grouped)(params, x, 4)
    losses = F.cross_entropy(logits, y.repeat(2), reduction="none").view(2, 4).sum(1) / 4
    grads = dict(zip(params, torch.autograd.grad(losses.sum(), list(params.values())),
                     strict=True))
    for k, model in enumerate(models):
        out = model(x)
        (F.cross_entropy(out, y, reduction="sum") / 4).backward()
        assert torch.equal(logits.view(2, 4, -1)[k], out.detach())
        for name, p in model.named_parameters():
            assert torch.equal(grads[name][k], p.grad), name


def test_stacked_model_refuses_layers_it_cannot_stack() -> None:
    with pytest.raises(ValueError, match="BatchNorm"):
        StackedModel(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
