"""The cheaper training step (channels-last pooling, foreach mask) changes no bit of a result."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from sparsedp.models import build_model
from sparsedp.pruning.mask import Mask
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training.optimizers import TFOptimizer
from sparsedp.training.trainer import EngineSettings, TrialRun
from sparsedp.training.trial_config import TrialConfig


def _bits(model: torch.nn.Module) -> list[torch.Tensor]:
    """Raw bit patterns (so -0.0 and 0.0, or two NaNs, are told apart)."""
    return [p.detach().view(torch.int32).clone() for p in model.parameters()]


def _train(kind: str, fast: bool, steps: int = 6) -> tuple[list[torch.Tensor], list]:
    model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=3)
    model.channels_last_pool = fast
    generator = torch.Generator().manual_seed(0)
    masks = {
        name: (torch.rand(p.shape, generator=generator) < 0.2).float()
        for name, p in model.named_parameters()
    }
    mask = Mask(masks, model)
    mask.apply_()
    optimizer = TFOptimizer(model.parameters(), kind, 0.9)
    for step in range(steps):
        x = torch.randn(16, 1, 28, 28, generator=generator).clamp_min(0)  # ties at zero
        y = torch.randint(0, 10, (16,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if fast:
            mask.mask_gradients_()
        else:
            mask.mask_gradients_(model)  # the old per-tensor path
        optimizer.step(0.05 * (1 + step % 2))
    state = [a.view(torch.int32).clone() for a in optimizer.accumulators]
    return _bits(model), state


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov"])
def test_fast_step_is_bit_identical_with_masks(kind: str) -> None:
    fast_weights, fast_state = _train(kind, fast=True)
    old_weights, old_state = _train(kind, fast=False)
    assert all(torch.equal(a, b) for a, b in zip(fast_weights, old_weights, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(fast_state, old_state, strict=True))


def test_pooling_matches_including_ties_and_nan() -> None:
    from sparsedp.models.simple_cnn import pool2x2

    x = torch.randn(4, 3, 6, 6).clamp_min(0)
    x[0, 0, 0, 0] = float("nan")
    x[1, 1, :2, :2] = 0.5  # a window of equal values: the first one wins
    x.requires_grad_(True)
    grad = torch.randn(4, 3, 3, 3)
    fast = pool2x2(x)
    (fast_grad,) = torch.autograd.grad(fast, x, grad)
    old = F.max_pool2d(x, 2, 2)
    (old_grad,) = torch.autograd.grad(old, x, grad)
    assert torch.equal(fast.view(torch.int32), old.view(torch.int32))
    assert torch.equal(fast_grad.view(torch.int32), old_grad.view(torch.int32))
    assert fast.is_contiguous()


@pytest.mark.parametrize("shape", [(6, 5, 8, 8), (3, 4, 7, 9)])
def test_pooling_without_gradients_has_max_pools_values(shape) -> None:
    """Evaluation's pooling: small integers (many ties), signed zeros, NaN, odd sides; the
    values equal ``F.max_pool2d``'s (a zero's sign aside), and so do a network's outputs."""
    from sparsedp.models.simple_cnn import SimpleCNN, pool2x2

    generator = torch.Generator().manual_seed(3)
    x = torch.randint(-2, 3, shape, generator=generator).float()
    x[torch.rand(shape, generator=generator) < 0.2] = -0.0
    x[torch.rand(shape, generator=generator) < 0.05] = float("nan")
    with torch.no_grad():
        fast, old = pool2x2(x), F.max_pool2d(x, 2, 2)
    assert fast.shape == old.shape and fast.is_contiguous()
    torch.testing.assert_close(fast, old, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(fast.isnan(), old.isnan())

    model = SimpleCNN()
    images = torch.randn(64, 1, 28, 28, generator=generator)
    with torch.no_grad():
        model.channels_last_pool = True
        fast_logits = model(images)
        model.channels_last_pool = False
        old_logits = model(images)
    assert torch.equal(fast_logits, old_logits)


def test_trial_run_unchanged_on_real_mnist(mnist) -> None:
    config = TrialConfig("mnist-simplecnn-nesterov", 0.9, 16, lr=0.02, momentum=0.9, seed=1,
                         max_steps=32, eval_every=16, pruning=PruneSettings(snip_batches=1))
    runs = []
    for fast in (True, False):
        run = TrialRun(config, mnist, engine=EngineSettings(early_exit=True))
        run.model.channels_last_pool = fast
        run.advance()
        runs.append(run)
    assert all(torch.equal(a, b) for a, b in
               zip(_bits(runs[0].model), _bits(runs[1].model), strict=True))
    assert runs[0].result().curve == runs[1].result().curve
