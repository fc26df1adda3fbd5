"""A trial re-trained with probes: gradient noise scale and Lipschitz smoothness.

:class:`ProbedTrialRun` is the reference trainer (:class:`TrialRun`) with measurements taken
between steps. Each measurement computes gradients at given weights and then restores the
model exactly (parameters, buffers, gradients and the torch random state); the optimizer
state is never touched, so the trial trains and ends exactly as without probes.

Gradients are of the mean cross-entropy, in training mode (as the trainer computes them),
with the pruned weights' entries zeroed: norms and dot products cover the unpruned weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from sparsedp.data.splits import SplitData
from sparsedp.training.noise_scale import GradientGroups, b_simple
from sparsedp.training.smoothness import GAMMAS, lipschitz_along_step
from sparsedp.training.trainer import EngineSettings, TrialRun
from sparsedp.training.trial_config import TrialConfig


@dataclass(frozen=True)
class ProbeSettings:
    """What to measure and how.

    ``noise_steps``: steps after which the noise scale is measured (0: at initialisation);
    ``micro_batch`` (None: the trial's batch size) and ``examples`` (B_big, rounded down to
    whole micro-batches) set the two batch sizes; ``groups`` bounds the stored sums and is
    the unit of the bootstrap. ``lipschitz_every`` (0: off) measures L along every N-th
    step on ``lipschitz_examples`` training examples (None: the whole training split),
    ``chunk`` examples per forward pass.
    """

    noise_steps: tuple[int, ...] = ()
    micro_batch: int | None = None
    examples: int = 8192
    groups: int = 32
    resamples: int = 1000
    confidence: float = 0.95
    lipschitz_every: int = 0
    lipschitz_examples: int | None = None
    gammas: tuple[float, ...] = GAMMAS
    chunk: int = 1000
    seed: int = 0


@dataclass
class NoisePoint:
    step: int
    g2: float
    trace: float
    b_simple: float
    interval: tuple[float, float] | None
    micro_batch: int
    big_batch: int
    groups: int
    seconds: float


@dataclass
class LipschitzPoint:
    step: int
    lipschitz: float
    ratios: list[float]
    step_norm: float
    examples: int
    seconds: float


@dataclass
class ProbeOutcome:
    noise: list[NoisePoint] = field(default_factory=list)
    lipschitz: list[LipschitzPoint] = field(default_factory=list)


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


@torch.no_grad()
def set_flat_parameters(model: torch.nn.Module, flat: torch.Tensor) -> None:
    offset = 0
    for p in model.parameters():
        n = p.numel()
        p.copy_(flat[offset:offset + n].view_as(p))
        offset += n


class _Restored:
    """Context: on exit, the model's state, gradients and torch RNG are as on entry."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.grads = [None if p.grad is None else p.grad.detach().clone()
                      for p in self.model.parameters()]
        self.rng = torch.get_rng_state()

    @torch.no_grad()
    def __exit__(self, *exc: object) -> None:
        for key, value in self.model.state_dict().items():
            value.copy_(self.state[key])
        for p, g in zip(self.model.parameters(), self.grads, strict=True):
            p.grad = g
        torch.set_rng_state(self.rng)


def masked_gradient(run: TrialRun, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    total: int) -> torch.Tensor:
    """Flat gradient of the summed cross-entropy over ``batches`` / ``total`` (pruned: 0)."""
    model = run.model
    for p in model.parameters():
        p.grad = None
    for x, y in batches:
        x, y = x.to(run.device), y.to(run.device)
        loss = F.cross_entropy(model(x), y, reduction="sum") / total
        loss.backward()
    run.mask.mask_gradients_()
    return torch.cat([
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
        for p in model.parameters()
    ])


class ProbedTrialRun(TrialRun):
    """:class:`TrialRun` measuring the noise scale and L between steps (see module doc)."""

    def __init__(self, config: TrialConfig, data: SplitData, probes: ProbeSettings, *,
                 engine: EngineSettings | None = None,
                 saliency: dict[str, torch.Tensor] | None = None,
                 on_measure: Callable[[str, int], None] | None = None) -> None:
        super().__init__(config, data, engine=engine, saliency=saliency)
        self.probes = probes
        self.outcome = ProbeOutcome()
        self.on_measure = on_measure
        self._noise_due = sorted(set(probes.noise_steps))
        self._lipschitz_rows = self._lipschitz_subset()

    def _lipschitz_subset(self) -> np.ndarray:
        n = self.data.num_train
        wanted = self.probes.lipschitz_examples
        if not self.probes.lipschitz_every:
            return np.arange(0)
        if wanted is None or wanted >= n:
            return np.arange(n)
        rng = np.random.default_rng([self.probes.seed, 1])
        return np.sort(rng.choice(n, size=wanted, replace=False))

    # -- hooks -------------------------------------------------------------------------
    def _train_step(self, step: int) -> float:
        self._noise_if_due(step - 1)
        every = self.probes.lipschitz_every
        if not every or step % every:
            return super()._train_step(step)
        before = flat_parameters(self.model)
        loss = super()._train_step(step)
        if math.isfinite(loss):
            self._lipschitz(step, before)
        return loss

    def finish(self) -> ProbeOutcome:
        """Measure the noise scale at the final weights if a checkpoint is due there."""
        self._noise_if_due(self.step)
        return self.outcome

    # -- measurements ------------------------------------------------------------------
    def _noise_if_due(self, step: int) -> None:
        if self._noise_due and self._noise_due[0] == step:
            self._noise_due.pop(0)
            self.outcome.noise.append(self.noise_scale(step))
            if self.on_measure:
                self.on_measure("noise", step)

    def noise_scale(self, step: int) -> NoisePoint:
        """B_simple at the current weights from micro-batches drawn without replacement."""
        started = time.perf_counter()
        p = self.probes
        b = p.micro_batch or self.config.batch_size
        k = min(p.examples, self.data.num_train) // b
        if k < 2:
            raise ValueError(f"need at least two micro-batches of {b} in {p.examples} examples")
        rng = np.random.default_rng([p.seed, 2, step])
        positions = rng.permutation(self.data.num_train)[: k * b].reshape(k, b)
        groups = GradientGroups(min(p.groups, k), b)
        with _Restored(self.model):
            for rows in positions:
                groups.add(masked_gradient(self, [self.data.train_batch(rows)], b))
        summary = groups.summary()
        g2, trace = summary.estimate()
        interval = summary.bootstrap(p.resamples, seed=p.seed + step, confidence=p.confidence)
        return NoisePoint(step, g2, trace, b_simple(g2, trace), interval, b, k * b,
                          len(summary.sizes), time.perf_counter() - started)

    def _lipschitz(self, step: int, before: torch.Tensor) -> None:
        started = time.perf_counter()
        rows = self._lipschitz_rows
        chunks = [rows[i:i + self.probes.chunk] for i in range(0, len(rows), self.probes.chunk)]
        after = flat_parameters(self.model)

        def gradient_at(weights: torch.Tensor) -> torch.Tensor:
            set_flat_parameters(self.model, weights)
            return masked_gradient(self, (self.data.train_batch(c) for c in chunks), len(rows))

        with _Restored(self.model):
            value, ratios = lipschitz_along_step(gradient_at, before, after, self.probes.gammas)
        step_norm = float(torch.linalg.vector_norm((after - before).double()))
        self.outcome.lipschitz.append(LipschitzPoint(step, value, ratios, step_norm, len(rows),
                                                     time.perf_counter() - started))
        if self.on_measure:
            self.on_measure("lipschitz", step)

